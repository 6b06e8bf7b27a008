package ledger_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
)

// Service-level benchmarks against the real PostgreSQL:
//   go test -run '^$' -bench . ./ledger/

func benchService(b *testing.B) *ledger.Service {
	b.Helper()
	return ledger.NewService(testdb.New(b), time.Now)
}

func BenchmarkEarn(b *testing.B) {
	svc := benchService(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: fmt.Sprintf("e%d", i)},
			MemberID: int64(i%1000 + 1), PartnerID: 1, Points: 10}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEarnParallel: one partner earning for many members at once — the
// hot-partner case that must not serialise on a partner row.
func BenchmarkEarnParallel(b *testing.B) {
	svc := benchService(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := svc.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: fmt.Sprintf("e%d", i)},
				MemberID: i%1000 + 1, PartnerID: 1, Points: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func seedBurnable(b *testing.B, svc *ledger.Service, members int, points ledger.Points) {
	b.Helper()
	ctx := context.Background()
	for m := 1; m <= members; m++ {
		for lot := 0; lot < 5; lot++ { // several lots per member, as in real life
			if _, err := svc.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "seed", Key: fmt.Sprintf("%d-%d", m, lot)},
				MemberID: int64(m), PartnerID: int64(lot + 1), Points: points / 5}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkBurn(b *testing.B) {
	svc := benchService(b)
	seedBurnable(b, svc, 100, 1_000_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Burn(ctx, ledger.BurnRequest{Idem: ledger.Idempotency{Scope: "partner:9", Key: fmt.Sprintf("b%d", i)},
			MemberID: int64(i%100 + 1), PartnerID: 9, Points: 3}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBurnParallel(b *testing.B) {
	svc := benchService(b)
	seedBurnable(b, svc, 100, 1_000_000)
	ctx := context.Background()
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := svc.Burn(ctx, ledger.BurnRequest{Idem: ledger.Idempotency{Scope: "partner:9", Key: fmt.Sprintf("b%d", i)},
				MemberID: i%100 + 1, PartnerID: 9, Points: 3}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
