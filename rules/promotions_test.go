package rules

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

func promoIDs(ps []Promotion) []int64 {
	out := []int64{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestPromotionsStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, db, pid := newRulesTest(t)
	now := clock.Now()
	other := earnPartner(t, db, "Other shop")
	day := 24 * time.Hour

	double, err := s.CreatePromotion(ctx, NewPromotion{PartnerID: pid, Name: "Double weekend", Code: " double ",
		StartsAt: now, EndsAt: now.Add(2 * day), Effect: EffectMultiplier, Multiplier: dec("2"),
		FundedBy: FundedByPartner, Conditions: PromotionConditions{Categories: []string{"coffee"},
			MinAmount: &money.Money{Minor: 500, Currency: "USD"}, Tiers: []string{"gold"}}}, "staff:ann")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if double.Code != "DOUBLE" || double.Status != PromotionActive || double.Conditions.MinAmount == nil ||
		double.Conditions.MinAmount.Minor != 500 || !double.Multiplier.Equal(dec("2")) || double.PartnerID != pid {
		t.Errorf("stored promotion %+v does not round-trip the input", double)
	}
	wide, err := s.CreatePromotion(ctx, NewPromotion{Name: "Coalition bonus", StartsAt: now.Add(day), EndsAt: now.Add(3 * day),
		Effect: EffectBonus, Bonus: 100, FundedBy: FundedByOperator, Exclusive: true}, "staff:ann")
	if err != nil {
		t.Fatalf("create coalition-wide: %v", err)
	}
	theirs, err := s.CreatePromotion(ctx, NewPromotion{PartnerID: other, Name: "Theirs", Code: "DOUBLE", StartsAt: now,
		EndsAt: now.Add(day), Effect: EffectBonus, Bonus: 5, FundedBy: FundedByPartner}, "staff:ann")
	if err != nil {
		t.Fatalf("another partner may reuse a code: %v", err)
	}

	// The same code in an overlapping window is refused by the database.
	_, err = s.CreatePromotion(ctx, NewPromotion{PartnerID: pid, Name: "Again", Code: "Double", StartsAt: now.Add(day),
		EndsAt: now.Add(5 * day), Effect: EffectBonus, Bonus: 5, FundedBy: FundedByPartner}, "staff:ann")
	if !errors.Is(err, ErrPromotionCodeInUse) {
		t.Errorf("overlapping code: %v, want ErrPromotionCodeInUse", err)
	}

	list := func(at time.Time) []int64 {
		t.Helper()
		ps, err := s.ListPromotions(ctx, pid, at)
		if err != nil {
			t.Fatal(err)
		}
		return promoIDs(ps)
	}
	if got, want := list(time.Time{}), []int64{double.ID, wide.ID}; !slices.Equal(got, want) {
		t.Errorf("all promotions of the partner = %v, want %v (its own and coalition-wide, not %d)", got, want, theirs.ID)
	}
	if got, want := list(now.Add(day+time.Hour)), []int64{double.ID, wide.ID}; !slices.Equal(got, want) {
		t.Errorf("promotions in force on day 2 = %v, want %v", got, want)
	}
	if got, want := list(now.Add(2*day)), []int64{wide.ID}; !slices.Equal(got, want) {
		t.Errorf("promotions in force when the double ends = %v, want %v (window is [start, end))", got, want)
	}

	// Ending cuts the window at now; earlier purchases still qualify.
	clock.Set(now.Add(day))
	ended, err := s.EndPromotion(ctx, double.ID, "staff:bob")
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	if ended.Status != PromotionEnded || ended.EndedAt == nil || !ended.EndedAt.Equal(now.Add(day)) {
		t.Errorf("ended promotion %+v, want status ended at %s", ended, now.Add(day))
	}
	if got := list(now.Add(day + time.Hour)); slices.Contains(got, double.ID) {
		t.Errorf("ended promotion still in force after its end: %v", got)
	}
	if got := list(now.Add(time.Hour)); !slices.Contains(got, double.ID) {
		t.Errorf("ended promotion no longer in force before its end: %v", got)
	}
	if _, err := s.EndPromotion(ctx, double.ID, "staff:bob"); !errors.Is(err, ErrPromotionEnded) {
		t.Errorf("ending twice: %v, want ErrPromotionEnded", err)
	}
	if _, err := s.EndPromotion(ctx, 424242, "staff:bob"); !errors.Is(err, ErrPromotionNotFound) {
		t.Errorf("ending an unknown promotion: %v, want ErrPromotionNotFound", err)
	}
	// Once ended, the code is free again from the end on.
	if _, err := s.CreatePromotion(ctx, NewPromotion{PartnerID: pid, Name: "Double again", Code: "DOUBLE",
		StartsAt: now.Add(day), EndsAt: now.Add(4 * day), Effect: EffectMultiplier, Multiplier: dec("2"),
		FundedBy: FundedByPartner}, "staff:ann"); err != nil {
		t.Errorf("reusing a code after its promotion ended: %v", err)
	}
	// Rows change only by being ended.
	if err := db.Exec(`UPDATE promotions SET bonus_points = 1000000 WHERE id = ?`, wide.ID).Error; err == nil {
		t.Error("UPDATE of a promotion's bonus succeeded; want the trigger to refuse it")
	}
	if err := db.Exec(`DELETE FROM promotions WHERE id = ?`, wide.ID).Error; err == nil {
		t.Error("DELETE of a promotion succeeded; want the trigger to refuse it")
	}
}

func TestCreatePromotionValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _, pid := newRulesTest(t)
	now := clock.Now()
	base := func() NewPromotion {
		return NewPromotion{PartnerID: pid, Name: "P", StartsAt: now, EndsAt: now.Add(time.Hour),
			Effect: EffectMultiplier, Multiplier: dec("2"), FundedBy: FundedByPartner}
	}
	cases := []struct {
		name  string
		mod   func(*NewPromotion)
		field string
	}{
		{"ends before it starts", func(n *NewPromotion) { n.EndsAt = n.StartsAt }, "ends_at"},
		{"already over", func(n *NewPromotion) { n.StartsAt, n.EndsAt = now.Add(-2*time.Hour), now.Add(-time.Hour) }, "ends_at"},
		{"multiplier not above 1", func(n *NewPromotion) { n.Multiplier = dec("1") }, "multiplier"},
		{"bonus with a multiplier", func(n *NewPromotion) { n.Effect = EffectBonus }, "bonus"},
		{"unknown effect", func(n *NewPromotion) { n.Effect = "cashback" }, "effect"},
		{"unknown funder", func(n *NewPromotion) { n.FundedBy = "bank" }, "funded_by"},
		{"coalition-wide funded by a partner", func(n *NewPromotion) { n.PartnerID = 0 }, "funded_by"},
		{"bad code", func(n *NewPromotion) { n.Code = "no spaces!" }, "code"},
		{"bad min amount", func(n *NewPromotion) { n.Conditions.MinAmount = &money.Money{Minor: 0, Currency: "USD"} }, "conditions.min_amount.minor"},
		{"empty name", func(n *NewPromotion) { n.Name = "  " }, "name"},
	}
	for _, c := range cases {
		n := base()
		c.mod(&n)
		_, err := s.CreatePromotion(ctx, n, "staff:ann")
		var ve *validation.Error
		found := false
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				found = found || f.Field == c.field
			}
		}
		if !found {
			t.Errorf("%s: error %v, want a validation error on %s", c.name, err, c.field)
		}
	}
	n := base()
	n.PartnerID = 987654
	if _, err := s.CreatePromotion(ctx, n, "staff:ann"); !errors.Is(err, partners.ErrPartnerNotFound) {
		t.Errorf("unknown partner: %v, want ErrPartnerNotFound", err)
	}
}

