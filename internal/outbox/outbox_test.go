package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type greeting struct{ N int }

func writeCommitted(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		err := db.Transaction(func(tx *gorm.DB) error {
			return outbox.Write(tx, outbox.Message{TaskType: "test:greet", Payload: greeting{N: i}})
		})
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

// waitFor polls cond until it holds, failing the test after a deadline that
// only a broken mechanism, not a busy machine, overruns.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after 2 minutes waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pendingTasks counts tasks waiting in asynq's default queue.
func pendingTasks(t *testing.T, opt asynq.RedisConnOpt) int {
	t.Helper()
	in := asynq.NewInspector(opt)
	defer in.Close()
	info, err := in.GetQueueInfo("default")
	if err != nil {
		t.Fatalf("queue info: %v", err)
	}
	return info.Pending
}

func TestRolledBackTransactionEnqueuesNothing(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ks := testredis.New(t)
	client := asynq.NewClient(ks.Opt())
	t.Cleanup(func() { client.Close() })

	boom := errors.New("domain change failed")
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := outbox.Write(tx, outbox.Message{TaskType: "test:greet", Payload: greeting{1}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("transaction: got %v, want %v", err, boom)
	}
	writeCommitted(t, db, 1)

	relay := outbox.NewRelay(db, client, quiet, nil)
	n, err := relay.RelayOnce(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("relay: sent %d, err %v; want exactly the 1 committed row", n, err)
	}
	var total int64
	db.Raw(`SELECT count(*) FROM outbox`).Scan(&total)
	if total != 1 {
		t.Fatalf("outbox rows: got %d, want 1 (the rolled-back row must not exist)", total)
	}
	if got := pendingTasks(t, ks.Opt()); got != 1 {
		t.Fatalf("asynq pending: got %d, want 1", got)
	}
}

func TestRowsWaitWhileRedisIsDownThenDeliverOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := testredis.StartServer(t)
	opt, _ := asynq.ParseRedisURI(srv.URL())
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	relay := outbox.NewRelay(db, client, quiet, nil)
	relay.Idle = 20 * time.Millisecond
	relay.MaxWait = 100 * time.Millisecond

	srv.Stop()
	writeCommitted(t, db, 5) // the domain keeps committing while Redis is down

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = relay.Run(ctx, nil); close(stopped) }() // fails and backs off the whole time
	waitFor(t, "the relay to try (and fail) twice while Redis is down", func() bool {
		var attempts int64
		db.Raw(`SELECT coalesce(max(attempts), 0) FROM outbox`).Scan(&attempts)
		return attempts >= 2
	})
	cancel()
	<-stopped
	pending, err := outbox.Pending(context.Background(), db)
	if err != nil || pending != 5 {
		t.Fatalf("while Redis is down: %d rows pending (err %v), want 5", pending, err)
	}

	srv.Start()
	waitFor(t, "the rows to be relayed after Redis came back", func() bool {
		if _, err := relay.RelayOnce(context.Background()); err != nil {
			return false
		}
		p, _ := outbox.Pending(context.Background(), db)
		return p == 0
	})
	if got := pendingTasks(t, opt); got != 5 {
		t.Fatalf("asynq pending after recovery: got %d, want exactly 5", got)
	}
}

// A relay that crashed after enqueueing but before marking rows sent sends
// them again; asynq must refuse the duplicates by task id.
func TestRelayCrashBeforeMarkDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ks := testredis.New(t)
	client := asynq.NewClient(ks.Opt())
	t.Cleanup(func() { client.Close() })
	writeCommitted(t, db, 3)

	relay := outbox.NewRelay(db, client, quiet, nil)
	if n, err := relay.RelayOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("first relay: %d, %v", n, err)
	}
	// Simulate the lost commit of "sent".
	if err := db.Exec(`UPDATE outbox SET sent_at = NULL`).Error; err != nil {
		t.Fatal(err)
	}
	if n, err := relay.RelayOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("second relay: %d, %v; want the 3 rows marked sent as duplicates", n, err)
	}
	if got := pendingTasks(t, ks.Opt()); got != 3 {
		t.Fatalf("asynq pending: got %d, want 3 (no duplicates)", got)
	}
}

