package settlement

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

// Options configure a Service. Location is the operator's time zone (periods
// are its calendar months); BaseCurrency is the currency of the period report
// (matrix and outstanding liability), default EUR.
type Options struct {
	Location     *time.Location
	BaseCurrency string
	Now          func() time.Time
	// Reads, when set, serves period reports and statement lists from the
	// read replica while it keeps up; nil: the primary.
	Reads *database.Reads
}

// Service runs settlement: periods, close, statements and their life cycle,
// adjustments and reconciliation. Safe for concurrent use.
type Service struct {
	db   *gorm.DB
	loc  *time.Location
	base string
	now  func() time.Time
	// reads chooses the connection of stale-tolerant reads (Options.Reads).
	reads *database.Reads
	// closing admits one close at a time to its two connections (Close).
	closing chan struct{}
}

// NewService builds a settlement service over db.
func NewService(db *gorm.DB, opts Options) *Service {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.BaseCurrency == "" {
		opts.BaseCurrency = "EUR"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{db: db, loc: opts.Location, base: opts.BaseCurrency, now: opts.Now, reads: opts.Reads, closing: make(chan struct{}, 1)}
}

// staleDB is the connection for a read that may be a little stale.
func (s *Service) staleDB() *gorm.DB {
	if s.reads != nil {
		return s.reads.DB()
	}
	return s.db
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ---- periods

// Period returns the period of month ("YYYY-MM"), creating it as open if it
// does not exist yet. Errors: *validation.Error.
func (s *Service) Period(ctx context.Context, monthStr string) (Period, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return Period{}, err
	}
	p, err := ensurePeriod(s.db.WithContext(ctx), m, s.clock(), false)
	if err != nil {
		return Period{}, err
	}
	return p.period(), nil
}

// Periods lists known periods, newest first.
func (s *Service) Periods(ctx context.Context, limit int) ([]Period, error) {
	if limit <= 0 || limit > 120 {
		limit = 24
	}
	var rows []periodRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+periodColumns+` FROM settlement_periods ORDER BY month DESC LIMIT ?`, limit).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Period, len(rows))
	for i, r := range rows {
		out[i] = r.period()
	}
	return out, nil
}

// SetRate stores (or replaces) the exchange rate from→to of a period that is
// not closed yet. Errors: *validation.Error, ErrPeriodClosed.
func (s *Service) SetRate(ctx context.Context, monthStr string, r Rate, actor string) (Rate, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return Rate{}, err
	}
	var v validation.Error
	v.Check(currencyOK(r.From), "from", "must be an ISO 4217 code")
	v.Check(currencyOK(r.To), "to", "must be an ISO 4217 code")
	v.Check(r.From != r.To, "to", "must differ from from")
	v.Check(r.Rate.IsPositive(), "rate", "must be positive")
	v.Check(r.Rate.Equal(r.Rate.Truncate(12)) && r.Rate.LessThan(decimal.New(1, 12)), "rate", "must have at most 12 decimal places and 12 integer digits")
	v.Check(len(r.Source) >= 1 && len(r.Source) <= 200, "source", "is required (at most 200 characters)")
	if err := v.Err(); err != nil {
		return Rate{}, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.clock()
		p, err := ensurePeriod(tx, m, now, true)
		if err != nil {
			return err
		}
		if p.Status == string(PeriodClosed) {
			return fmt.Errorf("set rate of %s: %w", m, ErrPeriodClosed)
		}
		return tx.Exec(`INSERT INTO settlement_exchange_rates (period_id, from_currency, to_currency, rate, source, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (period_id, from_currency, to_currency)
			DO UPDATE SET rate = EXCLUDED.rate, source = EXCLUDED.source, created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by`,
			p.ID, r.From, r.To, r.Rate, r.Source, now, actor).Error
	})
	return r, err
}

// Rates lists the exchange rates of a period. Errors: *validation.Error,
// ErrPeriodNotFound.
func (s *Service) Rates(ctx context.Context, monthStr string) ([]Rate, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return nil, err
	}
	p, err := selectPeriod(s.db.WithContext(ctx), m, false)
	if err != nil {
		return nil, err
	}
	return selectRates(s.db.WithContext(ctx), p.ID)
}

// ClosePrevious closes the month before the current one (operator time zone):
// the scheduled job.
func (s *Service) ClosePrevious(ctx context.Context) (Period, error) {
	return s.Close(ctx, monthOf(s.clock(), s.loc).previous().String(), "system", nil)
}

// Progress receives a close's progress: done of total steps, and the phase
// it is in. Calls come from the closing goroutine and must not block.
type Progress interface {
	Set(done, total int64, phase string)
}

// closeSteps are the steps of a close before its statements are written
// (one step each) and after: see Close.
const closeSteps = 6

// report sends a progress report when there is someone to send it to.
func report(p Progress, done, total int64, phase string) {
	if p != nil {
		p.Set(done, total, phase)
	}
}

