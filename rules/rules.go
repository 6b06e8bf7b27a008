package rules

// Earn rules and promotions.
//
// A partner's earn rule is data (a RuleDefinition stored as jsonb), versioned
// and immutable: a change is a new version with a later (or, for a version not
// yet in force, equal) effective_from. The rule that prices a purchase is the
// one in force at the purchase's occurred_at: the latest effective_from <= t,
// the highest version on a tie. Evaluate is a pure function of the rule, the
// promotions and the purchase; the Service only loads them.
//
// Invariants of every Quote: Total = Points + OperatorFunded = the sum of the
// Breakdown points; no figure is negative; Total never exceeds the rule's cap
// per transaction; every line rounds down to whole points, so a quote never
// awards more than the exact arithmetic would.

import (
	"encoding/json"
	"time"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/shopspring/decimal"
)

// RuleKind names how an earn component turns a purchase into points.
type RuleKind string

const (
	// KindPerCurrencyUnit: Rate points per PerMinor minor units of Currency
	// (1 point per USD = rate 1 per 100; 1 point per 100 RUB = rate 1 per 10000).
	KindPerCurrencyUnit RuleKind = "per_currency_unit"
	// KindPercentage: Rate percent of the amount, paid in points worth
	// PointValueMinor minor units each. It is per_currency_unit with the
	// rate Rate/100/PointValueMinor points per minor unit: 5 % with a point
	// worth 1 RUB (100 kopecks) gives 5 points per 100 RUB spent.
	KindPercentage RuleKind = "percentage"
	// KindPerActivity: Rate points per unit of an activity (night, stay,
	// segment, km, check_in, ...), optionally only for one activity Code
	// (e.g. a fare class); a component with a Code wins over one without.
	KindPerActivity RuleKind = "per_activity"
	// KindFixedEvent: Rate points once when the purchase's EventCode matches
	// (non-purchase actions: a health check, a review, a survey).
	KindFixedEvent RuleKind = "fixed_event"
)

// RuleDefinition is the stored, versioned content of an earn rule. A
// purchase earns the sum of every component that applies to it.
type RuleDefinition struct {
	Description string          `json:"description,omitempty"`
	Earn        []EarnComponent `json:"earn"`
	Multipliers Multipliers     `json:"multipliers"`
	Exclusions  Exclusions      `json:"exclusions"`
	// CapPerTransaction bounds the total points of one purchase (base, all
	// multipliers and promotions); 0 means no cap.
	CapPerTransaction int64 `json:"cap_per_transaction,omitempty"`
}

// EarnComponent is one way of earning. Which fields apply depends on Kind.
type EarnComponent struct {
	Kind RuleKind `json:"kind"`
	// Rate is points per PerMinor minor units (per_currency_unit), percent
	// of the amount (percentage), points per unit (per_activity) or points
	// per event (fixed_event). Exact decimal, > 0.
	Rate decimal.Decimal `json:"rate"`
	// Currency, for per_currency_unit and percentage: the component applies
	// only to purchases in this currency (no conversion).
	Currency string `json:"currency,omitempty"`
	// PerMinor: the step of per_currency_unit, in minor units.
	PerMinor int64 `json:"per_minor,omitempty"`
	// PointValueMinor: what one point is worth in minor units, for percentage.
	PointValueMinor *decimal.Decimal `json:"point_value_minor,omitempty"`
	// MinAmountMinor: purchases below this amount earn nothing from this
	// currency component (activities and events are unaffected).
	MinAmountMinor int64 `json:"min_amount_minor,omitempty"`
	// Unit and optional Code select activities, for per_activity.
	Unit string `json:"unit,omitempty"`
	Code string `json:"code,omitempty"`
	// EventCode selects the event, for fixed_event.
	EventCode string `json:"event_code,omitempty"`
}

// Multipliers raise earn. Every rate is an exact decimal >= 1 (bonuses, not
// penalties; to stop a category from earning, exclude it).
type Multipliers struct {
	// Category and SKU multipliers apply to the currency-based base of the
	// purchase lines they match; a SKU multiplier wins over its line's
	// category multiplier (they never multiply each other).
	Category []CategoryMultiplier `json:"category,omitempty"`
	SKU      []SKUMultiplier      `json:"sku,omitempty"`
	// Tier multipliers apply to base plus SKU/category bonus.
	Tier []TierMultiplier `json:"tier,omitempty"`
}

// CategoryMultiplier multiplies the base of lines in Category.
type CategoryMultiplier struct {
	Category string          `json:"category"`
	Rate     decimal.Decimal `json:"rate"`
}

// SKUMultiplier multiplies the base of lines with SKU.
type SKUMultiplier struct {
	SKU  string          `json:"sku"`
	Rate decimal.Decimal `json:"rate"`
}

// TierMultiplier multiplies the earn of members in Tier (e.g. silver 1.5, gold 2).
type TierMultiplier struct {
	Tier string          `json:"tier"`
	Rate decimal.Decimal `json:"rate"`
}

// Exclusions name purchase lines that earn nothing (tobacco, gift cards, tax).
type Exclusions struct {
	Categories []string `json:"categories,omitempty"`
	SKUs       []string `json:"skus,omitempty"`
}

