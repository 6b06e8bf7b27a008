package rules

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Pricing is what a partner's earns are priced with: every version of its
// earn rule and the promotions (its own and coalition-wide) that may still
// apply, as read in one snapshot. The points API keeps it in memory while the
// partner's configuration is unchanged.
type Pricing struct {
	rules []Rule // every version, latest effective_from (then version) first
	// ruleValid[i]: rules[i]'s definition passed validateRuleDefinition when
	// the pricing was loaded, so pricing need not check it again per earn (a
	// tenth of a batch's CPU in the hub).
	ruleValid []bool
	promos    []Promotion // not over before the horizon; by id
	// Tiers: a rule version or promotion depends on the member's tier (tier
	// multipliers, tier conditions); when none does, pricing needs no tier read.
	Tiers bool
}

// PricingWith reads the partner's pricing in tx (the caller's snapshot of
// the partner's configuration), leaving out promotions over before horizon.
func (s *Service) PricingWith(tx *gorm.DB, partnerID int64, horizon time.Time) (Pricing, error) {
	var pr Pricing
	rules, err := earnRuleVersions(tx, partnerID)
	if err != nil {
		return Pricing{}, err
	}
	for _, rule := range rules {
		pr.rules = append(pr.rules, rule)
		pr.ruleValid = append(pr.ruleValid, validateRuleDefinition(rule.Definition) == nil)
		pr.Tiers = pr.Tiers || len(rule.Definition.Multipliers.Tier) > 0
	}
	if pr.promos, err = promosSince(tx, partnerID, horizon); err != nil {
		return Pricing{}, err
	}
	for _, p := range pr.promos {
		pr.Tiers = pr.Tiers || len(p.Conditions.Tiers) > 0
	}
	return pr, nil
}

// Quote prices p with the rule version and the promotions in force at
// p.OccurredAt (Service.Quote prices through it too). Errors: those of
// Evaluate, and ErrNoRule.
func (pr *Pricing) Quote(p Purchase) (Quote, error) {
	var rule *Rule
	valid := false
	for i := range pr.rules {
		if !pr.rules[i].EffectiveFrom.After(p.OccurredAt) {
			rule, valid = &pr.rules[i], i < len(pr.ruleValid) && pr.ruleValid[i]
			break
		}
	}
	if rule == nil {
		return Quote{}, fmt.Errorf("quote earn: partner %d at %s: %w", p.PartnerID, p.OccurredAt.UTC().Format(time.RFC3339), ErrNoRule)
	}
	var promos []Promotion
	for _, promo := range pr.promos {
		if !promo.StartsAt.After(p.OccurredAt) && p.OccurredAt.Before(promo.EndsAt) && (promo.EndedAt == nil || p.OccurredAt.Before(*promo.EndedAt)) {
			promos = append(promos, promo)
		}
	}
	var q Quote
	var err error
	if valid {
		q, err = evaluateChecked(rule.Set(), promos, p)
	} else {
		q, err = Evaluate(rule.Set(), promos, p) // names what is wrong with the rule
	}
	if err != nil {
		return Quote{}, fmt.Errorf("quote earn: %w", err)
	}
	return q, nil
}
