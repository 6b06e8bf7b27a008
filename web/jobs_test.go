package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/settlement"
)

// startWorker runs, until the test ends, what `hub worker` runs for the task
// types in handlers: the outbox relay and an asynq server, on a Redis
// keyspace of the test's own. Other task types the outbox holds fail there
// and are retried later, as a worker without their handler would.
func startWorker(t *testing.T, db *gorm.DB, handlers map[string]asynq.Handler) {
	t.Helper()
	ks := testredis.New(t)
	mux := asynq.NewServeMux()
	for typ, h := range handlers {
		mux.Handle(typ, h)
	}
	srv := asynq.NewServer(ks.Opt(), asynq.Config{Concurrency: 2, Queues: map[string]int{"default": 1, "low": 1},
		LogLevel: asynq.FatalLevel})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start the asynq server: %v", err)
	}
	client := asynq.NewClient(ks.Opt())
	relay := outbox.NewRelay(db, client, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	relay.Idle = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = relay.Run(ctx, nil); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Shutdown()
		_ = client.Close()
	})
}

// closeWorker runs the settlement close task over db, as a worker process
// with its own services would.
func closeWorker(t *testing.T, db *gorm.DB, loc *time.Location, now func() time.Time) {
	t.Helper()
	svc := settlement.NewService(db, settlement.Options{Location: loc, BaseCurrency: "EUR", Now: now})
	startWorker(t, db, map[string]asynq.Handler{settlement.TypeClosePeriod: settlement.HandleClosePeriod(svc, jobs.NewService(db, now, nil))})
}

