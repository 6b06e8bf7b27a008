package exchange_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

const (
	startPoints = 100_000
	account     = "FF123456"
	apiKey      = "sim-key"
)

type env struct {
	db        *gorm.DB
	clk       *clock.Manual
	sim       *partnersim.Sim
	svc       *exchange.Service
	ledger    *ledger.Service
	members   *members.Service
	registry  *partners.Service
	sealer    exchange.Sealer
	partnerID int64
	memberID  int64
	programme exchange.Programme
	client    exchange.Partner
}

func newEnv(t *testing.T, simCfg partnersim.Config) *env {
	t.Helper()
	ctx := context.Background()
	db := testdb.New(t)
	clk := clock.New(time.Date(2025, 6, 10, 9, 0, 0, 0, time.UTC))
	ps := partners.NewService(db, clk.Now)
	acc, err := access.NewService(db, ps, access.Options{Issuer: "https://hub.test", SecretsKey: make([]byte, 32), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ps.CreatePartner(ctx, partners.NewPartner{Name: "Sky Air", Sector: partners.SectorAirline,
		SettlementCurrency: "EUR", TimeZone: "Europe/Paris"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: clk.Now().AddDate(0, -1, 0), Earn: true,
		Burn: true, IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.008"),
		Billing: partners.BillingPostpaid, BreakageShare: decimal.Zero}, "test"); err != nil {
		t.Fatal(err)
	}
	l := ledger.NewService(db, clk.Now)
	m := members.NewService(db, l, clk.Now)
	ident, err := members.ParseIdentifier("email", "ada@example.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	mem, _, err := m.Enrol(ctx, members.EnrolRequest{Identifier: ident, Profile: members.Profile{GivenName: "Ada"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: "seed"}, MemberID: mem.ID,
		PartnerID: p.ID, Points: startPoints, OccurredAt: clk.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	simCfg.APIKey, simCfg.Now = apiKey, clk.Now
	sim := partnersim.New(simCfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	// No test waits for this timeout: one that needs the client to give up
	// says when (givesUpWhenHeld), so a slow machine cannot fail a call.
	client := exchange.NewHTTPPartner(time.Minute)
	e := &env{db: db, clk: clk, sim: sim, ledger: l, members: m, registry: ps, sealer: acc.SecretBox(), partnerID: p.ID, memberID: mem.ID, client: client}
	e.svc = exchange.NewService(db, l, m, ps, acc.SecretBox(), client, clk.Now)
	e.programme, err = e.svc.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: p.ID, Code: "skymiles", Name: "Sky Miles",
		Unit: "miles", Out: &exchange.Ratio{From: 1000, To: 700}, In: &exchange.Ratio{From: 1000, To: 800},
		Increment: 1000, MinPoints: 1000, MaxPoints: 90000, MonthlyMax: 95000, FeePoints: 100,
		BonusBands:  []exchange.BonusBand{{FromPoints: 60000, Percent: decimal.NewFromInt(25)}},
		EndpointURL: srv.URL, APIKey: apiKey, PendingDeadline: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Link(ctx, mem.ID, e.programme.ID, account); err != nil {
		t.Fatalf("link: %v", err)
	}
	return e
}

// confirm quotes and confirms an outbound exchange of points.
func (e *env) confirm(t *testing.T, points int64) exchange.Exchange {
	t.Helper()
	ctx := context.Background()
	q, err := e.svc.Quote(ctx, e.memberID, e.programme.ID, points)
	if err != nil {
		t.Fatalf("quote %d: %v", points, err)
	}
	x, err := e.svc.Confirm(ctx, e.memberID, q.ID)
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if x.Status != exchange.StatusProcessing {
		t.Fatalf("confirmed exchange is %s, want processing", x.Status)
	}
	return x
}

func (e *env) get(t *testing.T, id int64) exchange.Exchange {
	t.Helper()
	x, err := e.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func (e *env) available(t *testing.T) int64 {
	t.Helper()
	b, err := e.ledger.Balance(context.Background(), e.memberID)
	if err != nil {
		t.Fatal(err)
	}
	return int64(b.Available)
}

func (e *env) count(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) audit(t *testing.T) {
	t.Helper()
	rep, err := ledger.Audit(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledger audit failed: %+v", rep)
	}
}

// assertOnce checks the done-when outcome: the partner credited the
// exchange's units exactly once, the member was debited exactly once, and
// the ledger audit passes.
func (e *env) assertOnce(t *testing.T, x exchange.Exchange) {
	t.Helper()
	got := e.get(t, x.ID)
	if got.Status != exchange.StatusCompleted {
		t.Fatalf("exchange is %s (%s), want completed; history %+v", got.Status, got.FailureReason, got.History)
	}
	if bal := e.sim.Balance(account); bal != x.Units {
		t.Errorf("partner credited %d miles, want exactly %d", bal, x.Units)
	}
	if n := e.sim.Applied(); n != 1 {
		t.Errorf("partner applied %d credits, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM ledger_transactions WHERE type = 'capture' AND member_id = ?`, e.memberID); n != 1 {
		t.Errorf("%d capture transactions, want 1", n)
	}
	debit := x.Points + x.FeePoints
	if n := e.count(t, `SELECT coalesce(sum(-e.amount), 0) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
		WHERE a.kind = 'member' AND a.owner_id = ? AND e.amount < 0`, e.memberID); n != debit {
		t.Errorf("member debited %d points, want exactly %d", n, debit)
	}
	if n := e.count(t, `SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
		WHERE a.kind = 'partner_exchange_out' AND a.owner_id = ?`, e.partnerID); n != debit {
		t.Errorf("partner_exchange_out got %d points, want %d", n, debit)
	}
	if a := e.available(t); a != startPoints-debit {
		t.Errorf("available %d, want %d", a, startPoints-debit)
	}
	e.audit(t)
}

func TestOutboundCompletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{})
	x := e.confirm(t, 60000)
	if x.Units != 42000+10500 || x.BonusUnits != 10500 || x.FeePoints != 100 {
		t.Fatalf("exchange priced %d units (%d bonus), fee %d; want 52500 (10500 bonus), fee 100", x.Units, x.BonusUnits, x.FeePoints)
	}
	if a := e.available(t); a != startPoints-60100 {
		t.Fatalf("after confirm available = %d, want %d held", a, startPoints-60100)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox WHERE task_type = ? AND payload->>'exchange_id' = ?`,
		exchange.TypeDeliver, strconv.FormatInt(x.ID, 10)); n != 1 {
		t.Fatalf("%d deliver messages in the outbox, want 1", n)
	}
	if err := e.svc.Deliver(context.Background(), x.ID); err != nil {
		t.Fatal(err)
	}
	e.assertOnce(t, x)
	// A duplicate delivery (asynq redelivers) changes nothing.
	if err := e.svc.Deliver(context.Background(), x.ID); err != nil {
		t.Fatal(err)
	}
	e.assertOnce(t, x)
}

// givesUpWhenHeld is a partner client that gives up on a credit call as soon
// as the simulator has applied it and holds its answer: a client timeout
// that strikes at the same point however fast or slow the machine is.
type givesUpWhenHeld struct {
	exchange.Partner
	held <-chan struct{}
}

func (g givesUpWhenHeld) Credit(ctx context.Context, ep exchange.Endpoint, r exchange.CreditRequest) (exchange.CreditResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-g.held:
			cancel()
		case <-ctx.Done():
		}
	}()
	return g.Partner.Credit(ctx, ep, r)
}

func TestOutboundTimeoutIsRetriedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{})
	x := e.confirm(t, 10000)
	// The partner applies the credit but answers after the client gave up.
	e.sim.HangNext(1, time.Hour)
	impatient := exchange.NewService(e.db, e.ledger, e.members, e.registry, e.sealer, givesUpWhenHeld{e.client, e.sim.Held()}, e.clk.Now)
	err := impatient.Deliver(context.Background(), x.ID)
	if !errors.Is(err, exchange.ErrTransient) {
		t.Fatalf("deliver with a hanging partner: err = %v, want ErrTransient", err)
	}
	if got := e.get(t, x.ID); got.Status != exchange.StatusProcessing {
		t.Fatalf("after a timeout the exchange is %s, want processing", got.Status)
	}
	if e.sim.Applied() != 1 {
		t.Fatalf("the simulator should have applied the credit before hanging")
	}
	if err := e.svc.Deliver(context.Background(), x.ID); err != nil {
		t.Fatalf("retry: %v", err)
	}
	e.assertOnce(t, x)
}

func TestOutbound500sAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{})
	x := e.confirm(t, 10000)
	e.sim.FailNext(3)
	for i := range 3 {
		if err := e.svc.Deliver(context.Background(), x.ID); !errors.Is(err, exchange.ErrTransient) {
			t.Fatalf("attempt %d against a failing partner: err = %v, want ErrTransient", i+1, err)
		}
	}
	if err := e.svc.Deliver(context.Background(), x.ID); err != nil {
		t.Fatalf("fourth attempt: %v", err)
	}
	got := e.get(t, x.ID)
	if got.Attempts != 4 {
		t.Errorf("attempts = %d, want 4", got.Attempts)
	}
	failed := 0
	for _, ev := range got.History {
		if ev.Event == "attempt_failed" {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("history has %d failed attempts, want 3: %+v", failed, got.History)
	}
	e.assertOnce(t, x)
}

func TestPendingResolvedHoursLaterWithDuplicateCallbacks(t *testing.T) {
	t.Parallel()
	var e *env
	var cbErrs []error
	var mu sync.Mutex
	cfg := partnersim.Config{PendingFor: 6 * time.Hour, DuplicateCallbacks: true}
	cfg.Callback = func(r exchange.CreditResult) {
		_, err := e.svc.Callback(context.Background(), e.partnerID, r.TransactionID, r)
		mu.Lock()
		cbErrs = append(cbErrs, err)
		mu.Unlock()
	}
	e = newEnv(t, cfg)
	ctx := context.Background()
	x := e.confirm(t, 20000)
	if err := e.svc.Deliver(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, x.ID); got.Status != exchange.StatusPending {
		t.Fatalf("exchange is %s, want pending", got.Status)
	}
	// Not due yet: nothing is polled.
	if n, err := e.svc.Poll(ctx, 10); err != nil || n != 0 {
		t.Fatalf("poll before due checked %d (%v), want 0", n, err)
	}
	e.clk.Add(20 * time.Minute)
	if n, err := e.svc.Poll(ctx, 10); err != nil || n != 1 {
		t.Fatalf("poll after 20 minutes checked %d (%v), want 1", n, err)
	}
	if got := e.get(t, x.ID); got.Status != exchange.StatusPending {
		t.Fatalf("after 20 minutes the exchange is %s, want still pending", got.Status)
	}
	e.clk.Add(6 * time.Hour)
	// The poll makes the partner resolve; it calls back twice and answers
	// the poll: three reports of one success.
	if _, err := e.svc.Poll(ctx, 10); err != nil {
		t.Fatal(err)
	}
	// The partner sends its callbacks before it answers the poll, so both
	// have been handled by the time Poll returns.
	mu.Lock()
	calls := append([]error(nil), cbErrs...)
	mu.Unlock()
	if len(calls) != 2 || calls[0] != nil || calls[1] != nil {
		t.Fatalf("callbacks: %v, want two successful calls", calls)
	}
	e.assertOnce(t, x)
	got := e.get(t, x.ID)
	dups := 0
	for _, ev := range got.History {
		if ev.Event == "duplicate_answer" {
			dups++
		}
	}
	if dups != 2 {
		t.Errorf("history records %d duplicate answers, want 2: %+v", dups, got.History)
	}
}

func TestConcurrentDuplicateCallbacksCaptureOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{PendingPolls: 1000})
	ctx := context.Background()
	x := e.confirm(t, 10000)
	if err := e.svc.Deliver(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	e.sim.Resolve() // the partner's batch run; no callback configured
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.Callback(ctx, e.partnerID, x.PublicID, exchange.CreditResult{Status: exchange.CreditCompleted, PartnerRef: "SIM-000001"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("callback: %v", err)
		}
	}
	e.assertOnce(t, x)
	// Another partner cannot report on this exchange.
	if _, err := e.svc.Callback(ctx, e.partnerID+1000, x.PublicID, exchange.CreditResult{Status: exchange.CreditRefused}); !errors.Is(err, exchange.ErrExchangeNotFound) {
		t.Errorf("callback by another partner: err = %v, want ErrExchangeNotFound", err)
	}
}

// crashAfterCredit is a partner client whose process "dies" right after the
// partner applied the credit: the answer is lost.
type crashAfterCredit struct{ exchange.Partner }

func (c crashAfterCredit) Credit(ctx context.Context, ep exchange.Endpoint, r exchange.CreditRequest) (exchange.CreditResult, error) {
	if _, err := c.Partner.Credit(ctx, ep, r); err != nil {
		return exchange.CreditResult{}, err
	}
	return exchange.CreditResult{}, errors.New("worker killed before recording the answer")
}

func TestWorkerDiesBetweenPartnerSuccessAndRecording(t *testing.T) {
	t.Parallel()
	for _, redrive := range []string{"task retry", "poll sweep"} {
		t.Run(redrive, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, partnersim.Config{})
			ctx := context.Background()
			x := e.confirm(t, 30000)
			dying := exchange.NewService(e.db, e.ledger, e.members, e.registry, e.sealer, crashAfterCredit{e.client}, e.clk.Now)
			if err := dying.Deliver(ctx, x.ID); err == nil {
				t.Fatal("the dying worker reported success")
			}
			if e.sim.Applied() != 1 || e.get(t, x.ID).Status != exchange.StatusProcessing {
				t.Fatalf("want the partner credited and the exchange still processing")
			}
			switch redrive {
			case "task retry":
				if err := e.svc.Deliver(ctx, x.ID); err != nil {
					t.Fatal(err)
				}
			case "poll sweep":
				e.clk.Add(31 * time.Minute)
				if n, err := e.svc.Poll(ctx, 10); err != nil || n != 1 {
					t.Fatalf("poll checked %d (%v), want 1", n, err)
				}
			}
			e.assertOnce(t, x)
		})
	}
}

func TestRefusalVoidsAndNotifies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{RefuseOver: 5000})
	ctx := context.Background()
	x := e.confirm(t, 10000) // 7000 miles: over the partner's limit
	if err := e.svc.Deliver(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, x.ID)
	if got.Status != exchange.StatusFailed || got.FailureReason == "" {
		t.Fatalf("exchange is %s (%q), want failed with a reason", got.Status, got.FailureReason)
	}
	notified := false
	for _, ev := range got.History {
		notified = notified || ev.Event == "member_notified"
	}
	if !notified {
		t.Errorf("history has no member notification: %+v", got.History)
	}
	if a := e.available(t); a != startPoints {
		t.Errorf("available %d after refusal, want all %d back", a, startPoints)
	}
	if h, _ := e.ledger.GetHold(ctx, x.HoldID); h.Status != ledger.HoldVoided {
		t.Errorf("hold is %s, want voided", h.Status)
	}
	if e.sim.Balance(account) != 0 {
		t.Errorf("partner credited %d miles for a refused exchange", e.sim.Balance(account))
	}
	// A late duplicate refusal changes nothing; the monthly limit no longer counts it.
	if _, err := e.svc.Callback(ctx, e.partnerID, x.PublicID, exchange.CreditResult{Status: exchange.CreditRefused}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Quote(ctx, e.memberID, e.programme.ID, 90000); err != nil {
		t.Errorf("quote of 90000 after a failed exchange: %v (failed exchanges must not use the monthly limit)", err)
	}
	e.audit(t)
}

func TestPendingPastDeadlineFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{PendingPolls: 1_000_000})
	ctx := context.Background()
	x := e.confirm(t, 10000)
	if err := e.svc.Deliver(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(49 * time.Hour)
	if _, err := e.svc.Poll(ctx, 10); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, x.ID)
	if got.Status != exchange.StatusFailed {
		t.Fatalf("after the deadline the exchange is %s, want failed", got.Status)
	}
	if a := e.available(t); a != startPoints {
		t.Errorf("available %d, want %d back", a, startPoints)
	}
	e.audit(t)
}

func TestPartnerReversalCreditsPointsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{})
	ctx := context.Background()
	x := e.confirm(t, 10000)
	if _, err := e.svc.ReverseByPartner(ctx, e.partnerID, x.PublicID, "too early"); !errors.Is(err, exchange.ErrNotReversible) {
		t.Fatalf("reversing a processing exchange: err = %v, want ErrNotReversible", err)
	}
	if err := e.svc.Deliver(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.ReverseByPartner(ctx, e.partnerID, x.PublicID, "member cancelled")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != exchange.StatusReversed || r.ReversalTxID == 0 {
		t.Fatalf("reversed exchange: %+v", r)
	}
	again, err := e.svc.ReverseByPartner(ctx, e.partnerID, x.PublicID, "member cancelled")
	if err != nil || !again.Replayed || again.ReversalTxID != r.ReversalTxID {
		t.Fatalf("second reversal: %+v (%v), want the same reversal replayed", again, err)
	}
	if a := e.available(t); a != startPoints {
		t.Errorf("available %d after reversal, want %d", a, startPoints)
	}
	if n := e.count(t, `SELECT count(*) FROM ledger_transactions WHERE type = 'reversal' AND member_id = ?`, e.memberID); n != 1 {
		t.Errorf("%d reversal transactions, want 1", n)
	}
	e.audit(t)
}

func TestConfirmRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{})
	ctx := context.Background()
	q, err := e.svc.Quote(ctx, e.memberID, e.programme.ID, 50000)
	if err != nil {
		t.Fatal(err)
	}
	x1, err := e.svc.Confirm(ctx, e.memberID, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	x2, err := e.svc.Confirm(ctx, e.memberID, q.ID)
	if err != nil || !x2.Replayed || x2.ID != x1.ID {
		t.Fatalf("confirming a quote twice: %+v (%v), want the first exchange replayed", x2, err)
	}
	if a := e.available(t); a != startPoints-50100 {
		t.Errorf("available %d, want one hold of 50100", a)
	}
	// Monthly limit 95000: 50000 used.
	if _, err := e.svc.Quote(ctx, e.memberID, e.programme.ID, 46000); !errors.Is(err, exchange.ErrMonthlyLimit) {
		t.Errorf("quote over the monthly limit: err = %v, want ErrMonthlyLimit", err)
	}
	q2, err := e.svc.Quote(ctx, e.memberID, e.programme.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(16 * time.Minute)
	if _, err := e.svc.Confirm(ctx, e.memberID, q2.ID); !errors.Is(err, exchange.ErrQuoteExpired) {
		t.Errorf("confirming an expired quote: err = %v, want ErrQuoteExpired", err)
	}
	if _, err := e.svc.Confirm(ctx, e.memberID+1, q.ID); !errors.Is(err, exchange.ErrQuoteNotFound) && err == nil {
		t.Errorf("another member confirming the quote: err = %v, want an error", err)
	}
	if _, err := e.svc.Link(ctx, e.memberID, e.programme.ID, "XNOPE"); !errors.Is(err, exchange.ErrLinkRejected) {
		t.Errorf("linking an account the partner rejects: err = %v, want ErrLinkRejected", err)
	}
	e.audit(t)
}

func TestInboundCreditsOnceAtInboundRatio(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partnersim.Config{})
	ctx := context.Background()
	scope := "partner:" + time.Now().Format("150405")
	in := exchange.InboundInput{Programme: "skymiles", MemberID: e.memberID, Account: account, Units: 10000, PartnerTransactionID: "SKY-1"}
	x, err := e.svc.Inbound(ctx, e.partnerID, ledger.Idempotency{Scope: scope, Key: "k1"}, in)
	if err != nil {
		t.Fatal(err)
	}
	if x.Points != 8000 || x.Status != exchange.StatusCompleted || x.Direction != exchange.Inbound {
		t.Fatalf("inbound exchange %+v, want 8000 points completed", x)
	}
	again, err := e.svc.Inbound(ctx, e.partnerID, ledger.Idempotency{Scope: scope, Key: "k1"}, in)
	if err != nil || !again.Replayed || again.ID != x.ID {
		t.Fatalf("replay with the same key: %+v (%v)", again, err)
	}
	other, err := e.svc.Inbound(ctx, e.partnerID, ledger.Idempotency{Scope: scope, Key: "k2"}, in)
	if err != nil || !other.Replayed || other.ID != x.ID {
		t.Fatalf("same partner transaction under a new key: %+v (%v), want a replay", other, err)
	}
	in.Units = 20000
	if _, err := e.svc.Inbound(ctx, e.partnerID, ledger.Idempotency{Scope: scope, Key: "k3"}, in); !errors.Is(err, exchange.ErrDuplicateReference) {
		t.Errorf("same partner transaction with other units: err = %v, want ErrDuplicateReference", err)
	}
	b, _ := e.ledger.Balance(ctx, e.memberID)
	if b.Total != startPoints+8000 {
		t.Errorf("balance %d, want %d", b.Total, startPoints+8000)
	}
	if n := e.count(t, `SELECT count(*) FROM ledger_transactions WHERE type = 'earn' AND external_ref = 'SKY-1'`); n != 1 {
		t.Errorf("%d earns for SKY-1, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM ledger_lots WHERE transaction_id = ? AND issuer_partner_id = ?`, x.TransactionID, e.partnerID); n != 1 {
		t.Errorf("the inbound lot should be issued by the partner")
	}
	e.audit(t)
}
