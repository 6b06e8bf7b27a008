package settlement

import (
	"fmt"
	"sort"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
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

// prepaidRow is a sum of one kind of a partner's prepaid movements.
type prepaidRow = partners.PrepaidTotal

// selectPrepaid sums prepaid movements made during the period.
func selectPrepaid(tx *gorm.DB, p periodRow) ([]prepaidRow, error) {
	return partners.PrepaidTotalsWith(tx, p.StartsAt, p.EndsAt)
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

func selectPartners(tx *gorm.DB) (map[int64]string, error) {
	return partners.SettlementCurrenciesWith(tx)
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
// A period settles a set of ledger transactions, which the ledger records as
// settled by the period (a batch whose id is the period's) and reads
// set-based (ledger.Batch): the statement legs, the redemptions and the lot
// movements, summed per bucket of the contract bounds. Every read of a close
// runs in one REPEATABLE READ snapshot (the aggregates in a second session
// that imports it), so the set, the ledger rows and the contracts agree.
//
// Aggregates are never priced row by row. Every distinct effective_from of
// every contract is a bound; the ledger sums per bucket of the bounds, and
// only the sums are priced here with the contract in force at their bucket's
// start (contracts.inForce). No partner's contract changes inside a bucket, so
// that is the version in force at each row's own time.

// periodSet determines the transactions p settles: those posted in [From,
// End) and the stragglers. Every transaction posted before a period's end and
// not settled by an earlier period is the period's. Those posted during it
// are never settled yet (earlier closes took only what was posted before
// their end); those posted since the previous period's start were settled by
// that period unless they committed after its close: those few stragglers
// are picked up as late lines. The first period ever closed takes all earlier
// history (From is then scanFrom, 1970, with no stragglers); otherwise
// scanFrom is the previous closed period's start (prevID).
func periodSet(tx *gorm.DB, p periodRow, scanFrom time.Time, prevID int64) (ledger.SettlementSet, error) {
	if prevID == 0 {
		return ledger.SettlementSet{From: scanFrom, End: p.EndsAt}, nil
	}
	stragglers, err := ledger.Stragglers(tx, scanFrom, p.StartsAt, prevID)
	if err != nil {
		return ledger.SettlementSet{}, err
	}
	return ledger.SettlementSet{From: p.StartsAt, End: p.EndsAt, Stragglers: stragglers}, nil
}

// contractVersion is one version of a partner's contract and when it took
// effect.
type contractVersion struct {
	PartnerID      int64
	Version        int
	IssuePrice     decimal.Decimal
	RedemptionRate decimal.Decimal
	BreakageShare  decimal.Decimal
	FeeRate        decimal.Decimal
	EffectiveFrom  time.Time
}

// contracts is every contract version, per partner in effective_from order,
// and the sorted distinct effective_from of them all (the bounds the ledger
// buckets its sums by).
type contracts struct {
	bounds   []time.Time
	versions map[int64][]contractVersion
}

func selectContracts(tx *gorm.DB) (contracts, error) {
	all, err := partners.AllContractsWith(tx)
	if err != nil {
		return contracts{}, err
	}
	rows := make([]contractVersion, len(all))
	for i, c := range all {
		rows[i] = contractVersion{PartnerID: c.PartnerID, Version: c.Version, IssuePrice: c.IssuePrice,
			RedemptionRate: c.RedemptionRate, BreakageShare: c.BreakageShare, FeeRate: c.OperatorFeeRate,
			EffectiveFrom: c.EffectiveFrom}
	}
	cs := contracts{versions: map[int64][]contractVersion{}}
	seen := map[int64]bool{}
	for _, r := range rows {
		cs.versions[r.PartnerID] = append(cs.versions[r.PartnerID], r)
		if at := r.EffectiveFrom.UnixMicro(); !seen[at] {
			seen[at] = true
			cs.bounds = append(cs.bounds, r.EffectiveFrom)
		}
	}
	sort.Slice(cs.bounds, func(i, j int) bool { return cs.bounds[i].Before(cs.bounds[j]) })
	return cs, nil
}

// inForce is the contract of partner in force at the start of bucket, or
// nil: bucket 0 is before every contract, and a partner may have none yet.
// (A partner's versions have distinct effective_from.)
func (cs contracts) inForce(partner int64, bucket int) *contractVersion {
	if bucket < 1 || bucket > len(cs.bounds) {
		return nil
	}
	at := cs.bounds[bucket-1]
	var in *contractVersion
	for i, v := range cs.versions[partner] {
		if v.EffectiveFrom.After(at) {
			break
		}
		in = &cs.versions[partner][i]
	}
	return in
}

// price is d of c, or NULL without a contract.
func price(c *contractVersion, d func(contractVersion) decimal.Decimal) decimal.NullDecimal {
	if c == nil {
		return decimal.NullDecimal{}
	}
	return decimal.NullDecimal{Decimal: d(*c), Valid: true}
}

// priceKey is a price as a grouping key ("-" for NULL).
func priceKey(d decimal.NullDecimal) string {
	if !d.Valid {
		return "-"
	}
	return d.Decimal.String()
}

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

// selectLegs prices the ledger's legs of the period's transactions (earns
// and their reversals at the earn's occurred_at, burns and their reversals
// at the burn's, breakage at the lot's earned_at) and sums them per
// partner, kind and contract version. Late transactions (occurred or posted
// before the period start) stay one row each on issued and redeemed
// accounts.
func selectLegs(tx *gorm.DB, b ledger.Batch, cs contracts) ([]legRow, error) {
	legs, err := b.Legs(tx, cs.bounds)
	if err != nil {
		return nil, err
	}
	type key struct {
		partner    int64
		kind       string
		version    int
		late       bool
		id, occurs int64
	}
	sums := map[key]*legRow{}
	var order []key
	for _, l := range legs {
		c := cs.inForce(l.PartnerID, l.Bucket)
		k := key{partner: l.PartnerID, kind: l.Kind, late: l.Late, id: database.Deref(l.TransactionID)}
		if l.OccurredAt != nil {
			k.occurs = l.OccurredAt.UnixMicro()
		}
		if c != nil {
			k.version = c.Version
		}
		r := sums[k]
		if r == nil {
			r = &legRow{PartnerID: l.PartnerID, Kind: l.Kind, Late: l.Late, TransactionID: l.TransactionID, OccurredAt: l.OccurredAt,
				IssuePrice:     price(c, func(c contractVersion) decimal.Decimal { return c.IssuePrice }),
				RedemptionRate: price(c, func(c contractVersion) decimal.Decimal { return c.RedemptionRate }),
				BreakageShare:  price(c, func(c contractVersion) decimal.Decimal { return c.BreakageShare }),
				FeeRate:        price(c, func(c contractVersion) decimal.Decimal { return c.FeeRate })}
			if c != nil {
				v := c.Version
				r.Version = &v
			}
			sums[k] = r
			order = append(order, k)
		}
		r.Amount += l.Amount
	}
	var rows []legRow
	for _, k := range order {
		if r := sums[k]; r.Amount != 0 {
			rows = append(rows, *r)
		}
	}
	return rows, nil
}

type matrixRow struct {
	IssuerPartnerID   int64
	RedeemerPartnerID int64
	RedemptionRate    decimal.NullDecimal
	Points            int64
}

// selectMatrix sums the ledger's redemptions of the period (points of each
// issuer redeemed at each redeemer, net of reversals) per (issuer, redeemer,
// redemption rate in force at the redeemer).
func selectMatrix(tx *gorm.DB, b ledger.Batch, cs contracts) ([]matrixRow, error) {
	cells, err := b.Redemptions(tx, cs.bounds)
	if err != nil {
		return nil, err
	}
	type key struct {
		issuer, redeemer int64
		rate             string
	}
	sums := map[key]*matrixRow{}
	var order []key
	for _, cell := range cells {
		rate := price(cs.inForce(cell.RedeemerPartnerID, cell.Bucket), func(c contractVersion) decimal.Decimal { return c.RedemptionRate })
		k := key{cell.IssuerPartnerID, cell.RedeemerPartnerID, priceKey(rate)}
		r := sums[k]
		if r == nil {
			r = &matrixRow{IssuerPartnerID: cell.IssuerPartnerID, RedeemerPartnerID: cell.RedeemerPartnerID, RedemptionRate: rate}
			sums[k] = r
			order = append(order, k)
		}
		r.Points += cell.Points
	}
	var rows []matrixRow
	for _, k := range order {
		if r := sums[k]; r.Points != 0 {
			rows = append(rows, *r)
		}
	}
	return rows, nil
}

type liabilityRow struct {
	IssuerPartnerID int64
	IssuePrice      decimal.NullDecimal
	Points          int64
}

// priceLots prices lot movements with the issue price in force when their
// points were earned.
func (cs contracts) priceLots(moves []ledger.LotMove) []liabilityRow {
	rows := make([]liabilityRow, len(moves))
	for i, m := range moves {
		rows[i] = liabilityRow{IssuerPartnerID: m.IssuerPartnerID, Points: m.Points,
			IssuePrice: price(cs.inForce(m.IssuerPartnerID, m.Bucket), func(c contractVersion) decimal.Decimal { return c.IssuePrice })}
	}
	return rows
}

// selectOutstanding sums, per issuer and issue price in force when the points
// were earned, lot points created minus lot points consumed by every
// transaction settled up to the end of the period: the outstanding liability
// recorded at the previous period's close (prev, its
// settlement_period_outstanding rows) plus this period's lot movements. When
// the previous period has none recorded (closed before they were kept, or
// nothing was outstanding) the earlier periods are summed from the ledger.
func selectOutstanding(tx *gorm.DB, p periodRow, b ledger.Batch, prev previousPeriod, cs contracts) ([]liabilityRow, error) {
	moves, err := b.LotMoves(tx, cs.bounds)
	if err != nil {
		return nil, err
	}
	rows := cs.priceLots(moves)
	switch {
	case prev.Carried:
		carried, err := selectRecordedOutstanding(tx, prev.ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, carried...)
	case prev.ID != 0:
		var earlier []int64
		if err := tx.Raw(`SELECT id FROM settlement_periods WHERE ends_at <= ? ORDER BY id`, p.StartsAt).
			Scan(&earlier).Error; err != nil {
			return nil, err
		}
		moves, err := ledger.SettledLotMoves(tx, earlier, cs.bounds)
		if err != nil {
			return nil, err
		}
		rows = append(rows, cs.priceLots(moves)...)
	}
	type key struct {
		issuer int64
		price  string
	}
	sums := map[key]*liabilityRow{}
	var order []key
	for _, m := range rows {
		k := key{m.IssuerPartnerID, priceKey(m.IssuePrice)}
		r := sums[k]
		if r == nil {
			r = &liabilityRow{IssuerPartnerID: m.IssuerPartnerID, IssuePrice: m.IssuePrice}
			sums[k] = r
			order = append(order, k)
		}
		r.Points += m.Points
	}
	var out []liabilityRow
	for _, k := range order {
		if r := sums[k]; r.Points != 0 {
			out = append(out, *r)
		}
	}
	return out, nil
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

// selectContracted lists the partners with a contract in force at some time
// during the period (a version effective before its end): each gets a
// statement, with or without activity.
func selectContracted(tx *gorm.DB, p periodRow) ([]int64, error) {
	return partners.ContractedBeforeWith(tx, p.EndsAt)
}
