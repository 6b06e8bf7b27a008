package programme

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/rules"
)

// Scope is the ledger idempotency scope of the programme's own postings.
const Scope = "programme"

// Service runs the programme's use cases. It implements points.Programme.
type Service struct {
	db      *gorm.DB
	ledger  *ledger.Service
	members *members.Service
	consent *members.BurnConsent
	now     func() time.Time

	// cfg caches the policy, the tier definitions (by rank) and the set of
	// corporate partners: every earn needs them and they change a few times a
	// year. Writes through this service drop the cache at once; another
	// process sees a change within ConfigTTL.
	cfgMu        sync.Mutex
	cfgAt        time.Time
	cfgTiers     []Tier
	cfgPolicy    Policy
	cfgCorporate map[int64]bool
	// ConfigTTL bounds how stale the cached configuration may be (5s).
	ConfigTTL time.Duration
}

// config returns the policy and tiers, from the cache when it is fresh.
func (s *Service) config(db *gorm.DB) ([]Tier, Policy, error) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	now := time.Now()
	if s.freshLocked(now) {
		return s.cfgTiers, s.cfgPolicy, nil
	}
	tiers, err := loadTiers(db)
	if err != nil {
		return nil, Policy{}, err
	}
	p, err := loadPolicy(db)
	if err != nil {
		return nil, Policy{}, err
	}
	corporate, err := loadCorporatePartners(db)
	if err != nil {
		return nil, Policy{}, err
	}
	s.cfgAt, s.cfgTiers, s.cfgPolicy, s.cfgCorporate = now, sortTiers(tiers), p, corporate
	return s.cfgTiers, p, nil
}

// corporate reports whether purchases at the partner credit the buyer's
// company (from the cached configuration).
func (s *Service) corporate(db *gorm.DB, partnerID int64) (bool, error) {
	if _, _, err := s.config(db); err != nil {
		return false, err
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return s.cfgCorporate[partnerID], nil
}

func (s *Service) dropConfig() {
	s.cfgMu.Lock()
	s.cfgAt = time.Time{}
	s.cfgMu.Unlock()
}

var _ points.Programme = (*Service)(nil)

// NewService returns the programme service.
func NewService(db *gorm.DB, l *ledger.Service, m *members.Service, c *members.BurnConsent, now func() time.Time) *Service {
	return &Service{db: db, ledger: l, members: m, consent: c, now: now, ConfigTTL: 5 * time.Second}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ---- policy

// Policy returns the programme policy.
func (s *Service) Policy(ctx context.Context) (Policy, error) {
	_, p, err := s.configCtx(ctx)
	return p, err
}

// configCtx is config outside a transaction: it opens a database session
// only when the cache is stale (the expiry of every earn and the tier of every
// batch item ask, and a session per call showed in the batch's profile).
func (s *Service) configCtx(ctx context.Context) ([]Tier, Policy, error) {
	s.cfgMu.Lock()
	if s.freshLocked(time.Now()) {
		defer s.cfgMu.Unlock()
		return s.cfgTiers, s.cfgPolicy, nil
	}
	s.cfgMu.Unlock()
	return s.config(s.db.WithContext(ctx))
}

// freshLocked reports whether the cached configuration may still be used at
// now; cfgMu is held.
func (s *Service) freshLocked(now time.Time) bool {
	return !s.cfgAt.IsZero() && now.Sub(s.cfgAt) < s.ConfigTTL
}

// SetPolicy replaces the programme policy. Bad values are a *validation.Error
// (the database re-checks every rule).
func (s *Service) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	if err := p.validate(); err != nil {
		return Policy{}, err
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return savePolicy(tx, p, s.clock()) })
	s.dropConfig()
	if err != nil {
		return Policy{}, fmt.Errorf("set programme policy: %w", err)
	}
	return s.Policy(ctx)
}

