package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/validation"
)

// Service runs the ledger's use cases. Each operation runs in its own database
// transaction, or, for a service returned by In, in a savepoint of the caller's
// transaction.
type Service struct {
	db  *gorm.DB
	now func() time.Time
	// nested: db is a caller's transaction (In); joined: and operations run
	// in it directly, without a savepoint (Joined).
	nested, joined bool
	// Reads, when set, serves the reads that may be a little stale (the
	// console's Overview) from the read replica while it keeps up.
	Reads *database.Reads
}

// staleDB is the connection for a read that may be a little stale: the
// replica Reads chooses, or db (always inside a caller's transaction).
func (s *Service) staleDB() *gorm.DB {
	if s.Reads != nil && !s.nested {
		return s.Reads.DB()
	}
	return s.db
}

// NewService returns a ledger service on db with the clock now.
func NewService(db *gorm.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, now: now}
}

// In returns the same service whose operations run inside the caller's
// transaction tx (as savepoints: a failed operation leaves tx usable and
// changes nothing), so another domain can compose a ledger operation with its
// own writes atomically. Nothing is committed until the caller commits tx.
func (s *Service) In(tx *gorm.DB) *Service {
	return &Service{db: tx, now: s.now, nested: true}
}

// Joined is In without the savepoints: operations run directly in the
// caller's transaction tx, one round trip fewer each. A failed operation may
// leave tx aborted, so it is for callers that roll tx back on any ledger
// error (the partner points API does).
func (s *Service) Joined(tx *gorm.DB) *Service {
	return &Service{db: tx, now: s.now, nested: true, joined: true}
}

// within runs fn in the service's transaction scope: a new transaction, a
// savepoint of the caller's (In), or the caller's transaction itself (Joined).
func (s *Service) within(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.joined {
		return fn(s.db.WithContext(ctx))
	}
	return s.db.WithContext(ctx).Transaction(fn)
}

// clock returns now at the database's precision, so a first answer and its
// replay or a later Get render the same times.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

type replayable interface{ markReplayed() }

func (t *Transaction) markReplayed() { t.Replayed = true }
func (h *Hold) markReplayed()        { h.Replayed = true }

