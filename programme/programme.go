package programme

import (
	"time"

	"github.com/shopspring/decimal"
)

// ExpiryMode is how the programme's points expire.
type ExpiryMode string

// Expiry modes.
const (
	// ExpiryNever: points never expire.
	ExpiryNever ExpiryMode = "never"
	// ExpiryFixedLifetime: each earn expires Months after it occurred.
	ExpiryFixedLifetime ExpiryMode = "fixed_lifetime"
	// ExpiryInactivity: all of a member's points expire after Months without an earn or burn.
	ExpiryInactivity ExpiryMode = "inactivity"
	// ExpiryEndOfYear: points expire at the end of the Years-th calendar year
	// (UTC), counting the year of the earn as the first.
	ExpiryEndOfYear ExpiryMode = "end_of_year"
)

// TierWindow is the period whose qualifying credits count.
type TierWindow string

// Tier windows.
const (
	WindowRolling12Months TierWindow = "rolling_12_months"
	WindowCalendarYear    TierWindow = "calendar_year"
)

// Downgrade is what the yearly review does to a member who no longer qualifies.
type Downgrade string

// Downgrade rules.
const (
	// DowngradeToQualified drops to the highest level the member qualifies for.
	DowngradeToQualified Downgrade = "to_qualified"
	// DowngradeOneLevel drops at most one level per review.
	DowngradeOneLevel Downgrade = "one_level"
)

// Policy is the programme's configuration (one row).
type Policy struct {
	Currency            string          `json:"currency"`
	ExpiryMode          ExpiryMode      `json:"expiry_mode"`
	ExpiryMonths        int             `json:"expiry_months"`
	ExpiryYears         int             `json:"expiry_years"`
	NoticeDays          int             `json:"notice_days"`
	TransfersEnabled    bool            `json:"transfers_enabled"`
	TransferMin         int64           `json:"transfer_min"`
	TransferPerTransfer int64           `json:"transfer_per_transfer"`
	TransferDaily       int64           `json:"transfer_daily"`
	TransferMonthly     int64           `json:"transfer_monthly"`
	TransferFeeFixed    int64           `json:"transfer_fee_fixed"`
	TransferFeeRate     decimal.Decimal `json:"transfer_fee_rate"`
	BirthdayPoints      int64           `json:"birthday_points"`
	TierWindow          TierWindow      `json:"tier_window"`
	TierDowngrade       Downgrade       `json:"tier_downgrade"`
	// ErasureAfterDays: a member who withdraws marketing consent is erased
	// this many days later (0 to 30; nil = never).
	ErasureAfterDays *int      `json:"erasure_after_days"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Metric is a qualifying measure of activity.
type Metric string

// Qualifying metrics. Spend counts earns in the policy currency only, in minor units.
const (
	MetricPoints   Metric = "qualifying_points"
	MetricSpend    Metric = "spend_minor"
	MetricNights   Metric = "nights"
	MetricStays    Metric = "stays"
	MetricFlights  Metric = "flights"
	MetricPartners Metric = "partners"
)

// Metrics lists every metric in a stable order.
var metrics = []Metric{MetricPoints, MetricSpend, MetricNights, MetricStays, MetricFlights, MetricPartners}

// Credits are a member's qualifying totals over a window.
type Credits map[Metric]int64

// Entitlement is a named tier benefit partners read, e.g. late_checkout = "16:00".
type Entitlement struct {
	Code  string `json:"code"`
	Value string `json:"value,omitempty"`
}

// Tier is one level. Rank 0 is the base level; Thresholds combine with OR.
type Tier struct {
	Code           string           `json:"code"`
	Name           string           `json:"name"`
	Rank           int              `json:"rank"`
	InvitationOnly bool             `json:"invitation_only"`
	Thresholds     map[Metric]int64 `json:"thresholds"`
	Entitlements   []Entitlement    `json:"entitlements"`
}

// Grant gives a member a tier from StartsAt until EndsAt (nil = lifetime).
type Grant struct {
	ID        int64      `json:"id"`
	MemberID  int64      `json:"member_id"`
	TierCode  string     `json:"tier_code"`
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor"`
	StartsAt  time.Time  `json:"starts_at"`
	EndsAt    *time.Time `json:"ends_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Active reports whether g is in force at t.
func (g Grant) Active(t time.Time) bool {
	return !g.StartsAt.After(t) && (g.EndsAt == nil || g.EndsAt.After(t))
}

// Status is what the hub says about a member's standing: the tier with its
// benefits and the qualifying credits of the current window.
type Status struct {
	MemberID     int64         `json:"member_id"`
	Tier         string        `json:"tier"`
	TierName     string        `json:"tier_name"`
	Rank         int           `json:"rank"`
	Since        *time.Time    `json:"since,omitempty"`
	Entitlements []Entitlement `json:"entitlements"`
	Credits      Credits       `json:"credits"`
	WindowFrom   time.Time     `json:"window_from"`
	WindowTo     time.Time     `json:"window_to"`
}

// Notice is a "points expiring" notice.
type Notice struct {
	ID        int64     `json:"id"`
	MemberID  int64     `json:"member_id"`
	ExpiresAt time.Time `json:"expires_at"`
	Points    int64     `json:"points"`
	CreatedAt time.Time `json:"created_at"`
}

// CompanyLevel is a corporate level: companies whose yearly spend is at least
// MinSpendMinor earn Rate points per currency unit of eligible spend.
type CompanyLevel struct {
	Code          string          `json:"code"`
	Name          string          `json:"name"`
	MinSpendMinor int64           `json:"min_spend_minor"`
	Rate          decimal.Decimal `json:"rate"`
}

// Company is a corporate account. Its points live in the ledger account of
// AccountMemberID (a member record of its own).
type Company struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	AccountMemberID int64     `json:"account_member_id"`
	Level           string    `json:"level"`
	LevelSince      time.Time `json:"level_since"`
	CreatedAt       time.Time `json:"created_at"`
}
