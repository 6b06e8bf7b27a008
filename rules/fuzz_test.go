package rules

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/validation"
)

// FuzzEvaluate builds a rule, promotions and a purchase from the fuzzer's
// numbers and checks that Evaluate never panics, never quotes negative points,
// never exceeds the cap, and that every quote adds up. Inputs the rules
// refuse must be refused with a validation.Error or ErrPointsOverflow, never
// anything else.
func FuzzEvaluate(f *testing.F) {
	f.Add(int64(1999), int64(100), int64(3), int64(20000), int64(15000), int64(50), int64(0), false, "gold")
	f.Add(int64(123456789), int64(10000), int64(0), int64(100), int64(1), int64(0), int64(300), true, "silver")
	f.Add(int64(0), int64(1), int64(1000000000), int64(10000), int64(10000), int64(10000000), int64(1), true, "")
	f.Add(int64(1000000000000000), int64(1), int64(1000000000), int64(10000), int64(100000), int64(10000000), int64(0), false, "gold")
	f.Add(int64(-5), int64(0), int64(-1), int64(-3), int64(0), int64(-7), int64(-1), false, "x")
	f.Fuzz(func(t *testing.T, amount, perMinor, nights, catBP, promoBP, bonus, capPts int64, exclusive bool, tier string) {
		def := RuleDefinition{
			Earn: []EarnComponent{
				{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1.5"), PerMinor: perMinor},
				{Kind: KindPerActivity, Unit: "night", Rate: dec("250.25")},
			},
			Multipliers: Multipliers{
				Category: []CategoryMultiplier{{Category: "rooms", Rate: decimal.New(catBP, -4)}},
				Tier:     []TierMultiplier{{Tier: "gold", Rate: dec("2")}, {Tier: "silver", Rate: dec("1.5")}},
			},
			Exclusions:        Exclusions{Categories: []string{"tax"}},
			CapPerTransaction: capPts,
		}
		window := func(p Promotion) Promotion {
			p.PartnerID, p.StartsAt, p.EndsAt, p.Status = 7, earnT0.Add(-time.Hour), earnT0.Add(time.Hour), PromotionActive
			return p
		}
		promos := []Promotion{
			window(Promotion{ID: 1, Name: "x", Effect: EffectMultiplier, Multiplier: decimal.New(promoBP, -4), FundedBy: FundedByPartner}),
			window(Promotion{ID: 2, Name: "bonus", Effect: EffectBonus, Bonus: bonus, FundedBy: FundedByOperator, Exclusive: exclusive}),
			window(Promotion{ID: 3, Name: "coded", Code: "CODE", Effect: EffectMultiplier, Multiplier: dec("3"), FundedBy: FundedByOperator, Exclusive: true}),
		}
		p := Purchase{PartnerID: 7, OccurredAt: earnT0, Amount: usd(amount), MemberTier: tier,
			Activity: []Activity{{Unit: "night", Quantity: nights}}, PromoCodes: []string{"code"}}
		if amount > 2 {
			p.Lines = []Line{{Category: "rooms", Amount: amount / 2}, {Category: "tax", Amount: amount / 4},
				{Category: "spa", Amount: amount - amount/2 - amount/4}}
		}
		q, err := Evaluate(RuleSet{RuleID: 1, PartnerID: 7, Version: 1, Definition: def}, promos, p)
		if err != nil {
			var ve *validation.Error
			if !errors.As(err, &ve) && !errors.Is(err, ErrPointsOverflow) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		checkQuoteInvariants(t, def, q)
	})
}
