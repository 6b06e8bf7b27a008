package settlement

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ledongthuc/pdf"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
)

// billing gives partners billing details in Germany (19 % tax, 30 days)
// under the legal entity OP.
func (e *env) billing(partnerIDs ...int64) {
	e.t.Helper()
	if _, err := e.svc.SetLegalEntity(e.ctx, LegalEntity{Code: "OP", Name: "Coalition Operator GmbH", Country: "DE",
		VATID: "DE123456789", Address: "Hafenstrasse 1, Hamburg"}, "test"); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.SetTaxRate(e.ctx, TaxRate{Country: "DE", Rate: dec("0.19"), Label: "VAT"}, "test"); err != nil {
		e.t.Fatal(err)
	}
	for _, id := range partnerIDs {
		if _, err := e.svc.SetPartnerBilling(e.ctx, PartnerBilling{PartnerID: id, LegalEntity: "OP", LegalName: fmt.Sprintf("Partner %d AG", id),
			Country: "DE", VATID: fmt.Sprintf("DE%09d", id), Address: "Street 1", PaymentTermsDays: 30}, "test"); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) key(k string) RequestKey { return RequestKey{Scope: "staff:1", Key: k, Hash: []byte(k)} }

// TestFourEyes: the person who closed the period cannot approve its
// statements unless the net is below the single-approver limit; another
// finance user can; each step is recorded with who and when.
func TestFourEyes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.billing(a)
	e.earn(at(2026, 9, 3, 10, 0), 1, a, 250, at(2026, 9, 3, 10, 0), nil, "A-1")
	e.clk.Set(at(2026, 10, 1, 1, 0))
	if _, err := e.svc.Close(e.ctx, "2026-09", "staff:closer", nil); err != nil {
		t.Fatal(err)
	}
	st := e.statementOf("2026-09", a)
	_, err := e.svc.Approve(e.ctx, st.ID, "staff:closer")
	if !errors.Is(err, ErrFourEyes) || !strings.Contains(err.Error(), "closed its period") {
		t.Fatalf("the closer approves: %v; want ErrFourEyes naming the close", err)
	}
	// A limit at the net is not below it: still refused; above it, allowed.
	if _, err := e.svc.SetApprovalLimit(e.ctx, "EUR", 250, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(e.ctx, st.ID, "staff:closer"); !errors.Is(err, ErrFourEyes) {
		t.Fatalf("net 2.50 with a limit of 2.50: %v; want ErrFourEyes", err)
	}
	if _, err := e.svc.SetApprovalLimit(e.ctx, "EUR", 0, "admin"); err != nil {
		t.Fatal(err)
	}
	e.clk.Set(at(2026, 10, 2, 9, 0))
	approved, err := e.svc.Approve(e.ctx, st.ID, "staff:second")
	if err != nil || approved.Status != StatementApproved || approved.ApprovedBy != "staff:second" {
		t.Fatalf("a second finance user approves: %+v %v", approved, err)
	}
	if _, err := e.svc.Send(e.ctx, st.ID, "staff:closer"); err != nil {
		t.Fatal(err)
	}
	tr, err := e.svc.Transitions(e.ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range tr {
		got = append(got, x.Action+" by "+x.Actor+" at "+x.At.In(berlin).Format("01-02 15:04"))
	}
	want := []string{"created by staff:closer at 10-01 01:00", "approved by staff:second at 10-02 09:00", "sent by staff:closer at 10-02 09:00"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("transitions %q; want %q", got, want)
	}

	// Below the limit one person may close and approve.
	b := e.partner("Small Cafe", partners.SectorRestaurant, "EUR")
	e.contract(b, at(2026, 10, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.billing(b)
	e.earn(at(2026, 10, 3, 10, 0), 1, b, 100, at(2026, 10, 3, 10, 0), nil, "B-1")
	e.clk.Set(at(2026, 11, 1, 1, 0))
	if _, err := e.svc.Close(e.ctx, "2026-10", "staff:closer", nil); err != nil {
		t.Fatal(err)
	}
	small := e.statementOf("2026-10", b)
	if _, err := e.svc.Approve(e.ctx, small.ID, "staff:closer"); !errors.Is(err, ErrFourEyes) {
		t.Fatalf("without a limit: %v; want ErrFourEyes", err)
	}
	if _, err := e.svc.SetApprovalLimit(e.ctx, "EUR", 500, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(e.ctx, small.ID, "staff:closer"); err != nil {
		t.Fatalf("net 1.00 below a limit of 5.00: %v; want approved by one person", err)
	}
}

// TestPaymentStates: a statement owed by the partner (2.50 + 19 % tax =
// 2.98) stays sent through a partial payment and an over-payment, and
// becomes paid only when the refund brings its balance to zero; the same
// key replays, another body under it is refused.
func TestPaymentStates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.billing(a)
	e.earn(at(2026, 9, 3, 10, 0), 1, a, 250, at(2026, 9, 3, 10, 0), nil, "A-1")
	e.close(at(2026, 10, 1, 1, 0), "2026-09")
	st := e.statementOf("2026-09", a)
	pay := func(k string, minor int64) (Recorded, error) {
		return e.svc.RecordPayment(e.ctx, PaymentInput{StatementID: st.ID, Amount: money.Money{Minor: minor, Currency: "EUR"},
			ValueDate: "2026-10-05", Reference: "SEPA-" + k, Actor: "staff:fin", Key: e.key(k)})
	}
	if _, err := pay("draft", 100); !errors.Is(err, ErrStatementState) {
		t.Fatalf("pay a draft: %v; want ErrStatementState", err)
	}
	if _, err := e.svc.Approve(e.ctx, st.ID, "staff:fin"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Send(e.ctx, st.ID, "staff:fin"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		key          string
		minor        int64
		open         int64
		status       StatementStatus
		replayedWant bool
	}{
		{"p1", 100, 198, StatementSent, false},  // partial
		{"p1", 100, 198, StatementSent, true},   // the same request again: replayed, nothing recorded
		{"p2", 300, -102, StatementSent, false}, // over-payment: the operator owes 1.02 back
		{"p3", -102, 0, StatementPaid, false},   // the refund: balance zero, paid
	}
	for _, s := range steps {
		r, err := pay(s.key, s.minor)
		if err != nil {
			t.Fatalf("payment %s of %d: %v", s.key, s.minor, err)
		}
		if r.Balance.Open.Minor != s.open || r.Balance.Status != s.status || r.Replayed != s.replayedWant || r.Balance.Due.Minor != 298 {
			t.Errorf("after %s (%d): balance %+v replayed %v; want open %d of 298, %s, replayed %v", s.key, s.minor, r.Balance, r.Replayed,
				s.open, s.status, s.replayedWant)
		}
	}
	if _, err := e.svc.RecordPayment(e.ctx, PaymentInput{StatementID: st.ID, Amount: money.Money{Minor: 5, Currency: "EUR"},
		ValueDate: "2026-10-05", Reference: "other", Actor: "staff:fin", Key: RequestKey{Scope: "staff:1", Key: "p1", Hash: []byte("other")}}); !errors.Is(err, ledger.ErrIdempotencyMismatch) {
		t.Errorf("the key of p1 with another request: %v; want ErrIdempotencyMismatch", err)
	}
	if _, err := pay("p4", 1); !errors.Is(err, ErrStatementState) {
		t.Errorf("pay a paid statement: %v; want ErrStatementState", err)
	}
	paid, _ := e.svc.Statement(e.ctx, st.ID)
	if paid.PaidAt == nil || paid.SHA256 != st.SHA256 {
		t.Errorf("paid statement %+v; want paid_at and the same document hash", paid)
	}
	ps, _ := e.svc.Payments(e.ctx, st.ID)
	if len(ps) != 3 {
		t.Errorf("%d payments recorded; want 3 (the replay records none)", len(ps))
	}
	if ok, err := e.svc.Verify(e.ctx, "2026-09"); !ok || err != nil {
		t.Errorf("verify after payments: %v %v", ok, err)
	}
}

// TestPlanNetting is the netting arithmetic.
func TestPlanNetting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b int64
		want NettingPlan
	}{
		{1190, 714, NettingPlan{Offset: 714, Difference: 476, Larger: 0}},
		{714, 1190, NettingPlan{Offset: 714, Difference: 476, Larger: 1}},
		{500, 500, NettingPlan{Offset: 500, Difference: 0, Larger: 0}},
		{1, 1_000_000, NettingPlan{Offset: 1, Difference: 999_999, Larger: 1}},
	} {
		if got := PlanNetting(c.a, c.b); got != c.want {
			t.Errorf("PlanNetting(%d, %d) = %+v; want %+v", c.a, c.b, got, c.want)
		}
		if got := PlanNetting(c.a, c.b); got.Offset+got.Difference != max(c.a, c.b) {
			t.Errorf("offset + difference of (%d, %d) is not the larger balance", c.a, c.b)
		}
	}
}

// TestNetting: the partner owes 11.90 for September (1,000 points issued at
// 0.01, 19 % tax) and is owed 7.14 for October (1,000 points redeemed at
// 0.006, 19 % tax); one net payment of 4.76 from the partner settles both.
func TestNetting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.billing(a)
	e.earn(at(2026, 9, 3, 10, 0), 1, a, 1000, at(2026, 9, 3, 10, 0), nil, "A-1")
	e.close(at(2026, 10, 1, 1, 0), "2026-09")
	e.burn(at(2026, 10, 3, 10, 0), 1, a, 1000, "B-1")
	e.close(at(2026, 11, 1, 1, 0), "2026-10")
	sep, oct := e.statementOf("2026-09", a), e.statementOf("2026-10", a)
	for _, id := range []int64{sep.ID, oct.ID} {
		if _, err := e.svc.Approve(e.ctx, id, "staff:fin"); err != nil {
			t.Fatal(err)
		}
	}
	net := func(k string, p *NetPayment) (Netting, error) {
		return e.svc.Net(e.ctx, NettingInput{StatementIDs: [2]int64{oct.ID, sep.ID}, ValueDate: "2026-11-10", NetPayment: p,
			Actor: "staff:fin", Key: e.key(k)})
	}
	if _, err := net("n0", &NetPayment{Amount: money.Money{Minor: 500, Currency: "EUR"}, Reference: "x"}); !errors.Is(err, ErrPaymentMismatch) ||
		!strings.Contains(err.Error(), "4.76 EUR") {
		t.Fatalf("a net payment of 5.00: %v; want ErrPaymentMismatch naming 4.76", err)
	}
	n, err := net("n1", &NetPayment{Amount: money.Money{Minor: 476, Currency: "EUR"}, Reference: "SEPA-NET"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Offset.Minor != 714 || n.NetPayment == nil || n.NetPayment.Amount.Minor != 476 || n.NetPayment.StatementID != sep.ID {
		t.Errorf("netting %+v; want 7.14 offset and 4.76 paid against September", n)
	}
	for _, b := range n.Balances {
		if b.Open.Minor != 0 {
			t.Errorf("statement %d open %d after netting; want 0", b.StatementID, b.Open.Minor)
		}
	}
	// Approved, not sent yet: paid when sent, as nothing is left to pay.
	for _, id := range []int64{sep.ID, oct.ID} {
		st, err := e.svc.Send(e.ctx, id, "staff:fin")
		if err != nil || st.Status != StatementPaid {
			t.Errorf("send statement %d after netting: %s %v; want paid", id, st.Status, err)
		}
	}
	if _, err := net("n2", nil); !errors.Is(err, ErrNotNettable) {
		t.Errorf("net settled statements again: %v; want ErrNotNettable", err)
	}
}

// TestTax: tax is the document's net × rate, rounded half-even to the minor
// unit; reverse charge charges none.
func TestTax(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		base    int64
		cur     string
		rate    string
		reverse bool
		want    int64
	}{
		{12345, "EUR", "0.19", false, 2346}, // 23.4555 → 23.46
		{250, "EUR", "0.01", false, 2},      // 0.025 → 0.02 (half to even)
		{150, "EUR", "0.01", false, 2},      // 0.015 → 0.02 (half to even)
		{50, "EUR", "0.01", false, 0},       // 0.005 → 0.00 (half to even)
		{1000, "JPY", "0.1", false, 100},    // no minor unit
		{99999, "EUR", "0", true, 0},        // reverse charge
	} {
		got := Tax(money.Money{Minor: c.base, Currency: c.cur}, TaxRate{Rate: dec(c.rate), ReverseCharge: c.reverse, Label: "VAT"})
		if got.Amount.Minor != c.want || got.ReverseCharge != c.reverse || got.Base.Minor != c.base {
			t.Errorf("tax of %d %s at %s: %+v; want %d", c.base, c.cur, c.rate, got, c.want)
		}
	}
}

// TestConcurrentApprovalsNumberWithoutGaps approves the statements of many
// partners at once (and some that fail for want of billing details, which
// must not take a number): the documents are numbered 1..n without a gap or
// a duplicate.
func TestConcurrentApprovalsNumberWithoutGaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	const n = 24
	var ids, unbilled []int64
	for i := range n + 4 {
		p := e.partner(fmt.Sprintf("Partner %02d", i), partners.SectorRetail, "EUR")
		e.contract(p, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
		e.earn(at(2026, 9, 3, 10, 0), int64(100+i), p, int64(100+i), at(2026, 9, 3, 10, 0), nil, fmt.Sprint("E-", i))
		if i < n {
			ids = append(ids, p)
		} else {
			unbilled = append(unbilled, p)
		}
	}
	e.billing(ids...)
	e.close(at(2026, 10, 1, 1, 0), "2026-09")
	var wg sync.WaitGroup
	errs := make(chan error, n+4)
	for _, p := range append(append([]int64{}, ids...), unbilled...) {
		st := e.statementOf("2026-09", p)
		wg.Add(1)
		go func(billed bool) {
			defer wg.Done()
			_, err := e.svc.Approve(e.ctx, st.ID, "staff:fin")
			if billed && err != nil || !billed && !errors.Is(err, ErrBillingDetails) {
				errs <- fmt.Errorf("approve statement %d (billed %v): %v", st.ID, billed, err)
			}
		}(contains(ids, p))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var numbers []string
	if err := e.db.Raw(`SELECT number FROM settlement_invoices ORDER BY seq`).Scan(&numbers).Error; err != nil {
		t.Fatal(err)
	}
	sort.Strings(numbers)
	if len(numbers) != n {
		t.Fatalf("%d documents; want %d", len(numbers), n)
	}
	for i, num := range numbers {
		if want := fmt.Sprintf("OP-2026-%06d", i+1); num != want {
			t.Fatalf("document %d is numbered %s; want %s (numbers %v)", i+1, num, want, numbers)
		}
	}
}

func contains(list []int64, v int64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestInvoicePDF renders an invoice and a self-billed credit note with
// go-pdf/fpdf and reads their text back with ledongthuc/pdf: the number,
// the parties, the tax and the total are there.
func TestInvoicePDF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.billing(a)
	e.earn(at(2026, 9, 3, 10, 0), 1, a, 123456, at(2026, 9, 3, 10, 0), nil, "A-1")
	e.close(at(2026, 10, 1, 1, 0), "2026-09")
	e.burn(at(2026, 10, 3, 10, 0), 1, a, 1000, "B-1")
	e.close(at(2026, 11, 1, 1, 0), "2026-10")
	for _, c := range []struct {
		month string
		want  []string
	}{
		// 1,234.56 EUR + 19 % = 234.5664 → 234.57; total 1,469.13.
		{"2026-09", []string{"Invoice", "OP-2026-000001", "Coalition Operator GmbH", fmt.Sprintf("Partner %d AG", a), "1234.56 EUR",
			"234.57 EUR", "1469.13 EUR", "Due date", "2026-12-01"}},
		// 6.00 EUR + 19 % = 1.14; total 7.14; the partner sells.
		{"2026-10", []string{"Credit note (self-billing)", "OP-2026-000002", "6.00 EUR", "1.14 EUR", "7.14 EUR", "on behalf of the supplier"}},
	} {
		st := e.statementOf(c.month, a)
		e.clk.Set(at(2026, 11, 1, 9, 0))
		if _, err := e.svc.Approve(e.ctx, st.ID, "staff:fin"); err != nil {
			t.Fatal(err)
		}
		inv, err := e.svc.StatementInvoice(e.ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := inv.WritePDF(&buf); err != nil {
			t.Fatal(err)
		}
		r, err := pdf.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("%s: read the PDF: %v", c.month, err)
		}
		var text strings.Builder
		for i := 1; i <= r.NumPage(); i++ {
			rows, err := r.Page(i).GetTextByRow()
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				for _, w := range row.Content {
					text.WriteString(w.S)
				}
				text.WriteString("\n")
			}
		}
		for _, w := range c.want {
			if !strings.Contains(text.String(), w) {
				t.Errorf("%s: the PDF's text lacks %q:\n%s", c.month, w, text.String())
			}
		}
		var again bytes.Buffer
		_ = inv.WritePDF(&again)
		if !bytes.Equal(buf.Bytes(), again.Bytes()) {
			t.Errorf("%s: the same document rendered twice differs", c.month)
		}
	}
}

// TestEveryContractedPartnerGetsAStatement: a partner with a contract in
// force during the period and no activity gets a statement of no lines and
// a zero net; closing again changes no byte; it needs no document and is
// paid once sent.
func TestEveryContractedPartnerGetsAStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	quiet := e.partner("Quiet Hotel", partners.SectorHotel, "EUR")
	later := e.partner("Later Bank", partners.SectorBank, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.contract(quiet, at(2026, 9, 15, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.contract(later, at(2026, 10, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.earn(at(2026, 9, 3, 10, 0), 1, a, 250, at(2026, 9, 3, 10, 0), nil, "A-1")
	e.close(at(2026, 10, 1, 1, 0), "2026-09")
	st := e.statementOf("2026-09", quiet)
	checkLines(t, st, "EUR", nil, 0)
	if st.Document.Direction != "none" {
		t.Errorf("direction %q; want none", st.Document.Direction)
	}
	if got := e.statementOf2("2026-09", later); len(got) != 0 {
		t.Errorf("a partner whose contract starts after the period has %d statements; want none", len(got))
	}
	var before []byte
	e.db.Raw(`SELECT sha256 FROM settlement_statements WHERE id = ?`, st.ID).Scan(&before)
	e.close(at(2026, 10, 2, 1, 0), "2026-09")
	var after []byte
	e.db.Raw(`SELECT sha256 FROM settlement_statements WHERE id = ?`, st.ID).Scan(&after)
	if !bytes.Equal(before, after) {
		t.Error("closing again changed the empty statement")
	}
	if ok, err := e.svc.Verify(e.ctx, "2026-09"); !ok || err != nil {
		t.Errorf("verify: %v %v", ok, err)
	}
	if _, err := e.svc.Approve(e.ctx, st.ID, "staff:fin"); err != nil {
		t.Fatalf("approve an empty statement (no billing details needed): %v", err)
	}
	if _, err := e.svc.StatementInvoice(e.ctx, st.ID); !errors.Is(err, ErrInvoiceNotFound) {
		t.Errorf("document of an empty statement: %v; want ErrInvoiceNotFound", err)
	}
	sent, err := e.svc.Send(e.ctx, st.ID, "staff:fin")
	if err != nil || sent.Status != StatementPaid {
		t.Errorf("send an empty statement: %s %v; want paid at once", sent.Status, err)
	}
}
