package programme_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
)

// BenchmarkCreditEarns measures the programme's statement of a batch earn
// (CreditEarns: 200 qualifying credits, their running totals in lane 1 and
// the standing of the batch's members) on a quiet database, one client, each
// batch rolled back so that every iteration sees the same tables: 20,000
// members holding a tier row and ~4 months of running totals each over 20
// partners. It isolates the statement the bench's batch workload cannot
// measure apart from the machine's noise (docs/performance.md).
//
//	go test -run '^$' -bench CreditEarns -benchtime 200x ./programme/
func BenchmarkCreditEarns(b *testing.B) {
	ctx := context.Background()
	db := testdb.New(b)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := ledger.NewService(db, clock)
	m := members.NewService(db, l, clock)
	c := members.NewBurnConsent(db, clock, members.DefaultConsentPolicy)
	prog := programme.NewService(db, l, m, c, clock)
	for _, tier := range []programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 5_000}},
		{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 15_000}},
	} {
		if _, err := prog.PutTier(ctx, tier); err != nil {
			b.Fatal(err)
		}
	}
	const members = 20_000
	if err := db.Exec(`INSERT INTO members (id, given_name, family_name, created_at, updated_at) OVERRIDING SYSTEM VALUE
		SELECT g, 'Bench', 'Member ' || g, now(), now() FROM generate_series(1, ?) g`, members).Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO programme_member_tiers (member_id, tier_code, since, last_review_at, updated_at)
		SELECT id, 'blue', now(), now(), now() FROM generate_series(1, ?) AS id`, members).Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO programme_member_windows (member_id, month, partner_id, lane, qualifying_points, spend_minor, nights, stays, flights)
		SELECT DISTINCT ON (m, mo, p) m, mo, p, 0, 100, 10000, 0, 0, 0
		FROM generate_series(1, ?) AS m, generate_series(0, 3) AS k,
			LATERAL (SELECT (date_trunc('month', ?::timestamptz) - make_interval(months => (m * 7 + k * 3) % 10))::date AS mo,
				1 + (m * 13 + k * 5) % 20 AS p) x`, members, now).Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`ANALYZE`).Error; err != nil {
		b.Fatal(err)
	}
	rollback := errors.New("rolled back on purpose")
	rng := rand.New(rand.NewPCG(1, 2))
	txID := int64(1)
	batch := func() []points.PostedEarn {
		earns := make([]points.PostedEarn, 200)
		for i := range earns {
			txID++
			earns[i] = points.PostedEarn{PartnerID: 1 + rng.Int64N(20),
				Input: points.EarnInput{Amount: money.Money{Minor: 10_000, Currency: "EUR"}},
				Transaction: ledger.Transaction{ID: txID, MemberID: 1 + rng.Int64N(members), OccurredAt: now,
					Entries: []ledger.Entry{{Kind: ledger.KindPartnerIssued, Points: -100}}}}
		}
		return earns
	}
	run := func(earns []points.PostedEarn) {
		err := database.Transaction(ctx, db, func(tx *gorm.DB) error {
			if _, err := prog.CreditEarns(ctx, tx, earns); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			b.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ { // past the custom plans of a new prepared statement
		run(batch())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		earns := batch()
		b.StartTimer()
		run(earns)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*200), "µs/earn")
}
