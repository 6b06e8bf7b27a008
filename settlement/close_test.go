package settlement

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/partners"
)

type wantLine struct {
	kind    LineKind
	version int
	late    bool
	txID    int64
	points  int64
	minor   int64
	info    bool
}

func checkLines(t *testing.T, st Statement, cur string, want []wantLine, net int64) {
	t.Helper()
	d := st.Document
	if d.Currency != cur || st.Net.Currency != cur {
		t.Errorf("partner %d: currency %s; want %s", st.PartnerID, d.Currency, cur)
	}
	if len(d.Lines) != len(want) {
		t.Fatalf("partner %d: %d lines %+v; want %d", st.PartnerID, len(d.Lines), d.Lines, len(want))
	}
	var sum int64
	for i, w := range want {
		l := d.Lines[i]
		got := wantLine{l.Kind, l.ContractVersion, l.Late, l.TransactionID, l.Points, l.Amount.Minor, l.Informational}
		if got != w || l.No != i+1 || l.Amount.Currency != cur {
			t.Errorf("partner %d line %d: got %+v (%s); want %+v", st.PartnerID, i+1, got, l.Amount.Currency, w)
		}
		if !l.Informational {
			sum += l.Amount.Minor
		}
	}
	if d.Net.Minor != net || st.Net.Minor != net || sum != net {
		t.Errorf("partner %d: net %d (stored %d, sum of lines %d); want %d", st.PartnerID, d.Net.Minor, st.Net.Minor, sum, net)
	}
}

