package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
)

// BurnHeld is the one-step burn of a point of sale: a hold for r.Points that
// is captured in full at once, in one database transaction and three
// statements (claim and lock, authorize's own, post). What it writes is what
// Hold followed by a full Capture writes: the hold (status captured, with its
// capture transaction), the capture transaction and its entries, the lot
// consumptions (lots earliest expiry first, then oldest), the member's
// balance, and two idempotency records, the hold's under r.Idem (operation
// "hold", storing the hold as authorised) and the capture's under capture
// (operation "capture", pointing at its transaction). So a key first used by
// Hold and Capture replays here and the other way round.
//
// authorize, when not nil, runs in the transaction after the key is claimed,
// the member's account is locked and the points are known to be there, and
// before anything is posted; its error aborts the burn. It is not called on a
// replay, so a replay needs no fresh consent.
//
// A replay of r.Idem (same operation and request hash) returns the hold as it
// is now and its capture transaction (zero if it has none), both with
// Replayed set. Errors: ErrAccountBlocked, ErrInsufficientPoints,
// *validation.Error, ErrIdempotencyMismatch (also when capture's key is
// already taken), authorize's error.
//
// On a service from Joined a failed BurnHeld leaves the caller's transaction
// half written: the caller must roll it back.
func (s *Service) BurnHeld(ctx context.Context, r HoldRequest, capture Idempotency,
	authorize func(tx *gorm.DB) error) (Hold, Transaction, error) {
	if r.Destination == "" {
		r.Destination = KindPartnerRedeemed
	}
	if err := r.validate(s.clock()); err != nil {
		return Hold{}, Transaction{}, err
	}
	hash := r.Idem.RequestHash
	if len(hash) == 0 {
		h, err := hashRequest(r)
		if err != nil {
			return Hold{}, Transaction{}, fmt.Errorf("burn: hash request: %w", err)
		}
		hash = h
	}
	var h Hold
	var t Transaction
	err := s.within(ctx, func(tx *gorm.DB) error {
		var err error
		h, t, err = burnHeld(tx, r, capture, hash, s.clock(), authorize)
		return err
	})
	if err != nil {
		return Hold{}, Transaction{}, err
	}
	return h, t, nil
}

func burnHeld(tx *gorm.DB, r HoldRequest, capture Idempotency, hash []byte, now time.Time,
	authorize func(tx *gorm.DB) error) (Hold, Transaction, error) {
	var c burnClaim
	for attempt := 0; ; attempt++ {
		var err error
		if c, err = claimBurn(tx, r, hash, now); err != nil {
			return Hold{}, Transaction{}, err
		}
		if c.Member != nil && c.Dest != nil {
			break
		}
		if attempt == 2 {
			return Hold{}, Transaction{}, errors.New("burn: accounts not visible after retries")
		}
		// A member's or partner's first burn: create the accounts (before any
		// lock is taken, see ensureAccounts) and claim again.
		if _, err := ensureAccounts(tx, accountKey{KindMember, r.MemberID}, accountKey{r.Destination, r.PartnerID}); err != nil {
			return Hold{}, Transaction{}, err
		}
	}
	if c.HoldID == nil {
		return replayBurn(tx, r.Idem, hash)
	}
	points := int64(r.Points)
	if c.Balance < 0 {
		return Hold{}, Transaction{}, fmt.Errorf("hold %d points of member %d: balance %d: %w", r.Points, r.MemberID, c.Balance, ErrAccountBlocked)
	}
	if c.Spendable-c.Held < points {
		// The claim read the lots in its snapshot, which may predate the
		// lock it waited for: only a read under the lock may refuse.
		spendable, err := spendablePoints(tx, *c.Member, now)
		if err != nil {
			return Hold{}, Transaction{}, err
		}
		if avail := spendable - c.Held; avail < points {
			return Hold{}, Transaction{}, fmt.Errorf("hold %d points of member %d: %d available: %w", r.Points, r.MemberID, max(avail, 0), ErrInsufficientPoints)
		}
	}
	if authorize != nil {
		if err := authorize(tx); err != nil {
			return Hold{}, Transaction{}, err
		}
	}
	return postBurn(tx, r, capture, hash, c, now)
}

// burnClaim is what claimBurnSQL found: the accounts (nil when missing, and
// then nothing was claimed), and, when it claimed the key, the ids drawn for
// the hold and its transaction and the locked member account.
type burnClaim struct {
	Member, Dest  *int64
	HoldID, TxID  *int64
	Balance, Held int64
	// Spendable is the member's spendable lots in the statement's snapshot.
	Spendable int64
}

