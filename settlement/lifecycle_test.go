package settlement

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/webhooks"
)

// TestStatementLifecycle moves a statement draft → approved → sent → paid,
// refuses steps out of order, and checks that sending publishes
// statement.ready to the partner's webhook endpoint.
func TestStatementLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	box, err := access.NewSecretBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	wh := webhooks.NewService(e.db, box, netguard.Policy{}, e.clk.Now)
	if _, _, err := wh.CreateEndpoint(e.ctx, a, "https://hooks.example.com/hub", []string{"statement.ready"}); err != nil {
		t.Fatal(err)
	}
	e.earn(at(2026, 9, 3, 10, 0), 1, a, 250, at(2026, 9, 3, 10, 0), nil, "A-1")
	e.close(at(2026, 10, 1, 1, 0), "2026-09")
	st := e.statementOf("2026-09", a)
	if st.Status != StatementDraft || st.Net != (money.Money{Minor: -250, Currency: "EUR"}) {
		t.Fatalf("statement %+v; want a draft of -2.50 EUR", st)
	}
	if _, err := e.svc.Send(e.ctx, st.ID, "staff:fin@hub.test"); !errors.Is(err, ErrStatementState) {
		t.Fatalf("send a draft: %v; want ErrStatementState", err)
	}
	e.billing(a)
	if st, err := e.svc.Approve(e.ctx, st.ID, "staff:fin@hub.test"); err != nil || st.Status != StatementApproved || st.ApprovedBy != "staff:fin@hub.test" {
		t.Fatalf("approve: %+v %v", st, err)
	}
	var before int64
	e.db.Raw(`SELECT count(*) FROM webhook_deliveries`).Scan(&before)
	sent, err := e.svc.Send(e.ctx, st.ID, "staff:fin@hub.test")
	if err != nil || sent.Status != StatementSent || sent.SentAt == nil {
		t.Fatalf("send: %+v %v", sent, err)
	}
	var after int64
	e.db.Raw(`SELECT count(*) FROM webhook_deliveries`).Scan(&after)
	if after != before+1 {
		t.Errorf("webhook deliveries %d → %d; want one statement.ready delivery", before, after)
	}
	// 2.50 EUR and 19 % tax: 2.98 to pay.
	r, err := e.svc.RecordPayment(e.ctx, PaymentInput{StatementID: st.ID, Amount: money.Money{Minor: 298, Currency: "EUR"},
		ValueDate: "2026-10-05", Reference: "SEPA-1", Actor: "staff:fin@hub.test", Key: e.key("pay-1")})
	if err != nil || r.Balance.Status != StatementPaid || r.Balance.Open.Minor != 0 {
		t.Fatalf("pay in full: %+v %v; want paid", r, err)
	}
	paid, err := e.svc.Statement(e.ctx, st.ID)
	if err != nil || paid.Status != StatementPaid || paid.SHA256 != st.SHA256 {
		t.Fatalf("paid: %+v %v; want paid with the same document hash", paid, err)
	}
	if ok, err := e.svc.Verify(e.ctx, "2026-09"); !ok || err != nil {
		t.Errorf("verify after the life cycle: %v %v", ok, err)
	}
}

// TestStragglerBecomesLateLine: a transaction posted before a period's end
// but committed after it closed is not lost: the next close settles it as a
// late line with its original time.
func TestStragglerBecomesLateLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.close(at(2026, 10, 1, 0, 5), "2026-09")
	if _, err := e.svc.Close(e.ctx, "2026-09", "again", nil); err != nil {
		t.Fatal(err)
	}
	// The posting clock says 23:59:59 on 30 September: it raced the close.
	straggler := e.earn(at(2026, 9, 30, 23, 59), 1, a, 40, at(2026, 9, 30, 23, 59), nil, "S-1")
	sep := e.statementOf2("2026-09", a)
	if len(sep) != 1 || len(sep[0].Document.Lines) != 0 || sep[0].Net.Minor != 0 {
		t.Fatalf("September statements after the close: %+v; want one with no lines (nothing was settled)", sep)
	}
	e.close(at(2026, 11, 1, 1, 0), "2026-10")
	st := e.statementOf("2026-10", a)
	checkLines(t, st, "EUR", []wantLine{{kind: LineIssued, version: 1, late: true, txID: straggler.ID, points: 40, minor: -40}}, -40)
	e.audit()
}

func (e *env) statementOf2(month string, partnerID int64) []Statement {
	e.t.Helper()
	sts, err := e.svc.Statements(e.ctx, StatementFilter{PartnerID: partnerID, Period: month})
	if err != nil {
		e.t.Fatal(err)
	}
	return sts
}

// TestTaskHandlers: bad payloads are not retried; the scheduled close closes
// the previous month once it has ended and is a no-op afterwards.
func TestTaskHandlers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 10, 1, 0, 30))
	ctx := context.Background()
	if err := HandleReconcile(e.svc).ProcessTask(ctx, asynq.NewTask(TypeReconcile, []byte(`{"reconciliation_id":"x"}`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("bad reconcile payload: %v; want SkipRetry", err)
	}
	if err := HandleReconcile(e.svc).ProcessTask(ctx, asynq.NewTask(TypeReconcile, []byte(`{"reconciliation_id":99}`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("unknown reconciliation: %v; want SkipRetry", err)
	}
	if err := HandleClosePeriod(e.svc, jobs.NewService(e.db, e.clk.Now, nil)).ProcessTask(ctx, asynq.NewTask(TypeClosePeriod, []byte(`[`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("bad close payload: %v; want SkipRetry", err)
	}
	if err := HandleClosePeriod(e.svc, jobs.NewService(e.db, e.clk.Now, nil)).ProcessTask(ctx, asynq.NewTask(TypeClosePeriod, []byte(`{"month":"2026-10"}`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("closing a month that has not ended: %v; want SkipRetry", err)
	}
	e.clk.Set(at(2026, 9, 30, 12, 0))
	if _, err := e.ledger.Earn(ctx, ledger.EarnRequest{Idem: e.idem(), MemberID: 1, Points: 0, OperatorFunded: 10,
		OccurredAt: e.clk.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.clk.Set(at(2026, 10, 1, 0, 30))
	for range 2 {
		if err := HandleClosePeriod(e.svc, jobs.NewService(e.db, e.clk.Now, nil)).ProcessTask(ctx, asynq.NewTask(TypeClosePeriod, nil)); err != nil {
			t.Fatalf("scheduled close: %v", err)
		}
	}
	p, err := e.svc.Period(ctx, "2026-09")
	if err != nil || p.Status != PeriodClosed {
		t.Fatalf("September after the scheduled close: %+v %v; want closed", p, err)
	}
	e.clk.Set(at(2026, 12, 2, 0, 0))
	if _, err := e.svc.Close(ctx, "2026-11", "test", nil); !errors.Is(err, ErrEarlierPeriodOpen) {
		t.Errorf("closing November before October: %v; want ErrEarlierPeriodOpen", err)
	}
	rep, err := e.svc.Report(ctx, "2026-09")
	if err != nil || len(rep.Outstanding) != 1 || rep.Outstanding[0] != (Liability{0, 10, money.Money{Minor: 0, Currency: "EUR"}}) {
		t.Errorf("report %+v %v; want 10 operator-funded points outstanding", rep, err)
	}
	e.audit()
}
