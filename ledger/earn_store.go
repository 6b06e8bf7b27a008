package ledger

import (
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
)

// earnResult is what earnStatement did: posted the earn (t), found an
// existing record under the key (neither flag), or found an account missing
// (nothing written).
type earnResult struct {
	posted          bool
	accountsMissing bool
	t               Transaction
}

// earnSQL posts an earn in one statement. It claims the idempotency key (the
// record points at the transaction, whose id is drawn first), credits the
// member account (the row lock that serialises the member's spending, taken
// after the claim as in every other operation), inserts the transaction with
// its entries and one lot per funding source, and records the repayment of
// clawback debt as consumptions of the new lots. Every write depends on the
// claim, and the claim on all accounts existing: when the key is taken or an
// account is missing the statement writes nothing. Entries and lots come from
// VALUES lists whose zero-amount rows are dropped.
//
// Named parameters: @member, @partner (NULL when 0), @points, @opfunded,
// @total, @scope, @key, @hash (hex: gorm would expand a []byte), @now, @occurred, @ref, @details, @available,
// @expires.
const earnSQL = `WITH acct AS (
	SELECT (SELECT id FROM ledger_accounts WHERE kind = 'member' AND owner_id = $1::bigint) AS member,
	       (SELECT id FROM ledger_accounts WHERE kind = 'partner_issued' AND owner_id = $2::bigint) AS issued,
	       (SELECT id FROM ledger_accounts WHERE kind = 'operator_promotions' AND owner_id = 0) AS promo
), ok AS (
	SELECT * FROM acct WHERE member IS NOT NULL AND ($3::bigint = 0 OR issued IS NOT NULL) AND ($4::bigint = 0 OR promo IS NOT NULL)
), claim AS (
	INSERT INTO ledger_idempotency (scope, key, operation, request_hash, created_at, transaction_id)
	SELECT $6::text, $7::text, 'earn', $8::bytea, $9::timestamptz, nextval('ledger_transactions_id_seq') FROM ok
	ON CONFLICT (scope, key) DO NOTHING
	RETURNING transaction_id
), bal AS (
	UPDATE ledger_accounts a SET balance = a.balance + $5::bigint FROM claim
	WHERE a.id = (SELECT member FROM ok)
	RETURNING a.id, a.balance, claim.transaction_id AS tx_id
), t AS (
	INSERT INTO ledger_transactions (id, type, member_id, partner_id, points, occurred_at, posted_at, external_ref,
	    details, balance_after, idempotency_scope, idempotency_key, checked_in_statement)
	OVERRIDING SYSTEM VALUE
	SELECT tx_id, 'earn', $1::bigint, $2::bigint, $5::bigint, $10::timestamptz, $9::timestamptz, $11::text, $12::json, balance, $6::text, $7::text, true
	FROM bal
), e AS (
	INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
	SELECT bal.tx_id, x.account_id, x.amount, $9::timestamptz
	FROM bal, ok, LATERAL (VALUES (1, ok.member, $5::bigint), (2, ok.issued, -$3::bigint), (3, ok.promo, -$4::bigint)) AS x(n, account_id, amount)
	WHERE x.amount <> 0 ORDER BY x.n
), l AS (
	INSERT INTO ledger_lots (account_id, transaction_id, issuer_partner_id, amount, remaining, earned_at, available_at, expires_at)
	SELECT bal.id, bal.tx_id, s.issuer, s.amount,
	       s.amount - least(greatest(-(bal.balance - $5::bigint) - s.before, 0), s.amount), $10::timestamptz, $13::timestamptz, $14::timestamptz
	FROM bal, (VALUES (1, $2::bigint, $3::bigint, CAST(0 AS bigint)),
	                  (2, NULL, $4::bigint, $3::bigint)) AS s(n, issuer, amount, before)
	WHERE s.amount > 0 ORDER BY s.n
	RETURNING id, issuer_partner_id, amount - remaining AS repaid
), c AS (
	INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
	SELECT l.id, bal.tx_id, l.issuer_partner_id, l.repaid, $9::timestamptz FROM l, bal WHERE l.repaid > 0
)
SELECT acct.member, acct.issued, acct.promo, (SELECT count(*) FROM ok) AS accounts_ok, bal.tx_id, bal.balance,
       (SELECT json_agg(json_build_array(id, issuer_partner_id, repaid) ORDER BY id) FROM l WHERE repaid > 0) AS repaid,
       CASE WHEN bal.tx_id IS NOT NULL THEN set_config('` + PostedEarnSetting + `', bal.tx_id::text, true) END AS posted
FROM acct LEFT JOIN bal ON true`