// claimBurnSQL claims the hold's idempotency key (drawing the ids of the hold
// and its capture transaction), then locks the member account, the row lock
// that serialises the member's spending, in the same order as every other
// operation (key, then account). Nothing is claimed or locked when an account
// is missing, nothing is locked when the key is taken. The spendable sum is
// read in the statement's snapshot, taken before any wait for the lock: good
// enough to accept (postBurnSQL checks again under the lock), not to refuse.
const claimBurnSQL = `WITH acct AS (
	SELECT (SELECT id FROM ledger_accounts WHERE kind = 'member' AND owner_id = CAST(@member AS bigint)) AS member,
	       (SELECT id FROM ledger_accounts WHERE kind = CAST(@dest AS text) AND owner_id = CAST(@partner AS bigint)) AS dest
), claim AS (
	INSERT INTO ledger_idempotency (scope, key, operation, request_hash, created_at)
	SELECT CAST(@scope AS text), CAST(@key AS text), 'hold', decode(CAST(@hash AS text), 'hex'), CAST(@now AS timestamptz)
	FROM acct WHERE member IS NOT NULL AND dest IS NOT NULL
	ON CONFLICT (scope, key) DO NOTHING
	RETURNING nextval('ledger_holds_id_seq') AS hold_id, nextval('ledger_transactions_id_seq') AS tx_id
), m AS (
	SELECT a.id, a.balance, a.held FROM ledger_accounts a
	WHERE a.id = (SELECT member FROM acct) AND EXISTS (SELECT 1 FROM claim)
	FOR UPDATE
)
SELECT acct.member, acct.dest, claim.hold_id, claim.tx_id, coalesce(m.balance, 0) AS balance, coalesce(m.held, 0) AS held,
       (SELECT coalesce(sum(l.remaining), 0) FROM ledger_lots l WHERE l.account_id = m.id AND l.remaining > 0 ` + spendableLots + `) AS spendable
FROM acct LEFT JOIN claim ON true LEFT JOIN m ON true`

// spendableLots restricts ledger_lots l to lots a burn may take (lotsSpendable).
const spendableLots = `AND l.available_at <= CAST(@now AS timestamptz) AND (l.expires_at IS NULL OR l.expires_at > CAST(@now AS timestamptz))`

// claimBurnQuery is claimBurnSQL compiled for database.QueryRow: the first
// statement of a one-step burn, it carries the transaction's BEGIN with it.
var claimBurnQuery = database.CompileNamed(claimBurnSQL)

func claimBurn(tx *gorm.DB, r HoldRequest, hash []byte, now time.Time) (burnClaim, error) {
	args, err := claimBurnQuery.Args(map[string]any{"member": r.MemberID, "dest": string(r.Destination), "partner": r.PartnerID,
		"scope": r.Idem.Scope, "key": r.Idem.Key, "hash": hex.EncodeToString(hash), "now": now})
	if err != nil {
		return burnClaim{}, err
	}
	var c burnClaim
	if err := database.QueryRow(tx, claimBurnQuery.SQL, args, &c.Member, &c.Dest, &c.HoldID, &c.TxID, &c.Balance, &c.Held,
		&c.Spendable); err != nil {
		return burnClaim{}, fmt.Errorf("burn: claim: %w", translate(err))
	}
	return c, nil
}

func spendablePoints(tx *gorm.DB, accountID int64, now time.Time) (int64, error) {
	var n int64
	if err := tx.Raw(`SELECT coalesce(sum(l.remaining), 0) FROM ledger_lots l WHERE l.account_id = @account AND l.remaining > 0 `+spendableLots,
		map[string]any{"account": accountID, "now": now}).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("burn: spendable points: %w", err)
	}
	return n, nil
}

// replayBurn answers a replay of the hold's key: the hold as it is now and
// its capture transaction.
func replayBurn(tx *gorm.DB, idem Idempotency, hash []byte) (Hold, Transaction, error) {
	rec, err := readIdempotency(tx, idem)
	if err != nil {
		return Hold{}, Transaction{}, err
	}
	stored, err := replay[Hold](tx, rec, idem, "hold", hash)
	if err != nil {
		return Hold{}, Transaction{}, err
	}
	row, err := getHold(tx, stored.ID, false)
	if err != nil {
		return Hold{}, Transaction{}, err
	}
	h := row.hold()
	h.Replayed = true
	if h.CaptureTransactionID == 0 {
		return h, Transaction{}, nil
	}
	ts, err := loadTransactions(tx, []int64{h.CaptureTransactionID})
	if err != nil {
		return Hold{}, Transaction{}, err
	}
	if len(ts) != 1 {
		return Hold{}, Transaction{}, fmt.Errorf("hold %d: capture transaction %d: %w", h.ID, h.CaptureTransactionID, ErrNotFound)
	}
	t := ts[0]
	t.Replayed = true
	return h, t, nil
}

