package programme_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
)

// earnAt posts an earn of eur EUR (1 point per EUR) at partner p, now.
func (e *env) earnAt(p partners.Partner, memberID int64, eur int64, ref string) ledger.Transaction {
	e.t.Helper()
	tr, err := e.tx.Earn(context.Background(), access.Principal{PartnerID: p.ID},
		ledger.Idempotency{Scope: "partner:" + itoa(p.ID), Key: ref, RequestHash: []byte(ref)},
		points.EarnInput{MemberID: memberID, Amount: money.Money{Minor: eur * 100, Currency: "EUR"},
			OccurredAt: e.clk.Now(), ExternalRef: ref})
	if err != nil {
		e.t.Fatalf("earn %s: %v", ref, err)
	}
	return tr
}

func (e *env) tierOf(memberID int64) string {
	e.t.Helper()
	tier, err := e.prog.MemberTier(context.Background(), memberID)
	if err != nil {
		e.t.Fatal(err)
	}
	return tier
}

// windowsAgree fails unless the running totals, their lanes summed, equal
// the qualifying credits month by month and partner by partner.
func (e *env) windowsAgree() {
	e.t.Helper()
	var diff int64
	if err := e.db.Raw(`WITH truth AS (
		SELECT member_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month, partner_id,
			sum(qualifying_points) AS p, sum(spend_minor) AS s, sum(nights) AS n, sum(stays) AS st, sum(flights) AS f
		FROM programme_qualifying_credits GROUP BY 1, 2, 3)
		, w AS (SELECT member_id, month, partner_id, sum(qualifying_points) AS qualifying_points,
			sum(spend_minor) AS spend_minor, sum(nights) AS nights, sum(stays) AS stays, sum(flights) AS flights
		FROM programme_member_windows GROUP BY 1, 2, 3)
		SELECT count(*) FROM truth t FULL JOIN w USING (member_id, month, partner_id)
		WHERE (t.p, t.s, t.n, t.st, t.f) IS DISTINCT FROM
			(w.qualifying_points, w.spend_minor, w.nights, w.stays, w.flights)`).Scan(&diff).Error; err != nil {
		e.t.Fatal(err)
	}
	if diff != 0 {
		e.t.Fatalf("%d running-total rows disagree with the qualifying credits", diff)
	}
}

func (e *env) tierChanges(memberID int64) []string {
	e.t.Helper()
	var rows []string
	if err := e.db.Raw(`SELECT to_code || ':' || reason FROM programme_tier_changes WHERE member_id = ? ORDER BY id`,
		memberID).Scan(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// The upgrade check reads whole months of running totals; a rolling window
// starts mid-month, so the first month may hold credits the window no longer
// counts. Those must not upgrade anyone: the exact window decides.
func TestRunningTotalsUpgradeOnTheExactWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2024, 3, 5, 10))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 1000, programme.MetricPartners: 3}},
		{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 5000}},
	})
	air, hotel, shop := e.partner("Air"), e.partner("Hotel"), e.partner("Shop")
	m := e.member("roll@example.com", "")
	e.earnAt(air, m.ID, 800, "old") // 5 March 2024
	if got := e.tierOf(m.ID); got != "blue" {
		t.Fatalf("after 800 points: %s, want blue", got)
	}

	// 20 March 2025: the window starts 20 March 2024, so the 800 no longer
	// count, but March 2024's totals do hold them.
	e.clk.Set(date(2025, 3, 20, 10))
	e.earnAt(hotel, m.ID, 300, "a")
	if got := e.tierOf(m.ID); got != "blue" {
		t.Fatalf("300 points in the window (800 just before it): %s, want blue", got)
	}
	e.earnAt(hotel, m.ID, 600, "b")
	if got := e.tierOf(m.ID); got != "blue" {
		t.Fatalf("900 points in the window: %s, want blue", got)
	}
	tr := e.earnAt(shop, m.ID, 100, "c")
	if got := e.tierOf(m.ID); got != "silver" {
		t.Fatalf("1000 points in the window: %s, want silver", got)
	}

	// A full refund takes the credits back from the same month's totals; no
	// downgrade before the review.
	if _, err := e.tx.Reverse(ctx, access.Principal{PartnerID: shop.ID}, ledger.Idempotency{Scope: "partner:" + itoa(shop.ID), Key: "refund-c"},
		tr.ID, 0, "refund", "c"); err != nil {
		t.Fatalf("reverse: %v", err)
	}
	e.windowsAgree()
	if got := e.tierOf(m.ID); got != "silver" {
		t.Fatalf("after the refund: %s, want silver until the review", got)
	}
	st, err := e.prog.Status(ctx, m.ID)
	if err != nil || st.Credits[programme.MetricPoints] != 900 || st.Credits[programme.MetricPartners] != 1 {
		t.Fatalf("status after refund = %+v (%v), want 900 points from 1 partner", st.Credits, err)
	}
	if got := fmt.Sprint(e.tierChanges(m.ID)); got != "[silver:upgrade]" {
		t.Fatalf("tier history = %s, want [silver:upgrade]", got)
	}
	e.audit()
}

