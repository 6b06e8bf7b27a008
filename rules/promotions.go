package rules

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// Funder says who pays for points: the partner (billed at its issue price)
// or the operator (from its promotions account).
type Funder string

const (
	FundedByPartner  Funder = "partner"
	FundedByOperator Funder = "operator"
)

// PromotionEffect is what a promotion adds.
type PromotionEffect string

const (
	// EffectMultiplier multiplies the purchase's base points (not the
	// SKU/category or tier bonus): 2 = double points.
	EffectMultiplier PromotionEffect = "multiplier"
	// EffectBonus adds fixed points once per qualifying purchase.
	EffectBonus PromotionEffect = "bonus"
)

// Promotion statuses. An ended promotion stops at EndedAt even when its
// window ran longer; purchases that occurred before still qualify.
const (
	PromotionActive = "active"
	PromotionEnded  = "ended"
)

// Promotion is a time-boxed earn bonus. It applies to purchases that occurred
// in [StartsAt, EndsAt) (cut short at EndedAt once ended), carry its Code when
// it has one, and meet its Conditions. PartnerID 0 is a coalition-wide
// promotion, which only the operator may fund. Promotions are immutable
// except for being ended.
type Promotion struct {
	ID         int64
	PartnerID  int64
	Name       string
	Code       string // upper case; empty: applies without a code
	StartsAt   time.Time
	EndsAt     time.Time
	Effect     PromotionEffect
	Multiplier decimal.Decimal // EffectMultiplier: > 1
	Bonus      int64           // EffectBonus: points > 0
	FundedBy   Funder
	// Exclusive promotions never combine with another promotion: a purchase
	// gets either one exclusive promotion or all its non-exclusive ones,
	// whichever earns the member more (stacked promo codes are refused).
	Exclusive  bool
	Conditions PromotionConditions
	Status     string
	EndedAt    *time.Time
	CreatedAt  time.Time
	CreatedBy  string
}

// PromotionConditions restrict which purchases qualify; zero values do not restrict.
type PromotionConditions struct {
	// Categories: the purchase must have an earning line in one of them, and
	// a multiplier then applies only to those lines' base.
	Categories []string `json:"categories,omitempty"`
	// MinAmount: the purchase amount must be at least this, in this currency.
	MinAmount *money.Money `json:"min_amount,omitempty"`
	// Tiers: the member must be in one of them.
	Tiers []string `json:"tiers,omitempty"`
}

// NewPromotion is the input of CreatePromotion.
type NewPromotion struct {
	PartnerID  int64
	Name       string
	Code       string
	StartsAt   time.Time
	EndsAt     time.Time
	Effect     PromotionEffect
	Multiplier decimal.Decimal
	Bonus      int64
	FundedBy   Funder
	Exclusive  bool
	Conditions PromotionConditions
}

// activeAt reports whether the promotion's (possibly shortened) window holds t.
func (p Promotion) activeAt(t time.Time) bool {
	end := p.EndsAt
	if p.EndedAt != nil && p.EndedAt.Before(end) {
		end = *p.EndedAt
	}
	return !t.Before(p.StartsAt) && t.Before(end)
}

var maxPromotionMultiplier = decimal.NewFromInt(10)

// validateNewPromotion checks n; field names are the JSON paths of the
// admin API request.
func validateNewPromotion(n NewPromotion) error {
	ve := &validation.Error{}
	ve.Check(n.PartnerID >= 0, "partner_id", "must be a partner id, or 0 for the whole coalition")
	ve.Check(strings.TrimSpace(n.Name) != "" && len(n.Name) <= 200, "name", "must be 1 to 200 characters")
	ve.Check(n.Code == "" || promoCodeRe.MatchString(n.Code), "code", "must be 3 to 32 letters, digits, - or _")
	ve.Check(!n.StartsAt.IsZero(), "starts_at", "is required")
	ve.Check(n.EndsAt.After(n.StartsAt), "ends_at", "must be after starts_at")
	switch n.Effect {
	case EffectMultiplier:
		f := "multiplier"
		if ve.Check(n.Multiplier.GreaterThan(decimal.NewFromInt(1)), f, "must be greater than 1") {
			ve.Check(n.Multiplier.LessThanOrEqual(maxPromotionMultiplier), f, "must be at most "+maxPromotionMultiplier.String())
			ve.Check(n.Multiplier.Equal(n.Multiplier.Truncate(4)), f, "at most 4 decimal places")
		}
		ve.Check(n.Bonus == 0, "bonus", "only for effect bonus")
	case EffectBonus:
		ve.Check(n.Bonus > 0 && n.Bonus <= 10_000_000, "bonus", "must be between 1 and 10000000 points")
		ve.Check(n.Multiplier.IsZero(), "multiplier", "only for effect multiplier")
	default:
		ve.Add("effect", "must be multiplier or bonus")
	}
	switch n.FundedBy {
	case FundedByPartner:
		ve.Check(n.PartnerID > 0, "funded_by", "a coalition-wide promotion must be funded by the operator")
	case FundedByOperator:
	default:
		ve.Add("funded_by", "must be partner or operator")
	}
	c := n.Conditions
	for i, cat := range c.Categories {
		ve.Check(strings.TrimSpace(cat) != "" && len(cat) <= 128, fmt.Sprintf("conditions.categories[%d]", i), "must be a category name")
	}
	for i, t := range c.Tiers {
		ve.Check(strings.TrimSpace(t) != "" && len(t) <= 64, fmt.Sprintf("conditions.tiers[%d]", i), "must be a tier name")
	}
	if m := c.MinAmount; m != nil {
		ve.Check(m.Minor > 0 && m.Minor <= maxPurchaseMinor, "conditions.min_amount.minor", "must be positive")
		ve.Check(earnCurrencyRe.MatchString(m.Currency), "conditions.min_amount.currency", "must be an ISO 4217 code such as USD")
	}
	return ve.Err()
}

var promoCodeRe = regexp.MustCompile(`^[A-Z0-9_-]{3,32}$`)