// postBurnSQL posts a claimed one-step burn under the member's lock: it picks
// the spendable lots in burn order, and, if they cover the points beyond what
// other holds reserve, writes the captured hold, the capture transaction
// with its entries, the lot consumptions, the member's balance, the hold's
// idempotency result and the capture's idempotency record. Otherwise it
// writes nothing and reports what is available. The hold and the
// transaction reference each other; foreign keys are checked at the end of
// the statement.
const postBurnSQL = `WITH lots AS (
	SELECT l.id, l.issuer_partner_id, l.remaining,
	       sum(l.remaining) OVER (ORDER BY ` + lotOrder + `) AS running
	FROM ledger_lots l WHERE l.account_id = CAST(@account AS bigint) AND l.remaining > 0 ` + spendableLots + `
), avail AS (
	SELECT coalesce(max(running), 0) - CAST(@held AS bigint) AS points FROM lots
), ok AS (
	SELECT 1 FROM avail WHERE points >= CAST(@points AS bigint)
), pick AS (
	SELECT id, issuer_partner_id, running, least(remaining, CAST(@points AS bigint) - (running - remaining)) AS points
	FROM lots WHERE running - remaining < CAST(@points AS bigint) AND EXISTS (SELECT 1 FROM ok)
), h AS (
	INSERT INTO ledger_holds (id, account_id, member_id, partner_id, points, captured, status, purpose, destination,
	    expires_at, created_at, closed_at, capture_transaction_id, external_ref, details, idempotency_scope, idempotency_key)
	OVERRIDING SYSTEM VALUE
	SELECT CAST(@hold AS bigint), CAST(@account AS bigint), CAST(@member AS bigint), CAST(@partner AS bigint), CAST(@points AS bigint),
	       CAST(@points AS bigint), 'captured', CAST(@purpose AS text), CAST(@dest AS text), CAST(@expires AS timestamptz),
	       CAST(@now AS timestamptz), CAST(@now AS timestamptz), CAST(@tx AS bigint), CAST(@ref AS text), CAST(@details AS json),
	       CAST(@scope AS text), CAST(@key AS text)
	FROM ok
), t AS (
	INSERT INTO ledger_transactions (id, type, member_id, partner_id, points, occurred_at, posted_at, external_ref, hold_id,
	    details, balance_after, idempotency_scope, idempotency_key, checked_in_statement)
	OVERRIDING SYSTEM VALUE
	SELECT CAST(@tx AS bigint), 'capture', CAST(@member AS bigint), CAST(@partner AS bigint), CAST(@points AS bigint),
	       CAST(@now AS timestamptz), CAST(@now AS timestamptz), CAST(@ref AS text), CAST(@hold AS bigint), CAST(@details AS json),
	       CAST(@after AS bigint), CAST(@scope AS text), CAST(@capkey AS text), true
	FROM ok
), e AS (
	INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
	SELECT CAST(@tx AS bigint), x.account_id, x.amount, CAST(@now AS timestamptz)
	FROM ok, (VALUES (1, CAST(@account AS bigint), -CAST(@points AS bigint)), (2, CAST(@destacct AS bigint), CAST(@points AS bigint))) AS x(n, account_id, amount)
	ORDER BY x.n
), u AS (
	UPDATE ledger_lots l SET remaining = l.remaining - p.points FROM pick p WHERE l.id = p.id
), c AS (
	INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
	SELECT p.id, CAST(@tx AS bigint), p.issuer_partner_id, p.points, CAST(@now AS timestamptz) FROM pick p ORDER BY p.running
), a AS (
	UPDATE ledger_accounts SET balance = balance - CAST(@points AS bigint)
	WHERE id = CAST(@account AS bigint) AND EXISTS (SELECT 1 FROM ok)
	RETURNING balance
), r AS (
	UPDATE ledger_idempotency SET result = CAST(@result AS json)
	WHERE scope = CAST(@scope AS text) AND key = CAST(@key AS text) AND EXISTS (SELECT 1 FROM ok)
), rc AS (
	INSERT INTO ledger_idempotency (scope, key, operation, request_hash, created_at, transaction_id)
	SELECT CAST(@scope AS text), CAST(@capkey AS text), 'capture', decode(CAST(@caphash AS text), 'hex'), CAST(@now AS timestamptz), CAST(@tx AS bigint)
	FROM ok
)
SELECT avail.points AS available, (SELECT balance FROM a) AS balance,
       (SELECT json_agg(json_build_array(id, issuer_partner_id, points) ORDER BY running) FROM pick) AS consumed
FROM avail`

