package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func decp(s string) *decimal.Decimal { d := dec(s); return &d }

var earnT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// usdRule earns 1 point per USD (1 per 100 cents).
func usdRule() RuleDefinition {
	return RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1"), PerMinor: 100}}}
}

func usd(minor int64) money.Money { return money.Money{Minor: minor, Currency: "USD"} }

func purchase(amount money.Money) Purchase {
	return Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: amount}
}

// summary renders the breakdown as "kind:points" items, for compact assertions.
func summary(q Quote) []string {
	out := make([]string, 0, len(q.Breakdown))
	for _, l := range q.Breakdown {
		s := fmt.Sprintf("%s:%d", l.Kind, l.Points)
		if l.FundedBy == FundedByOperator {
			s += ":op"
		}
		out = append(out, s)
	}
	return out
}

// checkQuoteInvariants asserts what every quote must satisfy.
func checkQuoteInvariants(t *testing.T, def RuleDefinition, q Quote) {
	t.Helper()
	var sum, partner, op int64
	for _, l := range q.Breakdown {
		sum += l.Points
		if l.FundedBy == FundedByOperator {
			op += l.Points
		} else {
			partner += l.Points
		}
		if l.Points < 0 && l.Kind != LineCap {
			t.Errorf("line %+v is negative but not a cap line", l)
		}
	}
	if q.Points < 0 || q.OperatorFunded < 0 || q.Total < 0 {
		t.Errorf("negative quote figures: points %d, operator %d, total %d", q.Points, q.OperatorFunded, q.Total)
	}
	if q.Total != q.Points+q.OperatorFunded || q.Total != sum || q.Points != partner || q.OperatorFunded != op {
		t.Errorf("quote does not add up: total %d = points %d + operator %d; breakdown sums to %d (partner %d, operator %d)",
			q.Total, q.Points, q.OperatorFunded, sum, partner, op)
	}
	if c := def.CapPerTransaction; c > 0 && q.Total > c {
		t.Errorf("total %d exceeds the cap %d", q.Total, c)
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	inWindow := earnT0.Add(-time.Hour)
	promo := func(id int64, mod func(*Promotion)) Promotion {
		p := Promotion{ID: id, PartnerID: 7, Name: fmt.Sprintf("promo %d", id), StartsAt: inWindow,
			EndsAt: earnT0.Add(time.Hour), Effect: EffectMultiplier, Multiplier: dec("2"),
			FundedBy: FundedByPartner, Status: PromotionActive}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	withLines := func(p Purchase, lines ...Line) Purchase { p.Lines = lines; return p }
	withTier := func(p Purchase, tier string) Purchase { p.MemberTier = tier; return p }
	withCodes := func(p Purchase, codes ...string) Purchase { p.PromoCodes = codes; return p }
	retail := func() RuleDefinition {
		d := usdRule()
		d.Multipliers = Multipliers{
			Category: []CategoryMultiplier{{Category: "electronics", Rate: dec("2")}},
			SKU:      []SKUMultiplier{{SKU: "TV-55", Rate: dec("3")}},
			Tier:     []TierMultiplier{{Tier: "silver", Rate: dec("1.5")}, {Tier: "gold", Rate: dec("2")}},
		}
		d.Exclusions = Exclusions{Categories: []string{"tobacco"}, SKUs: []string{"GIFT-CARD"}}
		return d
	}

	cases := []struct {
		name      string
		def       RuleDefinition
		promos    []Promotion
		p         Purchase
		want      []string
		total, op int64
		ignored   []string
	}{
		{name: "1 point per USD rounds down", def: usdRule(), p: purchase(usd(1999)),
			want: []string{"base:19"}, total: 19},
		{name: "1 point per 100 RUB", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindPerCurrencyUnit, Currency: "RUB", Rate: dec("1"), PerMinor: 10000}}},
			p: purchase(money.Money{Minor: 1234567, Currency: "RUB"}), want: []string{"base:123"}, total: 123},
		{name: "fractional rate per step is exact", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1"), PerMinor: 3}}},
			// 300 cents / 3 = 100 exactly: a float or a 16-digit division might give 99.
			p: purchase(usd(300)), want: []string{"base:100"}, total: 100},
		{name: "percentage, point worth 1 RUB", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindPercentage, Currency: "RUB", Rate: dec("5"), PointValueMinor: decp("100")}}},
			// 5% of 12,345.67 RUB = 617.2835 RUB -> 617 points
			p: purchase(money.Money{Minor: 1234567, Currency: "RUB"}), want: []string{"base:617"}, total: 617},
		{name: "percentage, point worth half a cent", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindPercentage, Currency: "USD", Rate: dec("10"), PointValueMinor: decp("0.5")}}},
			p: purchase(usd(1000)), want: []string{"base:200"}, total: 200},
		{name: "per activity: nights, km with a code-specific rate, unknown unit ignored",
			def: RuleDefinition{Earn: []EarnComponent{
				{Kind: KindPerActivity, Unit: "night", Rate: dec("500")},
				{Kind: KindPerActivity, Unit: "km", Rate: dec("1")},
				{Kind: KindPerActivity, Unit: "km", Code: "J", Rate: dec("1.5")},
			}},
			p: Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: usd(0), Activity: []Activity{
				{Unit: "night", Quantity: 3}, {Unit: "km", Quantity: 1851, Code: "J"},
				{Unit: "km", Quantity: 1000, Code: "Y"}, {Unit: "check_in", Quantity: 1}}},
			want: []string{"base:1500", "base:2776", "base:1000"}, total: 5276},
		{name: "fixed event", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindFixedEvent, EventCode: "HEALTH_CHECK", Rate: dec("20")},
			{Kind: KindFixedEvent, EventCode: "VACCINATION", Rate: dec("500")}}},
			p:    Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: usd(0), EventCode: "VACCINATION"},
			want: []string{"base:500"}, total: 500},
		{name: "unknown event earns nothing", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindFixedEvent, EventCode: "HEALTH_CHECK", Rate: dec("20")}}},
			p:    Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: usd(0), EventCode: "SURVEY"},
			want: []string{}, total: 0},
		{name: "category multiplier applies to its lines only", def: retail(),
			p:    withLines(purchase(usd(15000)), Line{Category: "Electronics", Amount: 10000}, Line{Category: "grocery", Amount: 5000}),
			want: []string{"base:150", "category_multiplier:100"}, total: 250},
		{name: "SKU multiplier wins over its category, never both", def: retail(),
			p:    withLines(purchase(usd(20000)), Line{SKU: "TV-55", Category: "electronics", Amount: 10000}, Line{Category: "electronics", Amount: 10000}),
			want: []string{"base:200", "sku_multiplier:200", "category_multiplier:100"}, total: 500},
		{name: "tier multiplies base plus category bonus", def: retail(),
			p:    withTier(withLines(purchase(usd(15000)), Line{Category: "electronics", Amount: 10000}, Line{Category: "grocery", Amount: 5000}), "Gold"),
			want: []string{"base:150", "category_multiplier:100", "tier_multiplier:250"}, total: 500},
		{name: "each step rounds down on its own", def: retail(),
			// exact 33.33 base, +16.665 silver bonus: 33 + 16 = 49 (exact 49.995)
			p: withTier(purchase(usd(3333)), "silver"), want: []string{"base:33", "tier_multiplier:16"}, total: 49},
		{name: "unknown tier earns no bonus", def: retail(), p: withTier(purchase(usd(1000)), "platinum"),
			want: []string{"base:10"}, total: 10},
		{name: "exclusions by category and SKU earn nothing", def: retail(),
			p: withLines(purchase(usd(10000)), Line{Category: "tobacco", Amount: 3000},
				Line{SKU: "GIFT-CARD", Category: "electronics", Amount: 5000}, Line{Category: "grocery", Amount: 2000}),
			want: []string{"exclusion:0", "exclusion:0", "base:20"}, total: 20},
		{name: "below the minimum amount: no currency earn, activity still earns",
			def: RuleDefinition{Earn: []EarnComponent{
				{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1"), PerMinor: 100, MinAmountMinor: 2000},
				{Kind: KindPerActivity, Unit: "stay", Rate: dec("100")}}},
			p:    Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: usd(1999), Activity: []Activity{{Unit: "stay", Quantity: 1}}},
			want: []string{"minimum:0", "base:100"}, total: 100},
		{name: "at the minimum amount earns", def: RuleDefinition{Earn: []EarnComponent{
			{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1"), PerMinor: 100, MinAmountMinor: 2000}}},
			p: purchase(usd(2000)), want: []string{"base:20"}, total: 20},
		{name: "cap per transaction applies last", def: func() RuleDefinition { d := usdRule(); d.CapPerTransaction = 300; return d }(),
			p: purchase(usd(50000)), want: []string{"base:500", "cap:-200"}, total: 300},
		{name: "full stacking order: base, category, tier, promotions, cap (operator-funded cut first)",
			def: func() RuleDefinition { d := retail(); d.CapPerTransaction = 500; return d }(),
			promos: []Promotion{promo(1, nil), promo(2, func(p *Promotion) {
				p.Effect, p.Multiplier, p.Bonus, p.FundedBy = EffectBonus, decimal.Zero, 50, FundedByOperator
			})},
			p: withTier(withLines(purchase(usd(15000)), Line{Category: "electronics", Amount: 10000}, Line{Category: "grocery", Amount: 5000}), "silver"),
			// 150 base, +100 electronics x2, +125 silver x1.5 on 250, +150 promo x2 on base, +50 operator bonus = 575 -> 500
			want:  []string{"base:150", "category_multiplier:100", "tier_multiplier:125", "promotion:150", "promotion:50:op", "cap:-50:op", "cap:-25"},
			total: 500, op: 0},
		{name: "promotion multiplies base only, not the tier bonus", def: retail(), promos: []Promotion{promo(1, nil)},
			p: withTier(purchase(usd(1000)), "gold"), want: []string{"base:10", "tier_multiplier:10", "promotion:10"}, total: 30},
		{name: "promotion outside its window does not apply", def: usdRule(),
			promos: []Promotion{
				promo(1, func(p *Promotion) { p.StartsAt = earnT0.Add(time.Minute) }),           // not yet started
				promo(2, func(p *Promotion) { p.EndsAt = earnT0 }),                              // ends exactly at occurred_at: [start, end)
				promo(3, func(p *Promotion) { e := earnT0.Add(-time.Minute); p.EndedAt = &e }),  // ended early
				promo(4, func(p *Promotion) { e := earnT0.Add(time.Minute); p.EndedAt = &e }),   // ended after the purchase: applies
				promo(5, func(p *Promotion) { p.PartnerID = 8 }),                                // another partner's
				promo(6, func(p *Promotion) { p.PartnerID = 0; p.FundedBy = FundedByOperator }), // coalition-wide
				promo(7, func(p *Promotion) { p.StartsAt = earnT0; p.Multiplier = dec("1.5") }), // starts exactly then: applies
			},
			p: purchase(usd(1000)), want: []string{"base:10", "promotion:10", "promotion:10:op", "promotion:5"}, total: 35, op: 10},
		{name: "promo code required; matched case-insensitively; unknown codes reported", def: usdRule(),
			promos: []Promotion{promo(1, func(p *Promotion) { p.Code = "SPRING" }), promo(2, func(p *Promotion) { p.Code = "AUTUMN" })},
			p:      withCodes(purchase(usd(1000)), "spring", "NOPE"), want: []string{"base:10", "promotion:10"}, total: 20,
			ignored: []string{"NOPE"}},
		{name: "exclusive promotion beats the stack when it earns more", def: usdRule(),
			promos: []Promotion{
				promo(1, nil), // x2: +10
				promo(2, func(p *Promotion) { p.Effect, p.Multiplier, p.Bonus = EffectBonus, decimal.Zero, 5 }),
				promo(3, func(p *Promotion) { p.Code, p.Exclusive, p.Multiplier = "TRIPLE", true, dec("3") }), // +20
			},
			p:    withCodes(purchase(usd(1000)), "TRIPLE"),
			want: []string{"base:10", "promotion_not_combined:0", "promotion_not_combined:0", "promotion:20"}, total: 30},
		{name: "stacked codes: an exclusive promotion never combines, the better option wins", def: usdRule(),
			promos: []Promotion{
				promo(1, func(p *Promotion) { p.Code, p.Exclusive = "DOUBLE", true }),                             // +10
				promo(2, func(p *Promotion) { p.Code, p.Exclusive, p.Multiplier = "HALFMORE", true, dec("1.5") }), // +5
				promo(3, func(p *Promotion) { p.Effect, p.Multiplier, p.Bonus = EffectBonus, decimal.Zero, 30 }),  // +30, non-exclusive
			},
			p:       withCodes(purchase(usd(1000)), "DOUBLE", "HALFMORE"),
			want:    []string{"base:10", "promotion_not_combined:0", "promotion_not_combined:0", "promotion:30"},
			total:   40,
			ignored: []string{"DOUBLE", "HALFMORE"}},
		{name: "equal exclusive options: the lower id wins", def: usdRule(),
			promos: []Promotion{
				promo(4, func(p *Promotion) { p.Exclusive = true }),
				promo(3, func(p *Promotion) { p.Exclusive = true }),
			},
			p: purchase(usd(1000)), want: []string{"base:10", "promotion:10", "promotion_not_combined:0"}, total: 20},
		{name: "operator-funded bonus is reported apart", def: usdRule(),
			promos: []Promotion{promo(1, func(p *Promotion) {
				p.Effect, p.Multiplier, p.Bonus, p.FundedBy = EffectBonus, decimal.Zero, 100, FundedByOperator
			})},
			p: purchase(usd(1000)), want: []string{"base:10", "promotion:100:op"}, total: 110, op: 100},
		{name: "promotion conditions: category limits the multiplier to its lines", def: usdRule(),
			promos: []Promotion{promo(1, func(p *Promotion) { p.Conditions.Categories = []string{"coffee"} })},
			p:      withLines(purchase(usd(3000)), Line{Category: "Coffee", Amount: 1000}, Line{Category: "bakery", Amount: 2000}),
			want:   []string{"base:30", "promotion:10"}, total: 40},
		{name: "promotion conditions unmet: category, min amount, tier", def: usdRule(),
			promos: []Promotion{
				promo(1, func(p *Promotion) { p.Conditions.Categories = []string{"coffee"} }),
				promo(2, func(p *Promotion) { p.Conditions.MinAmount = &money.Money{Minor: 1001, Currency: "USD"} }),
				promo(3, func(p *Promotion) { p.Conditions.MinAmount = &money.Money{Minor: 10, Currency: "EUR"} }),
				promo(4, func(p *Promotion) { p.Conditions.Tiers = []string{"gold"} }),
			},
			p: withTier(purchase(usd(1000)), "silver"), want: []string{"base:10"}, total: 10},
		{name: "promotion conditions met: min amount and tier", def: usdRule(),
			promos: []Promotion{promo(1, func(p *Promotion) {
				p.Conditions.MinAmount = &money.Money{Minor: 1000, Currency: "USD"}
				p.Conditions.Tiers = []string{"Gold"}
			})},
			p: withTier(purchase(usd(1000)), "gold"), want: []string{"base:10", "promotion:10"}, total: 20},
		{name: "excluded lines do not earn promotion multipliers either", def: retail(),
			promos: []Promotion{promo(1, func(p *Promotion) { p.Conditions.Categories = []string{"tobacco"} })},
			p:      withLines(purchase(usd(1000)), Line{Category: "tobacco", Amount: 1000}),
			want:   []string{"exclusion:0", "base:0"}, total: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := Evaluate(RuleSet{RuleID: 3, PartnerID: 7, Version: 2, Definition: tc.def}, tc.promos, tc.p)
			if err != nil {
				t.Fatalf("Evaluate: unexpected error %v", err)
			}
			if got := summary(q); !slices.Equal(got, tc.want) {
				t.Errorf("breakdown = %v, want %v", got, tc.want)
			}
			if q.Total != tc.total || q.OperatorFunded != tc.op || q.Points != tc.total-tc.op {
				t.Errorf("total %d (partner %d, operator %d), want %d (partner %d, operator %d)",
					q.Total, q.Points, q.OperatorFunded, tc.total, tc.total-tc.op, tc.op)
			}
			if !slices.Equal(q.IgnoredPromoCodes, tc.ignored) {
				t.Errorf("ignored promo codes = %v, want %v", q.IgnoredPromoCodes, tc.ignored)
			}
			if q.RuleID != 3 || q.RuleVersion != 2 {
				t.Errorf("quote names rule %d v%d, want 3 v2", q.RuleID, q.RuleVersion)
			}
			checkQuoteInvariants(t, tc.def, q)
		})
	}
}

