package exchange

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/validation"
)

// Direction of an exchange.
type Direction string

const (
	// Outbound: coalition points to partner units.
	Outbound Direction = "outbound"
	// Inbound: partner units to coalition points.
	Inbound Direction = "inbound"
)

// Status of an exchange.
type Status string

// Exchange states. Processing and pending are open; the others are final
// except completed, which a partner reversal turns into reversed.
const (
	StatusProcessing Status = "processing"
	StatusPending    Status = "pending"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusReversed   Status = "reversed"
)

// Ratio converts From of one currency into To of the other; both positive.
type Ratio struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Convert applies the ratio to n, rounding down.
func (r Ratio) Convert(n int64) int64 {
	if r.From <= 0 {
		return 0
	}
	return n/r.From*r.To + n%r.From*r.To/r.From
}

// BonusBand gives Percent extra partner units to outbound exchanges of at
// least FromPoints points. The highest band reached applies.
type BonusBand struct {
	FromPoints int64           `json:"from_points"`
	Percent    decimal.Decimal `json:"percent"`
}

// Programme is a partner's currency and the terms for exchanging into and
// out of it. Out is nil when members cannot send points to the programme,
// In is nil when the partner cannot send units to the coalition. Min, Max,
// Increment and MonthlyMax count coalition points (0 MonthlyMax = none).
type Programme struct {
	ID              int64         `json:"id"`
	PartnerID       int64         `json:"partner_id"`
	Code            string        `json:"code"`
	Name            string        `json:"name"`
	Unit            string        `json:"unit"`
	Status          string        `json:"status"`
	Out             *Ratio        `json:"out,omitempty"`
	In              *Ratio        `json:"in,omitempty"`
	Increment       int64         `json:"increment"`
	MinPoints       int64         `json:"min_points"`
	MaxPoints       int64         `json:"max_points"`
	MonthlyMax      int64         `json:"monthly_max_points"`
	FeePoints       int64         `json:"fee_points"`
	FeeMinor        int64         `json:"fee_minor"`
	FeeCurrency     string        `json:"fee_currency,omitempty"`
	BonusBands      []BonusBand   `json:"bonus_bands"`
	EndpointURL     string        `json:"endpoint_url"`
	PendingDeadline time.Duration `json:"-"`
	CreatedAt       time.Time     `json:"created_at"`
}

// NewProgramme is the input of CreateProgramme. APIKey is the credential
// the hub presents to the partner's endpoint; it is stored sealed.
type NewProgramme struct {
	PartnerID       int64
	Code            string
	Name            string
	Unit            string
	Out             *Ratio
	In              *Ratio
	Increment       int64
	MinPoints       int64
	MaxPoints       int64
	MonthlyMax      int64
	FeePoints       int64
	FeeMinor        int64
	FeeCurrency     string
	BonusBands      []BonusBand
	EndpointURL     string
	APIKey          string
	PendingDeadline time.Duration // default 72h
}

func (in *NewProgramme) normalise() error {
	var v validation.Error
	if in.Increment == 0 {
		in.Increment = 1
	}
	if in.MinPoints == 0 {
		in.MinPoints = in.Increment
	}
	if in.PendingDeadline == 0 {
		in.PendingDeadline = 72 * time.Hour
	}
	v.Check(in.PartnerID > 0, "partner_id", "is required")
	v.Check(codeRE.MatchString(in.Code), "code", "must be 2 to 40 of a-z, 0-9, _ and -")
	v.Check(in.Name != "" && len(in.Name) <= 200, "name", "is required (at most 200 characters)")
	v.Check(in.Unit != "" && len(in.Unit) <= 40, "unit", "is required (at most 40 characters)")
	v.Check(in.Out != nil || in.In != nil, "out", "at least one direction is required")
	if in.Out != nil {
		v.Check(in.Out.From > 0 && in.Out.To > 0, "out", "both sides of the ratio must be positive")
	}
	if in.In != nil {
		v.Check(in.In.From > 0 && in.In.To > 0, "in", "both sides of the ratio must be positive")
	}
	v.Check(in.Increment > 0, "increment", "must be positive")
	v.Check(in.MinPoints > 0, "min_points", "must be positive")
	v.Check(in.MaxPoints >= in.MinPoints && in.MaxPoints < 1_000_000_000, "max_points", "must be at least min_points and below 1,000,000,000")
	v.Check(in.MonthlyMax >= 0, "monthly_max_points", "must not be negative")
	v.Check(in.FeePoints >= 0, "fee_points", "must not be negative")
	v.Check(in.FeeMinor >= 0, "fee_minor", "must not be negative")
	v.Check(in.FeeMinor == 0 || currencyRE.MatchString(in.FeeCurrency), "fee_currency", "is required with a money fee (ISO 4217)")
	v.Check(urlRE.MatchString(in.EndpointURL), "endpoint_url", "must be an http(s) URL")
	v.Check(in.APIKey != "" && len(in.APIKey) <= 500, "api_key", "is required")
	v.Check(in.PendingDeadline > 0, "pending_deadline", "must be positive")
	for i, b := range in.BonusBands {
		v.Check(b.FromPoints > 0, fmt.Sprintf("bonus_bands[%d].from_points", i), "must be positive")
		v.Check(b.Percent.IsPositive() && b.Percent.LessThanOrEqual(decimal.NewFromInt(1000)),
			fmt.Sprintf("bonus_bands[%d].percent", i), "must be above 0 and at most 1000")
	}
	sort.Slice(in.BonusBands, func(i, j int) bool { return in.BonusBands[i].FromPoints < in.BonusBands[j].FromPoints })
	if in.BonusBands == nil {
		in.BonusBands = []BonusBand{}
	}
	return v.Err()
}

