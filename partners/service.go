package partners

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// Service owns the partner registry, contracts, outlets and prepaid
// balances. It is safe for concurrent use.
type Service struct {
	db  *gorm.DB
	now func() time.Time

	mu       sync.Mutex
	onStatus []func(partnerID int64) // told after a partner's status changed
}

// NewService builds the service; now is time.Now when nil.
func NewService(db *gorm.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, now: now}
}

// OnStatusChange registers f to be called, after the commit, with the id of
// every partner whose status this service changes (the access service drops
// its cached view of the partner's clients).
func (s *Service) OnStatusChange(f func(partnerID int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onStatus = append(s.onStatus, f)
}

func (s *Service) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// --- registry -------------------------------------------------------------

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

func validTimeZone(tz string) bool {
	if tz == "" || tz == "Local" {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}

// CreatePartner registers a partner in status onboarding. Bad input is a
// validation.Error; a duplicate name (case-insensitive) is ErrPartnerExists.
func (s *Service) CreatePartner(ctx context.Context, in NewPartner) (Partner, error) {
	in.Name = strings.TrimSpace(in.Name)
	var ve validation.Error
	ve.Check(len(in.Name) >= 1 && len(in.Name) <= 200, "name", "must be 1 to 200 characters")
	ve.Check(validSector(in.Sector), "sector", "must be one of airline, hotel, bank, restaurant, retail, fuel, telecom, charity")
	ve.Check(currencyRE.MatchString(in.SettlementCurrency), "settlement_currency", "must be an ISO 4217 code such as EUR")
	ve.Check(validTimeZone(in.TimeZone), "time_zone", "must be an IANA time zone such as Europe/Berlin")
	in.Market = strings.ToUpper(strings.TrimSpace(in.Market))
	in.Category = strings.ToLower(strings.TrimSpace(in.Category))
	ve.Check(in.Market == "" || marketRE.MatchString(in.Market), "market", "must be an ISO 3166-1 country code such as DE")
	ve.Check(len(in.Category) <= 64, "category", "is longer than 64 characters")
	if err := ve.Err(); err != nil {
		return Partner{}, err
	}
	var r partnerRow
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if !in.OverrideOverlap {
			if err := checkOverlap(tx, 0, string(in.Sector), in.Market, in.Category); err != nil {
				return err
			}
		}
		var err error
		r, err = insertPartner(tx, in, s.now())
		return err
	})
	if err != nil {
		return Partner{}, fmt.Errorf("create partner %q: %w", in.Name, err)
	}
	return r.partner(), nil
}

var marketRE = regexp.MustCompile(`^[A-Z]{2}$`)

// Overlaps names the active partners (other than except) that a partner of
// sector, market and category would overlap, by name; none without a market.
func (s *Service) Overlaps(ctx context.Context, except int64, sector Sector, market, category string) ([]string, error) {
	err := checkOverlap(s.db.WithContext(ctx), except, string(sector), strings.ToUpper(strings.TrimSpace(market)),
		strings.ToLower(strings.TrimSpace(category)))
	var oe *OverlapError
	if errors.As(err, &oe) {
		return oe.Partners, nil
	}
	return nil, err
}

