package ledger

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"gorm.io/gorm"
)

// The store: SQL against the ledger_* tables. Every function takes the
// transaction handle; the service decides transaction boundaries. Lots and
// holds of a member are only changed while the member's account row is locked
// (lockAccounts or the balance UPDATE of credit), which serialises all spending
// of one member and makes double spending impossible.

type accountKey struct {
	Kind  AccountKind
	Owner int64
}

type account struct {
	ID      int64
	Kind    AccountKind
	OwnerID int64
	Balance int64
	Held    int64
}

// ensureAccounts creates the accounts that do not exist yet and returns the ids
// of all of them, in one round trip in the common case. Keys are inserted in a
// fixed order so concurrent creators cannot deadlock; a key created by a
// concurrent transaction after this statement's snapshot is picked up on retry.
// Call it before locking any account: inserting a new key waits for a
// concurrent inserter of the same key to commit, and that one may be waiting
// for a member lock.
func ensureAccounts(tx *gorm.DB, keys ...accountKey) (map[accountKey]int64, error) {
	return ensureAccountsBatch(tx, keys)
}

// lockAccounts locks the given accounts in id order (the global lock order:
// two members locked by two transactions can never deadlock) and returns them.
func lockAccounts(tx *gorm.DB, ids ...int64) (map[int64]*account, error) {
	var rows []account
	err := tx.Raw(`SELECT id, kind, owner_id, balance, held FROM ledger_accounts
		WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE`, database.Int64Array(ids)).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("lock accounts: %w", err)
	}
	out := make(map[int64]*account, len(rows))
	for i := range rows {
		out[rows[i].ID] = &rows[i]
	}
	for _, id := range ids {
		if out[id] == nil {
			return nil, fmt.Errorf("lock account %d: %w", id, ErrNotFound)
		}
	}
	return out, nil
}

// saveAccount writes the balance and held total computed under the row lock.
func saveAccount(tx *gorm.DB, a *account) error {
	if err := tx.Exec(`UPDATE ledger_accounts SET balance = ?, held = ? WHERE id = ?`, a.Balance, a.Held, a.ID).Error; err != nil {
		return fmt.Errorf("update account %d: %w", a.ID, err)
	}
	return nil
}

// ---- idempotency

type idemRecord struct {
	Operation     string
	RequestHash   []byte
	Result        *string
	TransactionID *int64
}

