package settlement

import (
	"fmt"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"
)

// periodColumns selects a periodRow.
const periodColumns = `id, to_char(month, 'YYYY-MM') AS month, time_zone, starts_at, ends_at, status,
	closed_at, closed_by, report_sha256`

type periodRow struct {
	ID           int64
	Month        string
	TimeZone     string
	StartsAt     time.Time
	EndsAt       time.Time
	Status       string
	ClosedAt     *time.Time
	ClosedBy     string
	ReportSHA256 []byte
}

func (r periodRow) period() Period {
	p := Period{ID: r.ID, Month: r.Month, TimeZone: r.TimeZone, StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(),
		Status: PeriodStatus(r.Status), ClosedAt: r.ClosedAt, ClosedBy: r.ClosedBy}
	if len(r.ReportSHA256) > 0 {
		p.ReportSHA256 = fmt.Sprintf("%x", r.ReportSHA256)
	}
	if p.ClosedAt != nil {
		t := p.ClosedAt.UTC()
		p.ClosedAt = &t
	}
	return p
}

// ensurePeriod creates the period row of month m if missing and returns it,
// locked FOR UPDATE when lock is set.
func ensurePeriod(tx *gorm.DB, m month, now time.Time, lock bool) (periodRow, error) {
	if err := tx.Exec(`INSERT INTO settlement_periods (month, time_zone, starts_at, ends_at, created_at)
		VALUES (?::date, ?, ?, ?, ?) ON CONFLICT (month) DO NOTHING`,
		m.date(), m.loc.String(), m.start(), m.end(), now).Error; err != nil {
		return periodRow{}, fmt.Errorf("create period %s: %w", m, err)
	}
	return selectPeriod(tx, m, lock)
}

// selectPeriod reads the period of month m (parsed, so never a month the
// database would refuse) or answers ErrPeriodNotFound.
func selectPeriod(tx *gorm.DB, m month, lock bool) (periodRow, error) {
	q := `SELECT ` + periodColumns + ` FROM settlement_periods WHERE month = ?::date`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []periodRow
	if err := tx.Raw(q, m.date()).Scan(&rows).Error; err != nil {
		return periodRow{}, err
	}
	if len(rows) == 0 {
		return periodRow{}, fmt.Errorf("period %s: %w", m, ErrPeriodNotFound)
	}
	return rows[0], nil
}

func selectRates(tx *gorm.DB, periodID int64) ([]Rate, error) {
	var rows []struct {
		FromCurrency, ToCurrency string
		Rate                     decimal.Decimal
		Source                   string
	}
	if err := tx.Raw(`SELECT from_currency, to_currency, rate, source FROM settlement_exchange_rates
		WHERE period_id = ? ORDER BY from_currency, to_currency`, periodID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Rate, len(rows))
	for i, r := range rows {
		out[i] = Rate{From: r.FromCurrency, To: r.ToCurrency, Rate: r.Rate, Source: r.Source}
	}
	return out, nil
}

type prepaidRow struct {
	PartnerID int64
	Kind      string
	Minor     int64
	Currency  string
}

// selectPrepaid sums prepaid movements made during the period.
func selectPrepaid(tx *gorm.DB, p periodRow) ([]prepaidRow, error) {
	var rows []prepaidRow
	err := tx.Raw(`SELECT partner_id, kind, sum(amount_minor)::bigint AS minor, currency FROM prepaid_movements
		WHERE created_at >= ? AND created_at < ? GROUP BY partner_id, kind, currency ORDER BY partner_id, kind, currency`,
		p.StartsAt, p.EndsAt).Scan(&rows).Error
	return rows, err
}

type adjustmentRow struct {
	ID                   int64
	PartnerID            int64
	AmountMinor          int64
	Currency             string
	Reason               string
	CorrectsStatementID  *int64
	CorrectsLineNo       *int
	ReconciliationLineID *int64
	PeriodID             *int64
	CreatedAt            time.Time
	CreatedBy            string
}