// checkOverlap refuses (*OverlapError) a partner of sector, market and
// category other than except when an active partner overlaps it. A partner
// without a market overlaps nobody.
func checkOverlap(tx *gorm.DB, except int64, sector, market, category string) error {
	if market == "" {
		return nil
	}
	rows, err := overlapping(tx, except, sector, market, category)
	if err != nil || len(rows) == 0 {
		return err
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return &OverlapError{Partners: names, Sector: Sector(sector), Market: market}
}

func validSector(s Sector) bool {
	for _, v := range Sectors {
		if v == s {
			return true
		}
	}
	return false
}

// Partner returns one partner or ErrPartnerNotFound.
func (s *Service) Partner(ctx context.Context, id int64) (Partner, error) {
	r, err := selectPartner(s.db.WithContext(ctx), id, false)
	if err != nil {
		return Partner{}, fmt.Errorf("partner %d: %w", id, err)
	}
	return r.partner(), nil
}

// Partners lists partners by id, one page at a time.
func (s *Service) Partners(ctx context.Context, page Page) ([]Partner, error) {
	rows, err := selectPartners(s.db.WithContext(ctx), page)
	if err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	out := make([]Partner, len(rows))
	for i, r := range rows {
		out[i] = r.partner()
	}
	return out, nil
}

// SetPartnerStatus moves a partner to status. Terminated is final. The
// functions given to OnStatusChange are told after the commit.
func (s *Service) SetPartnerStatus(ctx context.Context, id int64, status Status) (Partner, error) {
	switch status {
	case StatusOnboarding, StatusActive, StatusSuspended, StatusTerminated:
	default:
		return Partner{}, validation.New("status", "must be onboarding, active, suspended or terminated")
	}
	var out Partner
	err := s.tx(ctx, func(tx *gorm.DB) error {
		cur, err := selectPartner(tx, id, true)
		if err != nil {
			return err
		}
		if Status(cur.Status) == StatusTerminated && status != StatusTerminated {
			return validation.New("status", "a terminated partner cannot be reactivated")
		}
		r, err := updatePartnerStatus(tx, id, status, s.now())
		out = r.partner()
		return err
	})
	if err != nil {
		return Partner{}, fmt.Errorf("set status of partner %d: %w", id, err)
	}
	s.mu.Lock()
	listeners := s.onStatus
	s.mu.Unlock()
	for _, f := range listeners {
		f(id)
	}
	return out, nil
}

// CreateOutlet adds an outlet to a partner. Codes are unique per partner
// (ErrOutletExists).
func (s *Service) CreateOutlet(ctx context.Context, partnerID int64, in NewOutlet) (Outlet, error) {
	in.Name = strings.TrimSpace(in.Name)
	var ve validation.Error
	ve.Check(outletCodeRE.MatchString(in.Code), "code", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	ve.Check(len(in.Name) >= 1 && len(in.Name) <= 200, "name", "must be 1 to 200 characters")
	ve.Check(len(in.Address) <= 500, "address", "must be at most 500 characters")
	ve.Check(in.TimeZone == "" || validTimeZone(in.TimeZone), "time_zone", "must be an IANA time zone such as Europe/Berlin")
	if err := ve.Err(); err != nil {
		return Outlet{}, err
	}
	r, err := insertOutlet(s.db.WithContext(ctx), partnerID, in, s.now())
	if err != nil {
		return Outlet{}, fmt.Errorf("create outlet %q of partner %d: %w", in.Code, partnerID, err)
	}
	return r.outlet(), nil
}

var outletCodeRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Outlets lists a partner's outlets by id (ErrPartnerNotFound for an unknown partner).
func (s *Service) Outlets(ctx context.Context, partnerID int64, page Page) ([]Outlet, error) {
	db := s.db.WithContext(ctx)
	if _, err := selectPartner(db, partnerID, false); err != nil {
		return nil, fmt.Errorf("outlets of partner %d: %w", partnerID, err)
	}
	rows, err := selectOutlets(db, partnerID, page)
	if err != nil {
		return nil, fmt.Errorf("outlets of partner %d: %w", partnerID, err)
	}
	out := make([]Outlet, len(rows))
	for i, r := range rows {
		out[i] = r.outlet()
	}
	return out, nil
}

// --- contracts ------------------------------------------------------------

// maxDecimalPlaces is the scale of the numeric columns: a price with more
// places is refused rather than rounded silently by the database.
const maxDecimalPlaces = 8

func decimalFits(d decimal.Decimal) bool { return d.Equal(d.Truncate(maxDecimalPlaces)) }

// PublishContract adds a new version of a partner's contract. Versions are
// immutable and numbered 1, 2, ...; a new version must take effect after the
// latest existing one, and, except for the first, not in the past (terms
// already applied to transactions are never rewritten). Publishing a prepaid
// version opens the partner's prepaid account (balance 0) if it has none.
func (s *Service) PublishContract(ctx context.Context, partnerID int64, in NewContract, actor string) (Contract, error) {
	var out Contract
	err := s.tx(ctx, func(tx *gorm.DB) error {
		// The partner row lock serialises version numbering per partner.
		p, err := selectPartner(tx, partnerID, true)
		if err != nil {
			return err
		}
		if in.Currency == "" {
			in.Currency = p.SettlementCurrency
		}
		latest, has, err := latestContract(tx, partnerID)
		if err != nil {
			return err
		}
		now := s.now()
		if err := validateContract(in, p, latest, has, now); err != nil {
			return err
		}
		if !in.OverrideOverlap {
			if err := checkOverlap(tx, partnerID, p.Sector, p.Market, p.Category); err != nil {
				return err
			}
		}
		version := 1
		if has {
			version = latest.Version + 1
		}
		if actor == "" {
			actor = "system"
		}
		r, err := insertContract(tx, partnerID, version, in, actor, now)
		if err != nil {
			return err
		}
		if in.Billing == BillingPrepaid {
			if err := ensurePrepaidAccount(tx, partnerID, p.SettlementCurrency); err != nil {
				return err
			}
		}
		out = r.contract()
		return nil
	})
	if err != nil {
		return Contract{}, fmt.Errorf("publish contract for partner %d: %w", partnerID, err)
	}
	return out, nil
}

func validateContract(in NewContract, p partnerRow, latest contractRow, has bool, now time.Time) error {
	var ve validation.Error
	if ve.Check(!in.EffectiveFrom.IsZero(), "effective_from", "is required") {
		if has && !in.EffectiveFrom.After(latest.EffectiveFrom) {
			ve.Add("effective_from", fmt.Sprintf("must be after version %d's effective_from (%s)",
				latest.Version, latest.EffectiveFrom.UTC().Format(time.RFC3339)))
		} else if has && in.EffectiveFrom.Before(now.Add(-time.Minute)) {
			ve.Add("effective_from", "must not be in the past: a contract change never applies retroactively")
		}
	}
	ve.Check(in.Earn || in.Burn, "roles", "must include earn, burn or both")
	checkRate := func(field string, d decimal.Decimal, max decimal.Decimal) {
		switch {
		case d.IsNegative():
			ve.Add(field, "must not be negative")
		case !max.IsZero() && d.GreaterThan(max):
			ve.Add(field, "must be at most "+max.String())
		case !decimalFits(d):
			ve.Add(field, fmt.Sprintf("must have at most %d decimal places", maxDecimalPlaces))
		case d.GreaterThanOrEqual(decimal.New(1, 12)):
			ve.Add(field, "is out of range")
		}
	}
	checkRate("issue_price", in.IssuePrice, decimal.Zero)
	checkRate("redemption_rate", in.RedemptionRate, decimal.Zero)
	checkRate("breakage_share", in.BreakageShare, decimal.NewFromInt(1))
	checkRate("operator_fee_rate", in.OperatorFeeRate, decimal.NewFromInt(1))
	ve.Check(in.Currency == p.SettlementCurrency, "currency", "must be the partner's settlement currency "+p.SettlementCurrency)
	switch in.Billing {
	case BillingPrepaid:
		ve.Check(in.Earn, "billing", "prepaid billing needs the earn role")
	case BillingPostpaid:
		ve.Check(in.PrepaidAlertThreshold == 0, "prepaid_alert_threshold", "applies to prepaid billing only")
	default:
		ve.Add("billing", "must be prepaid or postpaid")
	}
	ve.Check(in.PrepaidAlertThreshold >= 0, "prepaid_alert_threshold", "must not be negative")
	ve.Check(in.PendingDays >= 0 && in.PendingDays <= 365, "pending_days", "must be 0 to 365")
	ve.Check(in.CapPerTransaction >= 0, "cap_per_transaction", "must not be negative (0 = no cap)")
	ve.Check(in.CapPerMemberDay >= 0, "cap_per_member_day", "must not be negative (0 = no cap)")
	ve.Check(len(in.Notes) <= 4000, "notes", "must be at most 4000 characters")
	return ve.Err()
}

// ContractAt returns the contract version in force at t: the latest with
// effective_from <= t. ErrNoContract when none is (yet) in force.
func (s *Service) ContractAt(ctx context.Context, partnerID int64, t time.Time) (Contract, error) {
	r, err := contractAt(s.db.WithContext(ctx), partnerID, t)
	if err != nil {
		return Contract{}, fmt.Errorf("contract of partner %d at %s: %w", partnerID, t.UTC().Format(time.RFC3339), err)
	}
	return r.contract(), nil
}

// Contracts lists every version of a partner's contract, oldest first.
func (s *Service) Contracts(ctx context.Context, partnerID int64, page Page) ([]Contract, error) {
	db := s.db.WithContext(ctx)
	if _, err := selectPartner(db, partnerID, false); err != nil {
		return nil, fmt.Errorf("contracts of partner %d: %w", partnerID, err)
	}
	rows, err := selectContracts(db, partnerID, page)
	if err != nil {
		return nil, fmt.Errorf("contracts of partner %d: %w", partnerID, err)
	}
	out := make([]Contract, len(rows))
	for i, r := range rows {
		out[i] = r.contract()
	}
	return out, nil
}

// ContractVersionsWith returns every version of the partner's contract in
// tx (the caller's snapshot), latest effective_from first; the version in
// force at t is the first that is not after t.
func (s *Service) ContractVersionsWith(tx *gorm.DB, partnerID int64) ([]Contract, error) {
	return ContractVersionsWith(tx, partnerID)
}

// ContractVersionsWith is Service.ContractVersionsWith for a caller that
// has no Service: the settlement close, inside its own snapshot.
func ContractVersionsWith(tx *gorm.DB, partnerID int64) ([]Contract, error) {
	rows, err := contractVersions(tx, partnerID)
	if err != nil {
		return nil, fmt.Errorf("contracts of partner %d: %w", partnerID, err)
	}
	out := make([]Contract, len(rows))
	for i, r := range rows {
		out[i] = r.contract()
	}
	return out, nil
}

// --- prepaid --------------------------------------------------------------

// PrepaidBalance returns a prepaid partner's balance; ErrNotPrepaid when the
// partner never had a prepaid contract.
func (s *Service) PrepaidBalance(ctx context.Context, partnerID int64) (PrepaidBalance, error) {
	b, ok, err := selectPrepaidAccount(s.db.WithContext(ctx), partnerID)
	if err == nil && !ok {
		err = ErrNotPrepaid
	}
	if err != nil {
		return PrepaidBalance{}, fmt.Errorf("prepaid balance of partner %d: %w", partnerID, err)
	}
	return b, nil
}

// TopUp credits a prepaid partner's balance (the operator received money).
// ref (e.g. the bank transfer reference) is unique per partner: a repeated
// top-up with the same ref is ErrDuplicateRef and changes nothing.
func (s *Service) TopUp(ctx context.Context, partnerID int64, amount money.Money, ref, actor string) (PrepaidBalance, error) {
	var ve validation.Error
	ve.Check(amount.Minor > 0, "amount.minor", "must be positive")
	ve.Check(currencyRE.MatchString(amount.Currency), "amount.currency", "must be an ISO 4217 code")
	ve.Check(len(ref) >= 1 && len(ref) <= 200, "ref", "must be 1 to 200 characters")
	if err := ve.Err(); err != nil {
		return PrepaidBalance{}, err
	}
	var out PrepaidBalance
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = s.move(tx, partnerID, "top_up", amount, ref, actor)
		return err
	})
	if err != nil {
		return PrepaidBalance{}, fmt.Errorf("top up partner %d: %w", partnerID, err)
	}
	return out, nil
}