// Rule is one stored, immutable version of a partner's earn rule.
type Rule struct {
	ID            int64
	PartnerID     int64
	Version       int
	EffectiveFrom time.Time
	Definition    RuleDefinition
	CreatedAt     time.Time
	CreatedBy     string
}

// RuleSet is what Evaluate needs of a rule version.
type RuleSet struct {
	RuleID     int64
	PartnerID  int64
	Version    int
	Definition RuleDefinition
}

// Set returns the rule as Evaluate's input.
func (r Rule) Set() RuleSet {
	return RuleSet{RuleID: r.ID, PartnerID: r.PartnerID, Version: r.Version, Definition: r.Definition}
}

// Purchase is what a member did at a partner: a purchase (Amount, Lines), an
// activity (nights, segments, km) or a non-purchase event, or several at once.
type Purchase struct {
	PartnerID  int64
	OccurredAt time.Time
	Amount     money.Money
	// Lines, when given, itemise Amount and must sum to it exactly; they
	// carry the categories and SKUs that multipliers and exclusions match.
	// Without lines the whole Amount is one uncategorised line.
	Lines      []Line
	Activity   []Activity
	EventCode  string
	MemberTier string
	PromoCodes []string
}

// Line is one item of a purchase.
type Line struct {
	SKU      string `json:"sku,omitempty"`
	Category string `json:"category,omitempty"`
	Amount   int64  `json:"amount"` // line total, minor units of the purchase currency
	Quantity int    `json:"quantity,omitempty"`
}

// Activity is a countable thing the member did: 3 nights, 2 segments, 1850 km.
type Activity struct {
	Unit     string `json:"unit"`
	Quantity int64  `json:"quantity"`
	Code     string `json:"code,omitempty"`
}

// Breakdown line kinds, in the order Evaluate applies them.
const (
	LineBase               = "base"
	LineMinimum            = "minimum"
	LineExclusion          = "exclusion"
	LineSKUMultiplier      = "sku_multiplier"
	LineCategoryMultiplier = "category_multiplier"
	LineTierMultiplier     = "tier_multiplier"
	LinePromotion          = "promotion"
	LinePromotionSkipped   = "promotion_not_combined"
	LineCap                = "cap"
)

// Quote is the priced earn of a purchase, not yet posted.
type Quote struct {
	PartnerID      int64
	OccurredAt     time.Time
	Points         int64 // funded by the partner (billed at its issue price)
	OperatorFunded int64 // funded by the operator's promotions
	Total          int64 // Points + OperatorFunded
	RuleID         int64
	RuleVersion    int
	Breakdown      []QuoteLine
	// IgnoredPromoCodes are the purchase's codes that matched no applied
	// promotion (unknown, outside the window, conditions unmet, or not
	// combined with an exclusive promotion).
	IgnoredPromoCodes []string
}

// QuoteLine explains one step of a quote. Points may be 0 (a line that only
// explains, e.g. an exclusion) and is negative only for cap lines.
type QuoteLine struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Points      int64  `json:"points"`
	// Rate is the exact decimal the line used, as text (points per minor
	// unit, a multiplier, or fixed points).
	Rate        string `json:"rate,omitempty"`
	FundedBy    Funder `json:"funded_by"`
	PromotionID int64  `json:"promotion_id,omitempty"`
}

// QuoteRecord is the JSON stored on a posted transaction.
type QuoteRecord struct {
	Kind           string      `json:"kind"`
	RuleID         int64       `json:"rule_id"`
	RuleVersion    int         `json:"rule_version"`
	OccurredAt     time.Time   `json:"occurred_at"`
	Points         int64       `json:"points"`
	OperatorFunded int64       `json:"operator_funded"`
	Total          int64       `json:"total"`
	Promotions     []int64     `json:"promotions,omitempty"`
	Breakdown      []QuoteLine `json:"breakdown"`
}

// Details is the record of how the quote was priced, to store verbatim on the
// posted transaction (ledger EarnRequest.Details): rule id and version, every
// line with its exact rate, and the promotions applied.
func (q Quote) Details() json.RawMessage {
	b, err := json.Marshal(q.Record())
	if err != nil {
		// Only plain values are marshalled; this cannot fail.
		panic("rules: marshal quote details: " + err.Error())
	}
	return b
}

// Record is Details before marshalling: an earn's details embed it as a
// value, so it is marshalled once (a json.RawMessage would be validated and
// compacted again inside the outer document).
func (q Quote) Record() QuoteRecord {
	d := QuoteRecord{Kind: "earn_quote", RuleID: q.RuleID, RuleVersion: q.RuleVersion,
		OccurredAt: q.OccurredAt.UTC(), Points: q.Points, OperatorFunded: q.OperatorFunded,
		Total: q.Total, Breakdown: q.Breakdown}
	if d.Breakdown == nil {
		d.Breakdown = []QuoteLine{}
	}
	for _, l := range q.Breakdown {
		if l.Kind == LinePromotion && l.PromotionID != 0 {
			d.Promotions = append(d.Promotions, l.PromotionID)
		}
	}
	return d
}