// awaitRun polls a job run through get until it has finished, failing the
// test after 30 seconds. The run's row is the event: nothing else says the
// work is done.
func awaitRun(t *testing.T, get func() map[string]any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run := get()
		if s := run["state"]; s == "succeeded" || s == "failed" {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("job run still %v after 30s: %v", run["state"], run)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
}

// TestCloseRunsAsJob: closing a period over the admin API answers 202 at
// once with a queued run and its URL, before any statement exists; a second
// start while that run is active answers the same run and queues nothing;
// the worker closes the period under the run, whose progress reaches its
// total; the statements then exist.
func TestCloseRunsAsJob(t *testing.T) {
	t.Parallel()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Now().In(berlin)
	last := time.Date(now.Year(), now.Month()-1, 10, 12, 0, 0, 0, berlin)
	month := last.Format("2006-01")
	ledgerClock := clock.New(last)
	var led *ledger.Service
	e := newContractEnv(t, func(d *Deps) {
		led = ledger.NewService(d.DB, ledgerClock.Now)
		d.Settlement = settlement.NewService(d.DB, settlement.Options{Location: berlin, BaseCurrency: "EUR", Now: time.Now})
		d.Ledger = led
	})
	ctx := context.Background()
	for i, name := range []string{"Sky Air", "Grand Hotels", "Bank One"} {
		p, _ := e.partnerClient(name, access.ScopeSettlementRead)
		if _, err := e.svc.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: last.AddDate(0, 0, -5), Earn: true, Burn: true,
			IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.005"), Billing: partners.BillingPostpaid}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := led.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "t", Key: fmt.Sprint("e", i)}, MemberID: 7,
			PartnerID: p.ID, Points: ledger.Points(1000 * (i + 1)), OccurredAt: last}); err != nil {
			t.Fatal(err)
		}
	}
	fin := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)
	closePath := "/v1/admin/settlement/periods/" + month + "/close"

	code, run, h := e.send(http.MethodPost, closePath, fin, nil)
	if code != http.StatusAccepted || run["state"] != "queued" || run["kind"] != settlement.KindClose || run["key"] != month ||
		run["started_by"] != "staff:money@hub.test" {
		t.Fatalf("start close: %d %v; want 202 with a queued %s run of %s started by staff:money@hub.test", code, run, settlement.KindClose, month)
	}
	runURL := h.Get("Location")
	if runURL != "/v1/admin/jobs/runs/"+idOf(t, run) || run["url"] != runURL {
		t.Fatalf("Location %q, url %v; want /v1/admin/jobs/runs/%s", runURL, run["url"], idOf(t, run))
	}
	if n := countRows(t, e.db, "settlement_statements"); n != 0 {
		t.Fatalf("%d statements right after the 202; the close must run in the background", n)
	}
	code, again, _ := e.send(http.MethodPost, closePath, fin, nil)
	if code != http.StatusAccepted || again["id"] != run["id"] {
		t.Fatalf("start again while the run is active: %d %v; want 202 with run %v", code, again, run["id"])
	}
	var queued int64
	e.db.Raw(`SELECT count(*) FROM outbox WHERE task_type = ?`, settlement.TypeClosePeriod).Scan(&queued)
	if queued != 1 {
		t.Fatalf("%d close tasks queued; want 1", queued)
	}
	list := items(t, e.expect(200, "", http.MethodGet, "/v1/admin/jobs/runs?kind="+settlement.KindClose+"&key="+month, support, nil))
	if len(list) != 1 || list[0]["id"] != run["id"] {
		t.Fatalf("runs of %s: %v; want the one run", month, list)
	}

	closeWorker(t, e.db, berlin, time.Now)
	done := awaitRun(t, func() map[string]any { return e.expect(200, "", http.MethodGet, runURL, support, nil) })
	if done["state"] != "succeeded" || done["done"] != done["total"] || done["total"].(float64) < 7 || done["percent"] != float64(100) {
		t.Fatalf("finished run %v; want succeeded with done = total (7 steps and one per statement)", done)
	}
	res, _ := done["result"].(map[string]any)
	if res["status"] != "closed" || res["statements"] != float64(3) || res["transactions"] != float64(3) {
		t.Fatalf("result %v; want closed with 3 statements of 3 transactions", res)
	}
	sts := items(t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/statements?period="+month, support, nil))
	if len(sts) != 3 {
		t.Fatalf("%d statements after the run; want 3", len(sts))
	}
	// The transactions behind a statement line, as JSON and as CSV.
	txPath := "/v1/admin/settlement/statements/" + idOf(t, sts[0]) + "/transactions"
	txs := items(t, e.expect(200, "", http.MethodGet, txPath+"?kind=issued&contract_version=1", support, nil))
	if len(txs) != 1 || txs[0]["type"] != "earn" || txs[0]["points"] != float64(3000) || txs[0]["late"] != false {
		t.Fatalf("transactions behind the issued line: %v; want the one earn of 3,000 points", txs)
	}
	if got := items(t, e.expect(200, "", http.MethodGet, txPath+"?kind=redeemed", support, nil)); len(got) != 0 {
		t.Fatalf("transactions behind a redeemed line: %v; want none", got)
	}
	if code, body, h := e.raw(http.MethodGet, txPath+"?kind=issued&format=csv", support, "", ""); code != 200 ||
		!strings.HasPrefix(h.Get("Content-Type"), "text/csv") || strings.Count(body, "\n") != 2 || !strings.Contains(body, ",earn,7,") {
		t.Fatalf("CSV of the issued line: %d %q", code, body)
	}
	if code, body, _ := e.send(http.MethodGet, txPath+"?kind=adjustment", support, nil); code != 400 || !strings.Contains(fmt.Sprint(body["errors"]), "kind") {
		t.Fatalf("transactions of an adjustment line: %d %v; want 400 naming kind", code, body)
	}
	if code, body, _ := e.send(http.MethodGet, txPath+"?kind=issued&late=true", support, nil); code != 400 || !strings.Contains(fmt.Sprint(body["errors"]), "month") {
		t.Fatalf("late transactions without a month: %d %v; want 400 naming month", code, body)
	}
	if p := e.expect(200, "", http.MethodGet, "/v1/admin/settlement/periods/"+month, support, nil); p["status"] != "closed" ||
		p["closed_by"] != "staff:money@hub.test" {
		t.Fatalf("period after the run: %v; want closed by staff:money@hub.test", p)
	}
	e.expect(404, "job_run_not_found", http.MethodGet, "/v1/admin/jobs/runs/999999", support, nil)
	// Once the run finished, closing again is a new run that changes nothing.
	code, next, _ := e.send(http.MethodPost, closePath, fin, nil)
	if code != http.StatusAccepted || next["id"] == run["id"] {
		t.Fatalf("close after the run: %d %v; want a new run", code, next)
	}
	final := awaitRun(t, func() map[string]any {
		return e.expect(200, "", http.MethodGet, "/v1/admin/jobs/runs/"+idOf(t, next), support, nil)
	})
	if r, _ := final["result"].(map[string]any); final["state"] != "succeeded" || r["report_sha256"] != res["report_sha256"] {
		t.Fatalf("second close %v; want succeeded with the same report hash %v", final, res["report_sha256"])
	}
	if n := countRows(t, e.db, "settlement_statements"); n != 3 {
		t.Fatalf("%d statements after closing twice; want 3", n)
	}
}