// DrawDown takes amount from a prepaid partner's balance inside the caller's
// transaction tx (the earn that costs the money), so both commit or neither.
// It fails with ErrPrepaidExhausted when the balance would go below zero,
// ErrNotPrepaid when the partner has no prepaid account, ErrDuplicateRef when
// ref was drawn before, and a validation.Error for a currency other than the
// partner's. It returns the balance after the draw-down (for the alert
// threshold). Concurrent draw-downs serialise on the partner's prepaid
// account row; call it only for partners whose contract bills prepaid.
func (s *Service) DrawDown(tx *gorm.DB, partnerID int64, amount money.Money, ref string) (PrepaidBalance, error) {
	var ve validation.Error
	ve.Check(amount.Minor > 0, "amount.minor", "must be positive")
	ve.Check(len(ref) >= 1 && len(ref) <= 200, "ref", "must be 1 to 200 characters")
	if err := ve.Err(); err != nil {
		return PrepaidBalance{}, err
	}
	b, err := s.move(tx, partnerID, "draw_down", amount, ref, "system")
	if err != nil {
		return PrepaidBalance{}, fmt.Errorf("draw down %d %s from partner %d: %w", amount.Minor, amount.Currency, partnerID, err)
	}
	return b, nil
}

func (s *Service) move(tx *gorm.DB, partnerID int64, kind string, amount money.Money, ref, actor string) (PrepaidBalance, error) {
	delta := amount.Minor
	if kind == "draw_down" {
		delta = -delta
	}
	if actor == "" {
		actor = "system"
	}
	bal, ok, err := adjustPrepaid(tx, partnerID, kind, delta, amount.Currency, ref, actor, s.now())
	if err != nil {
		return PrepaidBalance{}, err
	}
	if ok {
		return PrepaidBalance{PartnerID: partnerID, Balance: money.Money{Minor: bal, Currency: amount.Currency}}, nil
	}
	acct, exists, err := selectPrepaidAccount(tx, partnerID)
	switch {
	case err != nil:
		return PrepaidBalance{}, err
	case !exists:
		return PrepaidBalance{}, ErrNotPrepaid
	case acct.Balance.Currency != amount.Currency:
		return PrepaidBalance{}, validation.New("amount.currency", "must be the partner's settlement currency "+acct.Balance.Currency)
	}
	return PrepaidBalance{}, ErrPrepaidExhausted
}