// Close settles a period: it records which ledger transactions the period
// settles (every one posted before its end and not settled earlier), takes
// pending adjustments, builds one statement per partner with activity and the
// period report, stores each as canonical JSON with its SHA-256, and marks the
// period closed, recording its outstanding liability for the next close.
// Closing a closed period returns it unchanged (same hashes). Concurrent
// closers serialise on the period row; the first does the work. A close uses
// two database connections (see doc.go). progress (may be nil) hears each
// step: marking the period closing, checking the order of closes, finding
// the period's transactions, recording and aggregating them, taking
// adjustments, computing the statements, writing each partner's statement,
// and marking the period closed. Errors: *validation.Error,
// ErrPeriodNotEnded, ErrEarlierPeriodOpen, ErrPeriodClosed (a later period is
// closed), ErrMissingRate, ErrNoContract (the period then stays "closing").
func (s *Service) Close(ctx context.Context, monthStr, actor string, progress Progress) (Period, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return Period{}, err
	}
	if actor == "" {
		actor = "system"
	}
	db := s.db.WithContext(ctx)
	if now := s.clock(); now.Before(m.end()) {
		return Period{}, fmt.Errorf("close %s: %w", m, ErrPeriodNotEnded)
	}
	report(progress, 0, closeSteps+1, "marking the period closing")
	// Phase 1: the visible open → closing transition.
	if err := db.Transaction(func(tx *gorm.DB) error {
		p, err := ensurePeriod(tx, m, s.clock(), true)
		if err != nil {
			return err
		}
		return tx.Exec(`UPDATE settlement_periods SET status = 'closing', closing_since = ? WHERE id = ? AND status = 'open'`,
			s.clock(), p.ID).Error
	}); err != nil {
		return Period{}, fmt.Errorf("close %s: %w", m, err)
	}
	// Phase 2: the work, under the period row's lock, in one snapshot. The
	// aggregates run beside it on a second connection (aux), taken before
	// the lock so that a close never waits for the pool while holding it.
	// Only one close of this process holds (or waits for) two connections:
	// every other user of the pool needs one at a time and gives it back,
	// so the close's second connection always comes, whatever the pool's
	// size (two or more). Closes serialise on the period rows anyway.
	report(progress, 1, closeSteps+1, "waiting for the period's lock")
	select {
	case s.closing <- struct{}{}:
		defer func() { <-s.closing }()
	case <-ctx.Done():
		return Period{}, fmt.Errorf("close %s: %w", m, ctx.Err())
	}
	var out periodRow
	err = db.Connection(func(aux *gorm.DB) error {
		return repeatableRead(db, func(tx *gorm.DB) error {
			var err error
			out, err = s.closeLocked(ctx, tx, aux, m, actor, progress)
			return err
		})
	})
	if err != nil {
		return Period{}, fmt.Errorf("close %s: %w", m, err)
	}
	return out.period(), nil
}

// closeOrder reads what decides whether m may close now: periods close in
// order.
type closeOrder struct {
	Open        int64
	Closed      int64
	PrevClosed  bool
	ScanFrom    *time.Time
	LaterClosed bool
}

func selectCloseOrder(tx *gorm.DB, m month) (closeOrder, error) {
	var o closeOrder
	err := tx.Raw(`SELECT count(*) FILTER (WHERE month < @m AND status <> 'closed') AS open,
		count(*) FILTER (WHERE month < @m AND status = 'closed') AS closed,
		coalesce(bool_or(month = @prev AND status = 'closed'), false) AS prev_closed,
		max(starts_at) FILTER (WHERE month < @m AND status = 'closed') AS scan_from,
		coalesce(bool_or(month > @m AND status = 'closed'), false) AS later_closed
		FROM settlement_periods`, map[string]any{"m": m.date(), "prev": m.previous().date()}).Scan(&o).Error
	return o, err
}

// check returns the error that keeps m from closing, if any: every earlier
// period is closed and, once any period has closed, so is the month just
// before m; and no later period closed first (as the first close ever,
// settling m's transactions already).
func (o closeOrder) check(m month) error {
	if o.Open > 0 || (o.Closed > 0 && !o.PrevClosed) {
		return fmt.Errorf("close after %s: %w", m.previous(), ErrEarlierPeriodOpen)
	}
	if o.LaterClosed {
		return fmt.Errorf("close %s: a later period is closed: %w", m, ErrPeriodClosed)
	}
	return nil
}