// TestConsoleCloseShowsProgress: the console's close button starts the same
// run; the period page shows its progress bar and hides the button while it
// is active, a second click says it is under way, the bar's JSON endpoint
// answers the run, and once the worker finished the page shows the result.
func TestConsoleCloseShowsProgress(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	e.member("sam@example.test", air.ID, 4000)
	month := e.clock.Now().Format("2006-01")
	e.staffUser("fin@hub.test", access.RoleFinance)
	e.clock.Add(31 * 24 * time.Hour)
	b := e.browser()
	b.loginConsole("fin@hub.test")

	per := b.page("/console/settlement/" + month)
	if st, _, h := b.post("/console/settlement/"+month+"/close", url.Values{"csrf": {csrfOf(t, per)}}); st != http.StatusSeeOther || h.Get("Location") != "/console/settlement/"+month {
		t.Fatalf("close = %d → %q", st, h.Get("Location"))
	}
	per = b.page("/console/settlement/" + month)
	m := regexp.MustCompile(`data-run="(/console/jobs/runs/[0-9]+)"`).FindStringSubmatch(per)
	if m == nil || strings.Contains(per, `id="close-period"`) || !strings.Contains(per, `id="close-progress"`) || !strings.Contains(per, "started") {
		t.Fatalf("period page while closing: want a progress bar and no close button:\n%s", per)
	}
	if st, _, _ := b.post("/console/settlement/"+month+"/close", url.Values{"csrf": {csrfOf(t, per)}}); st != http.StatusSeeOther {
		t.Fatalf("second close = %d", st)
	}
	if again := b.page("/console/settlement/" + month); !strings.Contains(again, "already under way") || !strings.Contains(again, m[0]) {
		t.Fatalf("second click: want the same run, said to be under way:\n%s", again)
	}
	getRun := func() map[string]any {
		st, body, h := b.get(m[1])
		var run map[string]any
		if st != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &run) != nil {
			t.Fatalf("GET %s = %d %q", m[1], st, body)
		}
		return run
	}
	if run := getRun(); run["state"] != "queued" {
		t.Fatalf("run before the worker: %v; want queued", run)
	}
	closeWorker(t, e.db, time.UTC, e.clock.Now)
	if run := awaitRun(t, getRun); run["state"] != "succeeded" || run["done"] != run["total"] {
		t.Fatalf("run: %v; want succeeded with done = total", run)
	}
	per = b.page("/console/settlement/" + month)
	if !strings.Contains(per, `id="period-status">closed<`) || !strings.Contains(per, `id="close-result"`) || strings.Contains(per, "data-run=") ||
		!strings.Contains(per, "1 statements from 1 transactions") {
		t.Fatalf("period page after the run: want closed with the run's result:\n%s", per)
	}
	if jobsPage := b.page("/console/jobs"); !strings.Contains(jobsPage, `<a href="/console/settlement/`+month+`">close `+month+`</a>`) ||
		!strings.Contains(jobsPage, "status-succeeded") {
		t.Fatalf("jobs page: want the succeeded close run of %s listed:\n%s", month, jobsPage)
	}
	audit(t, e.db)
}

func countRows(t *testing.T, db *gorm.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}