// TestQuoteUsesRuleAndPromotionsInForce drives the service end to end: the
// rule version and promotions are chosen by the purchase's occurred_at.
func TestQuoteUsesRuleAndPromotionsInForce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _, pid := newRulesTest(t)
	start := clock.Now()
	jun := start.AddDate(0, 5, 0)
	def := usdRule()
	def.Multipliers.Tier = []TierMultiplier{{Tier: "gold", Rate: dec("2")}}
	v1, err := s.PublishRule(ctx, pid, def, start, "staff:ann")
	if err != nil {
		t.Fatal(err)
	}
	def2 := def
	def2.Earn = []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("2"), PerMinor: 100}}
	v2, err := s.PublishRule(ctx, pid, def2, jun, "staff:ann")
	if err != nil {
		t.Fatal(err)
	}
	promo, err := s.CreatePromotion(ctx, NewPromotion{PartnerID: pid, Name: "Spring", Code: "SPRING", StartsAt: start,
		EndsAt: jun, Effect: EffectBonus, Bonus: 50, FundedBy: FundedByOperator}, "staff:ann")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at                   time.Time
		rule                 Rule
		total, operatorFunds int64
	}{
		{start.AddDate(0, 1, 0), v1, 20 + 50, 50}, // 10 base x gold 2, + operator bonus
		{jun, v2, 40, 0}, // new rule doubles the rate; the promotion has ended
	}
	for _, c := range cases {
		q, err := s.Quote(ctx, Purchase{PartnerID: pid, OccurredAt: c.at, Amount: usd(1000), MemberTier: "gold",
			PromoCodes: []string{"spring"}})
		if err != nil {
			t.Fatalf("quote at %s: %v", c.at, err)
		}
		if q.RuleID != c.rule.ID || q.RuleVersion != c.rule.Version || q.Total != c.total || q.OperatorFunded != c.operatorFunds {
			t.Errorf("quote at %s: rule %d v%d, total %d (operator %d); want rule %d v%d, total %d (operator %d)",
				c.at, q.RuleID, q.RuleVersion, q.Total, q.OperatorFunded, c.rule.ID, c.rule.Version, c.total, c.operatorFunds)
		}
		checkQuoteInvariants(t, c.rule.Definition, q)
	}
	q, err := s.Quote(ctx, Purchase{PartnerID: pid, OccurredAt: start.AddDate(0, 1, 0), Amount: usd(1000), PromoCodes: []string{"SPRING"}})
	if err != nil {
		t.Fatal(err)
	}
	var details struct {
		RuleID      int64   `json:"rule_id"`
		RuleVersion int     `json:"rule_version"`
		Promotions  []int64 `json:"promotions"`
		Total       int64   `json:"total"`
		Breakdown   []struct {
			Kind string `json:"kind"`
			Rate string `json:"rate"`
		} `json:"breakdown"`
	}
	if err := json.Unmarshal(q.Details(), &details); err != nil {
		t.Fatal(err)
	}
	if details.RuleID != v1.ID || details.RuleVersion != 1 || !slices.Equal(details.Promotions, []int64{promo.ID}) ||
		details.Total != 60 || len(details.Breakdown) != 2 || details.Breakdown[0].Rate != "0.01" {
		t.Errorf("details %s do not record rule v1, the promotion and the rates", q.Details())
	}
	if _, err := s.Quote(ctx, Purchase{PartnerID: pid, OccurredAt: start.Add(-time.Second), Amount: usd(1000)}); !errors.Is(err, ErrNoRule) {
		t.Errorf("quote before the first rule: %v, want ErrNoRule", err)
	}
}