// run executes fn once per idempotency key, in a transaction. A replay with the
// same request returns the stored result with Replayed set; a different
// request under the same key is ErrIdempotencyMismatch. A failing fn stores
// nothing, so a retry is evaluated afresh.
func run[T any](ctx context.Context, s *Service, idem Idempotency, op string, req any,
	fn func(tx *gorm.DB, now time.Time) (T, error)) (T, error) {
	var out T
	hash := idem.RequestHash
	if len(hash) == 0 {
		h, err := hashRequest(req)
		if err != nil {
			return out, fmt.Errorf("%s: hash request: %w", op, err)
		}
		hash = h
	}
	err := s.within(ctx, func(tx *gorm.DB) error {
		now := s.clock()
		rec, claimed, err := claimIdempotency(tx, idem, op, hash, now)
		if err != nil {
			return err
		}
		if !claimed {
			out, err = replay[T](tx, rec, idem, op, hash)
			return err
		}
		res, err := fn(tx, now)
		if err != nil {
			return err
		}
		b, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("%s: encode result: %w", op, err)
		}
		if err := completeIdempotency(tx, idem, b); err != nil {
			return err
		}
		out = res
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// replay returns the stored answer of rec, the record of an earlier request
// under idem's key: ErrIdempotencyMismatch when that request was another
// operation or had another body. The answer is the stored result, or, for a
// record that points at its transaction (earns), that transaction loaded
// again (transactions are immutable).
func replay[T any](tx *gorm.DB, rec idemRecord, idem Idempotency, op string, hash []byte) (T, error) {
	var out T
	if rec.Operation != op || !bytes.Equal(rec.RequestHash, hash) {
		return out, fmt.Errorf("%s with key %q: %w", op, idem.Key, ErrIdempotencyMismatch)
	}
	switch {
	case rec.Result != nil:
		if err := json.Unmarshal([]byte(*rec.Result), &out); err != nil {
			return out, fmt.Errorf("%s with key %q: decode stored result: %w", op, idem.Key, err)
		}
	case rec.TransactionID != nil:
		ts, err := loadTransactions(tx, []int64{*rec.TransactionID})
		if err != nil {
			return out, err
		}
		t, ok := any(&out).(*Transaction)
		if len(ts) != 1 || !ok {
			return out, fmt.Errorf("%s with key %q: stored transaction %d not found", op, idem.Key, *rec.TransactionID)
		}
		*t = ts[0]
	default:
		return out, fmt.Errorf("%s with key %q: stored record has no result", op, idem.Key)
	}
	if r, ok := any(&out).(replayable); ok {
		r.markReplayed()
	}
	return out, nil
}

// ---- earn

// Earn credits a member with a new lot per funding source (partner-funded
// Points, operator-funded OperatorFunded). If the member owes clawback debt,
// the new points repay it first. Errors: *validation.Error,
// ErrIdempotencyMismatch.
//
// An earn is a batch of one (EarnBatch): the ledger has one earn posting.
func (s *Service) Earn(ctx context.Context, r EarnRequest) (Transaction, error) {
	out, err := s.EarnBatch(ctx, []EarnRequest{r})
	if err != nil {
		return Transaction{}, err
	}
	return out[0].Transaction, out[0].Err
}

func (r EarnRequest) accountKeys() []accountKey {
	keys := []accountKey{{KindMember, r.MemberID}}
	if r.Points > 0 {
		keys = append(keys, accountKey{KindPartnerIssued, r.PartnerID})
	}
	if r.OperatorFunded > 0 {
		keys = append(keys, accountKey{KindOperatorPromotions, 0})
	}
	return keys
}

// ---- burn

// Burn spends available points of a member at a partner in one step,
// consuming lots by earliest expiry, then oldest. Errors: ErrAccountBlocked
// (clawback debt), ErrInsufficientPoints, *validation.Error,
// ErrIdempotencyMismatch.
func (s *Service) Burn(ctx context.Context, r BurnRequest) (Transaction, error) {
	if r.Destination == "" {
		r.Destination = KindPartnerRedeemed
	}
	if err := r.validate(); err != nil {
		return Transaction{}, err
	}
	return run(ctx, s, r.Idem, "burn", r, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		memberKey, destKey := accountKey{KindMember, r.MemberID}, accountKey{r.Destination, r.PartnerID}
		ids, err := ensureAccounts(tx, memberKey, destKey)
		if err != nil {
			return Transaction{}, err
		}
		m, slices, err := lockAndTake(tx, ids[memberKey], int64(r.Points), lotsSpendable, now)
		if err != nil {
			return Transaction{}, fmt.Errorf("burn %d points of member %d: %w", r.Points, r.MemberID, err)
		}
		m.Balance -= int64(r.Points)
		t, err := insertTransaction(tx, posting{Type: TypeBurn, MemberID: r.MemberID, PartnerID: r.PartnerID,
			Points: r.Points, OccurredAt: orNow(r.OccurredAt, now), ExternalRef: r.ExternalRef, Details: r.Details,
			BalanceAfter: Points(m.Balance), Idem: &r.Idem, Entries: []Entry{
				{AccountID: m.ID, Kind: KindMember, OwnerID: r.MemberID, Points: -r.Points},
				{AccountID: ids[destKey], Kind: r.Destination, OwnerID: r.PartnerID, Points: r.Points},
			}}, now)
		if err != nil {
			return Transaction{}, err
		}
		if t.Consumptions, err = consume(tx, t.ID, slices, now); err != nil {
			return Transaction{}, err
		}
		return t, saveAccount(tx, m)
	})
}

// lockAndTake locks a member account and picks lots worth amount of the given
// scope, leaving what active holds reserve untouched.
func lockAndTake(tx *gorm.DB, accountID, amount int64, scope lotScope, now time.Time) (*account, []slice, error) {
	accts, err := lockAccounts(tx, accountID)
	if err != nil {
		return nil, nil, err
	}
	m := accts[accountID]
	if m.Balance < 0 {
		return nil, nil, fmt.Errorf("balance %d: %w", m.Balance, ErrAccountBlocked)
	}
	lots, err := pickLots(tx, m.ID, scope, now, amount+m.Held)
	if err != nil {
		return nil, nil, err
	}
	if avail := sumRemaining(lots) - m.Held; avail < amount {
		return nil, nil, fmt.Errorf("%d available: %w", max(avail, 0), ErrInsufficientPoints)
	}
	return m, take(lots, amount), nil
}

// ---- holds

// Hold reserves available points of a member for a later capture. Errors:
// ErrAccountBlocked, ErrInsufficientPoints, *validation.Error,
// ErrIdempotencyMismatch.
func (s *Service) Hold(ctx context.Context, r HoldRequest) (Hold, error) {
	if r.Destination == "" {
		r.Destination = KindPartnerRedeemed
	}
	if err := r.validate(s.clock()); err != nil {
		return Hold{}, err
	}
	return run(ctx, s, r.Idem, "hold", r, func(tx *gorm.DB, now time.Time) (Hold, error) {
		ids, err := ensureAccounts(tx, accountKey{KindMember, r.MemberID})
		if err != nil {
			return Hold{}, err
		}
		m, _, err := lockAndTake(tx, ids[accountKey{KindMember, r.MemberID}], int64(r.Points), lotsSpendable, now)
		if err != nil {
			return Hold{}, fmt.Errorf("hold %d points of member %d: %w", r.Points, r.MemberID, err)
		}
		var details *string
		if len(r.Details) > 0 {
			d := string(r.Details)
			details = &d
		}
		var rows []holdRow
		if err := tx.Raw(`INSERT INTO ledger_holds (account_id, member_id, partner_id, points, status, purpose, destination,
			expires_at, created_at, external_ref, details, idempotency_scope, idempotency_key)
			VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?::text::json, ?, ?) RETURNING `+holdColumns,
			m.ID, r.MemberID, nullID(r.PartnerID), int64(r.Points), r.Purpose, string(r.Destination), r.ExpiresAt.UTC().Truncate(time.Microsecond),
			now, r.ExternalRef, details, r.Idem.Scope, r.Idem.Key).Scan(&rows).Error; err != nil {
			return Hold{}, fmt.Errorf("insert hold: %w", translate(err))
		}
		m.Held += int64(r.Points)
		h := rows[0].hold()
		h.Details = r.Details
		return h, saveAccount(tx, m)
	})
}

// Capture turns an active, unexpired hold into a capture transaction for
// Points (0 = all of it), crediting the hold's destination account of its
// partner; the rest of the hold is released. It consumes settled lots,
// expired ones first. A hold that a clawback left without cover (clawback.go)
// is captured all the same: it takes the settled lots there are, then
// pending ones, and the rest deepens the member's debt. Errors: ErrNotFound,
// ErrHoldNotActive, *validation.Error, ErrIdempotencyMismatch.
func (s *Service) Capture(ctx context.Context, r CaptureRequest) (Transaction, error) {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.HoldID > 0, "hold_id", "is required")
	v.Check(r.Points >= 0, "points", "must not be negative")
	if err := v.Err(); err != nil {
		return Transaction{}, err
	}
	return run(ctx, s, r.Idem, "capture", r, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		// Accounts are created before any lock is taken (see ensureAccounts).
		peek, err := getHold(tx, r.HoldID, false)
		if err != nil {
			return Transaction{}, err
		}
		destKey := accountKey{peek.Destination, database.Deref(peek.PartnerID)}
		ids, err := ensureAccounts(tx, destKey)
		if err != nil {
			return Transaction{}, err
		}
		h, m, err := lockHold(tx, r.HoldID)
		if err != nil {
			return Transaction{}, err
		}
		if h.Status != HoldActive || !now.Before(h.ExpiresAt) {
			return Transaction{}, fmt.Errorf("capture hold %d (%s, expires %s): %w", h.ID, h.Status, h.ExpiresAt.Format(time.RFC3339), ErrHoldNotActive)
		}
		amount := int64(r.Points)
		if amount == 0 {
			amount = h.Points
		}
		if amount > h.Points {
			return Transaction{}, validation.New("points", fmt.Sprintf("exceeds the hold's %d points", h.Points))
		}
		lots, err := captureLots(tx, m.ID, now, amount)
		if err != nil {
			return Transaction{}, err
		}
		m.Balance -= amount
		m.Held -= h.Points
		t, err := insertTransaction(tx, posting{Type: TypeCapture, MemberID: h.MemberID, PartnerID: database.Deref(h.PartnerID),
			Points: Points(amount), OccurredAt: now, ExternalRef: h.ExternalRef, HoldID: h.ID, Details: h.details(),
			BalanceAfter: Points(m.Balance), Idem: &r.Idem, Entries: []Entry{
				{AccountID: m.ID, Kind: KindMember, OwnerID: h.MemberID, Points: Points(-amount)},
				{AccountID: ids[destKey], Kind: h.Destination, OwnerID: database.Deref(h.PartnerID), Points: Points(amount)},
			}}, now)
		if err != nil {
			return Transaction{}, err
		}
		if t.Consumptions, err = consume(tx, t.ID, take(lots, min(amount, sumRemaining(lots))), now); err != nil {
			return Transaction{}, err
		}
		if err := tx.Exec(`UPDATE ledger_holds SET status = 'captured', captured = ?, closed_at = ?, capture_transaction_id = ?
			WHERE id = ?`, amount, now, t.ID, h.ID).Error; err != nil {
			return Transaction{}, fmt.Errorf("close hold %d: %w", h.ID, err)
		}
		return t, saveAccount(tx, m)
	})
}

// captureLots returns the lots a capture of amount takes, in order: settled
// lots in burn order and, only when they fall short (a clawback took the
// hold's cover), pending ones after them. When even all lots fall short the
// balance is below amount and the capture empties them all (the rest is debt).
func captureLots(tx *gorm.DB, accountID int64, now time.Time, amount int64) ([]lotRow, error) {
	lots, err := pickLots(tx, accountID, lotsSettled, now, amount)
	if err != nil || sumRemaining(lots) >= amount {
		return lots, err
	}
	all, err := pickLots(tx, accountID, lotsAll, now, 0)
	if err != nil {
		return nil, err
	}
	for _, l := range all {
		if l.AvailableAt.After(now) {
			lots = append(lots, l)
		}
	}
	return lots, nil
}

