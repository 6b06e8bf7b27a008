package settlement

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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
	return selectPeriod(tx, m.String(), lock)
}

func selectPeriod(tx *gorm.DB, m string, lock bool) (periodRow, error) {
	q := `SELECT ` + periodColumns + ` FROM settlement_periods WHERE month = to_date(?, 'YYYY-MM')`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []periodRow
	if err := tx.Raw(q, m).Scan(&rows).Error; err != nil {
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

// assignTransactions records every ledger transaction posted before the
// period's end and not settled in an earlier period as settled in p. The scan
// starts at the previous period's start (the BRIN index on posted_at prunes
// the rest): a transaction posted just before an earlier close but committed
// after it is still picked up, as a late line. ON CONFLICT skips those settled
// already (an index probe per row; a NOT EXISTS on the table being filled
// would rescan its new pages for every row).
func assignTransactions(tx *gorm.DB, p periodRow, scanFrom time.Time) (int64, error) {
	res := tx.Exec(`INSERT INTO settlement_period_transactions (transaction_id, period_id)
		SELECT lt.id, ? FROM ledger_transactions lt
		WHERE lt.posted_at < ? AND lt.posted_at >= ?
		ON CONFLICT (transaction_id) DO NOTHING`,
		p.ID, p.EndsAt, scanFrom)
	return res.RowsAffected, res.Error
}

// contractRanges is a CTE of contract versions with the end of their validity.
const contractRanges = `c AS (
	SELECT partner_id, version, issue_price, redemption_rate, breakage_share, operator_fee_rate, effective_from,
	       coalesce(lead(effective_from) OVER (PARTITION BY partner_id ORDER BY effective_from), 'infinity') AS effective_to
	FROM partner_contracts)`

// legRow is one aggregated group of a period's partner-account entries (or
// breakage consumptions), priced with the contract in force at PricedAt.
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

// selectLegs aggregates, set-based, the entries on partner accounts of the
// transactions settled in the period and the breakage attributed through lots.
// Earns and their reversals are priced at the earn's occurred_at, burns and
// their reversals at the burn's, breakage at the lot's earned_at. Late
// transactions (occurred or posted before the period start) stay one row each.
func selectLegs(tx *gorm.DB, p periodRow) ([]legRow, error) {
	var rows []legRow
	err := tx.Raw(`WITH `+contractRanges+`,
	t AS (
		SELECT lt.id, lt.type, lt.occurred_at, coalesce(o.occurred_at, lt.occurred_at) AS priced_at,
		       (lt.occurred_at < @start OR lt.posted_at < @start) AS late
		FROM settlement_period_transactions spt
		JOIN ledger_transactions lt ON lt.id = spt.transaction_id
		LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE spt.period_id = @period),
	legs AS (
		SELECT a.owner_id AS partner_id, a.kind, t.id, t.occurred_at, t.priced_at,
		       t.late AND a.kind IN ('partner_issued', 'partner_redeemed') AS late, e.amount
		FROM t JOIN ledger_entries e ON e.transaction_id = t.id
		JOIN ledger_accounts a ON a.id = e.account_id
		WHERE a.kind IN ('partner_issued', 'partner_redeemed', 'partner_exchange_in', 'partner_exchange_out')
		UNION ALL
		SELECT l.issuer_partner_id, 'breakage', t.id, t.occurred_at, l.earned_at, false, lc.points
		FROM t JOIN ledger_lot_consumptions lc ON lc.transaction_id = t.id
		JOIN ledger_lots l ON l.id = lc.lot_id
		WHERE t.type IN ('expiry', 'forfeit') AND l.issuer_partner_id IS NOT NULL)
	SELECT legs.partner_id, legs.kind, c.version, c.issue_price, c.redemption_rate, c.breakage_share,
	       c.operator_fee_rate AS fee_rate, legs.late,
	       CASE WHEN legs.late THEN legs.id END AS transaction_id,
	       CASE WHEN legs.late THEN legs.occurred_at END AS occurred_at,
	       sum(legs.amount)::bigint AS amount
	FROM legs LEFT JOIN c ON c.partner_id = legs.partner_id
	     AND legs.priced_at >= c.effective_from AND legs.priced_at < c.effective_to
	GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
	HAVING sum(legs.amount) <> 0`, map[string]any{"start": p.StartsAt, "period": p.ID}).Scan(&rows).Error
	return rows, err
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
		WHERE created_at >= ? AND created_at < ? GROUP BY partner_id, kind, currency`, p.StartsAt, p.EndsAt).Scan(&rows).Error
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
	a := Adjustment{ID: r.ID, PartnerID: r.PartnerID, Amount: Money{r.AmountMinor, r.Currency}, Reason: r.Reason,
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

type matrixRow struct {
	IssuerPartnerID   int64
	RedeemerPartnerID int64
	RedemptionRate    decimal.NullDecimal
	Points            int64
}

// selectMatrix sums, per (issuer, redeemer, redemption rate in force), the lot
// consumptions of the period's burns and captures into partner_redeemed
// accounts, minus the lots their reversals recreated.
func selectMatrix(tx *gorm.DB, p periodRow) ([]matrixRow, error) {
	var rows []matrixRow
	err := tx.Raw(`WITH `+contractRanges+`,
	t AS (
		SELECT lt.id, lt.type, lt.partner_id, lt.reverses_id, coalesce(o.occurred_at, lt.occurred_at) AS priced_at,
		       coalesce(lt.reverses_id, lt.id) AS spend_id
		FROM settlement_period_transactions spt
		JOIN ledger_transactions lt ON lt.id = spt.transaction_id
		LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE spt.period_id = @period AND (lt.type IN ('burn', 'capture') OR o.type IN ('burn', 'capture'))),
	redeemed AS (
		SELECT t.* FROM t WHERE EXISTS (SELECT 1 FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
			WHERE e.transaction_id = t.spend_id AND a.kind = 'partner_redeemed')),
	cells AS (
		SELECT coalesce(l.issuer_partner_id, 0) AS issuer, r.partner_id AS redeemer, r.priced_at, lc.points
		FROM redeemed r JOIN ledger_lot_consumptions lc ON lc.transaction_id = r.id
		JOIN ledger_lots l ON l.id = lc.lot_id WHERE r.reverses_id IS NULL
		UNION ALL
		SELECT coalesce(l.issuer_partner_id, 0), r.partner_id, r.priced_at, -l.amount
		FROM redeemed r JOIN ledger_lots l ON l.transaction_id = r.id WHERE r.reverses_id IS NOT NULL)
	SELECT cells.issuer AS issuer_partner_id, cells.redeemer AS redeemer_partner_id, c.redemption_rate,
	       sum(cells.points)::bigint AS points
	FROM cells LEFT JOIN c ON c.partner_id = cells.redeemer
	     AND cells.priced_at >= c.effective_from AND cells.priced_at < c.effective_to
	GROUP BY 1, 2, 3 HAVING sum(cells.points) <> 0`, map[string]any{"period": p.ID}).Scan(&rows).Error
	return rows, err
}

type liabilityRow struct {
	IssuerPartnerID int64
	IssuePrice      decimal.NullDecimal
	Points          int64
}

// selectOutstanding sums, per issuer and issue price in force when the
// points were earned, lot points created minus lot points consumed by every
// transaction settled up to the end of the period.
func selectOutstanding(tx *gorm.DB, p periodRow) ([]liabilityRow, error) {
	var rows []liabilityRow
	err := tx.Raw(`WITH `+contractRanges+`,
	upto AS (
		SELECT spt.transaction_id FROM settlement_period_transactions spt
		JOIN settlement_periods sp ON sp.id = spt.period_id WHERE sp.ends_at <= @end),
	moves AS (
		SELECT l.issuer_partner_id, l.earned_at, l.amount AS points
		FROM upto JOIN ledger_lots l ON l.transaction_id = upto.transaction_id
		UNION ALL
		SELECT l.issuer_partner_id, l.earned_at, -lc.points
		FROM upto JOIN ledger_lot_consumptions lc ON lc.transaction_id = upto.transaction_id
		JOIN ledger_lots l ON l.id = lc.lot_id)
	SELECT coalesce(moves.issuer_partner_id, 0) AS issuer_partner_id, c.issue_price, sum(moves.points)::bigint AS points
	FROM moves LEFT JOIN c ON c.partner_id = moves.issuer_partner_id
	     AND moves.earned_at >= c.effective_from AND moves.earned_at < c.effective_to
	GROUP BY 1, 2 HAVING sum(moves.points) <> 0`, map[string]any{"end": p.EndsAt}).Scan(&rows).Error
	return rows, err
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

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func selectStatements(tx *gorm.DB, where string, args ...any) ([]statementRow, error) {
	var rows []statementRow
	err := tx.Raw(`SELECT `+statementColumns+` FROM settlement_statements s
		JOIN settlement_periods p ON p.id = s.period_id WHERE `+where, args...).Scan(&rows).Error
	return rows, err
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
