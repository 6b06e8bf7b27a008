package throttle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/throttle"
)

func waitOf(t *testing.T, err error) time.Duration {
	t.Helper()
	var lim *throttle.LimitedError
	if !errors.As(err, &lim) {
		t.Fatalf("got %v, want a *throttle.LimitedError", err)
	}
	return lim.Wait
}

func TestBurstThenOnePerInterval(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clk := clock.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	l := throttle.New(db, "staff", throttle.Policy{Burst: 3, Interval: time.Minute}, clk.Now)
	other := throttle.New(db, "member", throttle.Policy{Burst: 3, Interval: time.Minute}, clk.Now)
	ctx := context.Background()
	for i := range 3 {
		if err := l.Take(ctx, "a@hub.test"); err != nil {
			t.Fatalf("attempt %d within the burst: %v", i+1, err)
		}
	}
	if w := waitOf(t, l.Take(ctx, "a@hub.test")); w != time.Minute {
		t.Fatalf("past the burst: wait %s, want 1m", w)
	}
	// Other keys and other namespaces have their own budget.
	if err := l.Take(ctx, "b@hub.test"); err != nil {
		t.Fatalf("another key: %v", err)
	}
	if err := other.Take(ctx, "a@hub.test"); err != nil {
		t.Fatalf("the same key in another namespace: %v", err)
	}
	clk.Add(40 * time.Second)
	if w := waitOf(t, l.Take(ctx, "a@hub.test")); w != 20*time.Second {
		t.Fatalf("40 s later: wait %s, want 20s", w)
	}
	clk.Add(20 * time.Second)
	if err := l.Take(ctx, "a@hub.test"); err != nil {
		t.Fatalf("one interval later: %v", err)
	}
	if err := l.Take(ctx, "a@hub.test"); err == nil {
		t.Fatal("a second attempt in the same interval was allowed")
	}
	// A refund gives one attempt back.
	if err := l.Refund(ctx, "a@hub.test"); err != nil {
		t.Fatal(err)
	}
	if err := l.Take(ctx, "a@hub.test"); err != nil {
		t.Fatalf("after a refund: %v", err)
	}
	// Account names are not stored.
	var n int64
	db.Raw(`SELECT count(*) FROM login_throttle WHERE key LIKE '%hub.test%'`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows hold an account name", n)
	}
}

// Concurrent attempts on one key are counted one after another: exactly the
// burst gets through, however they interleave.
func TestConcurrentTakesNeverExceedTheBurst(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clk := clock.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	l := throttle.New(db, "member", throttle.Policy{Burst: 5, Interval: time.Hour}, clk.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, limited := 0, 0
	for range 40 {
		wg.Go(func() {
			err := l.Take(context.Background(), "id:7")
			mu.Lock()
			defer mu.Unlock()
			var lim *throttle.LimitedError
			switch {
			case err == nil:
				allowed++
			case errors.As(err, &lim):
				limited++
			default:
				t.Errorf("take: %v", err)
			}
		})
	}
	wg.Wait()
	if allowed != 5 || limited != 35 {
		t.Fatalf("40 concurrent attempts: %d allowed, %d limited; want 5 and 35", allowed, limited)
	}
}

func TestCleanupDeletesOnlySpentRows(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clk := clock.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	l := throttle.New(db, "staff", throttle.Policy{Burst: 2, Interval: time.Minute}, clk.Now)
	ctx := context.Background()
	_ = l.Take(ctx, "old")
	clk.Add(2 * time.Minute)
	_ = l.Take(ctx, "new")
	_ = l.Take(ctx, "new")
	if err := throttle.CleanupHandler(db, clk.Now)(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM login_throttle`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows after cleanup, want 1 (the key still throttled)", n)
	}
	if err := l.Take(ctx, "new"); err == nil {
		t.Fatal("cleanup gave a throttled key its budget back")
	}
}