// Void releases an active hold (an expired but not yet swept hold may be
// voided too). Errors: ErrNotFound, ErrHoldNotActive, ErrIdempotencyMismatch.
func (s *Service) Void(ctx context.Context, r VoidRequest) (Hold, error) {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.HoldID > 0, "hold_id", "is required")
	if err := v.Err(); err != nil {
		return Hold{}, err
	}
	return run(ctx, s, r.Idem, "void", r, func(tx *gorm.DB, now time.Time) (Hold, error) {
		h, m, err := lockHold(tx, r.HoldID)
		if err != nil {
			return Hold{}, err
		}
		if h.Status != HoldActive {
			return Hold{}, fmt.Errorf("void hold %d (%s): %w", h.ID, h.Status, ErrHoldNotActive)
		}
		if err := s.closeHold(tx, m, h, HoldVoided, now); err != nil {
			return Hold{}, err
		}
		h.Status, h.ClosedAt = HoldVoided, &now
		return h.hold(), nil
	})
}

func (s *Service) closeHold(tx *gorm.DB, m *account, h holdRow, status HoldStatus, now time.Time) error {
	released, err := closeHolds(tx, []int64{h.ID}, status, now)
	if err != nil {
		return err
	}
	m.Held -= released
	return saveAccount(tx, m)
}

// lockHold locks the hold's member account, then the hold itself.
func lockHold(tx *gorm.DB, id int64) (holdRow, *account, error) {
	h, err := getHold(tx, id, false)
	if err != nil {
		return holdRow{}, nil, err
	}
	accts, err := lockAccounts(tx, h.AccountID)
	if err != nil {
		return holdRow{}, nil, err
	}
	// Re-read under the lock: a merge may have moved the hold meanwhile.
	h, err = getHold(tx, id, true)
	if err != nil {
		return holdRow{}, nil, err
	}
	m := accts[h.AccountID]
	if m == nil {
		return lockHold(tx, id)
	}
	return h, m, nil
}

func (h holdRow) details() json.RawMessage {
	if h.Details == nil {
		return nil
	}
	return json.RawMessage(*h.Details)
}