func (r adjustmentRow) adjustment() Adjustment {
	a := Adjustment{ID: r.ID, PartnerID: r.PartnerID, Amount: money.Money{Minor: r.AmountMinor, Currency: r.Currency}, Reason: r.Reason,
		CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy}
	if r.CorrectsStatementID != nil && r.CorrectsLineNo != nil {
		a.Corrects = &LineRef{StatementID: *r.CorrectsStatementID, LineNo: *r.CorrectsLineNo}
	}
	if r.ReconciliationLineID != nil {
		a.ReconciliationLineID = *r.ReconciliationLineID
	}
	if r.PeriodID != nil {
		a.PeriodID = *r.PeriodID
	}
	return a
}

const adjustmentColumns = `id, partner_id, amount_minor, currency, reason, corrects_statement_id, corrects_line_no,
	reconciliation_line_id, period_id, created_at, created_by`

// claimAdjustments assigns every pending adjustment made before the period's
// end to the period and returns the period's adjustments.
func claimAdjustments(tx *gorm.DB, p periodRow) ([]adjustmentRow, error) {
	if err := tx.Exec(`UPDATE settlement_adjustments SET period_id = ? WHERE period_id IS NULL AND created_at < ?`,
		p.ID, p.EndsAt).Error; err != nil {
		return nil, err
	}
	var rows []adjustmentRow
	err := tx.Raw(`SELECT `+adjustmentColumns+` FROM settlement_adjustments WHERE period_id = ? ORDER BY id`, p.ID).Scan(&rows).Error
	return rows, err
}

type partnerInfo struct {
	ID                 int64
	SettlementCurrency string
}

func selectPartners(tx *gorm.DB) (map[int64]string, error) {
	var rows []partnerInfo
	if err := tx.Raw(`SELECT id, settlement_currency FROM partners`).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.SettlementCurrency
	}
	return out, nil
}

const statementColumns = `s.id, s.period_id, to_char(p.month, 'YYYY-MM') AS month, s.partner_id, s.currency, s.net_minor,
	s.document::text AS document, s.sha256, s.status, s.created_at, s.approved_at, s.approved_by, s.sent_at, s.paid_at, s.payment_ref`

