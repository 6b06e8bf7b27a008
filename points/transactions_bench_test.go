package points_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

// earnEnv is the points API wired as cmd/hub wires it (with the programme),
// one partner with a contract and a rule, and members.
type earnEnv struct {
	tx      *points.Transactions
	p       access.Principal
	members []int64
	stmts   *atomic.Int64
	db      *gorm.DB
	reg     *partners.Service
	rules   *rules.Service
}

func newEarnEnv(tb testing.TB, nMembers int) *earnEnv {
	tb.Helper()
	f := newHotPathFixture(tb, "Bench", nMembers)
	db, p := f.db, f.partner
	rs := rules.NewService(db, f.clock)
	if _, err := rs.PublishRule(context.Background(), p.ID, rules.RuleDefinition{Earn: []rules.EarnComponent{{
		Kind: rules.KindPerCurrencyUnit, Rate: decimal.NewFromInt(1), Currency: "EUR", PerMinor: 100}}}, f.start, "bench"); err != nil {
		tb.Fatal(err)
	}
	l := ledger.NewService(db, time.Now)
	m := members.NewService(db, l, time.Now)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	tx := points.NewTransactions(db, l, m, c, f.reg, rules.NewService(db, time.Now), time.Now)
	tx.Programme = programme.NewService(db, l, m, c, time.Now)
	return &earnEnv{tx: tx, p: access.Principal{PartnerID: p.ID}, members: f.members, stmts: f.stmts, db: db,
		reg: f.reg, rules: rs}
}

func (e *earnEnv) earn(tb testing.TB, i int) {
	ref := fmt.Sprintf("bench-%d", i)
	_, err := e.tx.Earn(context.Background(), e.p, ledger.Idempotency{Scope: "bench", Key: ref, RequestHash: []byte(ref)},
		points.EarnInput{MemberID: e.members[i%len(e.members)], Amount: money.Money{Minor: 1234, Currency: "EUR"},
			OccurredAt: time.Now(), ExternalRef: ref})
	if err != nil {
		tb.Fatalf("earn %d: %v", i, err)
	}
}

// TestEarnStatementCount pins the number of SQL statements one earn costs,
// so that a change adding round trips to the hot path is seen.
func TestEarnStatementCount(t *testing.T) {
	t.Parallel()
	e := newEarnEnv(t, 10)
	e.earn(t, 0) // first earn of the partner creates its accounts
	e.stmts.Store(0)
	e.earn(t, 1) // member 1's first earn: its account is created, and the posting retried
	first := e.stmts.Load()
	e.stmts.Store(0)
	e.earn(t, 11) // member 1 again: the steady state
	got := e.stmts.Load()
	t.Logf("one earn: %d round trips, BEGIN and COMMIT included (a member's first: %d)", got, first)
	// A single earn is a batch of one (the group commit posts it at once
	// when nothing else is in flight): the member check, then in one
	// database transaction BEGIN with the accounts and the key claim (one
	// pipeline), the programme's credit with the member lock (one
	// pipeline), the posting and COMMIT. A batch
	// of many costs the same round trips, shared by its earns. Lower this
	// when a change removes round trips.
	const want = 5
	if got > want || first > want+2 {
		t.Fatalf("one earn took %d round trips (first %d); want at most %d (run with BENCH_SQL=1 to list them)", got, first, want)
	}
	rep, err := ledger.Audit(context.Background(), e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		t.Fatalf("audit: %v %+v", err, rep)
	}
}

// BenchmarkEarn measures points.Transactions.Earn end to end against the
// real database, in parallel over many members.
//
//	go test -run '^$' -bench Earn -cpuprofile /tmp/earn.prof ./partners/
func BenchmarkEarn(b *testing.B) {
	e := newEarnEnv(b, 1000)
	var seq atomic.Int64
	e.stmts.Store(0)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.earn(b, int(seq.Add(1)))
		}
	})
	b.ReportMetric(float64(e.stmts.Load())/float64(b.N), "stmts/op")
	if st := e.tx.GroupCommitStats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Earns)/float64(st.Batches), "earns/batch")
	}
}

// TestEarnWithTierStatementCount: an earn whose rule depends on the member's
// tier costs one round trip more than one that does not (the programme's
// tier read, shared by the earns of a batch), and is priced with it.
func TestEarnWithTierStatementCount(t *testing.T) {
	t.Parallel()
	e := newEarnEnv(t, 10)
	ctx := context.Background()
	prog := e.tx.Programme.(*programme.Service)
	for _, tier := range []programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "gold", Name: "Gold", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 1_000_000}},
	} {
		if _, err := prog.PutTier(ctx, tier); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.rules.PublishRule(ctx, e.p.PartnerID, rules.RuleDefinition{
		Earn:        []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Rate: decimal.NewFromInt(1), Currency: "EUR", PerMinor: 100}},
		Multipliers: rules.Multipliers{Tier: []rules.TierMultiplier{{Tier: "gold", Rate: decimal.NewFromInt(2)}}}},
		time.Now(), "bench"); err != nil {
		t.Fatal(err)
	}
	gold, blue := e.members[1], e.members[2]
	if err := e.db.Exec(`INSERT INTO programme_member_tiers (member_id, tier_code, since, last_review_at, updated_at)
		VALUES (?, 'gold', now(), now(), now())`, gold).Error; err != nil {
		t.Fatal(err)
	}
	e.earn(t, 0) // the partner's accounts
	e.earn(t, 1) // gold's account
	e.earn(t, 2) // blue's account
	e.stmts.Store(0)
	e.earn(t, 11)
	if got := e.stmts.Load(); got > 6 {
		t.Fatalf("an earn priced by tier took %d round trips; want at most 6 (run with BENCH_SQL=1 to list them)", got)
	}
	var points []int64
	if err := e.db.Raw(`SELECT points FROM ledger_transactions WHERE type = 'earn' AND member_id IN (?, ?) ORDER BY member_id, id`,
		gold, blue).Scan(&points).Error; err != nil {
		t.Fatal(err)
	}
	// 12.34 EUR at 1 point per EUR: 12 points, doubled for gold (two earns).
	if want := []int64{24, 24, 12}; !slices.Equal(points, want) {
		t.Fatalf("points of gold's two earns and blue's = %v, want %v", points, want)
	}
}