// ExpireHolds marks up to limit active holds past their expiry as expired,
// releasing their points, each in its own transaction. It returns how many it
// expired; call it until it returns less than limit.
func (s *Service) ExpireHolds(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 500
	}
	now := s.clock()
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM ledger_holds WHERE status = 'active' AND expires_at <= ?
		ORDER BY expires_at, id LIMIT ?`, now, limit).Scan(&ids).Error; err != nil {
		return 0, fmt.Errorf("expire holds: %w", err)
	}
	n := 0
	for _, id := range ids {
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			h, m, err := lockHold(tx, id)
			if err != nil {
				return err
			}
			if h.Status != HoldActive || now.Before(h.ExpiresAt) {
				return nil
			}
			n++
			return s.closeHold(tx, m, h, HoldExpired, now)
		})
		if err != nil {
			return n, fmt.Errorf("expire hold %d: %w", id, err)
		}
	}
	return n, nil
}

// ---- reversal

// Reverse reverses an earn, burn or capture, in full (Points = 0: all that
// remains reversible) or in part; all reversals of one transaction together
// never exceed it. Reversing an earn takes the points back from its lots, then
// from the member's other lots in the clawback order (clawback.go), and lets
// the balance go negative for the rest (clawback debt, which blocks burns
// until later credits repay it); it never voids a hold. Reversing a burn or
// capture recreates the consumed lots with their issuer and expiry. Errors: ErrNotFound,
// ErrNotReversible, ErrReversalExceedsOriginal, *validation.Error,
// ErrIdempotencyMismatch.
func (s *Service) Reverse(ctx context.Context, r ReverseRequest) (Transaction, error) {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.TransactionID > 0, "transaction_id", "is required")
	v.Check(r.Points >= 0, "points", "must not be negative")
	v.Check(len(r.Reason) <= 500, "reason", "must be at most 500 characters")
	v.Check(len(r.ExternalRef) <= 200, "external_ref", "must be at most 200 characters")
	if err := v.Err(); err != nil {
		return Transaction{}, err
	}
	return run(ctx, s, r.Idem, "reverse", r, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		origs, err := loadTransactions(tx, []int64{r.TransactionID})
		if err != nil {
			return Transaction{}, err
		}
		if len(origs) == 0 {
			return Transaction{}, fmt.Errorf("reverse transaction %d: %w", r.TransactionID, ErrNotFound)
		}
		o := origs[0]
		if o.Type != TypeEarn && o.Type != TypeBurn && o.Type != TypeCapture {
			return Transaction{}, fmt.Errorf("reverse %s transaction %d: %w", o.Type, o.ID, ErrNotReversible)
		}
		var memberAcct int64
		for _, e := range o.Entries {
			if e.Kind == KindMember {
				memberAcct = e.AccountID
			}
		}
		accts, err := lockAccounts(tx, memberAcct)
		if err != nil {
			return Transaction{}, err
		}
		m := accts[memberAcct]
		var reversed int64
		if err := tx.Raw(`SELECT coalesce(sum(points), 0) FROM ledger_transactions WHERE reverses_id = ?`, o.ID).Scan(&reversed).Error; err != nil {
			return Transaction{}, err
		}
		left := int64(o.Points) - reversed
		p := int64(r.Points)
		if p == 0 {
			p = left
		}
		if p <= 0 || p > left {
			return Transaction{}, fmt.Errorf("reverse %d of transaction %d (%d reversible): %w", p, o.ID, left, ErrReversalExceedsOriginal)
		}
		base := posting{Type: TypeReversal, MemberID: o.MemberID, PartnerID: o.PartnerID, Points: Points(p),
			OccurredAt: now, ExternalRef: r.ExternalRef, ReversesID: o.ID, Reason: r.Reason, Idem: &r.Idem}
		if o.Type == TypeEarn {
			return reverseEarn(tx, o, m, p, base, now)
		}
		return reverseSpend(tx, o, m, p, base, now)
	})
}

func reverseEarn(tx *gorm.DB, o Transaction, m *account, p int64, base posting, now time.Time) (Transaction, error) {
	// What each funding source may still get back.
	var prior []struct {
		AccountID int64
		Amount    int64
	}
	if err := tx.Raw(`SELECT e.account_id, sum(e.amount) AS amount FROM ledger_entries e
		JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.reverses_id = ? GROUP BY e.account_id`, o.ID).Scan(&prior).Error; err != nil {
		return Transaction{}, err
	}
	back := map[int64]int64{}
	for _, pr := range prior {
		back[pr.AccountID] = pr.Amount
	}
	var earnLots []lotRow
	if err := tx.Raw(`SELECT `+lotColumns+` FROM ledger_lots l WHERE l.transaction_id = ? ORDER BY l.id`, o.ID).Scan(&earnLots).Error; err != nil {
		return Transaction{}, err
	}
	entries := []Entry{{AccountID: m.ID, Kind: KindMember, OwnerID: o.MemberID, Points: Points(-p)}}
	used := map[int64]int64{} // lot id -> points taken by this reversal
	var slices []slice
	rest := p
	// Partner-funded points are reversed before operator-funded ones.
	for _, kind := range []AccountKind{KindPartnerIssued, KindOperatorPromotions} {
		for _, e := range o.Entries {
			if e.Kind != kind || rest == 0 {
				continue
			}
			n := min(-int64(e.Points)-back[e.AccountID], rest)
			if n <= 0 {
				continue
			}
			rest -= n
			entries = append(entries, Entry{AccountID: e.AccountID, Kind: e.Kind, OwnerID: e.OwnerID, Points: Points(n)})
			for _, l := range earnLots {
				if (database.Deref(l.IssuerPartnerID) == 0) == (kind == KindOperatorPromotions) && l.Remaining > 0 {
					k := min(l.Remaining, n)
					slices = append(slices, slice{l, k})
					used[l.ID] += k
					break
				}
			}
		}
	}
	// The part already spent comes from the member's other lots in the
	// clawback order, then becomes debt; holds stay (clawback.go).
	short := p
	for _, sl := range slices {
		short -= sl.Points
	}
	if short > 0 {
		others, err := pickLots(tx, m.ID, lotsAll, now, 0)
		if err != nil {
			return Transaction{}, err
		}
		slices = mergeSlices(slices, clawbackTake(others, used, m.Held, now, short))
	}
	m.Balance -= p
	base.BalanceAfter = Points(m.Balance)
	base.Entries = entries
	t, err := insertTransaction(tx, base, now)
	if err != nil {
		return Transaction{}, err
	}
	if t.Consumptions, err = consume(tx, t.ID, slices, now); err != nil {
		return Transaction{}, err
	}
	return t, saveAccount(tx, m)
}

func reverseSpend(tx *gorm.DB, o Transaction, m *account, p int64, base posting, now time.Time) (Transaction, error) {
	var dest Entry
	for _, e := range o.Entries {
		if e.Kind != KindMember && e.Points > 0 {
			dest = e
		}
	}
	var restored []struct {
		OriginLotID int64
		Amount      int64
	}
	if err := tx.Raw(`SELECT coalesce(l.origin_lot_id, 0) AS origin_lot_id, sum(l.amount) AS amount FROM ledger_lots l
		JOIN ledger_transactions t ON t.id = l.transaction_id WHERE t.reverses_id = ? GROUP BY 1`, o.ID).Scan(&restored).Error; err != nil {
		return Transaction{}, err
	}
	done := map[int64]int64{}
	for _, r := range restored {
		done[r.OriginLotID] = r.Amount
	}
	lotIDs := make([]int64, len(o.Consumptions))
	for i, c := range o.Consumptions {
		lotIDs[i] = c.LotID
	}
	var origLots []lotRow
	if err := tx.Raw(`SELECT `+lotColumns+` FROM ledger_lots l WHERE l.id = ANY(?::bigint[])`, database.Int64Array(lotIDs)).Scan(&origLots).Error; err != nil {
		return Transaction{}, err
	}
	byID := map[int64]lotRow{}
	for _, l := range origLots {
		byID[l.ID] = l
	}
	// A capture of a hold that a clawback left without cover consumed fewer
	// points than it debited (the rest deepened the debt): that part comes
	// back first, as a lot without issuer or origin (the debt it cancels
	// takes it at once; points that repaid the debt meanwhile come back to
	// the member). Then the most recently consumed points.
	var specs []lotSpec
	rest := p
	unbacked := int64(o.Points)
	for _, c := range o.Consumptions {
		unbacked -= int64(c.Points)
	}
	if n := min(unbacked-done[0], rest); n > 0 {
		rest -= n
		specs = append(specs, lotSpec{Amount: n, EarnedAt: now, AvailableAt: now})
	}
	for i := len(o.Consumptions) - 1; i >= 0 && rest > 0; i-- {
		c := o.Consumptions[i]
		n := min(int64(c.Points)-done[c.LotID], rest)
		if n <= 0 {
			continue
		}
		rest -= n
		l := byID[c.LotID]
		// Pending points (only a capture into debt takes them) stay pending.
		avail := now
		if l.AvailableAt.After(now) {
			avail = l.AvailableAt
		}
		specs = append(specs, lotSpec{Amount: n, IssuerPartnerID: database.Deref(l.IssuerPartnerID), OriginLotID: l.ID,
			EarnedAt: l.EarnedAt, AvailableAt: avail, ExpiresAt: l.ExpiresAt})
	}
	if rest != 0 {
		return Transaction{}, fmt.Errorf("reverse transaction %d: consumptions cover %d points less than the reversal", o.ID, rest)
	}
	debt := max(0, -m.Balance)
	m.Balance += p
	base.BalanceAfter = Points(m.Balance)
	base.Entries = []Entry{
		{AccountID: m.ID, Kind: KindMember, OwnerID: o.MemberID, Points: Points(p)},
		{AccountID: dest.AccountID, Kind: dest.Kind, OwnerID: dest.OwnerID, Points: Points(-p)},
	}
	t, err := insertTransaction(tx, base, now)
	if err != nil {
		return Transaction{}, err
	}
	if _, t.Consumptions, err = createLots(tx, m.ID, o.MemberID, t.ID, specs, debt, now); err != nil {
		return Transaction{}, err
	}
	return t, saveAccount(tx, m)
}

// ---- transfer

// Transfer moves points between members: the recipient gets lots keeping the
// sender's issuer and expiry, the fee goes to operator_fees. Limits count
// points sent by the sender in the current UTC day and month. Errors:
// ErrSameMember, ErrTransferLimit, ErrAccountBlocked, ErrInsufficientPoints,
// *validation.Error, ErrIdempotencyMismatch.
func (s *Service) Transfer(ctx context.Context, r TransferRequest) (Transaction, error) {
	if err := r.validate(); err != nil {
		return Transaction{}, err
	}
	return run(ctx, s, r.Idem, "transfer", r, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		fromKey, toKey, feeKey := accountKey{KindMember, r.FromMember}, accountKey{KindMember, r.ToMember}, accountKey{KindOperatorFees, 0}
		keys := []accountKey{fromKey, toKey}
		if r.Fee > 0 {
			keys = append(keys, feeKey)
		}
		ids, err := ensureAccounts(tx, keys...)
		if err != nil {
			return Transaction{}, err
		}
		accts, err := lockAccounts(tx, ids[fromKey], ids[toKey])
		if err != nil {
			return Transaction{}, err
		}
		from, to := accts[ids[fromKey]], accts[ids[toKey]]
		if err := checkTransferLimits(tx, r, now); err != nil {
			return Transaction{}, err
		}
		total := int64(r.Points + r.Fee)
		if from.Balance < 0 {
			return Transaction{}, fmt.Errorf("transfer from member %d: %w", r.FromMember, ErrAccountBlocked)
		}
		lots, err := pickLots(tx, from.ID, lotsSpendable, now, total+from.Held)
		if err != nil {
			return Transaction{}, err
		}
		if avail := sumRemaining(lots) - from.Held; avail < total {
			return Transaction{}, fmt.Errorf("transfer %d points (fee %d) from member %d, %d available: %w",
				r.Points, r.Fee, r.FromMember, max(avail, 0), ErrInsufficientPoints)
		}
		slices := take(lots, total)
		debt := max(0, -to.Balance)
		from.Balance -= total
		to.Balance += int64(r.Points)
		t, err := insertTransaction(tx, posting{Type: TypeTransfer, MemberID: r.FromMember, CounterMemberID: r.ToMember,
			Points: r.Points, OccurredAt: now, BalanceAfter: Points(from.Balance), Idem: &r.Idem, Entries: []Entry{
				{AccountID: from.ID, Kind: KindMember, OwnerID: r.FromMember, Points: Points(-total)},
				{AccountID: to.ID, Kind: KindMember, OwnerID: r.ToMember, Points: r.Points},
				{AccountID: ids[feeKey], Kind: KindOperatorFees, Points: r.Fee},
			}}, now)
		if err != nil {
			return Transaction{}, err
		}
		if t.Consumptions, err = consume(tx, t.ID, slices, now); err != nil {
			return Transaction{}, err
		}
		// The first Points of what was taken become the recipient's lots.
		var specs []lotSpec
		rest := int64(r.Points)
		for _, sl := range slices {
			n := min(sl.Points, rest)
			if n == 0 {
				break
			}
			rest -= n
			specs = append(specs, mirrorLot(sl.Lot, n, now))
		}
		_, repaid, err := createLots(tx, to.ID, r.ToMember, t.ID, specs, debt, now)
		if err != nil {
			return Transaction{}, err
		}
		t.Consumptions = append(t.Consumptions, repaid...)
		if err := saveAccount(tx, from); err != nil {
			return Transaction{}, err
		}
		return t, saveAccount(tx, to)
	})
}

// mirrorLot is a new lot of n points carrying l's issuer, age and expiry.
func mirrorLot(l lotRow, n int64, now time.Time) lotSpec {
	avail := l.AvailableAt
	if avail.Before(now) {
		avail = now
	}
	return lotSpec{Amount: n, IssuerPartnerID: database.Deref(l.IssuerPartnerID), OriginLotID: l.ID, EarnedAt: l.EarnedAt,
		AvailableAt: avail, ExpiresAt: l.ExpiresAt}
}

func checkTransferLimits(tx *gorm.DB, r TransferRequest, now time.Time) error {
	lim := r.Limits
	if lim.PerTransfer > 0 && r.Points > lim.PerTransfer {
		return fmt.Errorf("transfer of %d points, limit %d per transfer: %w", r.Points, lim.PerTransfer, ErrTransferLimit)
	}
	if lim.Daily <= 0 && lim.Monthly <= 0 {
		return nil
	}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var sent struct{ Day, Month int64 }
	if err := tx.Raw(`SELECT coalesce(sum(points) FILTER (WHERE posted_at >= ?), 0) AS day, coalesce(sum(points), 0) AS month
		FROM ledger_transactions WHERE member_id = ? AND type = 'transfer' AND posted_at >= ?`,
		day, r.FromMember, month).Scan(&sent).Error; err != nil {
		return fmt.Errorf("transfer limits: %w", err)
	}
	if lim.Daily > 0 && sent.Day+int64(r.Points) > int64(lim.Daily) {
		return fmt.Errorf("transfer of %d points, %d sent today, daily limit %d: %w", r.Points, sent.Day, lim.Daily, ErrTransferLimit)
	}
	if lim.Monthly > 0 && sent.Month+int64(r.Points) > int64(lim.Monthly) {
		return fmt.Errorf("transfer of %d points, %d sent this month, monthly limit %d: %w", r.Points, sent.Month, lim.Monthly, ErrTransferLimit)
	}
	return nil
}

// ---- adjustment

// Adjust credits (Points > 0: a new lot without issuer or expiry) or debits
// (Points < 0: from settled, unheld points) a member against
// operator_adjustments. Errors: ErrInsufficientPoints, ErrAccountBlocked,
// *validation.Error, ErrIdempotencyMismatch.
func (s *Service) Adjust(ctx context.Context, r AdjustRequest) (Transaction, error) {
	if err := r.validate(); err != nil {
		return Transaction{}, err
	}
	return run(ctx, s, r.Idem, "adjust", r, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		memberKey, adjKey := accountKey{KindMember, r.MemberID}, accountKey{KindOperatorAdjustments, 0}
		ids, err := ensureAccounts(tx, memberKey, adjKey)
		if err != nil {
			return Transaction{}, err
		}
		p := posting{Type: TypeAdjustment, MemberID: r.MemberID, Points: r.Points, OccurredAt: now, Reason: r.Reason,
			Actor: r.Actor, Idem: &r.Idem, Entries: []Entry{
				{AccountID: ids[memberKey], Kind: KindMember, OwnerID: r.MemberID, Points: r.Points},
				{AccountID: ids[adjKey], Kind: KindOperatorAdjustments, Points: -r.Points},
			}}
		if r.Points > 0 {
			accts, err := lockAccounts(tx, ids[memberKey])
			if err != nil {
				return Transaction{}, err
			}
			m := accts[ids[memberKey]]
			debt := max(0, -m.Balance)
			m.Balance += int64(r.Points)
			p.BalanceAfter = Points(m.Balance)
			t, err := insertTransaction(tx, p, now)
			if err != nil {
				return Transaction{}, err
			}
			spec := lotSpec{Amount: int64(r.Points), EarnedAt: now, AvailableAt: now}
			if _, t.Consumptions, err = createLots(tx, m.ID, r.MemberID, t.ID, []lotSpec{spec}, debt, now); err != nil {
				return Transaction{}, err
			}
			return t, saveAccount(tx, m)
		}
		m, slices, err := lockAndTake(tx, ids[memberKey], int64(-r.Points), lotsSettled, now)
		if err != nil {
			return Transaction{}, fmt.Errorf("adjust member %d by %d: %w", r.MemberID, r.Points, err)
		}
		m.Balance += int64(r.Points)
		p.BalanceAfter = Points(m.Balance)
		t, err := insertTransaction(tx, p, now)
		if err != nil {
			return Transaction{}, err
		}
		if t.Consumptions, err = consume(tx, t.ID, slices, now); err != nil {
			return Transaction{}, err
		}
		return t, saveAccount(tx, m)
	})
}

// ---- expiry, forfeit, merge

// ExpireLots moves the remaining points of lots whose expiry is at or before
// asOf (never later than now) to operator_breakage, one expiry transaction per
// member, handling up to limit lots. A lot is expired once (its remaining
// drops to zero). Members with active holds are skipped until the holds are
// resolved, so a hold never loses its cover. Call it until Lots is 0.
func (s *Service) ExpireLots(ctx context.Context, asOf time.Time, limit int) (ExpireResult, error) {
	var res ExpireResult
	if limit <= 0 {
		limit = 1000
	}
	if now := s.clock(); asOf.After(now) {
		asOf = now
	}
	var accountIDs []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT account_id FROM (
		SELECT l.account_id FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id
		WHERE l.remaining > 0 AND l.expires_at <= ? AND a.held = 0 ORDER BY l.expires_at, l.id LIMIT ?) s`,
		asOf, limit).Scan(&accountIDs).Error; err != nil {
		return res, fmt.Errorf("expire lots: %w", err)
	}
	for _, id := range accountIDs {
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			now := s.clock()
			ids, err := ensureAccounts(tx, accountKey{KindOperatorBreakage, 0})
			if err != nil {
				return err
			}
			accts, err := lockAccounts(tx, id)
			if err != nil {
				return err
			}
			m := accts[id]
			if m.Held > 0 {
				return nil
			}
			var lots []lotRow
			if err := tx.Raw(`SELECT `+lotColumns+` FROM ledger_lots l WHERE l.account_id = ? AND l.remaining > 0
				AND l.expires_at <= ? ORDER BY `+lotOrder, id, asOf).Scan(&lots).Error; err != nil {
				return err
			}
			total := sumRemaining(lots)
			if total == 0 {
				return nil
			}
			m.Balance -= total
			t, err := insertTransaction(tx, posting{Type: TypeExpiry, MemberID: m.OwnerID, Points: Points(total),
				OccurredAt: asOf, BalanceAfter: Points(m.Balance), Entries: []Entry{
					{AccountID: m.ID, Kind: KindMember, OwnerID: m.OwnerID, Points: Points(-total)},
					{AccountID: ids[accountKey{KindOperatorBreakage, 0}], Kind: KindOperatorBreakage, Points: Points(total)},
				}}, now)
			if err != nil {
				return err
			}
			if _, err := consume(tx, t.ID, take(lots, total), now); err != nil {
				return err
			}
			res.Lots += len(lots)
			res.Points += Points(total)
			res.Transactions++
			return saveAccount(tx, m)
		})
		if err != nil {
			return res, fmt.Errorf("expire lots of account %d: %w", id, err)
		}
	}
	return res, nil
}

