package settlement

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
)

// closedOctober builds and closes the hand-computed month of TestCloseMonth
// (September, then October with a contract change, two currencies, expiry,
// reversals, prepaid, a late earn and an adjustment) and returns the
// partners: a (EUR), b (USD, redemptions only) and c (EUR, prepaid).
func closedOctober(t *testing.T) (e *env, a, b, c int64) {
	t.Helper()
	e = newEnv(t, at(2026, 8, 20, 9, 0))
	a = e.partner("Sky Air", partners.SectorAirline, "EUR")
	b = e.partner("Grand Hotels", partners.SectorHotel, "USD")
	c = e.partner("Pasta Co", partners.SectorRestaurant, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0.5", "0", partners.BillingPostpaid)
	e.contract(b, at(2026, 9, 1, 0, 0), "0.009", "0.0083", "0", "0.1", partners.BillingPostpaid)
	e.contract(c, at(2026, 9, 1, 0, 0), "0.005", "0", "0", "0", partners.BillingPrepaid)
	const m1, m2, m3 = 101, 102, 103
	expOct10 := at(2026, 10, 10, 0, 0)
	e.earn(at(2026, 9, 20, 10, 0), m1, a, 1000, at(2026, 9, 20, 10, 0), &expOct10, "A-1")
	sepEarn := e.earn(at(2026, 9, 25, 10, 0), m2, a, 700, at(2026, 9, 25, 10, 0), &expOct10, "A-2")
	e.close(at(2026, 10, 1, 0, 30), "2026-09")
	sepA := e.statementOf("2026-09", a)

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
	e.earn(at(2026, 10, 7, 8, 0), m1, a, 100, at(2026, 9, 29, 20, 0), nil, "A-4") // late
	e.clk.Set(at(2026, 10, 11, 2, 0))
	if res, err := e.ledger.ExpireLots(e.ctx, e.clk.Now(), 100); err != nil || res.Points != 700 {
		t.Fatalf("expire: %+v %v; want 700 points expired", res, err)
	}
	e.clk.Set(at(2026, 10, 12, 9, 0))
	if _, err := e.svc.Adjust(e.ctx, AdjustmentInput{PartnerID: a, Amount: money.Money{Minor: 250, Currency: "EUR"}, Reason: "Goodwill",
		Corrects: &LineRef{StatementID: sepA.ID, LineNo: 1}, Actor: "finance@hub.test"}); err != nil {
		t.Fatal(err)
	}
	v2Earn := e.earn(at(2026, 10, 16, 10, 0), m2, a, 3333, at(2026, 10, 16, 10, 0), nil, "A-5")
	e.reverse(at(2026, 10, 18, 10, 0), v2Earn.ID, 100, "A-5-R")
	e.reverse(at(2026, 10, 20, 10, 0), sepEarn.ID, 200, "A-2-R")
	e.burn(at(2026, 10, 22, 10, 0), m2, a, 500, "A-B-1")
	cBurn := e.burn(at(2026, 10, 23, 10, 0), m3, b, 400, "B-2")
	e.reverse(at(2026, 10, 24, 10, 0), cBurn.ID, 150, "B-2-R")
	e.clk.Set(at(2026, 10, 30, 9, 0))
	if _, err := e.svc.SetRate(e.ctx, "2026-10", Rate{From: "USD", To: "EUR", Rate: dec("0.9"), Source: "ECB"}, "test"); err != nil {
		t.Fatal(err)
	}
	e.close(at(2026, 11, 1, 0, 30), "2026-10")
	return e, a, b, c
}

// TestFinanceOfTheHandComputedMonth asserts October's result and liability
// roll-forward, figure by figure, against values computed by hand from the
// month's transactions, and that computing it again gives the same bytes.
func TestFinanceOfTheHandComputedMonth(t *testing.T) {
	t.Parallel()
	e, a, b, c := closedOctober(t)
	rep, err := e.svc.Finance(e.ctx, "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Partners) != 3 {
		t.Fatalf("partners %+v; want a, b and c", rep.Partners)
	}
	pa, pb, pc := rep.Partners[0], rep.Partners[1], rep.Partners[2]
	if pa.PartnerID != a || pb.PartnerID != b || pc.PartnerID != c {
		t.Fatalf("partner order %d %d %d; want %d %d %d", pa.PartnerID, pb.PartnerID, pc.PartnerID, a, b, c)
	}
	// A: released on redemption 1500 × 0.01 (burnt at B from September's
	// and 3 October's lots) + 500 × 0.0125 (burnt at A from the v2 lot) =
	// 15.00 + 6.25; paid for the 500 redeemed at A: 3.00; 700 expired ×
	// 0.01 released, half of it paid back; the 2.50 adjustment; issue
	// charges 59.41 against 58.91 of lots (the September earn's reversal
	// is credited at 0.01 but took 200 points of the 0.0125 lot: 0.50).
	want := ResultFigures{Currency: "EUR", RedemptionRevenue: 2125, RedemptionCost: -300, BreakageReleased: 700, BreakageShares: -350,
		BreakageKept: 350, Adjustments: -250, IssueDifference: 50, Result: 1975, IssueCharges: 5941, Billing: 5041, LiabilityChange: 3066}
	if pa.Local != want {
		t.Errorf("result of A %+v;\nwant %+v", pa.Local, want)
	}
	// B (USD) is only a redeemer: 1750 × 0.0083 = 14.525 → 14.52 paid,
	// fee 1.45; in EUR at 0.9: −13.068 → −13.07 and 1.305 → 1.30 (half-even).
	want = ResultFigures{Currency: "USD", RedemptionCost: -1452, Fees: 145, Result: -1307, Billing: -1307}
	if pb.Local != want {
		t.Errorf("result of B %+v;\nwant %+v", pb.Local, want)
	}
	want = ResultFigures{Currency: "EUR", RedemptionCost: -1307, Fees: 130, Result: -1177, Billing: -1176}
	if pb.Base != want {
		t.Errorf("result of B in EUR %+v;\nwant %+v", pb.Base, want)
	}
	// C: 250 of its points redeemed at B net of the reversal, released at
	// 0.005; its 5.00 issue charge was drawn from the prepaid balance.
	want = ResultFigures{Currency: "EUR", RedemptionRevenue: 125, Result: 125, IssueCharges: 500, Billing: 500, LiabilityChange: 375}
	if pc.Local != want {
		t.Errorf("result of C %+v;\nwant %+v", pc.Local, want)
	}
	want = ResultFigures{Currency: "EUR", RedemptionRevenue: 2250, RedemptionCost: -1607, BreakageReleased: 700, BreakageShares: -350,
		BreakageKept: 350, Fees: 130, Adjustments: -250, IssueDifference: 50, Result: 923, IssueCharges: 6441, Billing: 4365, LiabilityChange: 3441}
	if rep.Total != want {
		t.Errorf("total %+v;\nwant %+v", rep.Total, want)
	}
	if len(rep.Rates) != 1 || rep.Rates[0].From != "USD" {
		t.Errorf("rates %+v; want USD→EUR", rep.Rates)
	}

	// Roll-forward: A 1700 + 5133 issued (2000 + 100 late + 3333 − 100 −
	// 200) − 2000 redeemed − 700 expired = 4133; in value 17.00 + 58.91 −
	// 21.25 − 7.00 = 47.66. C 0 + 1000 − 250 = 750, 5.00 − 1.25 = 3.75.
	if len(rep.Liability) != 2 {
		t.Fatalf("liability %+v; want issuers a and c", rep.Liability)
	}
	la, lc := rep.Liability[0], rep.Liability[1]
	wantL := LiabilityFigures{Opening: 1700, Issued: 5133, Redeemed: -2000, Expired: -700, Closing: 4133}
	if la.IssuerPartnerID != a || la.Points != wantL {
		t.Errorf("points of A %+v; want %+v", la.Points, wantL)
	}
	wantL = LiabilityFigures{Currency: "EUR", Opening: 1700, Issued: 5891, Redeemed: -2125, Expired: -700, Closing: 4766}
	if la.Value != wantL || la.Base != wantL {
		t.Errorf("value of A %+v / base %+v; want %+v", la.Value, la.Base, wantL)
	}
	wantL = LiabilityFigures{Currency: "EUR", Issued: 500, Redeemed: -125, Closing: 375}
	if lc.IssuerPartnerID != c || lc.Value != wantL || lc.Points.Closing != 750 || lc.Points.Redeemed != -250 {
		t.Errorf("liability of C %+v; want value %+v and 750 points", lc, wantL)
	}
	wantL = LiabilityFigures{Currency: "EUR", Opening: 1700, Issued: 6391, Redeemed: -2250, Expired: -700, Closing: 5141}
	if rep.LiabilityTotal.Base != wantL || rep.LiabilityTotal.Points.Closing != 4883 {
		t.Errorf("total liability %+v; want %+v and 4883 points", rep.LiabilityTotal, wantL)
	}
	// The closing values are the period report's.
	r, err := e.svc.Report(e.ctx, "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	if r.Outstanding[0].Value.Minor != la.Base.Closing || r.Outstanding[1].Value.Minor != lc.Base.Closing {
		t.Errorf("closing %d/%d; the report says %v", la.Base.Closing, lc.Base.Closing, r.Outstanding)
	}

	// Stored once; computing again gives the same bytes.
	again, same, err := e.svc.RecomputeFinance(e.ctx, "2026-10")
	if err != nil || !same || again.SHA256 != rep.SHA256 || rep.SHA256 == "" {
		t.Errorf("recompute: %v same=%v %s vs %s; want the stored bytes", err, same, again.SHA256, rep.SHA256)
	}
	// Closing again changes nothing.
	e.close(at(2026, 11, 2, 0, 0), "2026-10")
	if rep2, err := e.svc.Finance(e.ctx, "2026-10"); err != nil || rep2.SHA256 != rep.SHA256 {
		t.Errorf("after a second close: %v %s; want %s", err, rep2.SHA256, rep.SHA256)
	}
	// September: the first period; nothing redeemed, 17.00 deferred.
	sep, err := e.svc.Finance(e.ctx, "2026-09")
	if err != nil {
		t.Fatal(err)
	}
	if sep.Total.Result != 0 || sep.Total.IssueCharges != 1700 || sep.LiabilityTotal.Base.Closing != 1700 || sep.LiabilityTotal.Base.Issued != 1700 {
		t.Errorf("September %+v; want 17.00 issued, all deferred, result 0", sep)
	}
	if _, err := e.svc.Finance(e.ctx, "2026-11"); err == nil {
		t.Error("result of an open period: no error; want ErrPeriodNotFound or ErrPeriodNotClosed")
	}
	checkJournal(t, e, "2026-10", rep)
}

// checkJournal: the journal balances per currency; each partner's balance
// account moves by its statement's net, the points liability by the
// roll-forward, the profit and loss accounts by the result.
func checkJournal(t *testing.T, e *env, month string, rep FinanceReport) {
	t.Helper()
	j, err := e.svc.Journal(e.ctx, month)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string][2]int64{}
	for _, l := range j.Lines() {
		s := sums[l.Currency]
		s[0] += l.Debit
		s[1] += l.Credit
		sums[l.Currency] = s
	}
	if len(sums) != 2 || sums["EUR"][0] != sums["EUR"][1] || sums["USD"][0] != sums["USD"][1] || sums["EUR"][0] == 0 {
		t.Errorf("journal debits and credits per currency %v; want EUR and USD, each balanced", sums)
	}
	pnl := map[PostingKind]bool{AcctRedemptionRevenue: true, AcctBreakageRevenue: true, AcctExchangeRevenue: true, AcctFeeIncome: true,
		AcctRedemptionCost: true, AcctPromotionCost: true, AcctExchangeCost: true, AcctBreakageShares: true, AcctAdjustments: true,
		AcctIssueDifference: true, AcctOtherLiability: true, AcctValuationRounding: true}
	liab := map[int64]IssuerLiability{}
	for _, l := range rep.Liability {
		liab[l.IssuerPartnerID] = l
	}
	for _, pr := range rep.Partners {
		cur := pr.Local.Currency
		st := e.statementOf(month, pr.PartnerID)
		if got := j.Movement(AcctPartnerBalance, pr.PartnerID, cur); got != -st.Net.Minor {
			t.Errorf("partner %d balance account moves %d; want the statement's net %d, negated", pr.PartnerID, got, st.Net.Minor)
		}
		if got, want := -j.Movement(AcctPointsLiability, pr.PartnerID, cur), liab[pr.PartnerID].Value.Closing-liab[pr.PartnerID].Value.Opening; got != want {
			t.Errorf("partner %d points liability moves %d; want the roll-forward's %d", pr.PartnerID, got, want)
		}
		var result int64
		for k := range pnl {
			result -= j.Movement(k, pr.PartnerID, cur)
		}
		if result != pr.Local.Result {
			t.Errorf("partner %d profit and loss accounts add up to %d; want the result %d", pr.PartnerID, result, pr.Local.Result)
		}
	}
	csv := string(j.CSV())
	if !strings.HasPrefix(csv, "date,account,account_name,posting_kind,debit,credit,currency,partner_id,reference,text\n") ||
		!strings.Contains(csv, "2026-10-31,1410,Partner receivables and payables,partner_balance,59.41,,EUR,") {
		t.Errorf("journal CSV:\n%s", csv)
	}
	dv, err := j.DATEV(DATEVOptions{Consultant: "1001", Client: "1", FiscalYearStart: 1})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(dv), "\r\n")
	if !strings.HasPrefix(lines[0], `"EXTF";700;21;"Buchungsstapel";13;`) || !strings.Contains(lines[0], ";1001;1;20260101;4;20261001;20261031;") {
		t.Errorf("DATEV header %q", lines[0])
	}
	// B's fee: 1.45 USD at 0.9 = 1.305 → 1.30 EUR (half-even).
	if !strings.Contains(string(dv), `1,45;"S";"USD";0,900000;1,30;"EUR";"1410";"8430";"";3110;`) {
		t.Errorf("DATEV: no USD fee booking with its base amount:\n%s", dv)
	}
	if dv2, _ := j.DATEV(DATEVOptions{Consultant: "1001", Client: "1", FiscalYearStart: 1}); !bytes.Equal(dv, dv2) {
		t.Error("DATEV export differs between two runs")
	}
	if _, err := j.DATEV(DATEVOptions{Consultant: "x", Client: "1", FiscalYearStart: 13}); err == nil {
		t.Error("DATEV with a bad consultant number: no error")
	}
}