func (p Policy) validate() error {
	var v validation.Error
	v.Check(regexp.MustCompile(`^[A-Z]{3}$`).MatchString(p.Currency), "currency", "must be an ISO 4217 code")
	v.Check(p.ErasureAfterDays == nil || (*p.ErasureAfterDays >= 0 && *p.ErasureAfterDays <= 30), "erasure_after_days",
		"must be 0 to 30 (erasure is due within 30 days of the withdrawal), or null for never")
	switch p.ExpiryMode {
	case ExpiryNever:
		v.Check(p.ExpiryMonths == 0 && p.ExpiryYears == 0, "expiry_months", "must be 0 when points never expire")
	case ExpiryFixedLifetime, ExpiryInactivity:
		v.Check(p.ExpiryMonths > 0 && p.ExpiryMonths <= 600, "expiry_months", "must be 1 to 600")
		v.Check(p.ExpiryYears == 0, "expiry_years", "must be 0 for this mode")
	case ExpiryEndOfYear:
		v.Check(p.ExpiryYears > 0 && p.ExpiryYears <= 50, "expiry_years", "must be 1 to 50")
		v.Check(p.ExpiryMonths == 0, "expiry_months", "must be 0 for this mode")
	default:
		v.Add("expiry_mode", "must be never, fixed_lifetime, inactivity or end_of_year")
	}
	v.Check(p.NoticeDays >= 1 && p.NoticeDays <= 365, "notice_days", "must be 1 to 365")
	v.Check(p.TransferMin >= 1, "transfer_min", "must be at least 1")
	v.Check(p.TransferPerTransfer >= 0, "transfer_per_transfer", "must not be negative")
	v.Check(p.TransferDaily >= 0, "transfer_daily", "must not be negative")
	v.Check(p.TransferMonthly >= 0, "transfer_monthly", "must not be negative")
	v.Check(p.TransferDaily == 0 || p.TransferMonthly == 0 || p.TransferDaily <= p.TransferMonthly, "transfer_daily", "must not exceed transfer_monthly")
	v.Check(p.TransferFeeFixed >= 0, "transfer_fee_fixed", "must not be negative")
	v.Check(!p.TransferFeeRate.IsNegative() && p.TransferFeeRate.LessThan(decimalOne), "transfer_fee_rate", "must be at least 0 and below 1")
	v.Check(p.BirthdayPoints >= 0 && p.BirthdayPoints <= 1_000_000, "birthday_points", "must be 0 to 1000000")
	v.Check(p.TierWindow == WindowRolling12Months || p.TierWindow == WindowCalendarYear, "tier_window", "must be rolling_12_months or calendar_year")
	v.Check(p.TierDowngrade == DowngradeToQualified || p.TierDowngrade == DowngradeOneLevel, "tier_downgrade", "must be to_qualified or one_level")
	return v.Err()
}

// ---- tiers

var tierCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// PutTier creates or replaces a tier definition. Errors: *validation.Error
// (bad code, rank taken, unknown metric).
func (s *Service) PutTier(ctx context.Context, t Tier) (Tier, error) {
	var v validation.Error
	v.Check(tierCode.MatchString(t.Code), "code", "must be lower-case letters, digits and _ (at most 32)")
	v.Check(len(t.Name) >= 1 && len(t.Name) <= 100, "name", "must be 1 to 100 characters")
	v.Check(t.Rank >= 0 && t.Rank <= 100, "rank", "must be 0 to 100")
	v.Check(t.Rank > 0 || !t.InvitationOnly, "invitation_only", "the base tier (rank 0) cannot be invitation-only")
	for m, min := range t.Thresholds {
		known := false
		for _, k := range metrics {
			known = known || k == m
		}
		v.Check(known, "thresholds."+string(m), "is not a known metric")
		v.Check(min > 0, "thresholds."+string(m), "must be positive")
	}
	for i, e := range t.Entitlements {
		v.Check(tierCode.MatchString(e.Code), fmt.Sprintf("entitlements[%d].code", i), "must be lower-case letters, digits and _")
		v.Check(len(e.Value) <= 200, fmt.Sprintf("entitlements[%d].value", i), "must be at most 200 characters")
	}
	if err := v.Err(); err != nil {
		return Tier{}, err
	}
	if t.Entitlements == nil {
		t.Entitlements = []Entitlement{}
	}
	if t.Thresholds == nil {
		t.Thresholds = map[Metric]int64{}
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return saveTier(tx, t) })
	s.dropConfig()
	if err != nil {
		return Tier{}, err
	}
	return t, nil
}

// Tiers returns the tier definitions by rank.
func (s *Service) Tiers(ctx context.Context) ([]Tier, error) {
	tiers, _, err := s.configCtx(ctx)
	return tiers, err
}

// MemberTier returns the member's tier code: the stored tier, or the base
// tier's code when the member has none ("" when no tiers are defined).
// One primary-key read of the member's tier code (the definitions are
// cached), none when no tiers are defined.
func (s *Service) MemberTier(ctx context.Context, memberID int64) (string, error) {
	tiers, _, err := s.configCtx(ctx)
	if err != nil || len(tiers) == 0 {
		return "", err
	}
	var code *string
	err = database.QueryRow(s.db.WithContext(ctx), `SELECT tier_code FROM programme_member_tiers WHERE member_id = $1`, []any{memberID}, &code)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("tier of member %d: %w", memberID, err)
	}
	return s.tierFromStored(ctx, code)
}

// tierFromStored returns the member's tier from its stored code (nil: none
// stored yet): the base tier when the code is not a defined tier, "" when no
// tiers are defined. The definitions are cached.
func (s *Service) tierFromStored(ctx context.Context, stored *string) (string, error) {
	tiers, _, err := s.configCtx(ctx)
	if err != nil || len(tiers) == 0 {
		return "", err
	}
	if stored != nil {
		for _, t := range tiers {
			if t.Code == *stored {
				return t.Code, nil
			}
		}
	}
	return tiers[0].Code, nil
}

