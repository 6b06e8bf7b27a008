package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// Category is what kind of reward it is.
type Category string

// Reward categories.
const (
	CategoryFlight      Category = "flight"
	CategoryHotelNight  Category = "hotel_night"
	CategoryDining      Category = "dining"
	CategoryVoucher     Category = "voucher"
	CategoryMerchandise Category = "merchandise"
	CategoryExperience  Category = "experience"
	CategoryCharity     Category = "charity_donation"
)

// Categories lists every category.
var Categories = []Category{CategoryFlight, CategoryHotelNight, CategoryDining, CategoryVoucher,
	CategoryMerchandise, CategoryExperience, CategoryCharity}

// Fulfilment is how an order of the reward is delivered.
type Fulfilment string

const (
	// FulfilmentInstant: a voucher code from the partner's pool is assigned
	// and the points are captured when the order is placed (charity
	// donations need no code).
	FulfilmentInstant Fulfilment = "instant"
	// FulfilmentAsync: the partner is told by webhook and
	// GET /v1/orders?status=pending and fulfils or rejects before the deadline.
	FulfilmentAsync Fulfilment = "async"
)

// Status is the partner's own switch: inactive rewards cannot be ordered.
type Status string

const (
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
)

// Visibility is the operator's moderation of a reward. Hidden rewards are not
// listed to members and cannot be ordered; suspended ones neither, and the
// partner cannot lift a suspension (only the operator can).
type Visibility string

const (
	VisibilityVisible   Visibility = "visible"
	VisibilityHidden    Visibility = "hidden"
	VisibilitySuspended Visibility = "suspended"
)

// Owner says who offers a reward and bears its cost.
type Owner string

const (
	// OwnerPartner: a partner publishes the reward over the partner API and
	// is reimbursed per point redeemed at its contract's redemption rate.
	OwnerPartner Owner = "partner"
	// OwnerOperator: the operator's staff publish the reward from the admin
	// API; its redemptions go to the ledger's operator_redeemed account and
	// no partner is reimbursed (the operator bears the cost).
	OwnerOperator Owner = "operator"
)

// Reward is one offer of a partner, or of the operator (PartnerID 0, Owner
// operator), in the catalog. StockTotal and
// StockRemaining are nil for unlimited stock. TierPrices override
// PricePoints for the named tiers; EligibleTiers, when not empty, restricts
// ordering to those tiers. BlackoutDates are UTC dates (YYYY-MM-DD) on which
// the reward cannot be used. VouchersAvailable counts free codes of an
// instant reward's pool.
type Reward struct {
	ID                int64            `json:"id"`
	PartnerID         int64            `json:"partner_id"`
	Owner             Owner            `json:"owner"`
	Title             string           `json:"title"`
	Description       string           `json:"description"`
	Category          Category         `json:"category"`
	PricePoints       int64            `json:"price_points"`
	TierPrices        map[string]int64 `json:"tier_prices"`
	EligibleTiers     []string         `json:"eligible_tiers"`
	Value             money.Money      `json:"value"`
	StockTotal        *int64           `json:"stock_total"`
	StockRemaining    *int64           `json:"stock_remaining"`
	ValidFrom         *time.Time       `json:"valid_from,omitempty"`
	ValidUntil        *time.Time       `json:"valid_until,omitempty"`
	BlackoutDates     []string         `json:"blackout_dates"`
	PerMemberLimit    int              `json:"per_member_limit"`
	Fulfilment        Fulfilment       `json:"fulfilment"`
	FulfilmentHours   int              `json:"fulfilment_hours"`
	Status            Status           `json:"status"`
	Visibility        Visibility       `json:"visibility"`
	Featured          bool             `json:"featured"`
	VouchersAvailable int64            `json:"vouchers_available"`
	ModerationReason  string           `json:"moderation_reason,omitempty"`
	RetiredAt         *time.Time       `json:"retired_at,omitempty"`
	ImageURL          string           `json:"image_url,omitempty"`
	CreatedAt         time.Time        `json:"created_at"`
	UpdatedAt         time.Time        `json:"updated_at"`
}

// PriceFor is what a member of tier pays (tier names compare case-insensitively).
func (r Reward) PriceFor(tier string) int64 {
	if p, ok := r.TierPrices[strings.ToLower(tier)]; ok && tier != "" {
		return p
	}
	return r.PricePoints
}

// eligible reports whether a member of tier may order the reward.
func (r Reward) eligible(tier string) bool {
	return len(r.EligibleTiers) == 0 || slices.Contains(r.EligibleTiers, strings.ToLower(tier))
}

