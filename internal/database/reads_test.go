package database_test

import (
	"context"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/testdb"
)

// Stale-tolerant reads go to a second, real connection while its measured
// lag is within the limit, and to the primary before the first measure,
// past the limit, and when the second connection fails.
func TestReadsRouteByLag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, url := testdb.NewWithURL(t)
	replica, err := database.Open(ctx, url, database.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := database.NewReads(primary, replica, 2*time.Second)
	if r.DB() != primary {
		t.Fatal("before any measure: reads go to the replica; want the primary")
	}
	lag, err := r.Measure(ctx)
	if err != nil || lag != 0 {
		t.Fatalf("measure on a server that is no standby: %v, %v; want 0", lag, err)
	}
	if r.DB() != replica || !r.OnReplica() {
		t.Fatal("lag 0 within 2s: reads go to the primary; want the replica")
	}

	far := database.NewReadsWithLagQuery(primary, replica, 2*time.Second, `SELECT 10.5::float8`)
	if lag, err := far.Measure(ctx); err != nil || lag != 10500*time.Millisecond {
		t.Fatalf("measured %v, %v; want 10.5s", lag, err)
	}
	if far.DB() != primary {
		t.Fatal("lag 10.5s past the 2s limit: reads go to the replica; want the primary")
	}

	s, _ := replica.DB()
	_ = s.Close()
	if _, err := r.Measure(ctx); err == nil {
		t.Fatal("measure on a closed connection succeeded")
	}
	if r.DB() != primary {
		t.Fatal("replica unreachable: reads go to it; want the primary")
	}
	if none := database.NewReads(primary, nil, time.Second); none.DB() != primary || none.OnReplica() {
		t.Fatal("no replica: reads do not go to the primary")
	}
}