// claimIdempotency inserts the key. claimed is false when the key exists: a
// concurrent holder of the same key makes the INSERT wait until it commits
// (then the committed record is returned) or rolls back (then we claim it).
func claimIdempotency(tx *gorm.DB, idem Idempotency, op string, hash []byte, now time.Time) (rec idemRecord, claimed bool, err error) {
	res := tx.Exec(`INSERT INTO ledger_idempotency (scope, key, operation, request_hash, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING`, idem.Scope, idem.Key, op, hash, now)
	if res.Error != nil {
		return rec, false, fmt.Errorf("claim idempotency key: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return rec, true, nil
	}
	rec, err = readIdempotency(tx, idem)
	return rec, false, err
}

// readIdempotency reads the record of a key known to exist.
func readIdempotency(tx *gorm.DB, idem Idempotency) (idemRecord, error) {
	var rows []idemRecord
	if err := tx.Raw(`SELECT operation, request_hash, result::text AS result, transaction_id FROM ledger_idempotency
		WHERE scope = ? AND key = ?`, idem.Scope, idem.Key).Scan(&rows).Error; err != nil {
		return idemRecord{}, fmt.Errorf("read idempotency key: %w", err)
	}
	if len(rows) == 0 {
		return idemRecord{}, errors.New("idempotency key vanished")
	}
	return rows[0], nil
}

func completeIdempotency(tx *gorm.DB, idem Idempotency, result []byte) error {
	if err := tx.Exec(`UPDATE ledger_idempotency SET result = ?::text::json WHERE scope = ? AND key = ?`,
		string(result), idem.Scope, idem.Key).Error; err != nil {
		return fmt.Errorf("store idempotent result: %w", err)
	}
	return nil
}

func hashRequest(req any) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// ---- transactions and entries

// posting is a transaction about to be written.
type posting struct {
	Type            TxType
	MemberID        int64
	CounterMemberID int64
	PartnerID       int64
	Points          Points
	OccurredAt      time.Time
	ExternalRef     string
	ReversesID      int64
	HoldID          int64
	Reason          string
	Actor           string
	Details         json.RawMessage
	BalanceAfter    Points
	Idem            *Idempotency
	Entries         []Entry
}

// insertTransaction writes the transaction and its entries in one statement
// and returns the transaction as posted (without consumptions). Zero-amount
// legs are dropped; the deferred trigger checks the rest sums to zero.
func insertTransaction(tx *gorm.DB, p posting, postedAt time.Time) (Transaction, error) {
	var legs []Entry
	for _, e := range p.Entries {
		if e.Points != 0 {
			legs = append(legs, e)
		}
	}
	var scope, key *string
	if p.Idem != nil {
		scope, key = &p.Idem.Scope, &p.Idem.Key
	}
	var details *string
	if len(p.Details) > 0 {
		d := string(p.Details)
		details = &d
	}
	args := []any{string(p.Type), p.MemberID, nullID(p.CounterMemberID), nullID(p.PartnerID), int64(p.Points),
		p.OccurredAt, postedAt, p.ExternalRef, nullID(p.ReversesID), nullID(p.HoldID), p.Reason, p.Actor,
		details, int64(p.BalanceAfter), scope, key, postedAt}
	vals := make([]string, len(legs))
	for i, e := range legs {
		vals[i] = "(?::bigint, ?::bigint)"
		args = append(args, e.AccountID, int64(e.Points))
	}
	q := `WITH t AS (INSERT INTO ledger_transactions (type, member_id, counter_member_id, partner_id, points,
	        occurred_at, posted_at, external_ref, reverses_id, hold_id, reason, actor, details, balance_after,
	        idempotency_scope, idempotency_key)
	      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::text::json, ?, ?, ?) RETURNING id)
	INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
	SELECT t.id, e.account_id, e.amount, ?::timestamptz FROM t, (VALUES ` + strings.Join(vals, ", ") + `) AS e(account_id, amount)
	RETURNING transaction_id`
	var ids []int64
	if err := tx.Raw(q, args...).Scan(&ids).Error; err != nil {
		return Transaction{}, fmt.Errorf("insert %s transaction: %w", p.Type, translate(err))
	}
	if len(ids) == 0 {
		return Transaction{}, fmt.Errorf("insert %s transaction: no entries", p.Type)
	}
	return Transaction{
		ID: ids[0], Type: p.Type, MemberID: p.MemberID, CounterMemberID: p.CounterMemberID, PartnerID: p.PartnerID,
		Points: p.Points, OccurredAt: p.OccurredAt.UTC(), PostedAt: postedAt.UTC(), ExternalRef: p.ExternalRef,
		ReversesID: p.ReversesID, HoldID: p.HoldID, Reason: p.Reason, Actor: p.Actor, Details: p.Details,
		Entries: legs, BalanceAfter: p.BalanceAfter,
	}, nil
}

type txRow struct {
	ID              int64
	Type            TxType
	MemberID        int64
	CounterMemberID *int64
	PartnerID       *int64
	Points          int64
	OccurredAt      time.Time
	PostedAt        time.Time
	ExternalRef     string
	ReversesID      *int64
	HoldID          *int64
	Reason          string
	Actor           string
	Details         *string
	BalanceAfter    int64
}

const txColumns = `t.id, t.type, t.member_id, t.counter_member_id, t.partner_id, t.points, t.occurred_at, t.posted_at,
	t.external_ref, t.reverses_id, t.hold_id, t.reason, t.actor, t.details::text AS details, t.balance_after`

func (r txRow) transaction() Transaction {
	t := Transaction{ID: r.ID, Type: r.Type, MemberID: r.MemberID, CounterMemberID: database.Deref(r.CounterMemberID),
		PartnerID: database.Deref(r.PartnerID), Points: Points(r.Points), OccurredAt: r.OccurredAt.UTC(), PostedAt: r.PostedAt.UTC(),
		ExternalRef: r.ExternalRef, ReversesID: database.Deref(r.ReversesID), HoldID: database.Deref(r.HoldID), Reason: r.Reason,
		Actor: r.Actor, BalanceAfter: Points(r.BalanceAfter), Entries: []Entry{}}
	if r.Details != nil {
		t.Details = json.RawMessage(*r.Details)
	}
	return t
}

// loadTransactions returns the given transactions with entries and
// consumptions, in the order of ids.
func loadTransactions(tx *gorm.DB, ids []int64) ([]Transaction, error) {
	if len(ids) == 0 {
		return []Transaction{}, nil
	}
	var rows []txRow
	if err := tx.Raw(`SELECT `+txColumns+` FROM ledger_transactions t WHERE t.id = ANY(?::bigint[])`, database.Int64Array(ids)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("load transactions: %w", err)
	}
	byID := make(map[int64]*Transaction, len(rows))
	for _, r := range rows {
		t := r.transaction()
		byID[r.ID] = &t
	}
	var entries []struct {
		TransactionID int64
		AccountID     int64
		Kind          AccountKind
		OwnerID       int64
		Amount        int64
	}
	if err := tx.Raw(`SELECT e.transaction_id, e.account_id, a.kind, a.owner_id, e.amount
		FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
		WHERE e.transaction_id = ANY(?::bigint[]) ORDER BY e.id`, database.Int64Array(ids)).Scan(&entries).Error; err != nil {
		return nil, fmt.Errorf("load entries: %w", err)
	}
	for _, e := range entries {
		if t := byID[e.TransactionID]; t != nil {
			t.Entries = append(t.Entries, Entry{AccountID: e.AccountID, Kind: e.Kind, OwnerID: e.OwnerID, Points: Points(e.Amount)})
		}
	}
	var cons []struct {
		TransactionID   int64
		LotID           int64
		IssuerPartnerID *int64
		Points          int64
	}
	if err := tx.Raw(`SELECT transaction_id, lot_id, issuer_partner_id, points FROM ledger_lot_consumptions
		WHERE transaction_id = ANY(?::bigint[]) ORDER BY id`, database.Int64Array(ids)).Scan(&cons).Error; err != nil {
		return nil, fmt.Errorf("load consumptions: %w", err)
	}
	for _, c := range cons {
		if t := byID[c.TransactionID]; t != nil {
			t.Consumptions = append(t.Consumptions, LotConsumption{LotID: c.LotID, IssuerPartnerID: database.Deref(c.IssuerPartnerID), Points: Points(c.Points)})
		}
	}
	out := make([]Transaction, 0, len(ids))
	for _, id := range ids {
		if t := byID[id]; t != nil {
			out = append(out, *t)
		}
	}
	return out, nil
}

// ---- lots

type lotRow struct {
	ID              int64
	AccountID       int64
	TransactionID   int64
	OriginLotID     *int64
	IssuerPartnerID *int64
	Amount          int64
	Remaining       int64
	EarnedAt        time.Time
	AvailableAt     time.Time
	ExpiresAt       *time.Time
}

const lotColumns = `l.id, l.account_id, l.transaction_id, l.origin_lot_id, l.issuer_partner_id, l.amount, l.remaining,
	l.earned_at, l.available_at, l.expires_at`

// lotOrder is the burn order: earliest expiry first (no expiry last), then oldest.
const lotOrder = `l.expires_at ASC NULLS LAST, l.earned_at, l.id`

func (r lotRow) lot(memberID int64) Lot {
	l := Lot{ID: r.ID, MemberID: memberID, EarnTransactionID: r.TransactionID, OriginLotID: database.Deref(r.OriginLotID),
		IssuerPartnerID: database.Deref(r.IssuerPartnerID), Amount: Points(r.Amount), Remaining: Points(r.Remaining),
		EarnedAt: r.EarnedAt.UTC(), AvailableAt: r.AvailableAt.UTC()}
	if r.ExpiresAt != nil {
		e := r.ExpiresAt.UTC()
		l.ExpiresAt = &e
	}
	return l
}

// lotScope says which of a member's live lots an operation may take.
type lotScope int

const (
	// lotsSpendable: available and not expired — what burns, holds and transfers use.
	lotsSpendable lotScope = iota
	// lotsSettled: available, expired or not — what a capture uses (expiry is
	// deferred while a member has holds) and operator debits.
	lotsSettled
	// lotsAll: also pending lots — clawbacks, forfeits and merges.
	lotsAll
)

func (s lotScope) where() string {
	switch s {
	case lotsSpendable:
		return ` AND l.available_at <= ? AND (l.expires_at IS NULL OR l.expires_at > ?)`
	case lotsSettled:
		return ` AND l.available_at <= ?`
	}
	return ""
}

func (s lotScope) args(now time.Time) []any {
	switch s {
	case lotsSpendable:
		return []any{now, now}
	case lotsSettled:
		return []any{now}
	}
	return nil
}

// pickLots returns the member's live lots in burn order, just enough of them
// to cover need points (all of them when they cannot). need <= 0 returns all.
func pickLots(tx *gorm.DB, accountID int64, scope lotScope, now time.Time, need int64) ([]lotRow, error) {
	args := append([]any{accountID}, scope.args(now)...)
	q := `SELECT ` + lotColumns + `, sum(l.remaining) OVER (ORDER BY ` + lotOrder + `) AS running
		FROM ledger_lots l WHERE l.account_id = ? AND l.remaining > 0` + scope.where()
	if need > 0 {
		q = `SELECT * FROM (` + q + `) s WHERE s.running - s.remaining < ? ORDER BY s.expires_at ASC NULLS LAST, s.earned_at, s.id`
		args = append(args, need)
	} else {
		q += ` ORDER BY ` + lotOrder
	}
	var rows []lotRow
	if err := tx.Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("select lots: %w", err)
	}
	return rows, nil
}