func TestEvaluateRates(t *testing.T) {
	t.Parallel()
	def := RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "RUB", Rate: dec("1"), PerMinor: 10000}},
		Multipliers: Multipliers{Tier: []TierMultiplier{{Tier: "gold", Rate: dec("2")}}}}
	p := purchase(money.Money{Minor: 1000000, Currency: "RUB"})
	p.MemberTier = "gold"
	q, err := Evaluate(RuleSet{RuleID: 1, PartnerID: 7, Version: 1, Definition: def}, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{q.Breakdown[0].Rate, q.Breakdown[1].Rate}; !slices.Equal(got, []string{"0.0001", "2"}) {
		t.Errorf("rates = %v, want the exact points per kopeck 0.0001 and the tier multiplier 2", got)
	}
	def.Earn[0].PerMinor = 3
	q, err = Evaluate(RuleSet{RuleID: 1, PartnerID: 7, Version: 1, Definition: def}, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if q.Breakdown[0].Rate != "1/3" {
		t.Errorf("a non-terminating rate is written %q, want the exact fraction 1/3", q.Breakdown[0].Rate)
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	good := RuleSet{RuleID: 1, PartnerID: 7, Version: 1, Definition: usdRule()}
	fieldsOf := func(err error) []string {
		var ve *validation.Error
		if !errors.As(err, &ve) {
			return nil
		}
		var out []string
		for _, f := range ve.Fields {
			out = append(out, f.Field)
		}
		return out
	}
	cases := []struct {
		name   string
		rules  RuleSet
		p      Purchase
		is     error
		fields []string
	}{
		{name: "currency the rule does not earn in", rules: good, p: purchase(money.Money{Minor: 100, Currency: "EUR"}), is: ErrCurrencyNotEarned},
		{name: "rule of another partner", rules: RuleSet{RuleID: 1, PartnerID: 8, Definition: usdRule()}, p: purchase(usd(100)), is: ErrRuleNotFound},
		{name: "lines must add up to the amount", rules: good,
			p:      Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: usd(100), Lines: []Line{{Amount: 60}, {Amount: 30}}},
			fields: []string{"lines"}},
		{name: "malformed purchase", rules: good,
			p: Purchase{Amount: money.Money{Minor: -1, Currency: "usd"}, Lines: []Line{{Amount: -5, Quantity: -1}},
				Activity: []Activity{{Unit: "", Quantity: -2}}},
			fields: []string{"partner_id", "occurred_at", "amount.minor", "amount.currency", "lines[0].amount",
				"lines[0].quantity", "activity[0].unit", "activity[0].quantity"}},
		{name: "invalid rule definition names the field", p: purchase(usd(100)),
			rules:  RuleSet{PartnerID: 7, Definition: RuleDefinition{Earn: usdRule().Earn, Multipliers: Multipliers{Category: []CategoryMultiplier{{Category: "x", Rate: dec("0.5")}}}}},
			fields: []string{"definition.multipliers.category[0].rate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Evaluate(tc.rules, nil, tc.p)
			if err == nil {
				t.Fatal("Evaluate succeeded, want an error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			if tc.fields != nil && !slices.Equal(fieldsOf(err), tc.fields) {
				t.Errorf("invalid fields %v, want %v (error: %v)", fieldsOf(err), tc.fields, err)
			}
		})
	}
}

func TestValidateRuleDefinition(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		def   RuleDefinition
		field string // "" = valid
	}{
		{"valid retail rule", RuleDefinition{Earn: usdRule().Earn,
			Multipliers: Multipliers{Category: []CategoryMultiplier{{Category: "travel", Rate: dec("3")}},
				Tier: []TierMultiplier{{Tier: "gold", Rate: dec("2")}}},
			Exclusions: Exclusions{Categories: []string{"tobacco"}}, CapPerTransaction: 10000}, ""},
		{"no components", RuleDefinition{}, "definition.earn"},
		{"unknown kind", RuleDefinition{Earn: []EarnComponent{{Kind: "per_smile", Rate: dec("1")}}}, "definition.earn[0].kind"},
		{"zero rate", RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("0"), PerMinor: 100}}}, "definition.earn[0].rate"},
		{"too many decimals", RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("0.000000001"), PerMinor: 100}}}, "definition.earn[0].rate"},
		{"per currency without step", RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1")}}}, "definition.earn[0].per_minor"},
		{"bad currency", RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "usd", Rate: dec("1"), PerMinor: 1}}}, "definition.earn[0].currency"},
		{"two components in one currency", RuleDefinition{Earn: []EarnComponent{
			{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1"), PerMinor: 100},
			{Kind: KindPercentage, Currency: "USD", Rate: dec("1"), PointValueMinor: decp("1")}}}, "definition.earn[1].currency"},
		{"percentage without point value", RuleDefinition{Earn: []EarnComponent{{Kind: KindPercentage, Currency: "USD", Rate: dec("5")}}}, "definition.earn[0].point_value_minor"},
		{"percentage over 100", RuleDefinition{Earn: []EarnComponent{{Kind: KindPercentage, Currency: "USD", Rate: dec("101"), PointValueMinor: decp("1")}}}, "definition.earn[0].rate"},
		{"activity without unit", RuleDefinition{Earn: []EarnComponent{{Kind: KindPerActivity, Rate: dec("1")}}}, "definition.earn[0].unit"},
		{"event without code", RuleDefinition{Earn: []EarnComponent{{Kind: KindFixedEvent, Rate: dec("1")}}}, "definition.earn[0].event_code"},
		{"field of another kind", RuleDefinition{Earn: []EarnComponent{{Kind: KindFixedEvent, EventCode: "X", Rate: dec("1"), PerMinor: 5}}}, "definition.earn[0].per_minor"},
		{"multiplier below 1", RuleDefinition{Earn: usdRule().Earn, Multipliers: Multipliers{Tier: []TierMultiplier{{Tier: "gold", Rate: dec("0.9")}}}}, "definition.multipliers.tier[0].rate"},
		{"multiplier too large", RuleDefinition{Earn: usdRule().Earn, Multipliers: Multipliers{SKU: []SKUMultiplier{{SKU: "A", Rate: dec("200")}}}}, "definition.multipliers.sku[0].rate"},
		{"multiplied category is excluded", RuleDefinition{Earn: usdRule().Earn,
			Multipliers: Multipliers{Category: []CategoryMultiplier{{Category: "Tobacco", Rate: dec("2")}}},
			Exclusions:  Exclusions{Categories: []string{"tobacco"}}}, "definition.multipliers.category[0].category"},
		{"negative cap", RuleDefinition{Earn: usdRule().Earn, CapPerTransaction: -1}, "definition.cap_per_transaction"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := validateRuleDefinition(tc.def)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid definition refused: %v", err)
				}
				return
			}
			var ve *validation.Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %v, want a validation.Error on %s", err, tc.field)
			}
			found := false
			for _, f := range ve.Fields {
				found = found || f.Field == tc.field
			}
			if !found {
				t.Errorf("invalid fields %v, want one on %s", ve.Fields, tc.field)
			}
		})
	}
}

func TestQuoteDetails(t *testing.T) {
	t.Parallel()
	promos := []Promotion{{ID: 9, PartnerID: 7, Name: "spring", StartsAt: earnT0.Add(-time.Hour), EndsAt: earnT0.Add(time.Hour),
		Effect: EffectBonus, Bonus: 5, FundedBy: FundedByOperator}}
	q, err := Evaluate(RuleSet{RuleID: 3, PartnerID: 7, Version: 2, Definition: usdRule()}, promos, purchase(usd(1000)))
	if err != nil {
		t.Fatal(err)
	}
	d := string(q.Details())
	for _, want := range []string{`"rule_id":3`, `"rule_version":2`, `"promotions":[9]`, `"operator_funded":5`,
		`"rate":"0.01"`, `"funded_by":"operator"`, `"total":15`} {
		if !strings.Contains(d, want) {
			t.Errorf("details %s lack %s", d, want)
		}
	}
}
