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

// BenchmarkEarnBatch: batches of 200 earns over 5,000 members with
// accounts, one client (the statements' cost without lock queues; the
// bench's batch workload measures them under load), with request hashes
// given as partners gives them.
//
//	go test -run '^$' -bench EarnBatch -benchtime 200x ./ledger/
func BenchmarkEarnBatch(b *testing.B) {
	svc := benchService(b)
	ctx := context.Background()
	// The details a partner earn stores (the quote's lines and the
	// contract, 515 bytes): the bench measured them at ~10% of a batched
	// earn's time against a 23-byte document.
	details := []byte(`{"quote":{"kind":"earn_quote","rule_id":1,"rule_version":1,"occurred_at":"2026-12-03T12:55:23.546115361Z","points":177,"operator_funded":0,"total":177,"breakdown":[{"kind":"base","description":"1 points per 100 minor units of EUR","points":118,"rate":"0.01","funded_by":"partner"},{"kind":"tier_multiplier","description":"tier gold x1.5","points":59,"rate":"1.5","funded_by":"partner"}]},"contract":{"id":1,"version":1,"issue_price":"0.01","currency":"EUR","billing":"postpaid","pending_days":0},"charge_minor":177}`)
	const members, size = 5000, 200
	key := 0
	batch := func(member func(i int) int64) []ledger.EarnRequest {
		reqs := make([]ledger.EarnRequest, size)
		for i := range reqs {
			key++
			k := fmt.Sprintf("b%d", key)
			reqs[i] = ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: k, RequestHash: []byte(k)},
				MemberID: member(i), PartnerID: int64(1 + key%20), Points: 10, Details: details}
		}
		return reqs
	}
	post := func(reqs []ledger.EarnRequest) {
		out, err := svc.EarnBatch(ctx, reqs)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			if o.Err != nil {
				b.Fatal(o.Err)
			}
		}
	}
	for start := 0; start < members; start += size { // every member's account
		post(batch(func(i int) int64 { return int64(start + i + 1) }))
	}
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reqs := batch(func(int) int64 { n++; return int64((n*7919)%members + 1) })
		b.StartTimer()
		post(reqs)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*size), "µs/earn")
}