// Forfeit voids the member's active holds and moves all remaining points
// (pending ones too) to operator_breakage: account closure. With nothing to
// forfeit it returns a transaction with ID 0 and nothing is posted. Clawback
// debt stays. Errors: *validation.Error, ErrIdempotencyMismatch.
func (s *Service) Forfeit(ctx context.Context, idem Idempotency, memberID int64, reason string) (Transaction, error) {
	var v validation.Error
	checkIdem(&v, idem)
	v.Check(memberID > 0, "member_id", "is required")
	v.Check(reason != "" && len(reason) <= 500, "reason", "is required (at most 500 characters)")
	if err := v.Err(); err != nil {
		return Transaction{}, err
	}
	req := struct {
		MemberID int64  `json:"member_id"`
		Reason   string `json:"reason"`
	}{memberID, reason}
	return run(ctx, s, idem, "forfeit", req, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		memberKey, brkKey := accountKey{KindMember, memberID}, accountKey{KindOperatorBreakage, 0}
		ids, err := ensureAccounts(tx, memberKey, brkKey)
		if err != nil {
			return Transaction{}, err
		}
		accts, err := lockAccounts(tx, ids[memberKey])
		if err != nil {
			return Transaction{}, err
		}
		m := accts[ids[memberKey]]
		var holdIDs []int64
		if err := tx.Raw(`SELECT id FROM ledger_holds WHERE account_id = ? AND status = 'active'`, m.ID).Scan(&holdIDs).Error; err != nil {
			return Transaction{}, err
		}
		released, err := closeHolds(tx, holdIDs, HoldVoided, now)
		if err != nil {
			return Transaction{}, err
		}
		m.Held -= released
		lots, err := pickLots(tx, m.ID, lotsAll, now, 0)
		if err != nil {
			return Transaction{}, err
		}
		total := sumRemaining(lots)
		if total == 0 {
			return Transaction{Type: TypeForfeit, MemberID: memberID, Reason: reason, OccurredAt: now, PostedAt: now,
				Entries: []Entry{}, BalanceAfter: Points(m.Balance)}, saveAccount(tx, m)
		}
		m.Balance -= total
		t, err := insertTransaction(tx, posting{Type: TypeForfeit, MemberID: memberID, Points: Points(total), OccurredAt: now,
			Reason: reason, BalanceAfter: Points(m.Balance), Idem: &idem, Entries: []Entry{
				{AccountID: m.ID, Kind: KindMember, OwnerID: memberID, Points: Points(-total)},
				{AccountID: ids[brkKey], Kind: KindOperatorBreakage, Points: Points(total)},
			}}, now)
		if err != nil {
			return Transaction{}, err
		}
		if t.Consumptions, err = consume(tx, t.ID, take(lots, total), now); err != nil {
			return Transaction{}, err
		}
		return t, saveAccount(tx, m)
	})
}