// PostedEarnSetting is the transaction-local setting in which the earn
// statement leaves the id of the transaction it has just posted, for a
// statement sent after it in the same round trip (EarnThen) to find it with
// current_setting (missing_ok; an empty string when it is not set). It is set
// only when the statement posts (not on a replay, nor when an account is
// missing), and lasts until the end of the database transaction, so a reader
// must also check that the transaction is the one it expects (its member,
// its partner).
const PostedEarnSetting = "hub.posted_earn"

// earnStatement runs earnSQL for r, and then (when not nil) right after it
// in the same round trip.
func earnStatement(tx *gorm.DB, r EarnRequest, hash []byte, now time.Time, then *database.Follow) (earnResult, error) {
	occurred := orNow(r.OccurredAt, now)
	available := now
	if r.AvailableAt != nil {
		available = r.AvailableAt.UTC().Truncate(time.Microsecond)
	}
	var details *string
	if len(r.Details) > 0 {
		d := string(r.Details)
		details = &d
	}
	total := int64(r.Points + r.OperatorFunded)
	var row struct {
		Member, Issued, Promo *int64
		AccountsOK            int64
		TxID                  *int64
		Balance               *int64
		Repaid, Posted        *string
	}
	err := database.QueryRowThen(tx, earnSQL, []any{r.MemberID, nullID(r.PartnerID), int64(r.Points), int64(r.OperatorFunded), total,
		r.Idem.Scope, r.Idem.Key, hash, now, occurred, r.ExternalRef, details, available, truncPtr(r.ExpiresAt)},
		[]any{&row.Member, &row.Issued, &row.Promo, &row.AccountsOK, &row.TxID, &row.Balance, &row.Repaid, &row.Posted}, then)
	if err != nil {
		return earnResult{}, fmt.Errorf("post earn: %w", translate(err))
	}
	if row.AccountsOK == 0 {
		return earnResult{accountsMissing: true}, nil
	}
	if row.TxID == nil {
		return earnResult{}, nil // the key is taken
	}
	entries := []Entry{{AccountID: deref(row.Member), Kind: KindMember, OwnerID: r.MemberID, Points: Points(total)}}
	if r.Points > 0 {
		entries = append(entries, Entry{AccountID: deref(row.Issued), Kind: KindPartnerIssued, OwnerID: r.PartnerID, Points: -r.Points})
	}
	if r.OperatorFunded > 0 {
		entries = append(entries, Entry{AccountID: deref(row.Promo), Kind: KindOperatorPromotions, Points: -r.OperatorFunded})
	}
	t := Transaction{ID: *row.TxID, Type: TypeEarn, MemberID: r.MemberID, PartnerID: r.PartnerID, Points: Points(total),
		OccurredAt: occurred.UTC(), PostedAt: now.UTC(), ExternalRef: r.ExternalRef, Details: r.Details,
		Entries: entries, BalanceAfter: Points(deref(row.Balance))}
	if row.Repaid != nil {
		var repaid [][3]*int64
		if err := json.Unmarshal([]byte(*row.Repaid), &repaid); err != nil {
			return earnResult{}, fmt.Errorf("post earn: repaid debt: %w", err)
		}
		for _, c := range repaid {
			t.Consumptions = append(t.Consumptions, LotConsumption{LotID: deref(c[0]), IssuerPartnerID: deref(c[1]), Points: Points(deref(c[2]))})
		}
	}
	return earnResult{posted: true, t: t}, nil
}
