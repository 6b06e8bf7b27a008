package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/testdb"
)

func spec(key string) Spec {
	return Spec{Kind: "test.work", Key: key, StartedBy: "staff:ann@hub.test",
		Task: func(id int64) outbox.Message {
			return outbox.Message{TaskType: "test:work", Payload: map[string]int64{"run_id": id}}
		}}
}

// TestStartOneActiveRunPerKey: concurrent starts of the same kind and key
// make one run and one outbox message; another key is another run; once
// the run finished, starting again makes a new run.
func TestStartOneActiveRunPerKey(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const n = 8
	runs := make([]Run, n)
	started := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx := db.Begin()
			runs[i], started[i], errs[i] = Start(tx, now, spec("2026-11"))
			if errs[i] == nil {
				errs[i] = tx.Commit().Error
			} else {
				tx.Rollback()
			}
		}()
	}
	wg.Wait()
	var made int
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if started[i] {
			made++
		}
		if runs[i].ID != runs[0].ID || runs[i].State != Queued {
			t.Fatalf("start %d answered run %+v; want the one queued run %d", i, runs[i], runs[0].ID)
		}
	}
	var msgs int64
	db.Raw(`SELECT count(*) FROM outbox WHERE task_type = 'test:work'`).Scan(&msgs)
	if made != 1 || msgs != 1 {
		t.Fatalf("%d starts made a run and %d messages were queued; want 1 and 1", made, msgs)
	}
	other, ok, err := Start(db, now, spec("2026-10"))
	if err != nil || !ok || other.ID == runs[0].ID {
		t.Fatalf("another key: %+v %t %v; want a new run", other, ok, err)
	}
	s := NewService(db, func() time.Time { return now }, nil)
	if err := s.Execute(context.Background(), runs[0].ID, func(context.Context, *Progress) (any, error) { return "done", nil }); err != nil {
		t.Fatal(err)
	}
	again, ok, err := Start(db, now, spec("2026-11"))
	if err != nil || !ok || again.ID == runs[0].ID {
		t.Fatalf("after the run finished: %+v %t %v; want a new run", again, ok, err)
	}
}

// TestExecuteRecordsProgressAndOutcome: progress reported by the work
// reaches the row while it runs; success stores the result with done =
// total; a failure asynq retries puts the run back to queued with the
// error, the last one (or SkipRetry) fails it; a finished run's duplicate
// task does not run the work again.
func TestExecuteRecordsProgressAndOutcome(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := NewService(db, func() time.Time { return now }, nil)
	ctx := context.Background()
	run, _, err := Start(db, now, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Execute(ctx, run.ID, func(ctx context.Context, p *Progress) (any, error) {
		if again, started, err := Start(db, now, spec("a")); err != nil || started || again.ID != run.ID || again.State != Running {
			return nil, fmt.Errorf("start while running: %+v %t %v; want run %d, running, not started again", again, started, err, run.ID)
		}
		p.Set(2, 5, "second step")
		deadline := time.Now().Add(10 * time.Second)
		for { // the row shows the report while the work runs
			r, err := s.Get(ctx, run.ID)
			if err != nil {
				return nil, err
			}
			if r.State == Running && r.Done == 2 && r.Total == 5 && r.Phase == "second step" {
				return map[string]int{"statements": 3}, nil
			}
			if time.Now().After(deadline) {
				return nil, errors.New("progress never reached the row")
			}
			time.Sleep(5 * time.Millisecond) // poll interval
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, run.ID)
	var res map[string]int
	if got.State != Succeeded || got.Done != 5 || got.Total != 5 || got.Percent() != 100 || json.Unmarshal(got.Result, &res) != nil ||
		res["statements"] != 3 || got.FinishedAt == nil || got.Attempts != 1 {
		t.Fatalf("succeeded run %+v; want done 5 of 5 with the result", got)
	}
	ran := false
	if err := s.Execute(ctx, run.ID, func(context.Context, *Progress) (any, error) { ran = true; return nil, nil }); err != nil || ran {
		t.Fatalf("duplicate delivery: ran %t, %v; want the work not run again", ran, err)
	}

	failing, _, _ := Start(db, now, spec("b"))
	boom := errors.New("exchange rate missing")
	attempt := 0 // retries so far, of at most 3
	s.retries = func(context.Context) (int, int, bool) { return attempt, 3, true }
	if err := s.Execute(ctx, failing.ID, func(context.Context, *Progress) (any, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing work: %v; want its error back for asynq", err)
	}
	if r, _ := s.Get(ctx, failing.ID); r.State != Queued || r.Error != boom.Error() || r.FinishedAt != nil {
		t.Fatalf("run after a failure asynq retries: %+v; want queued with the error", r)
	}
	if _, started, _ := Start(db, now, spec("b")); started {
		t.Fatal("a run waiting for its retry is active: starting the same key must answer it")
	}
	attempt = 3
	_ = s.Execute(ctx, failing.ID, func(context.Context, *Progress) (any, error) { return nil, boom })
	if r, _ := s.Get(ctx, failing.ID); r.State != Failed || r.FinishedAt == nil || r.Attempts != 2 {
		t.Fatalf("run after its last attempt: %+v; want failed after 2 attempts", r)
	}
	skipped, _, _ := Start(db, now, spec("c"))
	attempt = 0
	_ = s.Execute(ctx, skipped.ID, func(context.Context, *Progress) (any, error) {
		return nil, errors.Join(errors.New("period not ended"), asynq.SkipRetry)
	})
	if r, _ := s.Get(ctx, skipped.ID); r.State != Failed {
		t.Fatalf("run of work that must not be retried: %+v; want failed", r)
	}
	if _, err := s.Get(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown run: %v; want ErrNotFound", err)
	}
}

// TestStartGivesUpAStaleRun: an active run unheard of for longer than
// StaleAfter is failed as abandoned by the next start, which starts a new
// run; the old run's task, should it still come, does nothing.
func TestStartGivesUpAStaleRun(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	sp := spec("2026-11")
	sp.StaleAfter = time.Hour
	old, _, err := Start(db, now, sp)
	if err != nil {
		t.Fatal(err)
	}
	if again, started, _ := Start(db, now.Add(59*time.Minute), sp); started || again.ID != old.ID {
		t.Fatalf("within StaleAfter: run %d started %t; want run %d answered", again.ID, started, old.ID)
	}
	fresh, started, err := Start(db, now.Add(61*time.Minute), sp)
	if err != nil || !started || fresh.ID == old.ID {
		t.Fatalf("after StaleAfter: %+v %t %v; want a new run", fresh, started, err)
	}
	s := NewService(db, func() time.Time { return now }, nil)
	gone, _ := s.Get(context.Background(), old.ID)
	if gone.State != Failed || gone.FinishedAt == nil {
		t.Fatalf("stale run: %+v; want failed as abandoned", gone)
	}
	ran := false
	if err := s.Execute(context.Background(), old.ID, func(context.Context, *Progress) (any, error) { ran = true; return nil, nil }); err != nil || ran {
		t.Fatalf("the abandoned run's task: ran %t, %v; want nothing done", ran, err)
	}
}
