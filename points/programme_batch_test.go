package points_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

func TestEarnBatchProgrammeEqualsSingleEarns(t *testing.T) {
	run := func(batch bool) string {
		e := newBatchEnv(t)
		ctx := context.Background()
		prog := e.tx.Programme.(*programme.Service)
		if _, err := prog.SetPolicy(ctx, programme.Policy{Currency: "EUR", ExpiryMode: programme.ExpiryFixedLifetime,
			ExpiryMonths: 24, NoticeDays: 30, TierWindow: programme.WindowRolling12Months, TransferMin: 1,
			TierDowngrade: programme.DowngradeOneLevel}); err != nil {
			t.Fatal(err)
		}
		for _, tr := range []programme.Tier{
			{Code: "blue", Name: "Blue", Rank: 0},
			{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 50}},
			{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 150}},
		} {
			if _, err := prog.PutTier(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
		p := e.partner(t, "Shop", nil)
		at := time.Now()
		var items []points.BatchEarn
		for i := 0; i < 40; i++ {
			k := fmt.Sprint("k", i)
			items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: "s", Key: k, RequestHash: []byte(k)},
				Input: points.EarnInput{MemberID: e.members[i%5], Amount: eur(int64(1000 * (1 + i%7))), OccurredAt: at,
					Activity: []rules.Activity{{Unit: "night", Quantity: 2}}}})
		}
		if batch {
			out, err := e.tx.EarnBatch(ctx, p, items)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
			}
		} else {
			for _, it := range items {
				if _, err := e.tx.Earn(ctx, p, it.Idem, it.Input); err != nil {
					t.Fatal(err)
				}
			}
		}
		var out []any
		for _, q := range []string{
			`SELECT json_agg(x ORDER BY member_id, qualifying_points, spend_minor) FROM (SELECT member_id, partner_id, qualifying_points, spend_minor, nights, stays, flights FROM programme_qualifying_credits) x`,
			`SELECT json_agg(x ORDER BY member_id) FROM (SELECT member_id, month, partner_id, qualifying_points, spend_minor, nights, stays, flights FROM programme_member_windows) x`,
			`SELECT json_agg(x ORDER BY member_id) FROM (SELECT member_id, tier_code FROM programme_member_tiers) x`,
		} {
			var s string
			if err := e.db.Raw(q).Scan(&s).Error; err != nil {
				t.Fatal(err)
			}
			out = append(out, json.RawMessage(s))
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	a, b := run(false), run(true)
	t.Log(a)
	if a != b {
		t.Fatalf("differ:\n%s\n%s", a, b)
	}
}
