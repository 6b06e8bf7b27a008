package programme_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

// countingProgramme counts the statements each points.Programme method
// sends, so that the programme's share of an earn is measured apart from the
// ledger's and the partner registry's.
type countingProgramme struct {
	inner *programme.Service
	n     *atomic.Int64 // every statement on the database (testdb.NewCounting)
	calls map[string]int64
}

// measure adds the statements f sends to name's count: the earn is the only
// thing using the database, one statement at a time.
func (p *countingProgramme) measure(name string, f func() error) error {
	before := p.n.Load()
	err := f()
	p.calls[name] += p.n.Load() - before
	return err
}

func (p *countingProgramme) MemberTiers(ctx context.Context, ids []int64) (tiers map[int64]string, err error) {
	err = p.measure("MemberTiers", func() error { tiers, err = p.inner.MemberTiers(ctx, ids); return err })
	return tiers, err
}

func (p *countingProgramme) EarnExpiry(ctx context.Context, occurred time.Time) (at *time.Time, err error) {
	err = p.measure("EarnExpiry", func() error { at, err = p.inner.EarnExpiry(ctx, occurred); return err })
	return at, err
}

func (p *countingProgramme) CreditEarns(ctx context.Context, tx *gorm.DB, earns []points.PostedEarn) (points.EarnedRest, error) {
	var rest points.EarnedRest
	err := p.measure("CreditEarns", func() (err error) { rest, err = p.inner.CreditEarns(ctx, tx, earns); return err })
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, tx *gorm.DB, posted []points.PostedEarn) error {
		return p.measure("CreditEarns", func() error { return rest(ctx, tx, posted) })
	}, nil
}

func (p *countingProgramme) Reversed(ctx context.Context, tx *gorm.DB, rev ledger.Transaction) error {
	return p.measure("Reversed", func() error { return p.inner.Reversed(ctx, tx, rev) })
}

// TestEarnProgrammeStatements pins the SQL statements the programme costs one
// earn in the common case: tiers configured (thresholds by qualifying
// points), a member who holds a tier and has ~200 earns in the window, a
// partner that is not corporate. Before the running totals it was 8
// (the tier row, then inside the transaction the credit, the tier row
// created, locked and updated, the window's sums, the grants and the
// company). Counted at the driver (testdb.NewCounting), so statements that
// bypass gorm count too; run with -v to see the split, BENCH_SQL=1 to list
// them.
func TestEarnProgrammeStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := date(2025, 1, 20, 9)
	db, n := testdb.NewCounting(t)
	e := newEnvOn(t, db, start)
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 5_000}},
		{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 50_000}},
	})
	hotel := e.partner("Hotel")
	m := e.member("regular@example.com", "")
	pr := access.Principal{PartnerID: hotel.ID}
	earn := func(i int) ledger.Transaction {
		t.Helper()
		ref := fmt.Sprintf("folio-%d", i)
		tr, err := e.tx.Earn(ctx, pr, ledger.Idempotency{Scope: "partner:" + itoa(hotel.ID), Key: ref, RequestHash: []byte(ref)},
			points.EarnInput{MemberID: m.ID, Amount: money.Money{Minor: 5_000, Currency: "EUR"},
				Activity: []rules.Activity{{Unit: "night", Quantity: 1}}, OccurredAt: e.clk.Now(), ExternalRef: ref})
		if err != nil {
			t.Fatalf("earn %d: %v", i, err)
		}
		return tr
	}
	// 200 stays of 50 EUR over the last eleven months: 10,000 qualifying points.
	for i := 0; i < 200; i++ {
		e.clk.Set(start.Add(time.Duration(i) * 40 * time.Hour))
		earn(i)
	}
	if tier, err := e.prog.MemberTier(ctx, m.ID); err != nil || tier != "silver" {
		t.Fatalf("after the history: tier %q (%v), want silver", tier, err)
	}

	cp := &countingProgramme{inner: e.prog, n: n, calls: map[string]int64{}}
	e.tx.Programme = cp
	e.clk.Set(e.clk.Now().Add(time.Hour))
	earn(200)
	total := cp.calls["MemberTiers"] + cp.calls["EarnExpiry"] + cp.calls["CreditEarns"]
	t.Logf("programme statements of one earn: %d (MemberTiers %d, EarnExpiry %d, CreditEarns %d)",
		total, cp.calls["MemberTiers"], cp.calls["EarnExpiry"], cp.calls["CreditEarns"])
	// One indexed read of the members' tiers before the transaction (the
	// fixture's rule depends on them), one statement inside it (credit +
	// running totals + standing).
	const want = 2
	if total > want {
		t.Fatalf("the programme sent %d statements for one earn; want at most %d (BENCH_SQL=1 lists them)", total, want)
	}
	// For the record: the whole earn (member check, ledger, programme).
	e.tx.Programme = e.prog
	before := n.Load()
	earn(201)
	t.Logf("the whole earn: %d round trips, BEGIN and COMMIT included", n.Load()-before)
	if st, err := e.prog.Status(ctx, m.ID); err != nil || st.Tier != "silver" || st.Credits[programme.MetricPoints] != 10_100 {
		t.Fatalf("status = %+v (%v), want silver with 10100 qualifying points", st, err)
	}
	e.audit()
}