// Link is a member's validated account in a partner programme.
type Link struct {
	ID          int64     `json:"id"`
	MemberID    int64     `json:"member_id"`
	ProgrammeID int64     `json:"programme_id"`
	Account     string    `json:"account"`
	ValidatedAt time.Time `json:"validated_at"`
}

// Quote prices an outbound exchange. Debit = Points + FeePoints is what
// confirming holds; Units = BaseUnits + BonusUnits is what the partner credits.
type Quote struct {
	ID          string    `json:"id"`
	MemberID    int64     `json:"member_id"`
	ProgrammeID int64     `json:"programme_id"`
	Points      int64     `json:"points"`
	FeePoints   int64     `json:"fee_points"`
	Debit       int64     `json:"debit"`
	BaseUnits   int64     `json:"base_units"`
	BonusUnits  int64     `json:"bonus_units"`
	Units       int64     `json:"units"`
	Unit        string    `json:"unit"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Exchange is one exchange in either direction. PublicID is the transaction
// id the partner sees. TransactionID is the ledger capture (outbound) or earn
// (inbound).
type Exchange struct {
	ID            int64      `json:"id"`
	PublicID      string     `json:"public_id"`
	Direction     Direction  `json:"direction"`
	ProgrammeID   int64      `json:"programme_id"`
	PartnerID     int64      `json:"partner_id"`
	MemberID      int64      `json:"member_id"`
	Account       string     `json:"account"`
	Points        int64      `json:"points"`
	FeePoints     int64      `json:"fee_points"`
	Units         int64      `json:"units"`
	BonusUnits    int64      `json:"bonus_units"`
	Status        Status     `json:"status"`
	HoldID        int64      `json:"hold_id,omitempty"`
	TransactionID int64      `json:"transaction_id,omitempty"`
	ReversalTxID  int64      `json:"reversal_transaction_id,omitempty"`
	PartnerRef    string     `json:"partner_ref,omitempty"`
	FailureReason string     `json:"failure_reason,omitempty"`
	Attempts      int        `json:"attempts"`
	DeadlineAt    *time.Time `json:"deadline_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	History       []Event    `json:"history,omitempty"`
	Replayed      bool       `json:"-"`
}

// Event is one entry of an exchange's append-only history.
type Event struct {
	Status    Status    `json:"status"`
	Event     string    `json:"event"`
	Detail    string    `json:"detail,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Filter selects exchanges for List. Cursor is the previous page's last id.
type Filter struct {
	MemberID  int64
	PartnerID int64
	Status    Status
	After     int64
	Limit     int
}

// PriceOutbound is the pure outbound rule: it checks points against the
// programme's minimum, maximum and increment and returns the base and bonus
// units (both rounded down). Errors: *validation.Error, ErrDirectionClosed.
func PriceOutbound(p Programme, points int64) (base, bonus int64, err error) {
	if p.Out == nil {
		return 0, 0, ErrDirectionClosed
	}
	if err := checkAmount(p, points); err != nil {
		return 0, 0, err
	}
	base = p.Out.Convert(points)
	if base <= 0 {
		return 0, 0, validation.New("points", "converts to no units")
	}
	var pct decimal.Decimal
	for _, b := range p.BonusBands {
		if points >= b.FromPoints {
			pct = b.Percent
		}
	}
	bonus = decimal.NewFromInt(base).Mul(pct).Div(decimal.NewFromInt(100)).Floor().IntPart()
	return base, bonus, nil
}

// PriceInbound converts partner units into points at the inbound ratio
// (rounded down) and checks the result against the programme's limits.
// Errors: *validation.Error, ErrDirectionClosed.
func PriceInbound(p Programme, units int64) (int64, error) {
	if p.In == nil {
		return 0, ErrDirectionClosed
	}
	if units <= 0 || units >= 1_000_000_000 {
		return 0, validation.New("units", "must be above 0 and below 1,000,000,000")
	}
	points := p.In.Convert(units)
	if points < p.MinPoints || points > p.MaxPoints {
		return 0, validation.New("units", fmt.Sprintf("gives %d points; the programme takes %d to %d", points, p.MinPoints, p.MaxPoints))
	}
	return points, nil
}

func checkAmount(p Programme, points int64) error {
	var v validation.Error
	v.Check(points >= p.MinPoints, "points", fmt.Sprintf("must be at least %d", p.MinPoints))
	v.Check(points <= p.MaxPoints, "points", fmt.Sprintf("must be at most %d", p.MaxPoints))
	v.Check(p.Increment <= 0 || points%p.Increment == 0, "points", fmt.Sprintf("must be a multiple of %d", p.Increment))
	return v.Err()
}
