package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
)

func TestParseFlagsRefusesTheDemoDatabase(t *testing.T) {
	t.Parallel()
	if _, err := parseFlags([]string{"-db", "postgres://postgres@127.0.0.1:5432/hub?sslmode=disable"}); err == nil {
		t.Fatal("parseFlags accepted the demo database hub; want a refusal (the bench drops its database)")
	}
	o, err := parseFlags([]string{"-quick", "-workloads", "earn-spread,settle"})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 10*time.Second || o.settleTx != 200_000 || len(o.workloads) != 2 || dbName(o.dbURL) != "hub_bench" {
		t.Fatalf("quick options %+v; want 10s, 200000 settle tx, 2 workloads, database hub_bench", o)
	}
	if o, err := parseFlags([]string{"-workloads", "earn-scale,burn@2"}); err != nil ||
		strings.Join(o.workloads, ",") != "earn-spread@1,earn-spread@4,earn-spread@16,earn-spread@64,burn@2" {
		t.Fatalf("earn-scale,burn@2: workloads %v (%v)", o.workloads, err)
	}
	if kind, n := splitWorkload("earn-spread@4", 16); kind != "earn-spread" || n != 4 {
		t.Fatalf("earn-spread@4 = %s with %d clients", kind, n)
	}
	if _, err := parseFlags([]string{"-workloads", "settle@2"}); err == nil {
		t.Fatal("parseFlags accepted clients for settle")
	}
	if _, err := parseFlags([]string{"-workloads", "nope"}); err == nil {
		t.Fatal("parseFlags accepted an unknown workload")
	}
}

func TestArrayLiterals(t *testing.T) {
	t.Parallel()
	if got := pgTextArray([]string{`a`, `b"c`, `d\e`}); got != `{"a","b\"c","d\\e"}` {
		t.Fatalf("pgTextArray = %s", got)
	}
	if got := pgIntArray([]int64{1, -2, 30}); got != `{1,-2,30}` {
		t.Fatalf("pgIntArray = %s", got)
	}
}

// TestVerifyFindsMissingDuplicateAndWrongIDs proves the exactly-once check
// can fail: against a real ledger it passes an acknowledged earn, and flags
// a missing one and one acknowledged with another transaction's id.
func TestVerifyFindsMissingDuplicateAndWrongIDs(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	l := ledger.NewService(db, time.Now)
	earn := func(ref string) ledger.Transaction {
		tr, err := l.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "p", Key: ref}, MemberID: 1, PartnerID: 7,
			Points: 10, ExternalRef: ref})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a, b := earn("a"), earn("b")
	ok := verify(ctx, db, []ack{{Kind: "earn", PartnerID: 7, ExternalRef: "a", TxID: a.ID}, {Kind: "earn", PartnerID: 7, ExternalRef: "b", TxID: b.ID}})
	if !ok.OK || ok.ExactlyOne != 2 {
		t.Fatalf("verify of two posted earns: %s; want both exactly once", ok.Summary())
	}
	bad := verify(ctx, db, []ack{{Kind: "earn", PartnerID: 7, ExternalRef: "zz", TxID: a.ID}, {Kind: "earn", PartnerID: 7, ExternalRef: "a", TxID: b.ID},
		{Kind: "earn", PartnerID: 8, ExternalRef: "a", TxID: a.ID}})
	if bad.OK || bad.Missing != 2 || bad.WrongID != 1 {
		t.Fatalf("verify: %s; want 2 missing (unknown ref, other partner) and 1 with another id", bad.Summary())
	}
	// A second earn carrying the same external reference is a duplicate.
	earn2, err := l.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "p", Key: "a2"}, MemberID: 1, PartnerID: 7, Points: 1, ExternalRef: "a"})
	if err != nil {
		t.Fatal(err)
	}
	dup := verify(ctx, db, []ack{{Kind: "earn", PartnerID: 7, ExternalRef: "a", TxID: earn2.ID}})
	if dup.OK || dup.Duplicated != 1 {
		t.Fatalf("verify: %s; want 1 duplicated", dup.Summary())
	}
}

// The CPU accounting reads this process both as "hub" and as itself.
func TestCPUUseCountsThisProcess(t *testing.T) {
	own := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	a := sampleCPU(os.Getpid())
	// Spin until this process has used 300 ms of CPU (however busy the
	// machine is), then expect at least 200 of them per 1,000 "operations".
	x, from := 0, own()
	for deadline := time.Now().Add(2 * time.Minute); own()-from < 300*time.Millisecond && time.Now().Before(deadline); {
		x++
	}
	u := cpuUse(a, sampleCPU(os.Getpid()), 1000)
	if u.HubUsPerOp < 200 || u.BenchUsPerOp < 200 || u.MachineUsPerOp < u.HubUsPerOp/2 || u.BusyPct <= 0 {
		t.Fatalf("cpu use over 0.3 s of spinning (%d loops) = %+v", x, u)
	}
}