type statementRow struct {
	ID         int64
	PeriodID   int64
	Month      string
	PartnerID  int64
	Currency   string
	NetMinor   int64
	Document   string
	SHA256     []byte
	Status     string
	CreatedAt  time.Time
	ApprovedAt *time.Time
	ApprovedBy *string
	SentAt     *time.Time
	PaidAt     *time.Time
	PaymentRef *string
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func selectStatements(tx *gorm.DB, where string, args ...any) ([]statementRow, error) {
	var rows []statementRow
	err := tx.Raw(`SELECT `+statementColumns+` FROM settlement_statements s
		JOIN settlement_periods p ON p.id = s.period_id WHERE `+where, args...).Scan(&rows).Error
	return rows, err
}

// ---- the close's aggregates
//
// A period settles a set T of ledger transactions (recorded in
// settlement_period_transactions). Ledger ids are handed out in posting order,
// so T lies within an id range [lo, hi] that holds almost nothing else. The
// aggregates therefore read the ledger tables by transaction id range, less
// the few ids of the range that are not in T (periodTx.Skip): no join with
// the month-sized mapping, and plans that parallel workers can run. The
// transactions of T that need more than their own row (late ones, reversals
// priced at what they reverse, expiries and forfeits with their breakage) are
// copied once into periodOddTable. Every read of a close runs in one
// REPEATABLE READ snapshot (the aggregates in a second session that imports
// it), so the range, the skipped ids and the ledger rows agree.
//
// Aggregates never join contracts row by row. Every distinct effective_from of
// every contract is a bound; rows are summed per width_bucket(time, bounds)
// (bucket), and only the sums are joined with the contract in force at their
// bucket's start (inForce). No partner's contract changes inside a bucket, so
// that is the version in force at each row's own time.

// periodOddTable holds the period's late transactions, reversals, expiries
// and forfeits, for one database transaction (ON COMMIT DROP).
const periodOddTable = "settlement_close_odd"

// periodTx describes the period's transactions T: the id range [Lo, Hi] (Lo
// > Hi when T is empty) less the ids in Skip.
type periodTx struct {
	periodRange
	Skip []int64
}

// periodRange is the size and id range of a period's transactions.
type periodRange struct {
	Count  int64
	Lo, Hi int64
}

// args adds the query arguments that in refers to.
func (pt periodTx) args(more map[string]any) map[string]any {
	more["lo"], more["hi"], more["skip"] = pt.Lo, pt.Hi, database.Int64Array(pt.Skip)
	return more
}

// in restricts a transaction id column to the period's transactions. The
// skipped ids are a constant array (PostgreSQL hashes long ones), so the
// condition is a filter on a range scan that any plan, parallel ones
// included, can apply.
func (pt periodTx) in(col string) string {
	if len(pt.Skip) == 0 {
		return col + ` BETWEEN @lo AND @hi`
	}
	return col + ` BETWEEN @lo AND @hi AND ` + col + ` <> ALL(CAST(@skip AS bigint[]))`
}

// periodSet says which ledger transactions a period settles: those posted
// in [From, End) and the Stragglers. Every transaction posted before a
// period's end and not settled by an earlier period is the period's. Those
// posted during it are never settled yet (earlier closes took only what was
// posted before their end); those posted since the previous period's start
// were settled by that period unless they committed after its close: those
// few stragglers are picked up as late lines. The first period ever closed
// takes all earlier history (From is then the scan's start, with no
// stragglers).
type periodSet struct {
	From, End  time.Time
	Stragglers []int64
}

// findPeriodSet determines the periodSet of p; scanFrom is the previous
// closed period's start (prevID), or 1970 when none is closed.
func findPeriodSet(tx *gorm.DB, p periodRow, scanFrom time.Time, prevID int64) (periodSet, error) {
	if prevID == 0 {
		return periodSet{From: scanFrom, End: p.EndsAt}, nil
	}
	set := periodSet{From: p.StartsAt, End: p.EndsAt}
	if err := tx.Raw(`SELECT lt.id FROM ledger_transactions lt WHERE lt.posted_at >= @from AND lt.posted_at < @start
		AND NOT EXISTS (SELECT 1 FROM settlement_period_transactions s WHERE s.transaction_id = lt.id AND s.period_id = @prev)
		ORDER BY lt.id`, map[string]any{"start": p.StartsAt, "from": scanFrom, "prev": prevID}).
		Scan(&set.Stragglers).Error; err != nil {
		return periodSet{}, fmt.Errorf("transactions posted late: %w", err)
	}
	return set, nil
}

// sql is the SQL of the ids of the set's transactions; args are its
// arguments.
func (set periodSet) sql() string {
	return `SELECT lt.id FROM ledger_transactions lt WHERE lt.posted_at >= @from AND lt.posted_at < @end
	UNION ALL SELECT unnest(CAST(@stragglers AS bigint[]))`
}

func (set periodSet) args() map[string]any {
	return map[string]any{"from": set.From, "end": set.End, "stragglers": database.Int64Array(set.Stragglers)}
}

// recordTransactions records the set's transactions as settled in p, and
// returns how many. The mapping's primary key makes a second settlement of
// any transaction fail the close rather than pass silently.
func recordTransactions(tx *gorm.DB, p periodRow, set periodSet) (int64, error) {
	args := set.args()
	args["period"] = p.ID
	res := tx.Exec(`INSERT INTO settlement_period_transactions (transaction_id, period_id)
		SELECT t.id, CAST(@period AS bigint) FROM (`+set.sql()+`) t`, args)
	if res.Error != nil {
		return 0, fmt.Errorf("record the period's transactions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// prepareSet describes the set's transactions and prepares the period tables
// for them (preparePeriod): those of the id range posted in [From, End) are
// the period's, the others only if they are stragglers.
func prepareSet(tx *gorm.DB, p periodRow, set periodSet) (periodTx, error) {
	var pt periodTx
	if err := tx.Raw(`SELECT count(*) AS count, coalesce(min(id), 0) AS lo, coalesce(max(id), -1) AS hi
		FROM (`+set.sql()+`) t`, set.args()).Scan(&pt.periodRange).Error; err != nil {
		return periodTx{}, err
	}
	return pt, preparePeriod(tx, p, &pt, `(lt.posted_at < @from OR lt.posted_at >= @end)
		AND lt.id <> ALL(CAST(@stragglers AS bigint[]))`, set.args())
}

// prepareSettled describes the transactions recorded as settled in p and
// prepares the period tables for them (what Verify recomputes from).
func prepareSettled(tx *gorm.DB, p periodRow) (periodTx, error) {
	var pt periodTx
	if err := tx.Raw(`SELECT count(*) AS count, coalesce(min(transaction_id), 0) AS lo, coalesce(max(transaction_id), -1) AS hi
		FROM settlement_period_transactions WHERE period_id = ?`, p.ID).Scan(&pt.periodRange).Error; err != nil {
		return periodTx{}, err
	}
	return pt, preparePeriod(tx, p, &pt, `NOT EXISTS (SELECT 1 FROM settlement_period_transactions s
		WHERE s.transaction_id = lt.id AND s.period_id = @period)`, map[string]any{"period": p.ID})
}

// preparePeriod sets pt.Skip to the ids of [lo, hi] matching outside (those
// p does not settle; normally none, or a few stragglers of a neighbouring
// period), then fills periodOddTable and gathers its statistics (autovacuum
// never analyzes temporary tables).
func preparePeriod(tx *gorm.DB, p periodRow, pt *periodTx, outside string, args map[string]any) error {
	args["lo"], args["hi"], args["start"], args["end"] = pt.Lo, pt.Hi, p.StartsAt, p.EndsAt
	if err := tx.Raw(`SELECT lt.id FROM ledger_transactions lt WHERE lt.id BETWEEN @lo AND @hi AND `+outside+` ORDER BY lt.id`, args).
		Scan(&pt.Skip).Error; err != nil {
		return fmt.Errorf("transactions outside the period: %w", err)
	}
	if err := tx.Exec(`CREATE TEMP TABLE `+periodOddTable+` ON COMMIT DROP AS
		SELECT lt.id, lt.type, lt.partner_id, lt.reverses_id, lt.occurred_at,
		       coalesce(o.occurred_at, lt.occurred_at) AS priced_at, o.type AS reversed_type,
		       (lt.occurred_at < @start OR lt.posted_at < @start) AS late
		FROM ledger_transactions lt LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE `+pt.in("lt.id")+` AND (lt.occurred_at < @start OR lt.posted_at < @start
		      OR lt.reverses_id IS NOT NULL OR lt.type IN ('expiry', 'forfeit'))`, pt.args(args)).Error; err != nil {
		return fmt.Errorf("late transactions, reversals and expiries: %w", err)
	}
	return tx.Exec(`ANALYZE ` + periodOddTable).Error
}

// contractRanges is a CTE of contract versions with the end of their
// validity (c), and the sorted array of every effective_from (b).
const contractRanges = `c AS (
	SELECT partner_id, version, issue_price, redemption_rate, breakage_share, operator_fee_rate, effective_from,
	       coalesce(lead(effective_from) OVER (PARTITION BY partner_id ORDER BY effective_from), 'infinity') AS effective_to
	FROM partner_contracts),
	b AS (SELECT array_agg(DISTINCT effective_from ORDER BY effective_from) AS bounds FROM partner_contracts)`

// bucket is the contract bucket of a time expression.
func bucket(at string) string { return `width_bucket(` + at + `, (SELECT bounds FROM b))` }

// inForce joins c, the contract of partner in force at the start of bucket
// (bucket 0 is before every contract: none is in force).
func inForce(partner, bucket string) string {
	at := `CASE WHEN ` + bucket + ` = 0 THEN '-infinity'::timestamptz ELSE (SELECT bounds FROM b)[` + bucket + `] END`
	return `LEFT JOIN c ON c.partner_id = ` + partner + ` AND ` + at + ` >= c.effective_from AND ` + at + ` < c.effective_to`
}

// partnerAccounts returns the ids of the partner accounts of the given kinds
// as an array literal: the aggregates filter entries by it, so the planner
// sees, from the column's statistics, how many entries that is.
func partnerAccounts(tx *gorm.DB, kinds ...string) (string, error) {
	var ids []int64
	if err := tx.Raw(`SELECT id FROM ledger_accounts WHERE kind IN ? ORDER BY id`, kinds).Scan(&ids).Error; err != nil {
		return "", err
	}
	return database.Int64Array(ids), nil
}

var partnerKinds = []string{"partner_issued", "partner_redeemed", "partner_exchange_in", "partner_exchange_out"}

// legRow is one aggregated group of a period's partner-account entries (or
// breakage consumptions), priced with the contract version in force.
type legRow struct {
	PartnerID      int64
	Kind           string
	Version        *int
	IssuePrice     decimal.NullDecimal
	RedemptionRate decimal.NullDecimal
	BreakageShare  decimal.NullDecimal
	FeeRate        decimal.NullDecimal
	Late           bool
	TransactionID  *int64
	OccurredAt     *time.Time
	Amount         int64
}

// selectLegs aggregates the entries on partner accounts of the period's
// transactions and the breakage attributed through lots. Earns and their
// reversals are priced at the earn's occurred_at, burns and their reversals at
// the burn's, breakage at the lot's earned_at. Late transactions (occurred or
// posted before the period start) stay one row each on issued and redeemed
// accounts.
func selectLegs(tx *gorm.DB, p periodRow, pt periodTx) ([]legRow, error) {
	accts, err := partnerAccounts(tx, partnerKinds...)
	if err != nil {
		return nil, err
	}
	// The planner takes (account, bucket) for millions of groups (it counts
	// the distinct times, not buckets) and would sort the month's rows to
	// group them; hashing them gives the few tens there are.
	if err := tx.Exec(`SET LOCAL enable_sort = off`).Error; err != nil {
		return nil, err
	}
	var rows []legRow
	err = tx.Raw(`WITH `+contractRanges+`,
	x AS (
		SELECT e.account_id, `+bucket("lt.occurred_at")+` AS bucket, false AS late, NULL::bigint AS id,
		       NULL::timestamptz AS occurred_at, sum(e.amount) AS amount
		FROM ledger_transactions lt JOIN ledger_entries e ON e.transaction_id = lt.id
		WHERE `+pt.in("lt.id")+` AND lt.occurred_at >= @start AND lt.posted_at >= @start AND lt.reverses_id IS NULL
		  AND `+pt.in("e.transaction_id")+` AND e.account_id = ANY(CAST(@accts AS bigint[]))
		GROUP BY 1, 2
		UNION ALL
		SELECT e.account_id, `+bucket("t.priced_at")+`, t.late, t.id, t.occurred_at, e.amount
		FROM `+periodOddTable+` t JOIN ledger_entries e ON e.transaction_id = t.id
		WHERE (t.late OR t.reverses_id IS NOT NULL) AND e.account_id = ANY(CAST(@accts AS bigint[]))),
	legs AS (
		SELECT a.owner_id AS partner_id, a.kind, x.bucket, x.late AND a.kind IN ('partner_issued', 'partner_redeemed') AS late,
		       x.id, x.occurred_at, x.amount
		FROM x JOIN ledger_accounts a ON a.id = x.account_id AND a.kind IN ('partner_issued', 'partner_redeemed',
		     'partner_exchange_in', 'partner_exchange_out')
		UNION ALL
		SELECT l.issuer_partner_id, 'breakage', `+bucket("l.earned_at")+`, false, NULL, NULL, sum(lc.points)
		FROM `+periodOddTable+` t JOIN ledger_lot_consumptions lc ON lc.transaction_id = t.id
		JOIN ledger_lots l ON l.id = lc.lot_id
		WHERE t.type IN ('expiry', 'forfeit') AND l.issuer_partner_id IS NOT NULL
		GROUP BY 1, 3)
	SELECT legs.partner_id, legs.kind, c.version, c.issue_price, c.redemption_rate, c.breakage_share,
	       c.operator_fee_rate AS fee_rate, legs.late,
	       CASE WHEN legs.late THEN legs.id END AS transaction_id,
	       CASE WHEN legs.late THEN legs.occurred_at END AS occurred_at,
	       sum(legs.amount)::bigint AS amount
	FROM legs `+inForce("legs.partner_id", "legs.bucket")+`
	GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
	HAVING sum(legs.amount) <> 0`, pt.args(map[string]any{"start": p.StartsAt, "accts": accts})).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	return rows, tx.Exec(`SET LOCAL enable_sort = on`).Error
}

type matrixRow struct {
	IssuerPartnerID   int64
	RedeemerPartnerID int64
	RedemptionRate    decimal.NullDecimal
	Points            int64
}

// selectMatrix sums, per (issuer, redeemer, redemption rate in force), the lot
// consumptions of the period's burns and captures into partner_redeemed
// accounts (attributed by the consumption's issuer), minus the lots their
// reversals recreated. A capture into clawback debt consumed no lot for that
// part, so its reversal's lot without origin is no recreated lot either.
func selectMatrix(tx *gorm.DB, p periodRow, pt periodTx) ([]matrixRow, error) {
	redeemed, err := partnerAccounts(tx, "partner_redeemed")
	if err != nil {
		return nil, err
	}
	var rows []matrixRow
	err = tx.Raw(`WITH `+contractRanges+`,
	cells AS (
		SELECT coalesce(lc.issuer_partner_id, 0) AS issuer, lt.partner_id AS redeemer, `+bucket("lt.occurred_at")+` AS bucket,
		       sum(lc.points) AS points
		FROM ledger_transactions lt JOIN ledger_lot_consumptions lc ON lc.transaction_id = lt.id
		WHERE `+pt.in("lt.id")+` AND lt.type IN ('burn', 'capture') AND `+pt.in("lc.transaction_id")+`
		  AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = lt.id
		      AND `+pt.in("e.transaction_id")+` AND e.account_id = ANY(CAST(@redeemed AS bigint[])))
		GROUP BY 1, 2, 3
		UNION ALL
		SELECT coalesce(l.issuer_partner_id, 0), t.partner_id, `+bucket("t.priced_at")+`, -sum(l.amount)
		FROM `+periodOddTable+` t JOIN ledger_lots l ON l.transaction_id = t.id AND l.origin_lot_id IS NOT NULL
		WHERE t.reversed_type IN ('burn', 'capture')
		  AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.reverses_id
		      AND e.account_id = ANY(CAST(@redeemed AS bigint[])))
		GROUP BY 1, 2, 3)
	SELECT cells.issuer AS issuer_partner_id, cells.redeemer AS redeemer_partner_id, c.redemption_rate,
	       sum(cells.points)::bigint AS points
	FROM cells `+inForce("cells.redeemer", "cells.bucket")+`
	GROUP BY 1, 2, 3 HAVING sum(cells.points) <> 0`, pt.args(map[string]any{"redeemed": redeemed})).Scan(&rows).Error
	return rows, err
}

type liabilityRow struct {
	IssuerPartnerID int64
	IssuePrice      decimal.NullDecimal
	Points          int64
}

// periodLotMoves is the SQL of the lot points created (+) and consumed (−)
// by the period's transactions, per issuer (0: the operator) and contract
// bucket of the lot's earning.
func periodLotMoves(pt periodTx) string {
	return `SELECT coalesce(l.issuer_partner_id, 0) AS issuer, ` + bucket("l.earned_at") + ` AS bucket, sum(l.amount) AS points
	FROM ledger_lots l WHERE ` + pt.in("l.transaction_id") + `
	GROUP BY 1, 2
	UNION ALL
	SELECT coalesce(l.issuer_partner_id, 0), ` + bucket("l.earned_at") + `, -sum(lc.points)
	FROM ledger_lot_consumptions lc JOIN ledger_lots l ON l.id = lc.lot_id WHERE ` + pt.in("lc.transaction_id") + `
	GROUP BY 1, 2`
}

// earlierLotMoves is the same over every transaction settled in the periods
// that ended by @start.
var earlierLotMoves = `SELECT coalesce(l.issuer_partner_id, 0) AS issuer, ` + bucket("l.earned_at") + ` AS bucket, sum(l.amount) AS points
	FROM earlier t JOIN ledger_lots l ON l.transaction_id = t.id
	GROUP BY 1, 2
	UNION ALL
	SELECT coalesce(l.issuer_partner_id, 0), ` + bucket("l.earned_at") + `, -sum(lc.points)
	FROM earlier t JOIN ledger_lot_consumptions lc ON lc.transaction_id = t.id JOIN ledger_lots l ON l.id = lc.lot_id
	GROUP BY 1, 2`

// selectOutstanding sums, per issuer and issue price in force when the points
// were earned, lot points created minus lot points consumed by every
// transaction settled up to the end of the period: the outstanding liability
// recorded at the previous period's close (prev, its
// settlement_period_outstanding rows) plus this period's lot movements. When
// the previous period has none recorded (closed before they were kept, or
// nothing was outstanding) the earlier periods are summed from the ledger.
func selectOutstanding(tx *gorm.DB, p periodRow, pt periodTx, prev previousPeriod) ([]liabilityRow, error) {
	base := `SELECT NULL::bigint, NULL::numeric, NULL::bigint WHERE false`
	switch {
	case prev.Carried:
		base = `SELECT issuer_partner_id, issue_price, points FROM settlement_period_outstanding WHERE period_id = @prev`
	case prev.ID != 0:
		base = `SELECT h.issuer, c.issue_price, h.points FROM (` + earlierLotMoves + `) h ` + inForce("h.issuer", "h.bucket")
	}
	var rows []liabilityRow
	err := tx.Raw(`WITH `+contractRanges+`,
	earlier AS (
		SELECT spt.transaction_id AS id FROM settlement_period_transactions spt
		JOIN settlement_periods sp ON sp.id = spt.period_id WHERE sp.ends_at <= @start),
	m AS (`+periodLotMoves(pt)+`),
	moves AS (
		SELECT m.issuer, c.issue_price, m.points FROM m `+inForce("m.issuer", "m.bucket")+`
		UNION ALL `+base+`)
	SELECT moves.issuer AS issuer_partner_id, moves.issue_price, sum(moves.points)::bigint AS points
	FROM moves GROUP BY 1, 2 HAVING sum(moves.points) <> 0`,
		pt.args(map[string]any{"prev": prev.ID, "start": p.StartsAt})).Scan(&rows).Error
	return rows, err
}

// previousPeriod is the closed period before a period, if any, and whether
// its outstanding liability was recorded.
type previousPeriod struct {
	ID      int64
	Carried bool
}

func selectPreviousPeriod(tx *gorm.DB, p periodRow) (previousPeriod, error) {
	var prev previousPeriod
	err := tx.Raw(`SELECT sp.id, EXISTS (SELECT 1 FROM settlement_period_outstanding o WHERE o.period_id = sp.id) AS carried
		FROM settlement_periods sp WHERE sp.status = 'closed' AND sp.month < to_date(?, 'YYYY-MM')
		ORDER BY sp.month DESC LIMIT 1`, p.Month).Scan(&prev).Error
	return prev, err
}

// insertOutstanding records the outstanding liability at the end of a
// period, which the next close starts from.
func insertOutstanding(tx *gorm.DB, periodID int64, rows []liabilityRow) error {
	for _, r := range rows {
		if err := tx.Exec(`INSERT INTO settlement_period_outstanding (period_id, issuer_partner_id, issue_price, points)
			VALUES (?, ?, ?, ?)`, periodID, r.IssuerPartnerID, r.IssuePrice, r.Points).Error; err != nil {
			return fmt.Errorf("record outstanding liability of issuer %d: %w", r.IssuerPartnerID, err)
		}
	}
	return nil
}

// selectRecordedOutstanding returns the outstanding liability recorded at a
// period's close.
func selectRecordedOutstanding(tx *gorm.DB, periodID int64) ([]liabilityRow, error) {
	var rows []liabilityRow
	err := tx.Raw(`SELECT issuer_partner_id, issue_price, points FROM settlement_period_outstanding WHERE period_id = ?`, periodID).
		Scan(&rows).Error
	return rows, err
}
