package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/partners"
)

// TestStartClose: starting a close records a queued run and one outbox
// message; starting it again while it is queued answers the same run and
// queues nothing; the task's handler closes the period under the run, which
// reports every step and ends succeeded with done = total and the result; a
// close that cannot start is refused at once and records no run.
func TestStartClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 9, 10, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	b := e.partner("Grand Hotels", partners.SectorHotel, "EUR")
	for _, id := range []int64{a, b} {
		e.contract(id, at(2026, 9, 1, 0, 0), "0.01", "0.005", "0", "0", partners.BillingPostpaid)
		e.earn(at(2026, 9, 12, 9, 0), 1, id, 1000, at(2026, 9, 12, 9, 0), nil, "")
	}
	e.clk.Set(at(2026, 10, 2, 9, 0))
	ctx := context.Background()
	if _, _, err := e.svc.StartClose(ctx, "2026-10", "fin"); !errors.Is(err, ErrPeriodNotEnded) {
		t.Fatalf("start close of October: %v; want ErrPeriodNotEnded", err)
	}
	run, started, err := e.svc.StartClose(ctx, "2026-09", "staff:7")
	if err != nil || !started || run.State != jobs.Queued || run.Kind != KindClose || run.Key != "2026-09" || run.StartedBy != "staff:7" {
		t.Fatalf("start close: %+v started %t %v; want a queued run of 2026-09 by staff:7", run, started, err)
	}
	again, started, err := e.svc.StartClose(ctx, "2026-09", "staff:8")
	if err != nil || started || again.ID != run.ID {
		t.Fatalf("start again while queued: run %d started %t %v; want run %d, not started", again.ID, started, err, run.ID)
	}
	var msgs []struct {
		TaskType string
		Payload  []byte
	}
	if err := e.db.Raw(`SELECT task_type, payload FROM outbox ORDER BY id`).Scan(&msgs).Error; err != nil {
		t.Fatal(err)
	}
	var closes [][]byte
	for _, m := range msgs {
		if m.TaskType == TypeClosePeriod {
			closes = append(closes, m.Payload)
		}
	}
	if len(closes) != 1 {
		t.Fatalf("%d close tasks in the outbox; want 1", len(closes))
	}
	var p ClosePeriodPayload
	if err := json.Unmarshal(closes[0], &p); err != nil || p.RunID != run.ID || p.Month != "2026-09" {
		t.Fatalf("payload %s; want run %d of 2026-09", closes[0], run.ID)
	}

	runs := jobs.NewService(e.db, e.clk.Now, nil)
	if err := HandleClosePeriod(e.svc, runs).ProcessTask(ctx, asynq.NewTask(TypeClosePeriod, closes[0])); err != nil {
		t.Fatalf("close task: %v", err)
	}
	got, err := runs.Get(ctx, run.ID)
	if err != nil || got.State != jobs.Succeeded || got.Done != got.Total || got.Total != closeSteps+2+1 || got.FinishedAt == nil {
		t.Fatalf("run after the task: %+v %v; want succeeded, done = total = %d", got, err, closeSteps+2+1)
	}
	var res CloseResult
	if err := json.Unmarshal(got.Result, &res); err != nil || res.Status != "closed" || res.Statements != 2 || res.Transactions != 2 {
		t.Fatalf("result %s; want closed with 2 statements of 2 transactions", got.Result)
	}
	if p, err := e.svc.Period(ctx, "2026-09"); err != nil || p.Status != PeriodClosed || p.ClosedBy != "staff:7" {
		t.Fatalf("period %+v %v; want closed by staff:7", p, err)
	}
	// A duplicate delivery of the finished run's task changes nothing.
	if err := HandleClosePeriod(e.svc, runs).ProcessTask(ctx, asynq.NewTask(TypeClosePeriod, closes[0])); err != nil {
		t.Fatalf("duplicate close task: %v", err)
	}
	if dup, _ := runs.Get(ctx, run.ID); dup.Attempts != 1 || dup.State != jobs.Succeeded {
		t.Fatalf("run after a duplicate delivery: %+v; want it unchanged", dup)
	}
	// Once finished, a new start is a new run (of a closed period: it changes nothing).
	next, started, err := e.svc.StartClose(ctx, "2026-09", "staff:7")
	if err != nil || !started || next.ID == run.ID {
		t.Fatalf("start after the run finished: %+v started %t %v; want a new run", next, started, err)
	}
	e.audit()
}
