package points_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

// The points API caches a partner's configuration by its stamp: every change
// (a new rule version, a coalition-wide promotion and its end, a webhook
// endpoint) is used by the very next earn, in this process and in another
// (a second Transactions on the same database, as a second hub process).
func TestEarnSeesConfigurationChangesAtOnce(t *testing.T) {
	t.Parallel()
	e := newEarnEnv(t, 2)
	ctx := context.Background()
	other := points.NewTransactions(e.db, ledger.NewService(e.db, time.Now), nil, nil, e.reg, rules.NewService(e.db, time.Now), time.Now)
	n := 0
	earn := func(tx *points.Transactions) ledger.Transaction {
		t.Helper()
		n++
		ref := "cfg-" + time.Now().Format("150405.000000000")
		tr, err := tx.Earn(ctx, e.p, ledger.Idempotency{Scope: "cfg", Key: ref}, points.EarnInput{MemberID: e.members[0],
			Amount: money.Money{Minor: 10000, Currency: "EUR"}, OccurredAt: time.Now(), ExternalRef: ref})
		if err != nil {
			t.Fatalf("earn %d: %v", n, err)
		}
		return tr
	}
	if tr := earn(e.tx); tr.Points != 100 {
		t.Fatalf("first earn %d points, want 100 (1 per EUR)", tr.Points)
	}
	earn(other) // both caches warm

	if _, err := e.rules.PublishRule(ctx, e.p.PartnerID, rules.RuleDefinition{Earn: []rules.EarnComponent{{
		Kind: rules.KindPerCurrencyUnit, Rate: decimal.NewFromInt(3), Currency: "EUR", PerMinor: 100}}}, time.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	for _, tx := range []*points.Transactions{e.tx, other} {
		if tr := earn(tx); tr.Points != 300 {
			t.Fatalf("after a new rule: %d points, want 300", tr.Points)
		}
	}

	promo, err := e.rules.CreatePromotion(ctx, rules.NewPromotion{Name: "Everyone", StartsAt: time.Now().Add(-time.Hour),
		EndsAt: time.Now().Add(time.Hour), Effect: rules.EffectBonus, Bonus: 50, FundedBy: rules.FundedByOperator}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range []*points.Transactions{e.tx, other} {
		if tr := earn(tx); tr.Points != 350 {
			t.Fatalf("with a coalition-wide bonus: %d points, want 350", tr.Points)
		}
	}
	if _, err := e.rules.EndPromotion(ctx, promo.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if tr := earn(other); tr.Points != 300 {
		t.Fatalf("after the promotion ended: %d points, want 300", tr.Points)
	}

	wh := newWebhooks(t, e.db)
	if _, _, err := wh.CreateEndpoint(ctx, e.p.PartnerID, "https://partner.example/hooks", []string{webhooks.EventTransactionPosted}); err != nil {
		t.Fatal(err)
	}
	tr := earn(e.tx)
	var events int64
	if err := e.db.Raw(`SELECT count(*) FROM webhook_events WHERE partner_id = ? AND (payload::jsonb #>> '{data,id}')::bigint = ?`,
		e.p.PartnerID, tr.ID).Scan(&events).Error; err != nil || events != 1 {
		t.Fatalf("earn after the endpoint was created published %d events (%v), want 1", events, err)
	}
}