// The partners metric counts partners with positive net qualifying points,
// the earn's own partner included (it comes from the row the statement
// just changed).
func TestRunningTotalsCountPartners(t *testing.T) {
	t.Parallel()
	e := newEnv(t, date(2025, 6, 1, 10))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "explorer", Name: "Explorer", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPartners: 3}},
	})
	ps := []partners.Partner{e.partner("A"), e.partner("B"), e.partner("C")}
	m := e.member("multi@example.com", "")
	e.earnAt(ps[0], m.ID, 10, "a1")
	e.earnAt(ps[0], m.ID, 10, "a2")
	e.earnAt(ps[1], m.ID, 10, "b1")
	if got := e.tierOf(m.ID); got != "blue" {
		t.Fatalf("two partners: %s, want blue", got)
	}
	e.clk.Set(date(2025, 7, 2, 10)) // another month: the totals span two rows per partner
	e.earnAt(ps[1], m.ID, 10, "b2")
	if got := e.tierOf(m.ID); got != "blue" {
		t.Fatalf("still two partners: %s, want blue", got)
	}
	e.earnAt(ps[2], m.ID, 10, "c1")
	if got := e.tierOf(m.ID); got != "explorer" {
		t.Fatalf("third partner: %s, want explorer", got)
	}
	e.windowsAgree()
}

// A grant that starts later applies at the first earn after its start.
func TestRunningTotalsApplyAGrantAtTheNextEarn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 6, 1, 10))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "gold", Name: "Gold", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 100_000}},
	})
	p := e.partner("Air")
	m := e.member("match@example.com", "")
	e.earnAt(p, m.ID, 10, "first")
	if _, err := e.prog.GrantTier(ctx, programme.Grant{MemberID: m.ID, TierCode: "gold", Reason: "status match",
		Actor: "ops", StartsAt: date(2025, 6, 10, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := e.tierOf(m.ID); got != "blue" {
		t.Fatalf("before the grant starts: %s, want blue", got)
	}
	e.clk.Set(date(2025, 6, 11, 10))
	e.earnAt(p, m.ID, 10, "second")
	if got := e.tierOf(m.ID); got != "gold" {
		t.Fatalf("first earn after the grant starts: %s, want gold", got)
	}
	if got := fmt.Sprint(e.tierChanges(m.ID)); got != "[gold:grant]" {
		t.Fatalf("tier history = %s, want [gold:grant]", got)
	}
}

// Concurrent earns of one member keep the running totals exact (the ledger
// serialises them on the member's account) and upgrade once.
func TestRunningTotalsUnderConcurrentEarns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 6, 1, 10))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 1000}},
	})
	ps := []partners.Partner{e.partner("A"), e.partner("B")}
	m := e.member("busy@example.com", "")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := ps[i%2]
			ref := fmt.Sprintf("c%d", i)
			if _, err := e.tx.Earn(ctx, access.Principal{PartnerID: p.ID},
				ledger.Idempotency{Scope: "partner:" + itoa(p.ID), Key: ref, RequestHash: []byte(ref)},
				points.EarnInput{MemberID: m.ID, Amount: money.Money{Minor: 10_000, Currency: "EUR"},
					OccurredAt: e.clk.Now(), ExternalRef: ref}); err != nil {
				t.Errorf("earn %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	e.windowsAgree()
	if got := e.tierOf(m.ID); got != "silver" {
		t.Fatalf("after 2000 points: %s, want silver", got)
	}
	if got := fmt.Sprint(e.tierChanges(m.ID)); got != "[silver:upgrade]" {
		t.Fatalf("tier history = %s, want one upgrade", got)
	}
	e.audit()
}

// SyncWindows rebuilds the running totals from the qualifying credits:
// drifted, missing and stray rows are repaired, months no window reaches are
// dropped, and a second run finds nothing to do.
func TestSyncWindowsRepairsDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2024, 1, 10, 10))
	p, q := e.partner("A"), e.partner("B")
	m := e.member("drift@example.com", "")
	n := e.member("other@example.com", "")
	e.earnAt(p, m.ID, 50, "ancient") // January 2024: pruned by a run in 2025
	e.clk.Set(date(2025, 5, 10, 10))
	e.earnAt(p, m.ID, 70, "may")
	e.earnAt(q, m.ID, 30, "may-q")
	e.clk.Set(date(2025, 6, 10, 10))
	e.earnAt(p, n.ID, 20, "june")
	e.windowsAgree()

	if got, err := e.prog.SyncWindows(ctx, e.clk.Now(), 1); err != nil || got != 0 {
		t.Fatalf("sync of agreeing totals = %d (%v), want 0", got, err)
	}
	var old int64
	e.db.Raw(`SELECT count(*) FROM programme_member_windows WHERE month < '2024-04-01'`).Scan(&old)
	if old != 0 {
		t.Fatalf("%d rows older than 14 months kept, want them pruned", old)
	}
	// Drift of every kind.
	for _, q := range []string{
		`UPDATE programme_member_windows SET qualifying_points = 1 WHERE month = '2025-05-01' AND partner_id = ` + itoa(p.ID),
		`DELETE FROM programme_member_windows WHERE month = '2025-05-01' AND partner_id = ` + itoa(q.ID),
		`INSERT INTO programme_member_windows VALUES (` + itoa(n.ID) + `, '2025-02-01', ` + itoa(q.ID) + `, 5, 0, 0, 0, 0)`,
	} {
		if err := e.db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.prog.SyncWindows(ctx, e.clk.Now(), 1); err != nil || got != 3 {
		t.Fatalf("sync after drift = %d (%v), want 3 rows repaired", got, err)
	}
	if got, err := e.prog.SyncWindows(ctx, e.clk.Now(), 1000); err != nil || got != 0 {
		t.Fatalf("second sync = %d (%v), want 0", got, err)
	}
	var rows int64
	e.db.Raw(`SELECT count(*) FROM programme_member_windows`).Scan(&rows)
	if rows != 3 {
		t.Fatalf("%d running-total rows, want 3 (May at A and B, June at A)", rows)
	}
	// The daily job repairs them too.
	if err := e.db.Exec(`UPDATE programme_member_windows SET spend_minor = 0`).Error; err != nil {
		t.Fatal(err)
	}
	if err := programme.HandleDaily(e.prog)(ctx, nil); err != nil {
		t.Fatalf("daily job: %v", err)
	}
	if got, err := e.prog.SyncWindows(ctx, e.clk.Now(), 1000); err != nil || got != 0 {
		t.Fatalf("sync after the daily job = %d (%v), want 0", got, err)
	}
}