func postBurn(tx *gorm.DB, r HoldRequest, capture Idempotency, hash []byte, c burnClaim, now time.Time) (Hold, Transaction, error) {
	points := int64(r.Points)
	h := Hold{ID: *c.HoldID, MemberID: r.MemberID, PartnerID: r.PartnerID, Points: r.Points, Status: HoldActive,
		Purpose: r.Purpose, Destination: r.Destination, ExpiresAt: r.ExpiresAt.UTC().Truncate(time.Microsecond),
		CreatedAt: now, ExternalRef: r.ExternalRef, Details: r.Details}
	// The hold's key stores the hold as Hold would have answered it
	// (authorised); a replay reads the hold again anyway.
	result, err := json.Marshal(h)
	if err != nil {
		return Hold{}, Transaction{}, fmt.Errorf("burn: encode result: %w", err)
	}
	capHash := capture.RequestHash
	if len(capHash) == 0 {
		if capHash, err = hashRequest(CaptureRequest{Idem: capture, HoldID: h.ID}); err != nil {
			return Hold{}, Transaction{}, fmt.Errorf("burn: hash capture: %w", err)
		}
	}
	var details *string
	if len(r.Details) > 0 {
		d := string(r.Details)
		details = &d
	}
	after := c.Balance - points
	var rows []struct {
		Available int64
		Balance   *int64
		Consumed  *string
	}
	if err := tx.Raw(postBurnSQL, map[string]any{
		"account": *c.Member, "destacct": *c.Dest, "held": c.Held, "points": points, "hold": h.ID, "tx": *c.TxID,
		"member": r.MemberID, "partner": r.PartnerID, "purpose": r.Purpose, "dest": string(r.Destination),
		"expires": h.ExpiresAt, "now": now, "ref": r.ExternalRef, "details": details, "after": after,
		"scope": r.Idem.Scope, "key": r.Idem.Key, "capkey": capture.Key, "caphash": hex.EncodeToString(capHash),
		"result": string(result),
	}).Find(&rows).Error; err != nil {
		return Hold{}, Transaction{}, fmt.Errorf("burn: post: %w", translate(err))
	}
	if len(rows) != 1 {
		return Hold{}, Transaction{}, fmt.Errorf("burn: post: %d result rows", len(rows))
	}
	row := rows[0]
	if row.Balance == nil {
		return Hold{}, Transaction{}, fmt.Errorf("hold %d points of member %d: %d available: %w", r.Points, r.MemberID, max(row.Available, 0), ErrInsufficientPoints)
	}
	if *row.Balance != after {
		return Hold{}, Transaction{}, fmt.Errorf("burn: balance %d after posting, want %d: the member's lock was not held", *row.Balance, after)
	}
	t := Transaction{ID: *c.TxID, Type: TypeCapture, MemberID: r.MemberID, PartnerID: r.PartnerID, Points: r.Points,
		OccurredAt: now, PostedAt: now, ExternalRef: r.ExternalRef, HoldID: h.ID, Details: r.Details,
		BalanceAfter: Points(after), Entries: []Entry{
			{AccountID: *c.Member, Kind: KindMember, OwnerID: r.MemberID, Points: -r.Points},
			{AccountID: *c.Dest, Kind: r.Destination, OwnerID: r.PartnerID, Points: r.Points},
		}}
	if row.Consumed != nil {
		var consumed [][3]*int64
		if err := json.Unmarshal([]byte(*row.Consumed), &consumed); err != nil {
			return Hold{}, Transaction{}, fmt.Errorf("burn: consumptions: %w", err)
		}
		for _, x := range consumed {
			t.Consumptions = append(t.Consumptions, LotConsumption{LotID: database.Deref(x[0]), IssuerPartnerID: database.Deref(x[1]), Points: Points(database.Deref(x[2]))})
		}
	}
	h.Status, h.Captured, h.ClosedAt, h.CaptureTransactionID = HoldCaptured, r.Points, &now, t.ID
	return h, t, nil
}