// TestBuildFinanceRoundings drives the result's arithmetic with each named
// rounding at a half: flow valuation and outstanding valuation per group,
// the operator-funded redemption cost per redeemer and rate, conversion to
// the base currency per figure, and the FX difference of a foreign issuer's
// opening liability.
func TestBuildFinanceRoundings(t *testing.T) {
	t.Parallel()
	nd := func(s string) decimal.NullDecimal { return decimal.NullDecimal{Decimal: dec(s), Valid: true} }
	const usd, eur = 1, 2
	cur := map[int64]string{usd: "USD", eur: "EUR"}
	rates := []Rate{{From: "USD", To: "EUR", Rate: dec("0.9"), Source: "test"}}
	tests := map[string]struct {
		in    financeInput
		check func(t *testing.T, r FinanceReport)
	}{
		"flow valuation per issuer, price and class, half-even": {
			// 5 × 0.005 = 0.025 → 0.02 and 3 × 0.005 = 0.015 → 0.02 (half to
			// even); issued 8 at once would be 0.04: the groups are apart.
			in: financeInput{docs: []Document{{PartnerID: eur, Currency: "EUR", Lines: []Line{
				{Kind: LineIssued, Points: 8, Amount: money.Money{Minor: -4, Currency: "EUR"}}}}},
				flows:   []pricedFlow{{eur, ledger.FlowIssued, nd("0.005"), 5}, {eur, ledger.FlowExchangeIn, nd("0.005"), 3}},
				closing: []liabilityRow{{eur, nd("0.005"), 8}}},
			check: func(t *testing.T, r FinanceReport) {
				l := r.Liability[0].Value
				if l.Issued != 2 || l.ExchangeIn != 2 || l.Closing != 4 || l.Rounding != 0 {
					t.Errorf("value %+v; want issued 2, exchange in 2, closing 4", l)
				}
				if f := r.Partners[0].Local; f.IssueDifference != 0 || f.Result != 0 {
					t.Errorf("result %+v; want nothing", f)
				}
			},
		},
		"outstanding valuation against flows: the rounding line": {
			// 5 issued at 0.005 → 0.02 (2.5 → 2), 1 more → 0.01 (0.5 → 0):
			// flows 2 + 0 = 2 while 6 outstanding are 0.03.
			in: financeInput{docs: []Document{{PartnerID: eur, Currency: "EUR", Lines: []Line{
				{Kind: LineIssued, Points: 6, Amount: money.Money{Minor: -3, Currency: "EUR"}}}}},
				flows:   []pricedFlow{{eur, ledger.FlowIssued, nd("0.005"), 5}, {eur, ledger.FlowMoved, nd("0.005"), 1}},
				closing: []liabilityRow{{eur, nd("0.005"), 6}}},
			check: func(t *testing.T, r FinanceReport) {
				l := r.Liability[0].Value
				if l.Issued != 2 || l.Moved != 0 || l.Closing != 3 || l.Rounding != 1 {
					t.Errorf("value %+v; want issued 2, moved 0, closing 3, rounding 1", l)
				}
				if f := r.Partners[0].Local; f.ValuationRounding != -1 || f.IssueDifference != 1 || f.Result != 0 {
					t.Errorf("result %+v; want valuation rounding −1 against issue difference 1", f)
				}
			},
		},
		"operator-funded redemption cost per redeemer and rate": {
			// 25 + 25 operator points at 0.01 and 0.03: 0.25 → 0.25, 0.75 →
			// 0.75; a 0.005 rate group of 1 point: 0.005 → 0.00 (half-even).
			in: financeInput{docs: []Document{{PartnerID: eur, Currency: "EUR", Lines: []Line{
				{Kind: LineRedeemed, Points: 100, Amount: money.Money{Minor: 200, Currency: "EUR"}}}}},
				opsRedeemed: []pricedFlow{{eur, ledger.FlowRedeemed, nd("0.01"), 25}, {eur, ledger.FlowRedeemed, nd("0.03"), 25},
					{eur, ledger.FlowRedeemed, nd("0.005"), 1}}},
			check: func(t *testing.T, r FinanceReport) {
				if f := r.Partners[0].Local; f.PromotionCost != -100 || f.RedemptionCost != -100 || f.Result != -200 {
					t.Errorf("result %+v; want promotion cost −1.00 and the rest −1.00", f)
				}
			},
		},
		"conversion to base per figure, and the FX difference": {
			// A USD issuer with 1000 points at 0.001 outstanding (1.00 USD,
			// 0.80 EUR at last period's 0.8): at 0.9 it is 0.90 EUR, an FX
			// loss of 0.10. Fee 1.45 USD → 1.305 → 1.30 EUR.
			in: financeInput{docs: []Document{{PartnerID: usd, Currency: "USD", Lines: []Line{
				{Kind: LineOperatorFee, Amount: money.Money{Minor: -145, Currency: "USD"}}}}},
				opening: []liabilityRow{{usd, nd("0.001"), 1000}}, closing: []liabilityRow{{usd, nd("0.001"), 1000}},
				openingBase: map[int64]int64{usd: 80}, closingBase: map[int64]int64{usd: 90}},
			check: func(t *testing.T, r FinanceReport) {
				b := r.Partners[0].Base
				if b.Fees != 130 || b.FXDifference != -10 || b.Result != 120 || r.Total.Result != 120 {
					t.Errorf("base %+v, total %d; want fees 130, FX −10, result 120", b, r.Total.Result)
				}
				if l := r.Liability[0].Base; l.FX != 10 || l.Rounding != 0 || l.Opening != 80 || l.Closing != 90 {
					t.Errorf("base liability %+v; want 80 + FX 10 = 90", l)
				}
			},
		},
		"a missing rate fails": {
			in: financeInput{docs: []Document{{PartnerID: usd, Currency: "USD", Lines: []Line{
				{Kind: LineOperatorFee, Amount: money.Money{Minor: -145, Currency: "USD"}}}}}},
			check: nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := tc.in
			in.period, in.base, in.currencies, in.rates = Period{Month: "2026-10"}, "EUR", cur, rates
			if tc.check == nil {
				in.rates = nil
			}
			if in.openingBase == nil {
				in.openingBase, in.closingBase = map[int64]int64{}, map[int64]int64{eur: 0}
			}
			for _, l := range in.closing {
				if _, ok := in.closingBase[l.IssuerPartnerID]; !ok || l.IssuerPartnerID == eur {
					_, v := liabilityValue(in.closing, cur)
					in.closingBase[l.IssuerPartnerID] = v[l.IssuerPartnerID]
				}
			}
			r, err := buildFinance(in)
			if tc.check == nil {
				if err == nil {
					t.Fatal("no error; want ErrMissingRate")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}
