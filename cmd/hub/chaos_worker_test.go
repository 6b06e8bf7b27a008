//go:build chaos

package main

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

// TestChaosWorkerKilledMidExchangeDelivery confirms an outbound exchange,
// lets the worker call the partner programme (the simulator applies the
// credit and then holds its answer), kills the worker with -9 during that
// call, and starts a new one. The exchange must complete with the partner
// credited exactly once (the retry carries the same id and the partner
// de-duplicates it) and the member's points debited exactly once; the
// ledger audit passes.
func TestChaosWorkerKilledMidExchangeDelivery(t *testing.T) {
	_, dbURL := testdb.NewWithURL(t)
	rs := testredis.StartServer(t)
	w := seedWorld(t, dbURL, 1)
	ctx := context.Background()
	sim := partnersim.New(partnersim.Config{APIKey: "k"})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	ps := partners.NewService(w.db, nil)
	acc, err := access.NewService(w.db, ps, access.Options{Issuer: "http://hub.chaos", SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	var partnerID int64
	if err := w.db.Raw(`SELECT id FROM partners WHERE name = 'Harbour Hotels'`).Scan(&partnerID).Error; err != nil {
		t.Fatal(err)
	}
	led := ledger.NewService(w.db, time.Now)
	ms := members.NewService(w.db, led, time.Now)
	xch := exchange.NewService(w.db, led, ms, ps, acc.SecretBox(), exchange.NewHTTPPartner(5*time.Second), time.Now)
	mid := w.members[0]
	if _, err := led.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "chaos", Key: "seed"}, MemberID: mid,
		PartnerID: partnerID, Points: 10000, OccurredAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	prog, err := xch.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: partnerID, Code: "harbourpts", Name: "Harbour", Unit: "pts",
		Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MaxPoints: 90000, EndpointURL: simSrv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xch.Link(ctx, mid, prog.ID, "FF1"); err != nil {
		t.Fatal(err)
	}
	before, _ := led.Balance(ctx, mid)

	// The first credit call is applied by the partner, whose answer then hangs.
	sim.HangNext(1, 2*time.Minute)
	env := []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + rs.URL(), noLimits}
	worker := startHub(t, env, "all")
	q, err := xch.Quote(ctx, mid, prog.ID, 2000)
	if err != nil {
		t.Fatal(err)
	}
	x, err := xch.Confirm(ctx, mid, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for sim.Requests() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if sim.Requests() == 0 {
		t.Fatalf("the worker never called the partner\n%s", worker.Logs())
	}
	// The partner applies the credit, then holds its answer.
	for sim.Applied() == 0 && sim.Balance("FF1") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := worker.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-worker.done
	if sim.Applied() != 1 {
		t.Fatalf("partner applied %d credits (balance %d, %d requests) before the kill; want 1", sim.Applied(), sim.Balance("FF1"), sim.Requests())
	}

	// A new worker finishes the delivery.
	startHub(t, env, "all")
	deadline = time.Now().Add(3 * time.Minute)
	var got exchange.Exchange
	for time.Now().Before(deadline) {
		if got, err = xch.Get(ctx, x.ID); err == nil && got.Status == exchange.StatusCompleted {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got.Status != exchange.StatusCompleted {
		t.Fatalf("exchange after the restart: %s; want completed", got.Status)
	}
	if sim.Applied() != 1 || sim.Balance("FF1") != 1400 {
		t.Errorf("partner applied %d credits, balance %d; want exactly one credit of 1400", sim.Applied(), sim.Balance("FF1"))
	}
	after, _ := led.Balance(ctx, mid)
	if before.Total-after.Total != 2000 || after.Held != 0 {
		t.Errorf("member balance %+v -> %+v; want 2000 points debited once, none held", before, after)
	}
	t.Logf("partner requests %d, credits applied %d", sim.Requests(), sim.Applied())
	rep, err := ledger.Audit(ctx, w.db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger audit: %v %+v", err, rep)
	}
}