// Status returns the member's tier with its benefits and the qualifying
// credits of the current window.
func (s *Service) Status(ctx context.Context, memberID int64) (Status, error) {
	db := s.db.WithContext(ctx)
	tiers, p, err := s.config(db)
	if err != nil {
		return Status{}, err
	}
	cur, err := currentTier(db, memberID, false)
	if err != nil {
		return Status{}, err
	}
	from, to := Window(p.TierWindow, s.clock(), false)
	c, err := credits(db, memberID, from, to.Add(time.Microsecond))
	if err != nil {
		return Status{}, err
	}
	st := Status{MemberID: memberID, Credits: c, WindowFrom: from, WindowTo: to, Entitlements: []Entitlement{}}
	sorted := sortTiers(tiers)
	var t Tier
	if len(sorted) > 0 {
		t = sorted[0]
	}
	if cur != nil {
		for _, x := range sorted {
			if x.Code == cur.TierCode {
				t = x
			}
		}
		since := cur.Since
		st.Since = &since
	}
	st.Tier, st.TierName, st.Rank = t.Code, t.Name, t.Rank
	if t.Entitlements != nil {
		st.Entitlements = t.Entitlements
	}
	return st, nil
}

// GrantTier gives a member a tier from startsAt until endsAt (nil =
// lifetime) and applies it at once when it is in force and higher. Errors:
// ErrTierNotFound, members.ErrNotFound, *validation.Error.
func (s *Service) GrantTier(ctx context.Context, g Grant) (Grant, error) {
	return s.grantTier(ctx, s.db, g)
}

// GrantTierIn is GrantTier inside the caller's transaction tx (as a
// savepoint), so a campaign records its grant and the tier grant together.
func (s *Service) GrantTierIn(ctx context.Context, tx *gorm.DB, g Grant) (Grant, error) {
	return s.grantTier(ctx, tx, g)
}