func sumRemaining(lots []lotRow) int64 {
	var n int64
	for _, l := range lots {
		n += l.Remaining
	}
	return n
}

// slice is a part of a lot taken by a transaction.
type slice struct {
	Lot    lotRow
	Points int64
}

// take splits amount over lots in order. The caller has checked they cover it.
func take(lots []lotRow, amount int64) []slice {
	var out []slice
	for _, l := range lots {
		if amount == 0 {
			break
		}
		n := min(l.Remaining, amount)
		out = append(out, slice{l, n})
		amount -= n
	}
	return out
}

// consume takes the slices out of their lots and records the consumptions of
// transaction txID, in one statement.
func consume(tx *gorm.DB, txID int64, slices []slice, now time.Time) ([]LotConsumption, error) {
	if len(slices) == 0 {
		return nil, nil
	}
	vals := make([]string, len(slices))
	var args []any
	out := make([]LotConsumption, len(slices))
	for i, s := range slices {
		vals[i] = "(?::bigint, ?::bigint)"
		args = append(args, s.Lot.ID, s.Points)
		out[i] = LotConsumption{LotID: s.Lot.ID, IssuerPartnerID: database.Deref(s.Lot.IssuerPartnerID), Points: Points(s.Points)}
	}
	args = append(args, txID, now)
	q := `WITH c(lot_id, points) AS (VALUES ` + strings.Join(vals, ", ") + `),
	u AS (UPDATE ledger_lots l SET remaining = l.remaining - c.points FROM c WHERE l.id = c.lot_id
	      RETURNING l.id, l.issuer_partner_id, c.points)
	INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
	SELECT id, ?, issuer_partner_id, points, ? FROM u`
	res := tx.Exec(q, args...)
	if res.Error != nil {
		return nil, fmt.Errorf("consume lots: %w", translate(res.Error))
	}
	if res.RowsAffected != int64(len(slices)) {
		return nil, fmt.Errorf("consume lots: %d of %d lots updated", res.RowsAffected, len(slices))
	}
	return out, nil
}