// closeLocked is phase 2 of Close, in tx: it locks the period row, checks the
// order of closes and, unless the period is closed already, settles it.
func (s *Service) closeLocked(ctx context.Context, tx, aux *gorm.DB, m month, actor string, progress Progress) (periodRow, error) {
	total := int64(closeSteps + 1)
	step := func(done int64, phase string) { report(progress, done, total, phase) }
	p, err := selectPeriod(tx, m, true)
	if err != nil || p.Status == string(PeriodClosed) {
		return p, err
	}
	step(2, "checking the order of closes")
	earlier, err := selectCloseOrder(tx, m)
	if err != nil {
		return periodRow{}, err
	}
	if err := earlier.check(m); err != nil {
		return periodRow{}, err
	}
	scanFrom := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	if earlier.ScanFrom != nil {
		scanFrom = *earlier.ScanFrom
	}
	prev, err := selectPreviousPeriod(tx, p)
	if err != nil {
		return periodRow{}, err
	}
	set, err := periodSet(tx, p, scanFrom, prev.ID)
	if err != nil {
		return periodRow{}, err
	}
	step(3, "recording and aggregating the period's transactions")
	// The mapping (writes) and the aggregates (reads of the same snapshot)
	// each take seconds per million transactions: they run side by side.
	var recorded int64
	agg, err := aggregateAlongside(ctx, tx, aux, p, set, prev, func() (err error) {
		recorded, err = ledger.Settle(tx, p.ID, set)
		return err
	})
	if err != nil {
		return periodRow{}, err
	}
	if recorded != agg.count { // one snapshot: cannot happen
		return periodRow{}, fmt.Errorf("recorded %d transactions, aggregated %d", recorded, agg.count)
	}
	step(4, "taking pending adjustments")
	if _, err := claimAdjustments(tx, p); err != nil {
		return periodRow{}, fmt.Errorf("claim adjustments: %w", err)
	}
	step(5, "computing statements and the report")
	res, err := s.compute(tx, p, agg)
	if err != nil {
		return periodRow{}, err
	}
	docs, rep := res.docs, res.report
	if err := insertOutstanding(tx, p.ID, res.outstanding); err != nil {
		return periodRow{}, err
	}
	// From here on, one step per partner's statement, then the last one.
	total = int64(closeSteps + len(docs) + 1)
	now := s.clock()
	for i, d := range docs {
		step(int64(closeSteps+i), fmt.Sprintf("writing statement %d of %d", i+1, len(docs)))
		if err := insertStatement(tx, p.ID, d, now, actor); err != nil {
			return periodRow{}, err
		}
	}
	step(total-1, "marking the period closed")
	raw, sum := canonical(rep)
	if err := tx.Exec(`UPDATE settlement_periods SET status = 'closed', closed_at = ?, closed_by = ?,
		report = ?::text::json, report_sha256 = ? WHERE id = ?`, now, actor, string(raw), sum[:], p.ID).Error; err != nil {
		return periodRow{}, err
	}
	return selectPeriod(tx, m, false)
}

// Verify recomputes the statements and report of a closed period from the
// recorded transactions, adjustments and rates and reports whether every
// document hashes to what was stored at close. Errors: ErrPeriodNotFound,
// ErrPeriodNotClosed.
func (s *Service) Verify(ctx context.Context, monthStr string) (bool, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return false, err
	}
	ok := true
	err = repeatableRead(s.db.WithContext(ctx), func(tx *gorm.DB) error {
		ok = true
		p, err := selectPeriod(tx, m, false)
		if err != nil {
			return err
		}
		if p.Status != string(PeriodClosed) {
			return ErrPeriodNotClosed
		}
		prev, err := selectPreviousPeriod(tx, p)
		if err != nil {
			return err
		}
		b, err := ledger.PrepareSettled(tx, p.ID, p.StartsAt)
		if err != nil {
			return err
		}
		agg, err := aggregate(tx, p, b, prev)
		if err != nil {
			return err
		}
		res, err := s.compute(tx, p, agg)
		if err != nil {
			return err
		}
		docs, report := res.docs, res.report
		if _, sum := canonical(report); string(sum[:]) != string(p.ReportSHA256) {
			ok = false
		}
		// The outstanding liability the next close starts from (periods
		// closed before it was recorded have none).
		recorded, err := selectRecordedOutstanding(tx, p.ID)
		if err != nil {
			return err
		}
		if len(recorded) > 0 && !sameLiabilities(recorded, res.outstanding) {
			ok = false
		}
		stored, err := selectStatements(tx, "s.period_id = ?", p.ID)
		if err != nil {
			return err
		}
		if len(stored) != len(docs) {
			ok = false
		}
		byPartner := map[int64][]byte{}
		for _, st := range stored {
			byPartner[st.PartnerID] = st.SHA256
		}
		for _, d := range docs {
			if _, sum := canonical(d); string(sum[:]) != string(byPartner[d.PartnerID]) {
				ok = false
			}
		}
		return nil
	})
	return ok, err
}

// Report returns the stored report of a closed period. Errors:
// *validation.Error, ErrPeriodNotFound, ErrPeriodNotClosed.
func (s *Service) Report(ctx context.Context, monthStr string) (Report, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return Report{}, err
	}
	var row struct {
		Status string
		Report *string
	}
	// A closed period's report never changes, so the replica may serve it;
	// one it does not have yet (a close just committed) is asked of the primary.
	query := `SELECT status, report::text AS report FROM settlement_periods WHERE month = ?::date`
	db := s.staleDB()
	if err := db.WithContext(ctx).Raw(query, m.date()).Scan(&row).Error; err != nil {
		return Report{}, err
	}
	if row.Report == nil && db != s.db {
		if err := s.db.WithContext(ctx).Raw(query, m.date()).Scan(&row).Error; err != nil {
			return Report{}, err
		}
	}
	if row.Status == "" {
		return Report{}, fmt.Errorf("period %s: %w", monthStr, ErrPeriodNotFound)
	}
	if row.Report == nil {
		return Report{}, fmt.Errorf("report of %s: %w", monthStr, ErrPeriodNotClosed)
	}
	var r Report
	err = json.Unmarshal([]byte(*row.Report), &r)
	return r, err
}