// TestCloseMonth is the close's end-to-end test: a month built by hand with
// three partners, a contract change mid-month, two currencies, expiry,
// reversals, prepaid, a late transaction and an adjustment; every line, the
// matrix, the outstanding liability and every net asserted to the minor unit;
// closing again (also concurrently) gives the same hashes.
func TestCloseMonth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	b := e.partner("Grand Hotels", partners.SectorHotel, "USD")
	c := e.partner("Pasta Co", partners.SectorRestaurant, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0.5", "0", partners.BillingPostpaid)
	e.contract(b, at(2026, 9, 1, 0, 0), "0.009", "0.0083", "0", "0.1", partners.BillingPostpaid)
	e.contract(c, at(2026, 9, 1, 0, 0), "0.005", "0", "0", "0", partners.BillingPrepaid)
	const m1, m2, m3 = 101, 102, 103

	// September.
	expOct10 := at(2026, 10, 10, 0, 0)
	e.earn(at(2026, 9, 20, 10, 0), m1, a, 1000, at(2026, 9, 20, 10, 0), &expOct10, "A-1")
	sepEarn := e.earn(at(2026, 9, 25, 10, 0), m2, a, 700, at(2026, 9, 25, 10, 0), &expOct10, "A-2")
	// Close September just after midnight on 1 October (Berlin).
	sep := e.close(at(2026, 10, 1, 0, 30), "2026-09")
	sepA := e.statementOf("2026-09", a)
	checkLines(t, sepA, "EUR", []wantLine{{kind: LineIssued, version: 1, points: 1700, minor: -1700}}, -1700)

	// October. The contract change of A applies from 15 October.
	e.clk.Set(at(2026, 10, 1, 9, 0))
	e.contract(a, at(2026, 10, 15, 0, 0), "0.0125", "0.006", "0.5", "0", partners.BillingPostpaid)
	if _, err := e.partners.TopUp(e.ctx, c, money.Money{Minor: 10000, Currency: "EUR"}, "SEPA-1", "test"); err != nil {
		t.Fatal(err)
	}
	cEarn := e.earn(at(2026, 10, 2, 12, 0), m3, c, 1000, at(2026, 10, 2, 12, 0), nil, "C-1")
	if err := e.db.Transaction(func(tx *gorm.DB) error {
		_, err := e.partners.DrawDown(tx, c, money.Money{Minor: 500, Currency: "EUR"}, fmt.Sprintf("earn:%d", cEarn.ID))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.earn(at(2026, 10, 3, 10, 0), m1, a, 2000, at(2026, 10, 3, 10, 0), nil, "A-3")
	e.burn(at(2026, 10, 5, 18, 0), m1, b, 1500, "B-1")
	// A late earn: it occurred in September (closed) and is posted now.
	late := e.earn(at(2026, 10, 7, 8, 0), m1, a, 100, at(2026, 9, 29, 20, 0), nil, "A-4")
	e.clk.Set(at(2026, 10, 11, 2, 0))
	if res, err := e.ledger.ExpireLots(e.ctx, e.clk.Now(), 100); err != nil || res.Points != 700 {
		t.Fatalf("expire: %+v %v; want 700 points expired", res, err)
	}
	// A disputed September line is settled by an adjustment in October.
	e.clk.Set(at(2026, 10, 12, 9, 0))
	adj, err := e.svc.Adjust(e.ctx, AdjustmentInput{PartnerID: a, Amount: money.Money{Minor: 250, Currency: "EUR"}, Reason: "Goodwill on September issue charge",
		Corrects: &LineRef{StatementID: sepA.ID, LineNo: 1}, Actor: "finance@hub.test"})
	if err != nil {
		t.Fatal(err)
	}
	v2Earn := e.earn(at(2026, 10, 16, 10, 0), m2, a, 3333, at(2026, 10, 16, 10, 0), nil, "A-5")
	e.reverse(at(2026, 10, 18, 10, 0), v2Earn.ID, 100, "A-5-R")
	e.reverse(at(2026, 10, 20, 10, 0), sepEarn.ID, 200, "A-2-R") // priced at September's contract
	e.burn(at(2026, 10, 22, 10, 0), m2, a, 500, "A-B-1")
	cBurn := e.burn(at(2026, 10, 23, 10, 0), m3, b, 400, "B-2")
	e.reverse(at(2026, 10, 24, 10, 0), cBurn.ID, 150, "B-2-R")
	e.clk.Set(at(2026, 10, 30, 9, 0))
	if _, err := e.svc.SetRate(e.ctx, "2026-10", Rate{From: "USD", To: "EUR", Rate: dec("0.9"), Source: "ECB reference rate 2026-10-30"}, "test"); err != nil {
		t.Fatal(err)
	}
	// Posted in November: not in October.
	e.earn(at(2026, 11, 1, 0, 10), m1, a, 5, at(2026, 11, 1, 0, 10), nil, "A-6")

	// Closing before the month has ended is refused; September's statement is unchanged.
	e.clk.Set(at(2026, 10, 31, 23, 0))
	if _, err := e.svc.Close(e.ctx, "2026-10", "test", nil); !errors.Is(err, ErrPeriodNotEnded) {
		t.Fatalf("early close: %v; want ErrPeriodNotEnded", err)
	}

	// Two workers close October at once.
	e.clk.Set(at(2026, 11, 1, 0, 30))
	var wg sync.WaitGroup
	got := make([]Period, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = e.svc.Close(e.ctx, "2026-10", "worker", nil) }()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || got[0].ReportSHA256 != got[1].ReportSHA256 || got[0].Status != PeriodClosed {
		t.Fatalf("concurrent close: %+v %v / %+v %v; want both closed with the same hash", got[0], errs[0], got[1], errs[1])
	}

	stA, stB, stC := e.statementOf("2026-10", a), e.statementOf("2026-10", b), e.statementOf("2026-10", c)
	checkLines(t, stA, "EUR", []wantLine{
		{kind: LineIssued, version: 1, points: 1800, minor: -1800},                          // 2000 − 200 reversed from September, at 0.01
		{kind: LineIssued, version: 2, points: 3233, minor: -4041},                          // 3233 × 0.0125 = 40.4125
		{kind: LineIssued, version: 1, late: true, txID: late.ID, points: 100, minor: -100}, // occurred 29 September
		{kind: LineRedeemed, version: 2, points: 500, minor: 300},                           // 500 × 0.006
		{kind: LineBreakage, version: 1, points: 700, minor: 350},                           // 700 × 0.01 × 0.5
		{kind: LineAdjustment, minor: 250},
	}, -5041)
	if l := stA.Document.Lines[2]; l.OccurredAt == nil || !l.OccurredAt.Equal(at(2026, 9, 29, 20, 0)) {
		t.Errorf("late line occurred_at %v; want the original time 2026-09-29 20:00 Berlin", l.OccurredAt)
	}
	if l := stA.Document.Lines[5]; l.AdjustmentID != adj.ID || l.Corrects == nil || *l.Corrects != (LineRef{sepA.ID, 1}) {
		t.Errorf("adjustment line %+v; want adjustment %d correcting statement %d line 1", l, adj.ID, sepA.ID)
	}
	checkLines(t, stB, "USD", []wantLine{
		{kind: LineRedeemed, version: 1, points: 1750, minor: 1452}, // 1750 × 0.0083 = 14.525 → 14.52
		{kind: LineOperatorFee, version: 1, points: 1750, minor: -145},
	}, 1307)
	checkLines(t, stC, "EUR", []wantLine{
		{kind: LineIssued, version: 1, points: 1000, minor: -500},
		{kind: LinePrepaidDrawDown, minor: 500},
		{kind: LinePrepaidTopUp, minor: 10000, info: true},
	}, 0)
	if stA.Document.Direction != "from_partner" || stB.Document.Direction != "to_partner" || stC.Document.Direction != "none" {
		t.Errorf("directions %s %s %s; want from_partner to_partner none", stA.Document.Direction, stB.Document.Direction, stC.Document.Direction)
	}

	checkTraceable(t, e, stA, stB, stC)
	if sum := stA.Document.Summary(); len(sum) != 6 || sum[2].LateMonth != "2026-09" || sum[2].Points != 100 || sum[1].ContractVersion != 2 {
		t.Errorf("summary of A %+v; want six lines, the late one of 2026-09", sum)
	}

	rep, err := e.svc.Report(e.ctx, "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	wantMatrix := []MatrixCell{
		{a, a, 500, money.Money{Minor: 300, Currency: "EUR"}},
		{a, b, 1500, money.Money{Minor: 1120, Currency: "EUR"}}, // 12.45 USD × 0.9 = 11.205 → 11.20
		{c, b, 250, money.Money{Minor: 187, Currency: "EUR"}},   // 2.075 → 2.08 USD × 0.9 = 1.872 → 1.87
	}
	if fmt.Sprint(rep.Matrix) != fmt.Sprint(wantMatrix) {
		t.Errorf("matrix %v; want %v", rep.Matrix, wantMatrix)
	}
	wantOut := []Liability{
		{a, 4133, money.Money{Minor: 4766, Currency: "EUR"}}, // 1600 × 0.01 + 2533 × 0.0125 (31.6625 → 31.66)
		{c, 750, money.Money{Minor: 375, Currency: "EUR"}},
	}
	if fmt.Sprint(rep.Outstanding) != fmt.Sprint(wantOut) {
		t.Errorf("outstanding %v; want %v", rep.Outstanding, wantOut)
	}
	if len(rep.Rates) != 1 || rep.Rates[0].Source != "ECB reference rate 2026-10-30" {
		t.Errorf("report rates %+v; want the USD→EUR rate with its source", rep.Rates)
	}

	// Closing again changes nothing and recomputing gives the same bytes.
	again := e.close(at(2026, 11, 2, 0, 0), "2026-10")
	if again.ReportSHA256 != got[0].ReportSHA256 {
		t.Errorf("second close hash %s; want %s", again.ReportSHA256, got[0].ReportSHA256)
	}
	if st := e.statementOf("2026-10", a); st.SHA256 != stA.SHA256 || string(st.Raw) != string(stA.Raw) {
		t.Errorf("statement changed on second close")
	}
	if ok, err := e.svc.Verify(e.ctx, "2026-10"); err != nil || !ok {
		t.Errorf("verify October: %v %v; want recomputed documents to hash the same", ok, err)
	}
	if ok, err := e.svc.Verify(e.ctx, "2026-09"); err != nil || !ok {
		t.Errorf("verify September: %v %v; want true", ok, err)
	}
	if sep.ReportSHA256 == "" {
		t.Error("September has no report hash")
	}
	e.audit()
}

// Closes on a pool of two connections: a close takes two, and several
// workers closing at once must not each hold one while waiting for another.
// Every close is answered in time with the same hashes.
func TestConcurrentClosesOnATwoConnectionPool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0.5", "0", partners.BillingPostpaid)
	e.earn(at(2026, 9, 20, 10, 0), 101, a, 1000, at(2026, 9, 20, 10, 0), nil, "A-1")
	e.clk.Set(at(2026, 10, 1, 0, 30))
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 4
	var wg sync.WaitGroup
	got := make([]Period, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = e.svc.Close(ctx, "2026-09", "worker", nil) }()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i].Status != PeriodClosed || got[i].ReportSHA256 != got[0].ReportSHA256 {
			t.Errorf("close %d on a two-connection pool: %+v %v; want closed in time with the first one's hash", i, got[i], errs[i])
		}
	}
}

// checkTraceable: the transactions behind each summary line of a statement
// add up to its points, page by page.
func checkTraceable(t *testing.T, e *env, sts ...Statement) {
	t.Helper()
	for _, st := range sts {
		for _, l := range st.Document.Summary() {
			if !l.Traceable {
				continue
			}
			var sum, after int64
			for {
				page, err := e.svc.LineTransactions(e.ctx, LineQuery{StatementID: st.ID, Kind: l.Kind, ContractVersion: l.ContractVersion,
					Late: l.Late, LateMonth: l.LateMonth, After: after, Limit: 2})
				if err != nil {
					t.Fatalf("transactions of statement %d %s v%d: %v", st.ID, l.Kind, l.ContractVersion, err)
				}
				for _, tx := range page {
					sum += tx.Points
					after = tx.TransactionID
				}
				if len(page) < 2 {
					break
				}
			}
			if sum != l.Points {
				t.Errorf("statement %d %s v%d late %t: transactions add up to %d points; the line has %d", st.ID, l.Kind, l.ContractVersion, l.Late, sum, l.Points)
			}
		}
	}
}