// MergeMembers moves fromMember's balance to toMember: remaining lots become
// lots of toMember with the same issuer, age, availability and expiry; active
// holds move as they are; clawback debt moves too (taken from toMember's
// lots, possibly leaving toMember in debt). fromMember's history stays on its
// account and the merge transaction (MemberID = from, CounterMemberID = to)
// links the two. With nothing to move no transaction is posted (ID 0).
// Errors: ErrSameMember, *validation.Error, ErrIdempotencyMismatch.
func (s *Service) MergeMembers(ctx context.Context, idem Idempotency, fromMember, toMember int64) (Transaction, error) {
	var v validation.Error
	checkIdem(&v, idem)
	v.Check(fromMember > 0, "from_member", "is required")
	v.Check(toMember > 0, "to_member", "is required")
	if err := v.Err(); err != nil {
		return Transaction{}, err
	}
	if fromMember == toMember {
		return Transaction{}, fmt.Errorf("merge member %d into itself: %w", fromMember, ErrSameMember)
	}
	req := struct {
		From int64 `json:"from"`
		To   int64 `json:"to"`
	}{fromMember, toMember}
	return run(ctx, s, idem, "merge", req, func(tx *gorm.DB, now time.Time) (Transaction, error) {
		fromKey, toKey := accountKey{KindMember, fromMember}, accountKey{KindMember, toMember}
		ids, err := ensureAccounts(tx, fromKey, toKey)
		if err != nil {
			return Transaction{}, err
		}
		accts, err := lockAccounts(tx, ids[fromKey], ids[toKey])
		if err != nil {
			return Transaction{}, err
		}
		from, to := accts[ids[fromKey]], accts[ids[toKey]]
		var moved []int64
		if err := tx.Raw(`UPDATE ledger_holds SET account_id = ?, member_id = ? WHERE account_id = ? AND status = 'active' RETURNING points`,
			to.ID, toMember, from.ID).Scan(&moved).Error; err != nil {
			return Transaction{}, fmt.Errorf("move holds: %w", err)
		}
		for _, p := range moved {
			from.Held -= p
			to.Held += p
		}
		b := from.Balance
		if b == 0 {
			if err := saveAccount(tx, from); err != nil {
				return Transaction{}, err
			}
			return Transaction{Type: TypeMerge, MemberID: fromMember, CounterMemberID: toMember, OccurredAt: now, PostedAt: now,
				Entries: []Entry{}}, saveAccount(tx, to)
		}
		abs := max(b, -b)
		debt := max(0, -to.Balance)
		from.Balance = 0
		to.Balance += b
		t, err := insertTransaction(tx, posting{Type: TypeMerge, MemberID: fromMember, CounterMemberID: toMember,
			Points: Points(abs), OccurredAt: now, BalanceAfter: 0, Idem: &idem, Entries: []Entry{
				{AccountID: from.ID, Kind: KindMember, OwnerID: fromMember, Points: Points(-b)},
				{AccountID: to.ID, Kind: KindMember, OwnerID: toMember, Points: Points(b)},
			}}, now)
		if err != nil {
			return Transaction{}, err
		}
		if b > 0 {
			lots, err := pickLots(tx, from.ID, lotsAll, now, 0)
			if err != nil {
				return Transaction{}, err
			}
			slices := take(lots, b)
			if t.Consumptions, err = consume(tx, t.ID, slices, now); err != nil {
				return Transaction{}, err
			}
			specs := make([]lotSpec, len(slices))
			for i, sl := range slices {
				specs[i] = mirrorLot(sl.Lot, sl.Points, now)
				specs[i].AvailableAt = sl.Lot.AvailableAt // pending stays pending
			}
			_, repaid, err := createLots(tx, to.ID, toMember, t.ID, specs, debt, now)
			if err != nil {
				return Transaction{}, err
			}
			t.Consumptions = append(t.Consumptions, repaid...)
		} else {
			// Debt moves like a clawback: in the clawback order, holds stay.
			lots, err := pickLots(tx, to.ID, lotsAll, now, 0)
			if err != nil {
				return Transaction{}, err
			}
			if t.Consumptions, err = consume(tx, t.ID, clawbackTake(lots, nil, to.Held, now, abs), now); err != nil {
				return Transaction{}, err
			}
		}
		if err := saveAccount(tx, from); err != nil {
			return Transaction{}, err
		}
		return t, saveAccount(tx, to)
	})
}

