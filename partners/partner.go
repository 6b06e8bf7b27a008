package partners

import (
	"time"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/shopspring/decimal"
)

// Sector is what a partner sells.
type Sector string

const (
	SectorAirline    Sector = "airline"
	SectorHotel      Sector = "hotel"
	SectorBank       Sector = "bank"
	SectorRestaurant Sector = "restaurant"
	SectorRetail     Sector = "retail"
	SectorFuel       Sector = "fuel"
	SectorTelecom    Sector = "telecom"
	// SectorCharity partners receive members' point donations from the
	// catalog (migration 00101); a donation is a redemption at the charity.
	SectorCharity Sector = "charity"
)

// Sectors lists every valid sector.
var Sectors = []Sector{SectorAirline, SectorHotel, SectorBank, SectorRestaurant, SectorRetail, SectorFuel, SectorTelecom, SectorCharity}

// Status is a partner's lifecycle state. Onboarding and active partners can
// obtain tokens (onboarding is the sandbox phase); suspended and terminated
// partners cannot, and their live tokens stop working within ClientCacheTTL.
type Status string

const (
	StatusOnboarding Status = "onboarding"
	StatusActive     Status = "active"
	StatusSuspended  Status = "suspended"
	StatusTerminated Status = "terminated"
)

// Live reports whether a partner in this state may call the API.
func (s Status) Live() bool { return s == StatusOnboarding || s == StatusActive }

// Partner is a member of the coalition.
type Partner struct {
	ID                 int64
	Name               string
	Sector             Sector
	Status             Status
	SettlementCurrency string // ISO 4217
	TimeZone           string // IANA name, e.g. Europe/Berlin
	Market             string // ISO 3166-1 alpha-2 country; "" = none given
	Category           string // within the sector, e.g. supermarket; "" = the whole sector
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// NewPartner is the input of CreatePartner. OverrideOverlap creates the
// partner even when it overlaps an active partner (ErrCategoryOverlap).
type NewPartner struct {
	Name               string
	Sector             Sector
	SettlementCurrency string
	TimeZone           string
	Market             string
	Category           string
	OverrideOverlap    bool
}

// Outlet is a place (store, hotel, airport desk) where a partner transacts.
type Outlet struct {
	ID        int64
	PartnerID int64
	Code      string // the partner's own code, unique per partner
	Name      string
	Address   string
	TimeZone  string // empty: the partner's
	Status    string // active | closed
	CreatedAt time.Time
}

// NewOutlet is the input of CreateOutlet.
type NewOutlet struct {
	Code     string
	Name     string
	Address  string
	TimeZone string
}

// Billing is how a partner pays for the points its customers earn.
type Billing string

const (
	// BillingPrepaid partners buy points ahead: each earn draws down a prepaid
	// money balance and is refused when the balance is empty.
	BillingPrepaid Billing = "prepaid"
	// BillingPostpaid partners are invoiced at settlement.
	BillingPostpaid Billing = "postpaid"
)

// Contract is one immutable version of a partner's commercial terms. The
// version in force at t is the one with the latest EffectiveFrom <= t.
type Contract struct {
	ID            int64
	PartnerID     int64
	Version       int
	EffectiveFrom time.Time
	Earn          bool // earn role: the partner's customers earn points
	Burn          bool // burn role: members spend points at the partner
	// IssuePrice is what the partner pays per point its customers earn, in
	// Currency units (0.0075 = 0.75 cents per point).
	IssuePrice decimal.Decimal
	// RedemptionRate is what the operator pays the partner per point burned at it.
	RedemptionRate        decimal.Decimal
	Currency              string // = the partner's settlement currency
	Billing               Billing
	PrepaidAlertThreshold int64           // minor units; 0 = no alert; prepaid only
	PendingDays           int             // earned points become available after this many days
	CapPerTransaction     int64           // points; 0 = no cap
	CapPerMemberDay       int64           // points; 0 = no cap
	BreakageShare         decimal.Decimal // 0..1: partner's share of breakage
	OperatorFeeRate       decimal.Decimal // 0..1
	Notes                 string
	CreatedAt             time.Time
	CreatedBy             string
}

// NewContract is the input of PublishContract. Currency may be empty and then
// defaults to the partner's settlement currency.
type NewContract struct {
	EffectiveFrom         time.Time
	Earn, Burn            bool
	IssuePrice            decimal.Decimal
	RedemptionRate        decimal.Decimal
	Currency              string
	Billing               Billing
	PrepaidAlertThreshold int64
	PendingDays           int
	CapPerTransaction     int64
	CapPerMemberDay       int64
	BreakageShare         decimal.Decimal
	OperatorFeeRate       decimal.Decimal
	Notes                 string
	// OverrideOverlap publishes the contract even when its partner overlaps
	// an active partner (ErrCategoryOverlap).
	OverrideOverlap bool
}

// PrepaidBalance is a prepaid partner's money balance.
type PrepaidBalance struct {
	PartnerID int64
	Balance   money.Money
}

// PrepaidMovement is one top-up (positive) or draw-down (negative).
type PrepaidMovement struct {
	ID        int64
	PartnerID int64
	Kind      string      // top_up | draw_down
	Amount    money.Money // positive for a top-up, negative for a draw-down
	Ref       string
	CreatedAt time.Time
	CreatedBy string
}

// Page asks for one page of a list: items with id > After, at most Limit.
type Page struct {
	After int64
	Limit int
}

// Size is the number of items the page holds at most: Limit, 50 when
// unset, never over 200.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return 50
	case p.Limit > 200:
		return 200
	}
	return p.Limit
}