// repeatableRead runs fn in a REPEATABLE READ transaction, so that every
// statement of a close (or Verify) sees the same snapshot: the period's id
// range, the ids it skips and the ledger rows read by range agree. A
// serialization failure (another closer committed the period while this one
// waited for the period row's lock) is retried with a fresh snapshot, which
// then finds the period closed.
func repeatableRead(db *gorm.DB, fn func(tx *gorm.DB) error) error {
	for attempt := 1; ; attempt++ {
		err := db.Transaction(fn, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
		if err == nil || database.Code(err) != database.SerializationFailure || attempt == 5 {
			return err
		}
	}
}

// aggregated is what the close reads of the ledger: the statement legs, the
// liability matrix and the outstanding liability rows of count transactions.
type aggregated struct {
	count       int64
	legs        []legRow
	matrix      []matrixRow
	outstanding []liabilityRow
}

// aggregate reads the period's aggregates (b prepared by ledger.PrepareSet
// or ledger.PrepareSettled), starting the outstanding liability from prev's.
func aggregate(tx *gorm.DB, p periodRow, b ledger.Batch, prev previousPeriod) (aggregated, error) {
	agg := aggregated{count: b.Count}
	cs, err := selectContracts(tx)
	if err != nil {
		return aggregated{}, err
	}
	if agg.legs, err = selectLegs(tx, b, cs); err != nil {
		return aggregated{}, fmt.Errorf("statement legs: %w", err)
	}
	if agg.matrix, err = selectMatrix(tx, b, cs); err != nil {
		return aggregated{}, fmt.Errorf("liability matrix: %w", err)
	}
	if agg.outstanding, err = selectOutstanding(tx, p, b, prev, cs); err != nil {
		return aggregated{}, fmt.Errorf("outstanding liability: %w", err)
	}
	return agg, nil
}

// aggregateAlongside runs aggregate on the connection aux, in the snapshot of
// the close's transaction tx (exported before tx writes anything), while
// write runs in tx; it returns when both are done.
func aggregateAlongside(ctx context.Context, tx, aux *gorm.DB, p periodRow, set ledger.SettlementSet, prev previousPeriod,
	write func() error) (aggregated, error) {
	var snapshot string
	if err := tx.Raw(`SELECT pg_export_snapshot()`).Scan(&snapshot).Error; err != nil {
		return aggregated{}, fmt.Errorf("export the close's snapshot: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		agg aggregated
		err error
	}
	done := make(chan result, 1)
	go func() {
		var agg aggregated
		err := aux.WithContext(ctx).Transaction(func(rtx *gorm.DB) error {
			if err := rtx.Exec(`SET TRANSACTION SNAPSHOT '` + strings.ReplaceAll(snapshot, "'", "''") + `'`).Error; err != nil {
				return fmt.Errorf("import the close's snapshot: %w", err)
			}
			b, err := ledger.PrepareSet(rtx, p.StartsAt, set)
			if err != nil {
				return err
			}
			agg, err = aggregate(rtx, p, b, prev)
			return err
		}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
		done <- result{agg, err}
	}()
	werr := write()
	if werr != nil {
		cancel()
	}
	r := <-done
	if werr != nil {
		return aggregated{}, werr
	}
	return r.agg, r.err
}

// computed is what a close produces: the statements, the period report and
// the outstanding liability rows the report values.
type computed struct {
	docs        []Document
	report      Report
	outstanding []liabilityRow
}

// compute builds every statement document and the report of p from its
// aggregates, its adjustments and its rates.
func (s *Service) compute(tx *gorm.DB, p periodRow, agg aggregated) (computed, error) {
	prepaid, err := selectPrepaid(tx, p)
	if err != nil {
		return computed{}, fmt.Errorf("prepaid movements: %w", err)
	}
	var adjs []adjustmentRow
	if err := tx.Raw(`SELECT `+adjustmentColumns+` FROM settlement_adjustments WHERE period_id = ? ORDER BY id`, p.ID).
		Scan(&adjs).Error; err != nil {
		return computed{}, err
	}
	currencies, err := selectPartners(tx)
	if err != nil {
		return computed{}, err
	}
	rates, err := selectRates(tx, p.ID)
	if err != nil {
		return computed{}, err
	}
	contracted, err := selectContracted(tx, p)
	if err != nil {
		return computed{}, err
	}
	docs, err := buildDocuments(p.period(), contracted, agg.legs, prepaid, adjs, currencies, rates)
	if err != nil {
		return computed{}, err
	}
	report, err := buildReport(p.period(), s.base, agg.matrix, agg.outstanding, currencies, rates)
	if err != nil {
		return computed{}, err
	}
	return computed{docs: docs, report: report, outstanding: agg.outstanding}, nil
}

// sameLiabilities reports whether two sets of outstanding rows are equal.
func sameLiabilities(a, b []liabilityRow) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(r liabilityRow) string {
		price := "-"
		if r.IssuePrice.Valid {
			price = r.IssuePrice.Decimal.String()
		}
		return fmt.Sprintf("%d/%s", r.IssuerPartnerID, price)
	}
	sums := map[string]int64{}
	for _, r := range a {
		sums[key(r)] += r.Points
	}
	for _, r := range b {
		sums[key(r)] -= r.Points
	}
	for _, v := range sums {
		if v != 0 {
			return false
		}
	}
	return true
}

// canonical is the stored byte form of a document and its SHA-256. Documents
// are structs (fixed field order) with UTC times and sorted slices, so the
// same inputs give the same bytes.
func canonical(v any) ([]byte, [32]byte) {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("settlement: marshal %T: %v", v, err)) // plain structs: cannot fail
	}
	return raw, sha256.Sum256(raw)
}