// ---- reads

// Balance returns a member's balance; a member the ledger has never seen has
// a zero balance (the ledger does not know which members exist).
func (s *Service) Balance(ctx context.Context, memberID int64) (Balance, error) {
	now := s.clock()
	var rows []struct{ Balance, Held, Pending, Spendable, Expired int64 }
	if err := s.db.WithContext(ctx).Raw(`SELECT a.balance, a.held,
		coalesce(sum(l.remaining) FILTER (WHERE l.available_at > @now), 0) AS pending,
		coalesce(sum(l.remaining) FILTER (WHERE l.available_at <= @now AND (l.expires_at IS NULL OR l.expires_at > @now)), 0) AS spendable,
		coalesce(sum(l.remaining) FILTER (WHERE l.available_at <= @now AND l.expires_at <= @now), 0) AS expired
		FROM ledger_accounts a LEFT JOIN ledger_lots l ON l.account_id = a.id AND l.remaining > 0
		WHERE a.kind = 'member' AND a.owner_id = @member GROUP BY a.id`,
		map[string]any{"now": now, "member": memberID}).Scan(&rows).Error; err != nil {
		return Balance{}, fmt.Errorf("balance of member %d: %w", memberID, err)
	}
	b := Balance{MemberID: memberID}
	if len(rows) == 1 {
		r := rows[0]
		b = splitBalance(memberID, r.Balance, r.Held, r.Pending, r.Spendable, r.Expired)
	}
	return b, nil
}

// splitBalance divides a member's total into the parts of Balance. The
// member's lots hold pending + spendable + expired = max(total, 0) points.
// Holds take spendable points first (as burns and holds count them), then
// expired ones (a capture takes expired lots first; expiry waits for the
// holds); what no lot covers is owed, like clawback debt.
func splitBalance(memberID, total, held, pending, spendable, expired int64) Balance {
	uncovered := max(0, held-spendable) // held beyond the spendable points
	return Balance{MemberID: memberID, Total: Points(total), Held: Points(held), Pending: Points(pending),
		Available: Points(max(0, spendable-held)),
		Expired:   Points(max(0, expired-uncovered)),
		Owed:      Points(max(0, uncovered-expired) + max(0, -total)),
		Blocked:   total < 0}
}

// MemberEarns is what one member earned in a period.
type MemberEarns struct {
	MemberID int64
	Points   Points
	Earns    int
}

// EarnsByMember sums the earns posted in [from, to) per member, for members
// after the cursor after (a member id), in member order, at most limit of
// them: the daily digest of points earned reads it page by page. Reversals
// of those earns are not subtracted: the digest tells what was earned.
func (s *Service) EarnsByMember(ctx context.Context, from, to time.Time, after int64, limit int) ([]MemberEarns, error) {
	var out []MemberEarns
	if err := s.db.WithContext(ctx).Raw(`SELECT member_id, sum(points) AS points, count(*) AS earns
		FROM ledger_transactions WHERE type = 'earn' AND posted_at >= ? AND posted_at < ? AND member_id > ?
		GROUP BY member_id ORDER BY member_id LIMIT ?`, from, to, after, limit).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("earns by member: %w", err)
	}
	return out, nil
}

// Get returns one transaction with its entries and consumptions. Errors: ErrNotFound.
func (s *Service) Get(ctx context.Context, txID int64) (Transaction, error) {
	ts, err := loadTransactions(s.db.WithContext(ctx), []int64{txID})
	if err != nil {
		return Transaction{}, err
	}
	if len(ts) == 0 {
		return Transaction{}, fmt.Errorf("transaction %d: %w", txID, ErrNotFound)
	}
	return ts[0], nil
}

