package settlement

import (
	"errors"
	"fmt"
	"testing"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/partners"
)

// TestOutstandingCarriedFromPreviousClose: the outstanding liability of a
// close starts from what the previous close recorded; a previous period
// without recorded rows (closed before they were kept) is summed from the
// ledger instead, to the same result. Verify checks the recorded rows too.
func TestOutstandingCarriedFromPreviousClose(t *testing.T) {
	t.Parallel()
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, at(2026, 8, 20, 9, 0))
			a := e.partner("Sky Air", partners.SectorAirline, "EUR")
			b := e.partner("Grand Hotels", partners.SectorHotel, "EUR")
			e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
			e.contract(b, at(2026, 9, 1, 0, 0), "0.02", "0.005", "0", "0", partners.BillingPostpaid)
			e.earn(at(2026, 9, 10, 10, 0), 101, a, 1000, at(2026, 9, 10, 10, 0), nil, "A-1")
			e.earn(at(2026, 9, 11, 10, 0), 102, b, 400, at(2026, 9, 11, 10, 0), nil, "B-1")
			sep := e.close(at(2026, 10, 1, 0, 30), "2026-09")
			if legacy {
				if err := e.db.Exec(`DELETE FROM settlement_period_outstanding WHERE period_id = ?`, sep.ID).Error; err != nil {
					t.Fatal(err)
				}
			}
			// October: a's price changes; 300 of a's September points are
			// spent at b; a and b issue more.
			e.clk.Set(at(2026, 10, 1, 9, 0))
			e.contract(a, at(2026, 10, 15, 0, 0), "0.0125", "0.006", "0", "0", partners.BillingPostpaid)
			e.burn(at(2026, 10, 5, 12, 0), 101, b, 300, "X-1")
			e.earn(at(2026, 10, 20, 10, 0), 103, a, 800, at(2026, 10, 20, 10, 0), nil, "A-2")
			e.earn(at(2026, 10, 21, 10, 0), 102, b, 100, at(2026, 10, 21, 10, 0), nil, "B-2")
			e.close(at(2026, 11, 1, 0, 30), "2026-10")

			rep, err := e.svc.Report(e.ctx, "2026-10")
			if err != nil {
				t.Fatal(err)
			}
			want := []Liability{
				{a, 1500, money.Money{Minor: 1700, Currency: "EUR"}}, // 700 × 0.01 + 800 × 0.0125
				{b, 500, money.Money{Minor: 1000, Currency: "EUR"}},  // 500 × 0.02
			}
			if fmt.Sprint(rep.Outstanding) != fmt.Sprint(want) {
				t.Errorf("outstanding %v; want %v", rep.Outstanding, want)
			}
			for _, m := range []string{"2026-09", "2026-10"} {
				if ok, err := e.svc.Verify(e.ctx, m); err != nil || !ok {
					t.Errorf("verify %s: %v %v; want true", m, ok, err)
				}
			}
			// A tampered record is found by Verify.
			if err := e.db.Exec(`UPDATE settlement_period_outstanding SET points = points + 1
				WHERE period_id = (SELECT id FROM settlement_periods WHERE month = '2026-10-01') AND issuer_partner_id = ?`, b).Error; err != nil {
				t.Fatal(err)
			}
			if ok, err := e.svc.Verify(e.ctx, "2026-10"); err != nil || ok {
				t.Errorf("verify after tampering with the recorded outstanding liability: %v %v; want false", ok, err)
			}
		})
	}
}

// TestCloseRefusedAfterLaterPeriod: once a later period has closed (as the
// first close, it settled all earlier history), an earlier month cannot be
// closed.
func TestCloseRefusedAfterLaterPeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.earn(at(2026, 9, 10, 10, 0), 101, a, 1000, at(2026, 9, 10, 10, 0), nil, "A-1")
	e.close(at(2026, 11, 1, 0, 30), "2026-10")
	if _, err := e.svc.Close(e.ctx, "2026-09", "test", nil); !errors.Is(err, ErrPeriodClosed) {
		t.Fatalf("close September after October: %v; want ErrPeriodClosed", err)
	}
}

// TestFirstCloseTakesEarlierHistory: the first period ever closed settles
// every earlier transaction, as late lines, and the next close starts after
// it.
func TestFirstCloseTakesEarlierHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 7, 1, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 7, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	old := e.earn(at(2026, 8, 20, 10, 0), 101, a, 300, at(2026, 8, 20, 10, 0), nil, "A-0")
	e.earn(at(2026, 10, 5, 10, 0), 101, a, 1000, at(2026, 10, 5, 10, 0), nil, "A-1")
	e.earn(at(2026, 11, 2, 10, 0), 102, a, 50, at(2026, 11, 2, 10, 0), nil, "A-2") // November's
	e.close(at(2026, 11, 3, 0, 30), "2026-10")
	checkLines(t, e.statementOf("2026-10", a), "EUR", []wantLine{
		{kind: LineIssued, version: 1, points: 1000, minor: -1000},
		{kind: LineIssued, version: 1, late: true, txID: old.ID, points: 300, minor: -300},
	}, -1300)
	e.close(at(2026, 12, 1, 0, 30), "2026-11")
	checkLines(t, e.statementOf("2026-11", a), "EUR", []wantLine{{kind: LineIssued, version: 1, points: 50, minor: -50}}, -50)
	rep, err := e.svc.Report(e.ctx, "2026-11")
	if err != nil || fmt.Sprint(rep.Outstanding) != fmt.Sprint([]Liability{{a, 1350, money.Money{Minor: 1350, Currency: "EUR"}}}) {
		t.Fatalf("November outstanding %v %v; want 1350 points of partner %d", rep.Outstanding, err, a)
	}
	for _, m := range []string{"2026-10", "2026-11"} {
		if ok, err := e.svc.Verify(e.ctx, m); err != nil || !ok {
			t.Errorf("verify %s: %v %v; want true", m, ok, err)
		}
	}
	e.audit()
}