func insertStatement(tx *gorm.DB, periodID int64, d Document, now time.Time, actor string) error {
	raw, sum := canonical(d)
	var id int64
	if err := tx.Raw(`INSERT INTO settlement_statements (period_id, partner_id, currency, net_minor, document, sha256, created_at)
		VALUES (?, ?, ?, ?, ?::text::json, ?, ?) RETURNING id`, periodID, d.PartnerID, d.Currency, d.Net.Minor,
		string(raw), sum[:], now).Scan(&id).Error; err != nil {
		return fmt.Errorf("insert statement of partner %d: %w", d.PartnerID, err)
	}
	if err := recordTransition(tx, id, "created", "", StatementDraft, actor, now, ""); err != nil {
		return fmt.Errorf("record the creation of statement %d: %w", id, err)
	}
	for _, l := range d.Lines {
		var txID *int64
		if l.TransactionID != 0 {
			txID = &l.TransactionID
		}
		if err := tx.Exec(`INSERT INTO settlement_statement_lines (statement_id, line_no, kind, points, amount_minor, late, transaction_id, occurred_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, l.No, string(l.Kind), l.Points, l.Amount.Minor, l.Late, txID, l.OccurredAt).Error; err != nil {
			return fmt.Errorf("insert statement line: %w", err)
		}
	}
	return nil
}

// ---- pure arithmetic

var kindOrder = map[LineKind]int{LineIssued: 1, LineRedeemed: 2, LineOperatorFee: 3, LineExchangeIn: 4,
	LineExchangeOut: 5, LineBreakage: 6, LinePrepaidDrawDown: 7, LinePrepaidTopUp: 8, LineAdjustment: 9}

// convert turns minor units of from into minor units of to at the period's
// rate, rounded half-even. Errors: ErrMissingRate.
func convert(minor int64, from, to string, rates []Rate) (int64, *Rate, error) {
	if from == to {
		return minor, nil, nil
	}
	for i, r := range rates {
		if r.From == from && r.To == to {
			amount := decimal.New(minor, -money.Exponent(from)).Mul(r.Rate)
			return money.MinorHalfEven(amount, to), &rates[i], nil
		}
	}
	return 0, nil, fmt.Errorf("%s→%s: %w", from, to, ErrMissingRate)
}

// buildDocuments turns the period's aggregated rows into one statement per
// partner with at least one line or a contract in force during the period
// (contracted: such a partner without activity has a statement of no lines
// and a zero net). Each line is rounded half-even on its own;
// the net is the sum of the lines.
func buildDocuments(p Period, contracted []int64, legs []legRow, prepaid []prepaidRow, adjs []adjustmentRow,
	currencies map[int64]string, rates []Rate) ([]Document, error) {
	docs := map[int64]*Document{}
	doc := func(partnerID int64) (*Document, error) {
		if d, ok := docs[partnerID]; ok {
			return d, nil
		}
		cur, ok := currencies[partnerID]
		if !ok {
			return nil, fmt.Errorf("partner %d has no settlement currency", partnerID)
		}
		d := &Document{Period: p.Month, TimeZone: p.TimeZone, PeriodStart: p.StartsAt, PeriodEnd: p.EndsAt,
			PartnerID: partnerID, Currency: cur, Lines: []Line{}}
		docs[partnerID] = d
		return d, nil
	}
	for _, id := range contracted {
		if _, err := doc(id); err != nil {
			return nil, err
		}
	}
	for _, r := range legs {
		d, err := doc(r.PartnerID)
		if err != nil {
			return nil, err
		}
		if r.Version == nil {
			return nil, fmt.Errorf("partner %d, %s: %w", r.PartnerID, r.Kind, ErrNoContract)
		}
		base := Line{ContractVersion: *r.Version, Late: r.Late}
		if r.Late {
			base.TransactionID = database.Deref(r.TransactionID)
			t := r.OccurredAt.UTC()
			base.OccurredAt = &t
		}
		value := func(points int64, price decimal.Decimal, factor decimal.Decimal) int64 {
			return money.MinorHalfEven(decimal.NewFromInt(points).Mul(price).Mul(factor), d.Currency)
		}
		one := decimal.NewFromInt(1)
		var lines []Line
		switch r.Kind {
		case "partner_issued":
			l := base
			l.Kind, l.Points, l.UnitPrice = LineIssued, -r.Amount, r.IssuePrice.Decimal.String()
			l.Amount = money.Money{Minor: -value(l.Points, r.IssuePrice.Decimal, one), Currency: d.Currency}
			l.Description = fmt.Sprintf("Points issued, contract v%d at %s %s/point", *r.Version, l.UnitPrice, d.Currency)
			lines = append(lines, l)
		case "partner_redeemed":
			l := base
			l.Kind, l.Points, l.UnitPrice = LineRedeemed, r.Amount, r.RedemptionRate.Decimal.String()
			l.Amount = money.Money{Minor: value(l.Points, r.RedemptionRate.Decimal, one), Currency: d.Currency}
			l.Description = fmt.Sprintf("Points redeemed, contract v%d at %s %s/point", *r.Version, l.UnitPrice, d.Currency)
			lines = append(lines, l)
			if r.FeeRate.Valid && r.FeeRate.Decimal.IsPositive() {
				f := base
				f.Kind, f.Points, f.UnitPrice, f.Factor = LineOperatorFee, r.Amount, l.UnitPrice, r.FeeRate.Decimal.String()
				f.Amount = money.Money{Minor: -value(f.Points, r.RedemptionRate.Decimal, r.FeeRate.Decimal), Currency: d.Currency}
				f.Description = fmt.Sprintf("Operator fee %s of redemptions, contract v%d", f.Factor, *r.Version)
				lines = append(lines, f)
			}
		case "partner_exchange_in":
			l := base
			l.Kind, l.Points, l.UnitPrice = LineExchangeIn, -r.Amount, r.IssuePrice.Decimal.String()
			l.Amount = money.Money{Minor: -value(l.Points, r.IssuePrice.Decimal, one), Currency: d.Currency}
			l.Description = fmt.Sprintf("Points credited by exchange from the partner programme at %s %s/point", l.UnitPrice, d.Currency)
			lines = append(lines, l)
		case "partner_exchange_out":
			l := base
			l.Kind, l.Points, l.UnitPrice = LineExchangeOut, r.Amount, r.RedemptionRate.Decimal.String()
			l.Amount = money.Money{Minor: value(l.Points, r.RedemptionRate.Decimal, one), Currency: d.Currency}
			l.Description = fmt.Sprintf("Points exchanged to the partner programme at %s %s/point", l.UnitPrice, d.Currency)
			lines = append(lines, l)
		case "breakage":
			l := base
			l.Kind, l.Points, l.UnitPrice, l.Factor = LineBreakage, r.Amount, r.IssuePrice.Decimal.String(), r.BreakageShare.Decimal.String()
			l.Amount = money.Money{Minor: value(l.Points, r.IssuePrice.Decimal, r.BreakageShare.Decimal), Currency: d.Currency}
			l.Description = fmt.Sprintf("Breakage share %s of expired points issued under contract v%d", l.Factor, *r.Version)
			lines = append(lines, l)
		default:
			return nil, fmt.Errorf("unknown leg kind %q", r.Kind)
		}
		for i := range lines {
			if lines[i].Late {
				lines[i].Description = "Late: " + lines[i].Description
			}
		}
		d.Lines = append(d.Lines, lines...)
	}
	for _, r := range prepaid {
		d, err := doc(r.PartnerID)
		if err != nil {
			return nil, err
		}
		switch r.Kind {
		case "draw_down":
			d.Lines = append(d.Lines, Line{Kind: LinePrepaidDrawDown, Amount: money.Money{Minor: -r.Minor, Currency: r.Currency},
				Description: "Prepaid balance drawn for issued points"})
		case "top_up":
			d.Lines = append(d.Lines, Line{Kind: LinePrepaidTopUp, Amount: money.Money{Minor: r.Minor, Currency: r.Currency}, Informational: true,
				Description: "Prepaid top-ups received (already paid; not part of the net)"})
		}
	}
	used := map[int64]map[string]Rate{}
	for _, a := range adjs {
		d, err := doc(a.PartnerID)
		if err != nil {
			return nil, err
		}
		minor, rate, err := convert(a.AmountMinor, a.Currency, d.Currency, rates)
		if err != nil {
			return nil, fmt.Errorf("adjustment %d: %w", a.ID, err)
		}
		l := Line{Kind: LineAdjustment, Amount: money.Money{Minor: minor, Currency: d.Currency}, AdjustmentID: a.ID, Description: a.Reason}
		if a.Currency != d.Currency {
			l.Description += fmt.Sprintf(" (%s converted at %s)", money.Format(a.AmountMinor, a.Currency), rate.Rate)
			if used[a.PartnerID] == nil {
				used[a.PartnerID] = map[string]Rate{}
			}
			used[a.PartnerID][rate.From+rate.To] = *rate
		}
		if a.CorrectsStatementID != nil {
			l.Corrects = &LineRef{StatementID: *a.CorrectsStatementID, LineNo: database.Deref(a.CorrectsLineNo)}
		}
		d.Lines = append(d.Lines, l)
	}
	out := make([]Document, 0, len(docs))
	for _, d := range docs {
		sort.SliceStable(d.Lines, func(i, j int) bool {
			a, b := d.Lines[i], d.Lines[j]
			switch {
			case kindOrder[a.Kind] != kindOrder[b.Kind]:
				return kindOrder[a.Kind] < kindOrder[b.Kind]
			case a.Late != b.Late:
				return !a.Late
			case a.ContractVersion != b.ContractVersion:
				return a.ContractVersion < b.ContractVersion
			case a.TransactionID != b.TransactionID:
				return a.TransactionID < b.TransactionID
			}
			return a.AdjustmentID < b.AdjustmentID
		})
		d.Charges, d.Credits, d.Net = money.Money{Minor: 0, Currency: d.Currency}, money.Money{Minor: 0, Currency: d.Currency}, money.Money{Minor: 0, Currency: d.Currency}
		for i := range d.Lines {
			d.Lines[i].No = i + 1
			if d.Lines[i].Informational {
				continue
			}
			m := d.Lines[i].Amount.Minor
			d.Net.Minor += m
			if m < 0 {
				d.Charges.Minor += m
			} else {
				d.Credits.Minor += m
			}
		}
		switch {
		case d.Net.Minor > 0:
			d.Direction = "to_partner"
		case d.Net.Minor < 0:
			d.Direction = "from_partner"
		default:
			d.Direction = "none"
		}
		for _, r := range used[d.PartnerID] {
			d.Rates = append(d.Rates, r)
		}
		sort.Slice(d.Rates, func(i, j int) bool { return d.Rates[i].From+d.Rates[i].To < d.Rates[j].From+d.Rates[j].To })
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PartnerID < out[j].PartnerID })
	return out, nil
}

// buildReport values the matrix and outstanding liability: each cell's value
// is the sum of its per-price values in the partner's currency (each rounded
// half-even), converted once to the base currency.
func buildReport(p Period, base string, matrix []matrixRow, outstanding []liabilityRow,
	currencies map[int64]string, rates []Rate) (Report, error) {
	rep := Report{Period: p.Month, BaseCurrency: base, Matrix: []MatrixCell{}, Outstanding: []Liability{}}
	used := map[string]Rate{}
	toBase := func(minor int64, cur string) (int64, error) {
		v, r, err := convert(minor, cur, base, rates)
		if r != nil {
			used[r.From+r.To] = *r
		}
		return v, err
	}
	type cellKey struct{ issuer, redeemer int64 }
	cells := map[cellKey]*MatrixCell{}
	local := map[cellKey]int64{}
	for _, r := range matrix {
		k := cellKey{r.IssuerPartnerID, r.RedeemerPartnerID}
		if cells[k] == nil {
			cells[k] = &MatrixCell{IssuerPartnerID: k.issuer, RedeemerPartnerID: k.redeemer}
		}
		cells[k].Points += r.Points
		if !r.RedemptionRate.Valid {
			return Report{}, fmt.Errorf("redemptions at partner %d: %w", r.RedeemerPartnerID, ErrNoContract)
		}
		local[k] += money.PointsValue(r.Points, r.RedemptionRate.Decimal, currencies[r.RedeemerPartnerID])
	}
	for k, c := range cells {
		v, err := toBase(local[k], currencies[k.redeemer])
		if err != nil {
			return Report{}, fmt.Errorf("matrix value at partner %d: %w", k.redeemer, err)
		}
		c.Value = money.Money{Minor: v, Currency: base}
		rep.Matrix = append(rep.Matrix, *c)
	}
	sort.Slice(rep.Matrix, func(i, j int) bool {
		a, b := rep.Matrix[i], rep.Matrix[j]
		return a.IssuerPartnerID < b.IssuerPartnerID || (a.IssuerPartnerID == b.IssuerPartnerID && a.RedeemerPartnerID < b.RedeemerPartnerID)
	})
	liab := map[int64]*Liability{}
	liabLocal := map[int64]int64{}
	for _, r := range outstanding {
		if liab[r.IssuerPartnerID] == nil {
			liab[r.IssuerPartnerID] = &Liability{IssuerPartnerID: r.IssuerPartnerID}
		}
		liab[r.IssuerPartnerID].Points += r.Points
		if r.IssuerPartnerID != 0 {
			if !r.IssuePrice.Valid {
				return Report{}, fmt.Errorf("points issued by partner %d: %w", r.IssuerPartnerID, ErrNoContract)
			}
			liabLocal[r.IssuerPartnerID] += money.PointsValue(r.Points, r.IssuePrice.Decimal, currencies[r.IssuerPartnerID])
		}
	}
	for id, l := range liab {
		l.Value = money.Money{Minor: 0, Currency: base}
		if id != 0 {
			v, err := toBase(liabLocal[id], currencies[id])
			if err != nil {
				return Report{}, fmt.Errorf("liability of partner %d: %w", id, err)
			}
			l.Value.Minor = v
		}
		rep.Outstanding = append(rep.Outstanding, *l)
	}
	sort.Slice(rep.Outstanding, func(i, j int) bool { return rep.Outstanding[i].IssuerPartnerID < rep.Outstanding[j].IssuerPartnerID })
	for _, r := range used {
		rep.Rates = append(rep.Rates, r)
	}
	sort.Slice(rep.Rates, func(i, j int) bool { return rep.Rates[i].From+rep.Rates[i].To < rep.Rates[j].From+rep.Rates[j].To })
	return rep, nil
}

func currencyOK(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// ---- statements

func (r statementRow) statement() (Statement, error) {
	st := Statement{ID: r.ID, PeriodID: r.PeriodID, Period: r.Month, PartnerID: r.PartnerID, Status: StatementStatus(r.Status),
		Net: money.Money{Minor: r.NetMinor, Currency: r.Currency}, SHA256: fmt.Sprintf("%x", r.SHA256), CreatedAt: r.CreatedAt.UTC(),
		ApprovedAt: utcPtr(r.ApprovedAt), ApprovedBy: database.Deref(r.ApprovedBy), SentAt: utcPtr(r.SentAt), PaidAt: utcPtr(r.PaidAt),
		PaymentRef: database.Deref(r.PaymentRef), Raw: json.RawMessage(r.Document)}
	if err := json.Unmarshal([]byte(r.Document), &st.Document); err != nil {
		return Statement{}, fmt.Errorf("statement %d document: %w", r.ID, err)
	}
	return st, nil
}

// StatementFilter selects statements. PartnerID 0 is every partner (staff);
// Sent restricts to statements sent to the partner (its API view).
type StatementFilter struct {
	PartnerID int64
	Period    string
	Sent      bool
	After     int64 // id cursor: statements with a smaller id (newest first)
	Limit     int
}

// Statements lists statements newest first.
func (s *Service) Statements(ctx context.Context, f StatementFilter) ([]Statement, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	where, args := "true", []any{}
	if f.PartnerID != 0 {
		where += " AND s.partner_id = ?"
		args = append(args, f.PartnerID)
	}
	if f.Period != "" {
		m, err := parseMonth(f.Period, "period", s.loc)
		if err != nil {
			return nil, err
		}
		where += " AND p.month = ?::date"
		args = append(args, m.date())
	}
	if f.Sent {
		where += " AND s.status IN ('sent', 'paid')"
	}
	if f.After > 0 {
		where += " AND s.id < ?"
		args = append(args, f.After)
	}
	rows, err := selectStatements(s.staleDB().WithContext(ctx), where+" ORDER BY s.id DESC LIMIT ?", append(args, f.Limit)...)
	if err != nil {
		return nil, err
	}
	out := make([]Statement, len(rows))
	for i, r := range rows {
		if out[i], err = r.statement(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Statement returns one statement. Errors: ErrStatementNotFound.
func (s *Service) Statement(ctx context.Context, id int64) (Statement, error) {
	return getStatement(s.db.WithContext(ctx), id, false)
}

func getStatement(tx *gorm.DB, id int64, lock bool) (Statement, error) {
	q := "s.id = ?"
	if lock {
		q += " FOR UPDATE OF s"
	}
	rows, err := selectStatements(tx, q, id)
	if err != nil {
		return Statement{}, err
	}
	if len(rows) == 0 {
		return Statement{}, fmt.Errorf("statement %d: %w", id, ErrStatementNotFound)
	}
	return rows[0].statement()
}

// Adjust records a money correction for a partner, settled as a line of the
// next period that closes; Corrects links it to the disputed line. With a
// Key, a repeated request answers the first adjustment (Replayed) and
// records nothing. Errors: *validation.Error, ErrLineNotFound,
// ledger.ErrIdempotencyMismatch.
func (s *Service) Adjust(ctx context.Context, in AdjustmentInput) (Adjustment, error) {
	var out Adjustment
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if in.Key != nil {
			prior, found, err := priorAdjustment(tx, *in.Key)
			if err != nil || found {
				out = prior
				return err
			}
		}
		var err error
		if out, err = s.adjust(tx, in, nil); err != nil || in.Key == nil {
			return err
		}
		return keyAdjustment(tx, out.ID, *in.Key)
	})
	return out, err
}

func (s *Service) adjust(tx *gorm.DB, in AdjustmentInput, reconLine *int64) (Adjustment, error) {
	var v validation.Error
	v.Check(in.PartnerID > 0, "partner_id", "is required")
	v.Check(in.Amount.Minor != 0, "amount.minor", "must not be zero")
	v.Check(currencyOK(in.Amount.Currency), "amount.currency", "must be an ISO 4217 code")
	v.Check(len(in.Reason) >= 1 && len(in.Reason) <= 500, "reason", "is required (at most 500 characters)")
	if err := v.Err(); err != nil {
		return Adjustment{}, err
	}
	var stID *int64
	var lineNo *int
	if in.Corrects != nil {
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM settlement_statement_lines l JOIN settlement_statements s ON s.id = l.statement_id
			WHERE l.statement_id = ? AND l.line_no = ? AND s.partner_id = ?`, in.Corrects.StatementID, in.Corrects.LineNo, in.PartnerID).
			Scan(&n).Error; err != nil {
			return Adjustment{}, err
		}
		if n == 0 {
			return Adjustment{}, fmt.Errorf("statement %d line %d: %w", in.Corrects.StatementID, in.Corrects.LineNo, ErrLineNotFound)
		}
		stID, lineNo = &in.Corrects.StatementID, &in.Corrects.LineNo
	}
	actor := in.Actor
	if actor == "" {
		actor = "system"
	}
	var row adjustmentRow
	err := tx.Raw(`INSERT INTO settlement_adjustments (partner_id, amount_minor, currency, reason, corrects_statement_id,
		corrects_line_no, reconciliation_line_id, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING `+adjustmentColumns, in.PartnerID, in.Amount.Minor, in.Amount.Currency, in.Reason, stID, lineNo, reconLine,
		s.clock(), actor).Scan(&row).Error
	if err != nil {
		if database.Code(err) == database.ForeignKeyViolation {
			return Adjustment{}, fmt.Errorf("adjust partner %d: %w", in.PartnerID, ErrLineNotFound)
		}
		return Adjustment{}, err
	}
	return row.adjustment(), nil
}