// List returns transactions newest first with keyset pagination on id, and
// the cursor of the next page ("" on the last page). A PartnerID filter keeps
// transactions where the partner is the issuer (earns, and spends or expiry of
// its points) or the redeemer. Errors: ErrInvalidCursor, *validation.Error.
func (s *Service) List(ctx context.Context, f Filter) ([]Transaction, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 500 {
		return nil, "", validation.New("limit", "must be at most 500")
	}
	q := `SELECT t.id FROM ledger_transactions t WHERE true`
	var args []any
	if f.MemberID != 0 {
		q += ` AND (t.member_id = ? OR t.counter_member_id = ?)`
		args = append(args, f.MemberID, f.MemberID)
	}
	if f.PartnerID != 0 {
		q += ` AND (t.partner_id = ? OR (t.type IN ('burn', 'capture', 'expiry', 'forfeit') AND EXISTS (
			SELECT 1 FROM ledger_lot_consumptions c WHERE c.transaction_id = t.id AND c.issuer_partner_id = ?)))`
		args = append(args, f.PartnerID, f.PartnerID)
	}
	if len(f.Types) > 0 {
		q += ` AND t.type IN (`
		for i, ty := range f.Types {
			if i > 0 {
				q += `, `
			}
			q += `?`
			args = append(args, string(ty))
		}
		q += `)`
	}
	if !f.From.IsZero() {
		q += ` AND t.posted_at >= ?`
		args = append(args, f.From)
	}
	if !f.To.IsZero() {
		q += ` AND t.posted_at < ?`
		args = append(args, f.To)
	}
	if f.Cursor != "" {
		after, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || after <= 0 {
			return nil, "", fmt.Errorf("cursor %q: %w", f.Cursor, ErrInvalidCursor)
		}
		q += ` AND t.id < ?`
		args = append(args, after)
	}
	q += ` ORDER BY t.id DESC LIMIT ?`
	args = append(args, limit+1)
	var ids []int64
	db := s.db.WithContext(ctx)
	if err := db.Raw(q, args...).Scan(&ids).Error; err != nil {
		return nil, "", fmt.Errorf("list transactions: %w", err)
	}
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = strconv.FormatInt(ids[limit-1], 10)
	}
	ts, err := loadTransactions(db, ids)
	if err != nil {
		return nil, "", err
	}
	return ts, next, nil
}

// Lots returns a member's lots that still hold points, in burn order.
func (s *Service) Lots(ctx context.Context, memberID int64) ([]Lot, error) {
	var rows []lotRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+lotColumns+` FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id
		WHERE a.kind = 'member' AND a.owner_id = ? AND l.remaining > 0 ORDER BY `+lotOrder, memberID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("lots of member %d: %w", memberID, err)
	}
	out := make([]Lot, len(rows))
	for i, r := range rows {
		out[i] = r.lot(memberID)
	}
	return out, nil
}

// GetHold returns a hold. Errors: ErrNotFound.
func (s *Service) GetHold(ctx context.Context, id int64) (Hold, error) {
	h, err := getHold(s.db.WithContext(ctx), id, false)
	if err != nil {
		return Hold{}, err
	}
	return h.hold(), nil
}

// KeyUsed reports whether a request has claimed idem's key: one committed,
// or one earlier in the caller's transaction (In, Joined). A caller that
// checks what a replay need not carry again (a burn's single-use consent)
// asks it before treating a refused request as new.
func (s *Service) KeyUsed(ctx context.Context, idem Idempotency) (bool, error) {
	var used bool
	if err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM ledger_idempotency WHERE scope = ? AND key = ?)`,
		idem.Scope, idem.Key).Scan(&used).Error; err != nil {
		return false, fmt.Errorf("read idempotency key: %w", err)
	}
	return used, nil
}

// ---- validation

func checkIdem(v *validation.Error, idem Idempotency) {
	v.Check(idem.Scope != "" && len(idem.Scope) <= 100, "idempotency_scope", "is required (at most 100 characters)")
	v.Check(len(idem.Key) >= 1 && len(idem.Key) <= 200, "idempotency_key", "must be 1 to 200 characters")
}

func checkDetails(v *validation.Error, d json.RawMessage) {
	v.Check(len(d) == 0 || json.Valid(d), "details", "must be valid JSON")
}

func (r EarnRequest) validate() error {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.MemberID > 0, "member_id", "is required")
	v.Check(r.PartnerID >= 0, "partner_id", "must not be negative")
	v.Check(r.Points >= 0, "points", "must not be negative")
	v.Check(r.OperatorFunded >= 0, "operator_funded", "must not be negative")
	v.Check(r.Points+r.OperatorFunded > 0, "points", "must be positive")
	v.Check(r.Points == 0 || r.PartnerID > 0, "partner_id", "is required for partner-funded points")
	v.Check(len(r.ExternalRef) <= 200, "external_ref", "must be at most 200 characters")
	if r.ExpiresAt != nil && !r.OccurredAt.IsZero() {
		v.Check(r.ExpiresAt.After(r.OccurredAt), "expires_at", "must be after occurred_at")
	}
	if r.ExpiresAt != nil && r.AvailableAt != nil {
		v.Check(r.ExpiresAt.After(*r.AvailableAt), "expires_at", "must be after available_at")
	}
	checkDetails(&v, r.Details)
	return v.Err()
}

func (r BurnRequest) validate() error {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.MemberID > 0, "member_id", "is required")
	v.Check(r.PartnerID > 0, "partner_id", "is required")
	v.Check(r.Points > 0, "points", "must be positive")
	v.Check(r.Destination == KindPartnerRedeemed || r.Destination == KindPartnerExchangeOut, "destination",
		"must be partner_redeemed or partner_exchange_out")
	v.Check(len(r.ExternalRef) <= 200, "external_ref", "must be at most 200 characters")
	checkDetails(&v, r.Details)
	return v.Err()
}

func (r HoldRequest) validate(now time.Time) error {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.MemberID > 0, "member_id", "is required")
	// A hold into operator_redeemed (an operator catalog order) names no
	// partner; every other hold names the partner it pays.
	if r.Destination == KindOperatorRedeemed {
		v.Check(r.PartnerID == 0, "partner_id", "must be empty for a redemption the operator bears")
		v.Check(r.Purpose == "order", "purpose", "must be order for a redemption the operator bears")
	} else {
		v.Check(r.PartnerID > 0, "partner_id", "is required")
	}
	v.Check(r.Points > 0, "points", "must be positive")
	v.Check(r.ExpiresAt.After(now), "expires_at", "must be in the future")
	v.Check(r.Purpose == "pos" || r.Purpose == "order" || r.Purpose == "exchange", "purpose", "must be pos, order or exchange")
	v.Check(r.Destination == KindPartnerRedeemed || r.Destination == KindPartnerExchangeOut || r.Destination == KindOperatorRedeemed,
		"destination", "must be partner_redeemed, partner_exchange_out or operator_redeemed")
	v.Check(len(r.ExternalRef) <= 200, "external_ref", "must be at most 200 characters")
	checkDetails(&v, r.Details)
	return v.Err()
}

func (r TransferRequest) validate() error {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.FromMember > 0, "from_member", "is required")
	v.Check(r.ToMember > 0, "to_member", "is required")
	v.Check(r.Points > 0, "points", "must be positive")
	v.Check(r.Fee >= 0, "fee", "must not be negative")
	if err := v.Err(); err != nil {
		return err
	}
	if r.FromMember == r.ToMember {
		return fmt.Errorf("transfer from member %d to itself: %w", r.FromMember, ErrSameMember)
	}
	return nil
}

func (r AdjustRequest) validate() error {
	var v validation.Error
	checkIdem(&v, r.Idem)
	v.Check(r.MemberID > 0, "member_id", "is required")
	v.Check(r.Points != 0, "points", "must not be zero")
	v.Check(r.Reason != "" && len(r.Reason) <= 500, "reason", "is required (at most 500 characters)")
	v.Check(len(r.Actor) <= 200, "actor", "must be at most 200 characters")
	return v.Err()
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC().Truncate(time.Microsecond)
}

func truncPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}