func (s *Service) grantTier(ctx context.Context, db *gorm.DB, g Grant) (Grant, error) {
	var v validation.Error
	v.Check(g.MemberID > 0, "member_id", "is required")
	v.Check(strings.TrimSpace(g.Reason) != "" && len(g.Reason) <= 500, "reason", "is required (at most 500 characters)")
	v.Check(g.Actor != "" && len(g.Actor) <= 200, "actor", "is required")
	v.Check(g.EndsAt == nil || g.StartsAt.IsZero() || g.EndsAt.After(g.StartsAt), "ends_at", "must be after starts_at")
	if err := v.Err(); err != nil {
		return Grant{}, err
	}
	if _, err := s.members.Get(ctx, g.MemberID); err != nil {
		return Grant{}, err
	}
	now := s.clock()
	if g.StartsAt.IsZero() {
		g.StartsAt = now
	}
	g.CreatedAt = now
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		tiers, err := loadTiers(tx)
		if err != nil {
			return err
		}
		found := false
		for _, t := range tiers {
			found = found || t.Code == g.TierCode
		}
		if !found {
			return fmt.Errorf("grant tier %q: %w", g.TierCode, ErrTierNotFound)
		}
		if err := tx.Raw(`INSERT INTO programme_tier_grants (member_id, tier_code, reason, actor, starts_at, ends_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, g.MemberID, g.TierCode, g.Reason, g.Actor, g.StartsAt, g.EndsAt, now).
			Scan(&g.ID).Error; err != nil {
			return err
		}
		_, err = s.evaluate(tx, g.MemberID, now, false)
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("grant tier to member %d: %w", g.MemberID, err)
	}
	return g, nil
}

// evaluate re-decides one member's tier inside tx (locking its tier row) and
// stores a change with its history row. review marks the yearly review.
func (s *Service) evaluate(tx *gorm.DB, memberID int64, at time.Time, review bool) (Decision, error) {
	tiers, p, err := s.config(tx)
	if err != nil || len(tiers) == 0 {
		return Decision{}, err
	}
	// Serialise evaluations of one member: create the row lazily, then lock it.
	base := sortTiers(tiers)[0].Code
	// A new row counts as reviewed now: the first review is next year's.
	if err := tx.Exec(`INSERT INTO programme_member_tiers (member_id, tier_code, since, last_review_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id) DO NOTHING`, memberID, base, at, at, at).Error; err != nil {
		return Decision{}, err
	}
	cur, err := currentTier(tx, memberID, true)
	if err != nil {
		return Decision{}, err
	}
	from, to := Window(p.TierWindow, at, review)
	if !review {
		to = to.Add(time.Microsecond) // the window includes the instant of evaluation
	}
	c, err := credits(tx, memberID, from, to)
	if err != nil {
		return Decision{}, err
	}
	grants, err := grantsOf(tx, memberID)
	if err != nil {
		return Decision{}, err
	}
	d := Evaluate(tiers, EvalInput{Current: cur.TierCode, Credits: c, Grants: grants, At: at, Review: review, Downgrade: p.TierDowngrade})
	set := `updated_at = ?`
	args := []any{at}
	if review {
		set += `, last_review_at = ?`
		args = append(args, at)
	}
	if d.Changed {
		set += `, tier_code = ?, since = ?`
		args = append(args, d.Tier.Code, at)
		if err := tx.Exec(`INSERT INTO programme_tier_changes (member_id, from_code, to_code, reason, changed_at)
			VALUES (?, ?, ?, ?, ?)`, memberID, cur.TierCode, d.Tier.Code, d.Reason, at).Error; err != nil {
			return Decision{}, err
		}
	}
	args = append(args, memberID)
	return d, tx.Exec(`UPDATE programme_member_tiers SET `+set+` WHERE member_id = ?`, args...).Error
}

// ReviewTiers runs the yearly review as of at: every member with a tier row
// not yet reviewed since the start of at's year (UTC) is re-evaluated on the
// review window, which may downgrade. Members with active grants whose tier
// is lower than the grant are upgraded. Idempotent: a reviewed member is not
// reviewed again that year. Returns how many members changed tier.
func (s *Service) ReviewTiers(ctx context.Context, at time.Time, batch int) (int, error) {
	at = at.UTC()
	yearStart := time.Date(at.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	changed := 0
	for {
		var ids []int64
		if err := s.db.WithContext(ctx).Raw(`SELECT member_id FROM programme_member_tiers
			WHERE last_review_at IS NULL OR last_review_at < ? ORDER BY member_id LIMIT ?`, yearStart, batch).
			Scan(&ids).Error; err != nil {
			return changed, fmt.Errorf("review tiers: %w", err)
		}
		if len(ids) == 0 {
			return changed, nil
		}
		for _, id := range ids {
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				d, err := s.evaluate(tx, id, at, true)
				if d.Changed {
					changed++
				}
				return err
			})
			if err != nil {
				return changed, fmt.Errorf("review tier of member %d: %w", id, err)
			}
		}
	}
}

// ---- qualifying credits (points.Programme)

// EarnExpiry returns the expiry the policy gives points earned at occurred.
func (s *Service) EarnExpiry(ctx context.Context, occurred time.Time) (*time.Time, error) {
	p, err := s.Policy(ctx)
	if err != nil {
		return nil, err
	}
	return LotExpiry(p, occurred), nil
}

// activityMetrics reads nights, stays and flights from a purchase's activity
// units: night(s); stay(s) or check_in(s) (a night without a stay unit counts
// one stay); segment(s) or flight(s).
// spend is the qualifying spend of a purchase: its amount in the policy's
// currency, nothing in any other.
func (p Policy) spend(m money.Money) int64 {
	if m.Currency != p.Currency {
		return 0
	}
	return m.Minor
}

func activityMetrics(acts []rules.Activity) (nights, stays, flights int64) {
	for _, a := range acts {
		switch strings.TrimSuffix(strings.ToLower(a.Unit), "s") {
		case "night":
			nights += a.Quantity
		case "stay", "check_in":
			stays += a.Quantity
		case "segment", "flight":
			flights += a.Quantity
		}
	}
	if stays == 0 && nights > 0 {
		stays = 1
	}
	return max(nights, 0), max(stays, 0), max(flights, 0)
}

type creditRow struct {
	ID               int64
	MemberID         int64
	PartnerID        int64
	OccurredAt       time.Time
	QualifyingPoints int64
	SpendMinor       int64
	Nights           int64
	Stays            int64
	Flights          int64
}

// reversalShare returns the original earn's points and the points reversed
// before and after this reversal.
func (s *Service) reversalShare(ctx context.Context, tx *gorm.DB, rev ledger.Transaction) (total, before, after int64, err error) {
	total, before, err = s.ledger.In(tx).ReversedShare(ctx, rev.ReversesID, rev.ID)
	return total, before, before + int64(rev.Points), err
}

// Reversed takes back the qualifying credits (and the company credit) of
// the reversed earn in proportion to the points reversed. It never
// downgrades: that waits for the yearly review.
func (s *Service) Reversed(ctx context.Context, tx *gorm.DB, rev ledger.Transaction) error {
	if rev.ReversesID == 0 {
		return nil
	}
	var orig []creditRow
	if err := tx.Raw(`SELECT id, member_id, partner_id, occurred_at, qualifying_points, spend_minor, nights, stays, flights
		FROM programme_qualifying_credits WHERE transaction_id = ? AND reverses_id IS NULL`, rev.ReversesID).
		Scan(&orig).Error; err != nil {
		return err
	}
	if len(orig) == 0 {
		return nil // a burn reversal, or an earn posted outside the points API
	}
	total, before, after, err := s.reversalShare(ctx, tx, rev)
	if err != nil {
		return fmt.Errorf("reversal %d: %w", rev.ID, err)
	}
	o := orig[0]
	tb := func(v int64) int64 { return -takeBack(v, total, before, after) }
	// Dated at the original earn and of its partner: the same window and
	// the same running totals lose what the earn added.
	if err := recordReversal(tx, credit{MemberID: o.MemberID, TransactionID: rev.ID, ReversesID: &o.ID,
		PartnerID: o.PartnerID, OccurredAt: o.OccurredAt, PostedAt: s.clock(), Points: tb(o.QualifyingPoints),
		Spend: tb(o.SpendMinor), Nights: tb(o.Nights), Stays: tb(o.Stays), Flights: tb(o.Flights)}); err != nil {
		return fmt.Errorf("take back qualifying credits of %d: %w", rev.ReversesID, err)
	}
	return s.reverseCompanyCredit(ctx, tx, rev, total, before, after)
}

// ---- transfers

// Transfer moves points from one member to the member holding toCard,
// with the programme's limits and fee (on top of the points, to
// operator_fees). Errors: ErrTransfersDisabled, members.ErrNotFound,
// members.ErrMemberInactive, ledger.ErrTransferLimit,
// ledger.ErrInsufficientPoints, ledger.ErrSameMember,
// ledger.ErrIdempotencyMismatch, *validation.Error.
func (s *Service) Transfer(ctx context.Context, idem ledger.Idempotency, fromMember int64, toCard string, points int64) (ledger.Transaction, error) {
	p, err := s.Policy(ctx)
	if err != nil {
		return ledger.Transaction{}, err
	}
	if !p.TransfersEnabled {
		return ledger.Transaction{}, ErrTransfersDisabled
	}
	var v validation.Error
	v.Check(points >= p.TransferMin, "points", fmt.Sprintf("must be at least %d", p.TransferMin))
	v.Check(toCard != "", "to_card", "is required")
	if err := v.Err(); err != nil {
		return ledger.Transaction{}, err
	}
	from, err := s.members.Get(ctx, fromMember)
	if err != nil {
		return ledger.Transaction{}, err
	}
	if err := members.CanTransact(from); err != nil {
		return ledger.Transaction{}, err
	}
	to, err := s.members.Lookup(ctx, members.Identifier{Type: members.IdentifierCard, Value: toCard})
	if err != nil {
		if errors.As(err, new(*validation.Error)) {
			return ledger.Transaction{}, validation.New("to_card", "is not a valid card number")
		}
		return ledger.Transaction{}, fmt.Errorf("transfer recipient: %w", err)
	}
	if err := members.CanTransact(to); err != nil {
		return ledger.Transaction{}, err
	}
	tr, err := s.ledger.Transfer(ctx, ledger.TransferRequest{Idem: idem, FromMember: fromMember, ToMember: to.ID,
		Points: ledger.Points(points), Fee: ledger.Points(TransferFee(p, points)),
		Limits: ledger.TransferLimits{PerTransfer: ledger.Points(p.TransferPerTransfer),
			Daily: ledger.Points(p.TransferDaily), Monthly: ledger.Points(p.TransferMonthly)}})
	if err != nil {
		return ledger.Transaction{}, fmt.Errorf("transfer from member %d: %w", fromMember, err)
	}
	return tr, nil
}

// ---- birthday bonus

// birthdayLookback is how many past days a run still pays, so a day the
// worker was down is caught up; the per-year key keeps it once a year.
const birthdayLookback = 3

// RunBirthdays credits the policy's birthday points to every active member
// whose birthday (UTC) is today or in the last few days, once per member and
// year: the ledger idempotency key programme/birthday:<member>:<year> makes a
// re-run (or a duplicate delivery) a replay. Points are operator-funded
// (operator_promotions, a lot without issuer) and expire under the policy.
// Company account records are skipped. Returns the members newly credited.
func (s *Service) RunBirthdays(ctx context.Context) (int, error) {
	p, err := s.Policy(ctx)
	if err != nil || p.BirthdayPoints == 0 {
		return 0, err
	}
	// Company account records are members too, and have no birthday.
	var accounts []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT account_member_id FROM programme_companies`).Scan(&accounts).Error; err != nil {
		return 0, fmt.Errorf("company accounts: %w", err)
	}
	companies := make(map[int64]bool, len(accounts))
	for _, id := range accounts {
		companies[id] = true
	}
	now := s.clock()
	paid := 0
	for i := 0; i < birthdayLookback; i++ {
		day := now.AddDate(0, 0, -i)
		days := []int{day.Day()}
		if day.Month() == time.February && day.Day() == 28 && !leap(day.Year()) {
			days = append(days, 29)
		}
		var last int64
		for {
			rows, err := s.members.BornOn(ctx, day.Month(), days, last, 500)
			if err != nil {
				return paid, fmt.Errorf("birthdays: %w", err)
			}
			if len(rows) == 0 {
				break
			}
			for _, r := range rows {
				last = r.ID
				if !Birthday(r.BirthDate, day) || companies[r.ID] {
					continue
				}
				details, _ := json.Marshal(map[string]any{"rule": "birthday_bonus", "year": day.Year()})
				// The key alone identifies the bonus: a re-run after a policy
				// change replays instead of failing as a different request.
				key := fmt.Sprintf("birthday:%d:%d", r.ID, day.Year())
				tr, err := s.ledger.Earn(ctx, ledger.EarnRequest{
					Idem:     ledger.Idempotency{Scope: Scope, Key: key, RequestHash: []byte(key)},
					MemberID: r.ID, OperatorFunded: ledger.Points(p.BirthdayPoints), OccurredAt: now,
					ExpiresAt: LotExpiry(p, now), ExternalRef: fmt.Sprintf("birthday:%d", day.Year()), Details: details})
				if err != nil {
					return paid, fmt.Errorf("birthday bonus of member %d: %w", r.ID, err)
				}
				if !tr.Replayed {
					paid++
				}
			}
		}
	}
	return paid, nil
}