// The same through a batch: the batch's standing reads the grants in force
// of all of its members at once, and applies a started grant to its member
// only.
func TestBatchEarnAppliesAGrantAtTheNextEarn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 6, 1, 10))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "gold", Name: "Gold", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 100_000}},
	})
	p := e.partner("Air")
	matched, other := e.member("match@example.com", ""), e.member("other@example.com", "")
	e.earnAt(p, matched.ID, 10, "first")
	e.earnAt(p, other.ID, 10, "other-first")
	if _, err := e.prog.GrantTier(ctx, programme.Grant{MemberID: matched.ID, TierCode: "gold", Reason: "status match",
		Actor: "ops", StartsAt: date(2025, 6, 10, 0)}); err != nil {
		t.Fatal(err)
	}
	e.clk.Set(date(2025, 6, 11, 10))
	scope := "partner:" + itoa(p.ID)
	var items []points.BatchEarn
	for _, id := range []int64{other.ID, matched.ID} {
		key := "batch-" + itoa(id)
		items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: scope, Key: key, RequestHash: []byte(key)},
			Input: points.EarnInput{MemberID: id, Amount: money.Money{Minor: 1_000, Currency: "EUR"},
				OccurredAt: e.clk.Now(), ExternalRef: key}})
	}
	out, err := e.tx.EarnBatch(ctx, access.Principal{PartnerID: p.ID}, items)
	if err != nil || out[0].Err != nil || out[1].Err != nil {
		t.Fatalf("batch: %v %+v", err, out)
	}
	if got := e.tierOf(matched.ID); got != "gold" {
		t.Fatalf("first batch earn after the grant starts: %s, want gold", got)
	}
	if got := fmt.Sprint(e.tierChanges(matched.ID)); got != "[gold:grant]" {
		t.Fatalf("tier history = %s, want [gold:grant]", got)
	}
	if got := e.tierOf(other.ID); got != "blue" {
		t.Fatalf("the other member of the batch: %s, want blue", got)
	}
	// The lanes sum to the credits.
	if n, err := e.prog.SyncWindows(ctx, e.clk.Now(), 1000); err != nil || n != 0 {
		t.Fatalf("SyncWindows = %d (%v), want 0", n, err)
	}
}