// orderable returns nil when the reward can be ordered at now for a service
// date (YYYY-MM-DD, empty = today), or ErrRewardUnavailable saying why.
func (r Reward) orderable(now time.Time, tier, serviceDate string) error {
	why := ""
	day := serviceDate
	if day == "" {
		day = now.UTC().Format(time.DateOnly)
	}
	switch {
	case r.RetiredAt != nil:
		why = "retired"
	case r.Status != StatusActive:
		why = "withdrawn by the partner"
	case r.Visibility != VisibilityVisible:
		why = "not offered at the moment"
	case r.ValidFrom != nil && now.Before(*r.ValidFrom):
		why = "not yet valid"
	case r.ValidUntil != nil && !now.Before(*r.ValidUntil):
		why = "no longer valid"
	case slices.Contains(r.BlackoutDates, day):
		why = "blacked out on " + day
	case !r.eligible(tier):
		why = "not offered to the member's tier"
	default:
		return nil
	}
	return fmt.Errorf("reward %d is %s: %w", r.ID, why, ErrRewardUnavailable)
}

// RewardInput is what a partner sends to publish or replace a reward.
// Status defaults to active, FulfilmentHours to 72. A nil StockTotal is
// unlimited stock; changing StockTotal shifts the remaining stock by the
// difference (it may not go below zero).
type RewardInput struct {
	Title           string
	Description     string
	Category        Category
	PricePoints     int64
	TierPrices      map[string]int64
	EligibleTiers   []string
	Value           money.Money
	StockTotal      *int64
	ValidFrom       *time.Time
	ValidUntil      *time.Time
	BlackoutDates   []string
	PerMemberLimit  int
	Fulfilment      Fulfilment
	FulfilmentHours int
	Status          Status
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

const maxPoints = 1_000_000_000

// normalise applies defaults and lower-cases tier names.
func (in *RewardInput) normalise() {
	in.Title = strings.TrimSpace(in.Title)
	if in.Status == "" {
		in.Status = StatusActive
	}
	if in.FulfilmentHours == 0 {
		in.FulfilmentHours = 72
	}
	if in.TierPrices == nil {
		in.TierPrices = map[string]int64{}
	}
	lower := make(map[string]int64, len(in.TierPrices))
	for k, v := range in.TierPrices {
		lower[strings.ToLower(strings.TrimSpace(k))] = v
	}
	in.TierPrices = lower
	for i, t := range in.EligibleTiers {
		in.EligibleTiers[i] = strings.ToLower(strings.TrimSpace(t))
	}
	if in.EligibleTiers == nil {
		in.EligibleTiers = []string{}
	}
	if in.BlackoutDates == nil {
		in.BlackoutDates = []string{}
	}
	slices.Sort(in.BlackoutDates)
	in.BlackoutDates = slices.Compact(in.BlackoutDates)
}

func (in RewardInput) validate() error {
	var v validation.Error
	v.Check(len(in.Title) >= 1 && len(in.Title) <= 200, "title", "is required (at most 200 characters)")
	v.Check(len(in.Description) <= 5000, "description", "must be at most 5000 characters")
	v.Check(slices.Contains(Categories, in.Category), "category",
		"must be one of flight, hotel_night, dining, voucher, merchandise, experience, charity_donation")
	v.Check(in.PricePoints >= 1 && in.PricePoints <= maxPoints, "price_points", "must be 1 to 1,000,000,000")
	for tier, p := range in.TierPrices {
		f := "tier_prices." + tier
		v.Check(tier != "" && len(tier) <= 64, f, "must name a tier (at most 64 characters)")
		v.Check(p >= 1 && p <= maxPoints, f, "must be 1 to 1,000,000,000")
	}
	seen := map[string]bool{}
	for i, t := range in.EligibleTiers {
		f := fmt.Sprintf("eligible_tiers[%d]", i)
		v.Check(t != "" && len(t) <= 64, f, "must name a tier (at most 64 characters)")
		v.Check(!seen[t], f, "is listed twice")
		seen[t] = true
	}
	v.Check(in.Value.Minor >= 0, "value.minor", "must not be negative")
	v.Check(currencyPattern.MatchString(in.Value.Currency), "value.currency", "must be an ISO 4217 code")
	v.Check(in.StockTotal == nil || (*in.StockTotal >= 0 && *in.StockTotal <= maxPoints), "stock_total",
		"must be 0 to 1,000,000,000, or null for unlimited stock")
	v.Check(in.ValidFrom == nil || in.ValidUntil == nil || in.ValidUntil.After(*in.ValidFrom), "valid_until",
		"must be after valid_from")
	v.Check(len(in.BlackoutDates) <= 366, "blackout_dates", "must list at most 366 dates")
	for i, d := range in.BlackoutDates {
		_, err := time.Parse(time.DateOnly, d)
		v.Check(err == nil, fmt.Sprintf("blackout_dates[%d]", i), "must be a date (YYYY-MM-DD)")
	}
	v.Check(in.PerMemberLimit >= 0 && in.PerMemberLimit <= 1000, "per_member_limit", "must be 0 (no limit) to 1000")
	v.Check(in.Fulfilment == FulfilmentInstant || in.Fulfilment == FulfilmentAsync, "fulfilment", "must be instant or async")
	v.Check(in.FulfilmentHours >= 1 && in.FulfilmentHours <= 720, "fulfilment_hours", "must be 1 to 720")
	v.Check(in.Status == StatusActive || in.Status == StatusInactive, "status", "must be active or inactive")
	return v.Err()
}

// Moderation is the operator's change to a reward; nil fields stay as they
// are. Reason is required to hide or suspend (reject) a reward and is kept
// on it for its partner to read; making it visible (approve) clears it.
type Moderation struct {
	Featured   *bool
	Visibility *Visibility
	Reason     string
}

// VoucherUpload reports what an upload of codes did: Added new codes,
// Duplicates already in the pool (ignored) and the free codes now Available.
type VoucherUpload struct {
	Added      int   `json:"added"`
	Duplicates int   `json:"duplicates"`
	Available  int64 `json:"available"`
}

// Offer is a reward as one member sees it: at the price for the member's
// tier, and whether the member's available points cover it.
type Offer struct {
	Reward
	Price      int64 `json:"price"`
	Affordable bool  `json:"affordable"`
}

// BrowseQuery filters the member catalog. Affordable keeps only rewards whose
// price for the member is at most the member's available points.
type BrowseQuery struct {
	PartnerID  int64
	Category   Category
	Featured   bool
	Affordable bool
	Cursor     string
	Limit      int
}

// RewardQuery pages through rewards for a partner or the operator.
type RewardQuery struct {
	PartnerID int64 // 0: all partners (operator)
	// Owner keeps only the operator's or only partners' rewards; empty: both.
	Owner      Owner
	Visibility Visibility
	Cursor     string
	Limit      int
}

// OrderStatus is the life-cycle state of an order.
type OrderStatus string

// Order states. Only pending orders hold points; fulfilled ones captured
// them; the others released them.
const (
	OrderPending   OrderStatus = "pending"
	OrderFulfilled OrderStatus = "fulfilled"
	OrderRejected  OrderStatus = "rejected"
	OrderCancelled OrderStatus = "cancelled"
	OrderExpired   OrderStatus = "expired"
)

// Order is a member's redemption of a reward. Reference is the voucher code
// or booking reference of a fulfilled order; Reason says why it was
// rejected, cancelled or expired. RedemptionRate is the providing partner's
// contract rate at ordering (what the operator reimburses per point).
type Order struct {
	ID                   int64           `json:"id"`
	MemberID             int64           `json:"member_id"`
	RewardID             int64           `json:"reward_id"`
	PartnerID            int64           `json:"partner_id"`
	RewardTitle          string          `json:"reward_title"`
	Category             Category        `json:"category"`
	Points               int64           `json:"points"`
	Status               OrderStatus     `json:"status"`
	Fulfilment           Fulfilment      `json:"fulfilment"`
	ServiceDate          string          `json:"service_date,omitempty"`
	Reference            string          `json:"reference,omitempty"`
	Reason               string          `json:"reason,omitempty"`
	HoldID               int64           `json:"hold_id"`
	CaptureTransactionID int64           `json:"capture_transaction_id,omitempty"`
	RedemptionRate       decimal.Decimal `json:"redemption_rate"`
	Currency             string          `json:"currency"`
	DeadlineAt           time.Time       `json:"deadline_at"`
	CreatedAt            time.Time       `json:"created_at"`
	ClosedAt             *time.Time      `json:"closed_at,omitempty"`
	// Replayed is true when the answer repeats an earlier request. Not stored.
	Replayed bool `json:"-"`
}

// OrderInput is a member's order. ServiceDate (YYYY-MM-DD) is the day the
// reward is used (the night, the flight); empty means today. Blackout dates
// are checked against it.
type OrderInput struct {
	RewardID    int64  `json:"reward_id"`
	ServiceDate string `json:"service_date,omitempty"`
}

// OrderQuery pages through orders. Status empty: every status.
type OrderQuery struct {
	Status OrderStatus
	Cursor string
	Limit  int
}
