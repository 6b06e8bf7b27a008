package outbox_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
)

// greeter is an asynq worker for test:greet tasks that counts how often each
// greeting ran.
type greeter struct {
	mu   sync.Mutex
	seen map[int]int
}

func startGreeter(t *testing.T, opt asynq.RedisConnOpt) *greeter {
	t.Helper()
	g := &greeter{seen: map[int]int{}}
	w := asynq.NewServer(opt, asynq.Config{Concurrency: 2, Logger: nopLogger{}})
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:greet", func(ctx context.Context, tk *asynq.Task) error {
		var m greeting
		_ = json.Unmarshal(tk.Payload(), &m)
		g.mu.Lock()
		g.seen[m.N]++
		g.mu.Unlock()
		return nil
	})
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return g
}

func (g *greeter) distinct() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.seen) }

// onceEach fails unless greetings 0..n-1 each ran exactly once.
func (g *greeter) onceEach(t *testing.T, n int) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range n {
		if g.seen[i] != 1 {
			t.Fatalf("greeting %d ran %d times, want exactly once (all: %v)", i, g.seen[i], g.seen)
		}
	}
}

func openRows(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(`SELECT count(*) FROM outbox WHERE done_at IS NULL`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// Rows whose tasks stay in flight for hours (a receiver that is down keeps
// its deliveries retrying) must not hide a lost task behind them: a pass of
// Verify reaches every row, not a first page of them.
func TestVerifyFindsALostTaskBehindRowsStillInFlight(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ks := testredis.New(t)
	client := asynq.NewClient(ks.Opt())
	t.Cleanup(func() { client.Close() })
	inspector := asynq.NewInspector(ks.Opt())
	t.Cleanup(func() { inspector.Close() })
	relay := outbox.NewRelay(db, client, quiet, nil)
	relay.Batch = 2 // pages of 2 rows: 12 rows in flight span six pages
	ctx := context.Background()

	later := time.Now().Add(time.Hour)
	err := db.Transaction(func(tx *gorm.DB) error {
		for i := range 12 {
			if err := outbox.Write(tx, outbox.Message{TaskType: "test:greet", Payload: greeting{N: i}, ProcessAt: later}); err != nil {
				return err
			}
		}
		return outbox.Write(tx, outbox.Message{TaskType: "test:greet", Payload: greeting{N: 12}})
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := relay.RelayOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var last struct {
		ID        int64
		CreatedAt time.Time
	}
	if err := db.Raw(`SELECT id, created_at FROM outbox ORDER BY id DESC LIMIT 1`).Scan(&last).Error; err != nil {
		t.Fatal(err)
	}
	lostID := outbox.TaskID(last.ID, last.CreatedAt)
	if err := inspector.DeleteTask("default", lostID); err != nil {
		t.Fatalf("drop the last task from Redis: %v", err)
	}

	if n, err := relay.Verify(ctx, inspector); err != nil || n != 1 {
		t.Fatalf("verify: re-enqueued %d (err %v), want the 1 lost task behind 12 in flight", n, err)
	}
	info, err := inspector.GetTaskInfo("default", lostID)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("lost task after verify: %+v, %v; want it pending again", info, err)
	}
	if n := openRows(t, db); n != 13 {
		t.Fatalf("%d rows open, want all 13 (none finished)", n)
	}
}

// After Redis restarted without persistence it lists no queues, and the
// relay's client, which listed "default" once, never lists it again: every
// lookup answered "queue not found", so finished tasks never closed their
// rows and each pass grew. Verify lists the queue again and closes them.
func TestVerifyClosesFinishedRowsAfterRedisRestart(t *testing.T) {
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

	writeCommitted(t, db, 3)
	if n, err := relay.RelayOnce(ctx); err != nil || n != 3 {
		t.Fatalf("relay: %d, %v", n, err)
	}
	srv.Stop()
	srv.Start() // empty
	if n, err := relay.Verify(ctx, inspector); err != nil || n != 3 {
		t.Fatalf("verify after the restart: re-enqueued %d (err %v), want 3", n, err)
	}
	g := startGreeter(t, opt)
	waitFor(t, "the 3 re-enqueued tasks to run", func() bool { return g.distinct() == 3 })
	waitSettled(t, inspector)
	if n, err := relay.Verify(ctx, inspector); err != nil || n != 0 {
		t.Fatalf("verify after the tasks ran: re-enqueued %d (err %v), want 0", n, err)
	}
	if n := openRows(t, db); n != 0 {
		t.Fatalf("%d rows still open after their tasks finished, want 0", n)
	}
	g.onceEach(t, 3)
}

// A Redis outage during which the relay could not enqueue ends with a pass of
// Verify at once, not at the next VerifyEvery: tasks Redis held before it went
// away (and lost, restarting without persistence) run again promptly.
func TestRunVerifiesAsSoonAsRedisReturns(t *testing.T) {
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
	relay.Idle = 20 * time.Millisecond
	relay.MaxWait = 100 * time.Millisecond
	relay.VerifyEvery = time.Hour // only the return of Redis may trigger a pass

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = relay.Run(ctx, inspector); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	writeCommitted(t, db, 3) // greetings 0..2, accepted by Redis before the outage
	waitFor(t, "the first 3 rows to be relayed", func() bool {
		p, err := outbox.Pending(context.Background(), db)
		return err == nil && p == 0
	})
	srv.Stop()
	err := db.Transaction(func(tx *gorm.DB) error { // greetings 3..4, written during the outage
		for i := 3; i < 5; i++ {
			if err := outbox.Write(tx, outbox.Message{TaskType: "test:greet", Payload: greeting{N: i}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to fail against the stopped Redis", func() bool {
		var failed int64
		db.Raw(`SELECT count(*) FROM outbox WHERE last_error IS NOT NULL`).Scan(&failed)
		return failed > 0
	})
	srv.Start() // empty: the first 3 tasks are gone

	g := startGreeter(t, opt)
	waitFor(t, "all 5 greetings to run", func() bool { return g.distinct() == 5 })
	waitSettled(t, inspector)
	g.onceEach(t, 5)
}