// lotSpec is a lot to create.
type lotSpec struct {
	Amount          int64
	IssuerPartnerID int64
	OriginLotID     int64
	EarnedAt        time.Time
	AvailableAt     time.Time
	ExpiresAt       *time.Time
}

// createLots writes the lots of a credit to a member. When the member has
// clawback debt (debt > 0), the new points repay it first: the repaid part is
// recorded as a consumption of the new lots by the crediting transaction.
func createLots(tx *gorm.DB, accountID, memberID, txID int64, specs []lotSpec, debt int64, now time.Time) ([]Lot, []LotConsumption, error) {
	if len(specs) == 0 {
		return nil, nil, nil
	}
	vals := make([]string, len(specs))
	var args []any
	repay := make([]int64, len(specs))
	for i, sp := range specs {
		repay[i] = min(debt, sp.Amount)
		debt -= repay[i]
		vals[i] = "(?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::timestamptz, ?::timestamptz, ?::timestamptz)"
		args = append(args, accountID, txID, nullID(sp.OriginLotID), nullID(sp.IssuerPartnerID), sp.Amount,
			sp.Amount-repay[i], sp.EarnedAt, sp.AvailableAt, sp.ExpiresAt)
	}
	var rows []lotRow
	if err := tx.Raw(`INSERT INTO ledger_lots (account_id, transaction_id, origin_lot_id, issuer_partner_id, amount,
		remaining, earned_at, available_at, expires_at) VALUES `+strings.Join(vals, ", ")+`
		RETURNING id, account_id, transaction_id, origin_lot_id, issuer_partner_id, amount, remaining, earned_at, available_at, expires_at`,
		args...).Scan(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("create lots: %w", translate(err))
	}
	lots := make([]Lot, len(rows))
	var cvals []string
	var cargs []any
	var cons []LotConsumption
	for i, r := range rows {
		lots[i] = r.lot(memberID)
		if i < len(repay) && repay[i] > 0 {
			cvals = append(cvals, "(?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::timestamptz)")
			cargs = append(cargs, r.ID, txID, r.IssuerPartnerID, repay[i], now)
			cons = append(cons, LotConsumption{LotID: r.ID, IssuerPartnerID: database.Deref(r.IssuerPartnerID), Points: Points(repay[i])})
		}
	}
	if len(cvals) > 0 {
		if err := tx.Exec(`INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
			VALUES `+strings.Join(cvals, ", "), cargs...).Error; err != nil {
			return nil, nil, fmt.Errorf("record debt repayment: %w", err)
		}
	}
	return lots, cons, nil
}