// ---- corporate accounts

// PutCompanyLevel creates or replaces a company level. Errors: *validation.Error.
func (s *Service) PutCompanyLevel(ctx context.Context, l CompanyLevel) (CompanyLevel, error) {
	var v validation.Error
	v.Check(tierCode.MatchString(l.Code), "code", "must be lower-case letters, digits and _")
	v.Check(len(l.Name) >= 1 && len(l.Name) <= 100, "name", "must be 1 to 100 characters")
	v.Check(l.MinSpendMinor >= 0, "min_spend_minor", "must not be negative")
	v.Check(l.Rate.IsPositive() && !l.Rate.GreaterThan(decimalOne), "rate", "must be above 0 and at most 1")
	if err := v.Err(); err != nil {
		return CompanyLevel{}, err
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO programme_company_levels (code, name, min_spend_minor, rate)
		VALUES (?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
		min_spend_minor = EXCLUDED.min_spend_minor, rate = EXCLUDED.rate`, l.Code, l.Name, l.MinSpendMinor, l.Rate).Error
	if err != nil {
		return CompanyLevel{}, fmt.Errorf("put company level %s: %w", l.Code, err)
	}
	return l, nil
}

// CreateCompany enrols a company: a member record of its own (identified by
// the company's e-mail) holds its points; it starts at the lowest level.
// Errors: ErrCompanyLevelNotFound (define levels first), *validation.Error.
func (s *Service) CreateCompany(ctx context.Context, name, email string) (Company, error) {
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		return Company{}, validation.New("name", "is required (at most 200 characters)")
	}
	levels, err := loadLevels(s.db.WithContext(ctx))
	if err != nil {
		return Company{}, err
	}
	lvl, ok := LevelFor(levels, 0)
	if !ok {
		return Company{}, fmt.Errorf("create company: %w", ErrCompanyLevelNotFound)
	}
	m, created, err := s.members.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile: members.Profile{FamilyName: name, Email: email}, Actor: "operator:companies"})
	if err != nil {
		return Company{}, fmt.Errorf("create company %q: %w", name, err)
	}
	if !created {
		// Enrolment is idempotent by identifier: an email that already
		// belongs to a member would hand that member's account to the
		// company. The company needs an address of its own.
		return Company{}, fmt.Errorf("create company %q: email %s: %w", name, email, members.ErrIdentifierTaken)
	}
	now := s.clock()
	c := Company{Name: name, AccountMemberID: m.ID, Level: lvl.Code, LevelSince: now, CreatedAt: now}
	if err := s.db.WithContext(ctx).Raw(`INSERT INTO programme_companies (name, account_member_id, level_code, level_since, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`, name, m.ID, lvl.Code, now, now).Scan(&c.ID).Error; err != nil {
		return Company{}, fmt.Errorf("create company %q: %w", name, err)
	}
	return c, nil
}

// CompanyLevel returns one company level. Errors: ErrUnknownCompanyLevel.
func (s *Service) CompanyLevel(ctx context.Context, code string) (CompanyLevel, error) {
	var ls []CompanyLevel
	if err := s.db.WithContext(ctx).Raw(`SELECT code, name, min_spend_minor, rate FROM programme_company_levels WHERE code = ?`,
		code).Scan(&ls).Error; err != nil {
		return CompanyLevel{}, err
	}
	if len(ls) == 0 {
		return CompanyLevel{}, fmt.Errorf("company level %q: %w", code, ErrUnknownCompanyLevel)
	}
	return ls[0], nil
}

// Company returns a company. Errors: ErrCompanyNotFound.
func (s *Service) Company(ctx context.Context, id int64) (Company, error) {
	return loadCompany(s.db.WithContext(ctx), id)
}

// AddEmployee links a member to a company; canSpend designates them to
// spend the company's points. Errors: ErrCompanyNotFound,
// ErrAlreadyEmployee, members.ErrNotFound.
func (s *Service) AddEmployee(ctx context.Context, companyID, memberID int64, canSpend bool) error {
	c, err := s.Company(ctx, companyID)
	if err != nil {
		return err
	}
	if _, err := s.members.Get(ctx, memberID); err != nil {
		return err
	}
	if memberID == c.AccountMemberID {
		return validation.New("member_id", "is the company's own account")
	}
	res := s.db.WithContext(ctx).Exec(`INSERT INTO programme_company_employees (company_id, member_id, can_spend, added_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (member_id) DO NOTHING`, companyID, memberID, canSpend, s.clock())
	if res.Error != nil {
		return fmt.Errorf("add employee %d to company %d: %w", memberID, companyID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("add employee %d to company %d: %w", memberID, companyID, ErrAlreadyEmployee)
	}
	return nil
}

// AddCorporatePartner makes purchases at a partner credit the buyer's
// company (at once in this process, within ConfigTTL in others).
func (s *Service) AddCorporatePartner(ctx context.Context, partnerID int64) error {
	if partnerID <= 0 {
		return validation.New("partner_id", "is required")
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO programme_corporate_partners (partner_id, created_at) VALUES (?, ?)
		ON CONFLICT DO NOTHING`, partnerID, s.clock()).Error
	s.dropConfig()
	return err
}

// IssueCompanyCode gives a designated employee a one-time redemption code
// for the company's account: with it a partner's POS burns the company's
// points (member_id = the company's AccountMemberID). Errors:
// ErrNotDesignated, ErrCompanyNotFound.
func (s *Service) IssueCompanyCode(ctx context.Context, employeeMemberID int64) (Company, members.RedemptionCode, error) {
	var rows []struct {
		CompanyID int64
		CanSpend  bool
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT company_id, can_spend FROM programme_company_employees WHERE member_id = ?`,
		employeeMemberID).Scan(&rows).Error; err != nil {
		return Company{}, members.RedemptionCode{}, err
	}
	if len(rows) == 0 || !rows[0].CanSpend {
		return Company{}, members.RedemptionCode{}, fmt.Errorf("member %d: %w", employeeMemberID, ErrNotDesignated)
	}
	c, err := s.Company(ctx, rows[0].CompanyID)
	if err != nil {
		return Company{}, members.RedemptionCode{}, err
	}
	code, err := s.consent.IssueCode(ctx, c.AccountMemberID)
	return c, code, err
}

// creditCompany is the dual accrual of one employee earn at a corporate
// partner: the company gets its level's rate on the eligible spend, funded
// by the same partner, once (ledger key programme/corporate:<earn id> and a
// UNIQUE source transaction). The company's points become available with
// the employee's.
func (s *Service) creditCompany(ctx context.Context, tx *gorm.DB, p Policy, e points.PostedEarn, spend int64) error {
	if spend <= 0 {
		return nil
	}
	var rows []struct {
		ID              int64
		AccountMemberID int64
		Rate            string
		AvailableAt     *time.Time
	}
	if err := tx.Raw(`SELECT c.id, c.account_member_id, l.rate::text AS rate
		FROM programme_company_employees e
		JOIN programme_companies c ON c.id = e.company_id JOIN programme_company_levels l ON l.code = c.level_code
		WHERE e.member_id = ? AND EXISTS (SELECT 1 FROM programme_corporate_partners cp WHERE cp.partner_id = ?)`,
		e.Transaction.MemberID, e.PartnerID).Scan(&rows).Error; err != nil {
		return fmt.Errorf("company of member %d: %w", e.Transaction.MemberID, err)
	}
	if len(rows) == 0 {
		return nil
	}
	c := rows[0]
	var err error
	if c.AvailableAt, err = s.ledger.In(tx).AvailableAt(ctx, e.Transaction.ID); err != nil {
		return err
	}
	rate := mustDecimal(c.Rate)
	points := CompanyPoints(spend, money.Exponent(p.Currency), rate)
	if points <= 0 {
		return nil
	}
	var avail *time.Time
	if c.AvailableAt != nil && c.AvailableAt.After(s.clock()) {
		avail = c.AvailableAt
	}
	details, _ := json.Marshal(map[string]any{"corporate": map[string]any{"company_id": c.ID,
		"employee_member_id": e.Transaction.MemberID, "source_transaction_id": e.Transaction.ID,
		"spend_minor": spend, "currency": p.Currency, "rate": rate.String()}})
	tr, err := s.ledger.In(tx).Earn(ctx, ledger.EarnRequest{
		Idem:     ledger.Idempotency{Scope: Scope, Key: fmt.Sprintf("corporate:%d", e.Transaction.ID)},
		MemberID: c.AccountMemberID, PartnerID: e.PartnerID, Points: ledger.Points(points),
		OccurredAt: e.Transaction.OccurredAt, AvailableAt: avail, ExpiresAt: LotExpiry(p, e.Transaction.OccurredAt),
		ExternalRef: e.Input.ExternalRef, Details: details})
	if err != nil {
		return fmt.Errorf("credit company %d: %w", c.ID, err)
	}
	if err := tx.Exec(`INSERT INTO programme_company_credits (company_id, employee_member_id, source_transaction_id,
		company_transaction_id, spend_minor, rate, points, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source_transaction_id) DO NOTHING`, c.ID, e.Transaction.MemberID, e.Transaction.ID, tr.ID,
		spend, rate, points, e.Transaction.OccurredAt).Error; err != nil {
		return fmt.Errorf("record company credit: %w", err)
	}
	return nil
}

// reverseCompanyCredit reverses the company's share of a reversed earn in
// the same proportion, capped by what the ledger can still reverse.
func (s *Service) reverseCompanyCredit(ctx context.Context, tx *gorm.DB, rev ledger.Transaction, total, before, after int64) error {
	var rows []struct {
		ID                   int64
		CompanyID            int64
		EmployeeMemberID     int64
		CompanyTransactionID int64
		SpendMinor           int64
		Rate                 string
		Points               int64
		OccurredAt           time.Time
	}
	if err := tx.Raw(`SELECT id, company_id, employee_member_id, company_transaction_id, spend_minor, rate::text AS rate,
		points, occurred_at FROM programme_company_credits WHERE source_transaction_id = ? AND reverses_id IS NULL`,
		rev.ReversesID).Scan(&rows).Error; err != nil || len(rows) == 0 {
		return err
	}
	o := rows[0]
	pts := takeBack(o.Points, total, before, after)
	if pts <= 0 {
		return nil
	}
	ctr, err := s.ledger.In(tx).Reverse(ctx, ledger.ReverseRequest{
		Idem:          ledger.Idempotency{Scope: Scope, Key: fmt.Sprintf("corporate-reversal:%d", rev.ID)},
		TransactionID: o.CompanyTransactionID, Points: ledger.Points(pts),
		Reason: fmt.Sprintf("employee earn %d reversed by %d", rev.ReversesID, rev.ID), ExternalRef: rev.ExternalRef})
	if err != nil {
		return fmt.Errorf("reverse company credit %d: %w", o.ID, err)
	}
	return tx.Exec(`INSERT INTO programme_company_credits (company_id, employee_member_id, source_transaction_id,
		company_transaction_id, reverses_id, spend_minor, rate, points, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source_transaction_id) DO NOTHING`, o.CompanyID, o.EmployeeMemberID, rev.ID, ctr.ID, o.ID,
		-takeBack(o.SpendMinor, total, before, after), o.Rate, -int64(ctr.Points), o.OccurredAt).Error
}

// ReviewCompanies sets company levels from yearly spend as of at (UTC):
// upgrades from the spend of at's year so far (run monthly; a higher bracket
// applies at once), and, once per year, the yearly review, which sets every
// company to the level of the previous year's spend (the only downgrade).
// Idempotent. Returns how many companies changed level.
func (s *Service) ReviewCompanies(ctx context.Context, at time.Time) (int, error) {
	at = at.UTC()
	yearStart := time.Date(at.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	changed := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		levels, err := loadLevels(tx)
		if err != nil || len(levels) == 0 {
			return err
		}
		var cs []struct {
			ID           int64
			LevelCode    string
			ReviewedYear *int
			LastYear     int64
			ThisYear     int64
		}
		if err := tx.Raw(`SELECT c.id, c.level_code, c.reviewed_year,
			coalesce((SELECT sum(spend_minor) FROM programme_company_credits k WHERE k.company_id = c.id
				AND k.occurred_at >= ? AND k.occurred_at < ?), 0) AS last_year,
			coalesce((SELECT sum(spend_minor) FROM programme_company_credits k WHERE k.company_id = c.id
				AND k.occurred_at >= ? AND k.occurred_at <= ?), 0) AS this_year
			FROM programme_companies c ORDER BY c.id FOR UPDATE OF c`,
			yearStart.AddDate(-1, 0, 0), yearStart, yearStart, at).Scan(&cs).Error; err != nil {
			return err
		}
		rank := map[string]int64{}
		for _, l := range levels {
			rank[l.Code] = l.MinSpendMinor
		}
		for _, c := range cs {
			next := c.LevelCode
			reviewed := c.ReviewedYear
			if c.ReviewedYear == nil || *c.ReviewedYear < at.Year()-1 {
				l, _ := LevelFor(levels, c.LastYear)
				next = l.Code
				y := at.Year() - 1
				reviewed = &y
			}
			if l, ok := LevelFor(levels, c.ThisYear); ok && rank[l.Code] > rank[next] {
				next = l.Code
			}
			set := tx.Exec(`UPDATE programme_companies SET reviewed_year = ? WHERE id = ?`, reviewed, c.ID)
			if set.Error != nil {
				return set.Error
			}
			if next != c.LevelCode {
				changed++
				if err := tx.Exec(`UPDATE programme_companies SET level_code = ?, level_since = ? WHERE id = ?`,
					next, s.clock(), c.ID).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	return changed, err
}
