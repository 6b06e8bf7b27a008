package rules

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/validation"
)

// Bounds on rule figures. They catch typos (a multiplier of 200 meant as
// 2.00) and keep every intermediate product small.
var (
	maxEarnRate       = decimal.NewFromInt(1_000_000)
	maxPercent        = decimal.NewFromInt(100)
	maxMultiplier     = decimal.NewFromInt(100)
	maxRuleComponents = 100
	maxRuleDecimalExp = int32(-8) // at most 8 decimal places
)

// validateRuleDefinition checks d; field names start with "definition.".
func validateRuleDefinition(d RuleDefinition) error {
	ve := &validation.Error{}
	const root = "definition"
	ve.Check(len(d.Description) <= 500, root+".description", "at most 500 characters")
	if ve.Check(len(d.Earn) > 0, root+".earn", "needs at least one earn component") {
		ve.Check(len(d.Earn) <= maxRuleComponents, root+".earn", fmt.Sprintf("at most %d components", maxRuleComponents))
	}
	currencies := map[string]bool{}
	activities := map[string]bool{}
	events := map[string]bool{}
	for i, c := range d.Earn {
		f := fmt.Sprintf("%s.earn[%d]", root, i)
		checkRate(ve, f+".rate", c.Rate, decimal.Zero, false, maxEarnRate)
		currencyKind := c.Kind == KindPerCurrencyUnit || c.Kind == KindPercentage
		if currencyKind {
			if ve.Check(earnCurrencyRe.MatchString(c.Currency), f+".currency", "must be an ISO 4217 code such as USD") {
				ve.Check(!currencies[c.Currency], f+".currency", "another component already earns in "+c.Currency)
				currencies[c.Currency] = true
			}
			ve.Check(c.MinAmountMinor >= 0 && c.MinAmountMinor <= maxPurchaseMinor, f+".min_amount_minor", "must be between 0 and 10^15")
		} else {
			ve.Check(c.Currency == "", f+".currency", "only for per_currency_unit and percentage")
			ve.Check(c.MinAmountMinor == 0, f+".min_amount_minor", "only for per_currency_unit and percentage")
		}
		if c.Kind != KindPerCurrencyUnit {
			ve.Check(c.PerMinor == 0, f+".per_minor", "only for per_currency_unit")
		}
		if c.Kind != KindPercentage {
			ve.Check(c.PointValueMinor == nil, f+".point_value_minor", "only for percentage")
		}
		if c.Kind != KindPerActivity {
			ve.Check(c.Unit == "" && c.Code == "", f+".unit", "unit and code are only for per_activity")
		}
		if c.Kind != KindFixedEvent {
			ve.Check(c.EventCode == "", f+".event_code", "only for fixed_event")
		}
		switch c.Kind {
		case KindPerCurrencyUnit:
			ve.Check(c.PerMinor > 0 && c.PerMinor <= maxPurchaseMinor, f+".per_minor",
				"must be the minor units per step, e.g. 100 for 1 point per USD")
		case KindPercentage:
			checkRate(ve, f+".rate", c.Rate, decimal.Zero, false, maxPercent)
			if ve.Check(c.PointValueMinor != nil, f+".point_value_minor", "is required: minor units one point is worth") {
				checkRate(ve, f+".point_value_minor", *c.PointValueMinor, decimal.Zero, false, decimal.NewFromInt(maxPurchaseMinor))
			}
		case KindPerActivity:
			if ve.Check(earnUnitRe.MatchString(c.Unit), f+".unit", "must be a unit such as night, stay, segment or km") {
				ve.Check(c.Code == "" || earnTokenRe.MatchString(c.Code), f+".code", "must be a code of letters, digits and . _ : / -")
				key := c.Unit + "\x00" + c.Code
				ve.Check(!activities[key], f+".unit", "another component already earns on this unit and code")
				activities[key] = true
			}
		case KindFixedEvent:
			if ve.Check(earnTokenRe.MatchString(c.EventCode), f+".event_code", "must be a code of letters, digits and . _ : / -") {
				ve.Check(!events[c.EventCode], f+".event_code", "another component already earns on this event")
				events[c.EventCode] = true
			}
		default:
			ve.Add(f+".kind", "must be per_currency_unit, percentage, per_activity or fixed_event")
		}
	}
	excludedSKU := map[string]bool{}
	for i, s := range d.Exclusions.SKUs {
		ve.Check(earnTokenRe.MatchString(s), fmt.Sprintf("%s.exclusions.skus[%d]", root, i), "must be a SKU")
		excludedSKU[s] = true
	}
	excludedCat := map[string]bool{}
	for i, c := range d.Exclusions.Categories {
		ve.Check(strings.TrimSpace(c) != "" && len(c) <= 128, fmt.Sprintf("%s.exclusions.categories[%d]", root, i), "must be a category name")
		excludedCat[strings.ToLower(c)] = true
	}
	seen := map[string]bool{}
	for i, m := range d.Multipliers.SKU {
		f := fmt.Sprintf("%s.multipliers.sku[%d]", root, i)
		if ve.Check(earnTokenRe.MatchString(m.SKU), f+".sku", "must be a SKU") {
			ve.Check(!seen[m.SKU], f+".sku", "listed twice")
			ve.Check(!excludedSKU[m.SKU], f+".sku", "is excluded from earning")
			seen[m.SKU] = true
		}
		checkRate(ve, f+".rate", m.Rate, decimal.NewFromInt(1), true, maxMultiplier)
	}
	seen = map[string]bool{}
	for i, m := range d.Multipliers.Category {
		f := fmt.Sprintf("%s.multipliers.category[%d]", root, i)
		key := strings.ToLower(m.Category)
		if ve.Check(strings.TrimSpace(m.Category) != "" && len(m.Category) <= 128, f+".category", "must be a category name") {
			ve.Check(!seen[key], f+".category", "listed twice")
			ve.Check(!excludedCat[key], f+".category", "is excluded from earning")
			seen[key] = true
		}
		checkRate(ve, f+".rate", m.Rate, decimal.NewFromInt(1), true, maxMultiplier)
	}
	seen = map[string]bool{}
	for i, m := range d.Multipliers.Tier {
		f := fmt.Sprintf("%s.multipliers.tier[%d]", root, i)
		key := strings.ToLower(m.Tier)
		if ve.Check(strings.TrimSpace(m.Tier) != "" && len(m.Tier) <= 64, f+".tier", "must be a tier name") {
			ve.Check(!seen[key], f+".tier", "listed twice")
			seen[key] = true
		}
		checkRate(ve, f+".rate", m.Rate, decimal.NewFromInt(1), true, maxMultiplier)
	}
	ve.Check(d.CapPerTransaction >= 0, root+".cap_per_transaction", "must not be negative (0: no cap)")
	return ve.Err()
}

// checkRate checks min < r (or min <= r when inclusive) and r <= max, with
// at most 8 decimal places.
func checkRate(ve *validation.Error, field string, r, min decimal.Decimal, inclusive bool, max decimal.Decimal) {
	low := r.GreaterThan(min) || (inclusive && r.Equal(min))
	if !low {
		op := "greater than"
		if inclusive {
			op = "at least"
		}
		ve.Add(field, "must be "+op+" "+min.String())
		return
	}
	if !ve.Check(r.LessThanOrEqual(max), field, "must be at most "+max.String()) {
		return
	}
	ve.Check(r.Exponent() >= maxRuleDecimalExp || r.Equal(r.Truncate(-maxRuleDecimalExp)), field, "at most 8 decimal places")
}