// ---- holds

type holdRow struct {
	ID                   int64
	AccountID            int64
	MemberID             int64
	PartnerID            *int64
	Points               int64
	Captured             int64
	Status               HoldStatus
	Purpose              string
	Destination          AccountKind
	ExpiresAt            time.Time
	CreatedAt            time.Time
	ClosedAt             *time.Time
	CaptureTransactionID *int64
	ExternalRef          string
	Details              *string
}

const holdColumns = `id, account_id, member_id, partner_id, points, captured, status, purpose, destination, expires_at,
	created_at, closed_at, capture_transaction_id, external_ref, details::text AS details`

func (r holdRow) hold() Hold {
	h := Hold{ID: r.ID, MemberID: r.MemberID, PartnerID: database.Deref(r.PartnerID), Points: Points(r.Points), Captured: Points(r.Captured),
		Status: r.Status, Purpose: r.Purpose, Destination: r.Destination, ExpiresAt: r.ExpiresAt.UTC(),
		CreatedAt: r.CreatedAt.UTC(), CaptureTransactionID: database.Deref(r.CaptureTransactionID), ExternalRef: r.ExternalRef}
	if r.ClosedAt != nil {
		c := r.ClosedAt.UTC()
		h.ClosedAt = &c
	}
	if r.Details != nil {
		h.Details = json.RawMessage(*r.Details)
	}
	return h
}

func getHold(tx *gorm.DB, id int64, forUpdate bool) (holdRow, error) {
	q := `SELECT ` + holdColumns + ` FROM ledger_holds WHERE id = ?`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var rows []holdRow
	if err := tx.Raw(q, id).Scan(&rows).Error; err != nil {
		return holdRow{}, fmt.Errorf("load hold %d: %w", id, err)
	}
	if len(rows) == 0 {
		return holdRow{}, fmt.Errorf("hold %d: %w", id, ErrNotFound)
	}
	return rows[0], nil
}

// closeHolds sets the status of active holds and returns the points released.
func closeHolds(tx *gorm.DB, ids []int64, status HoldStatus, now time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var released []int64
	if err := tx.Raw(`UPDATE ledger_holds SET status = ?, closed_at = ? WHERE id = ANY(?::bigint[]) AND status = 'active'
		RETURNING points`, string(status), now, database.Int64Array(ids)).Scan(&released).Error; err != nil {
		return 0, fmt.Errorf("close holds: %w", err)
	}
	var n int64
	for _, p := range released {
		n += p
	}
	return n, nil
}

// ---- helpers

func translate(err error) error {
	if c := database.Constraint(err); database.Code(err) == database.UniqueViolation && strings.Contains(c, "idempotency") {
		return fmt.Errorf("%w (%s)", ErrIdempotencyMismatch, c)
	}
	return err
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}