func TestWriteRejectsMessageWithoutType(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	err := db.Transaction(func(tx *gorm.DB) error {
		return outbox.Write(tx, outbox.Message{Payload: 1})
	})
	if err == nil {
		t.Fatal("want an error for a message without task type")
	}
}

// Redis restarted without persistence after accepting tasks: Verify finds
// them gone and enqueues them again, once, under the same ids. Tasks seen
// finished mark their rows done.
func TestVerifyReenqueuesTasksRedisLost(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := testredis.StartServer(t)
	opt, _ := asynq.ParseRedisURI(srv.URL())
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	inspector := asynq.NewInspector(opt)
	t.Cleanup(func() { inspector.Close() })
	relay := outbox.NewRelay(db, client, quiet, nil)
	relay.Redis = opt
	ctx := context.Background()

	var mu sync.Mutex
	seen := map[int]int{}
	startWorker := func() *asynq.Server {
		w := asynq.NewServer(opt, asynq.Config{Concurrency: 2, Logger: nopLogger{}})
		mux := asynq.NewServeMux()
		mux.HandleFunc("test:greet", func(ctx context.Context, tk *asynq.Task) error {
			var g greeting
			_ = json.Unmarshal(tk.Payload(), &g)
			mu.Lock()
			seen[g.N]++
			mu.Unlock()
			return nil
		})
		if err := w.Start(mux); err != nil {
			t.Fatal(err)
		}
		return w
	}
	waitSeen := func(n int) {
		waitFor(t, fmt.Sprintf("%d distinct tasks to run", n), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) >= n
		})
	}

	// Normal life: tasks finish and their rows are marked done.
	writeCommitted(t, db, 2) // payloads N = 0, 1
	if n, err := relay.RelayOnce(ctx); err != nil || n != 2 {
		t.Fatalf("relay: %d, %v", n, err)
	}
	w := startWorker()
	waitSeen(2)
	w.Shutdown()
	if n, err := relay.Verify(ctx, inspector); err != nil || n != 0 {
		t.Fatalf("verify after completion: re-enqueued %d (err %v), want 0", n, err)
	}
	var open int64
	db.Raw(`SELECT count(*) FROM outbox WHERE done_at IS NULL`).Scan(&open)
	if open != 0 {
		t.Fatalf("%d finished rows not marked done", open)
	}

	// Redis accepts three more tasks and then loses its memory.
	err := db.Transaction(func(tx *gorm.DB) error {
		for i := 10; i < 13; i++ {
			if err := outbox.Write(tx, outbox.Message{TaskType: "test:greet", Payload: greeting{N: i}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := relay.RelayOnce(ctx); err != nil || n != 3 {
		t.Fatalf("relay: %d, %v", n, err)
	}
	srv.Stop()
	srv.Start()
	if n, err := relay.Verify(ctx, inspector); err != nil || n != 3 {
		t.Fatalf("verify after the loss: re-enqueued %d (err %v), want 3", n, err)
	}
	if n, err := relay.Verify(ctx, inspector); err != nil || n != 0 {
		t.Fatalf("second verify: re-enqueued %d (err %v), want 0 (the tasks are back)", n, err)
	}
	w = startWorker()
	t.Cleanup(w.Shutdown)
	waitSeen(5)
	waitSettled(t, inspector) // nothing left that could run a task twice
	mu.Lock()
	defer mu.Unlock()
	for _, n := range []int{0, 1, 10, 11, 12} {
		if seen[n] != 1 {
			t.Fatalf("task %d ran %d times, want exactly once (all: %v)", n, seen[n], seen)
		}
	}
}

type nopLogger struct{}

func (nopLogger) Debug(...any) {}
func (nopLogger) Info(...any)  {}
func (nopLogger) Warn(...any)  {}
func (nopLogger) Error(...any) {}
func (nopLogger) Fatal(...any) {}

// waitSettled waits until asynq's default queue holds no task that may still
// run (pending, active, scheduled or waiting to retry).
func waitSettled(t *testing.T, in *asynq.Inspector) {
	t.Helper()
	waitFor(t, "the default queue to settle", func() bool {
		q, err := in.GetQueueInfo("default")
		return err == nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0
	})
}
