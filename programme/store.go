package programme

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// policyRow is the programme_policy row.
type policyRow struct {
	Currency            string
	ExpiryMode          string
	ExpiryMonths        int
	ExpiryYears         int
	NoticeDays          int
	TransfersEnabled    bool
	TransferMin         int64
	TransferPerTransfer int64
	TransferDaily       int64
	TransferMonthly     int64
	TransferFeeFixed    int64
	TransferFeeRate     decimal.Decimal
	BirthdayPoints      int64
	TierWindow          string
	TierDowngrade       string
	ErasureAfterDays    *int
	UpdatedAt           time.Time
}

func loadPolicy(tx *gorm.DB) (Policy, error) {
	var r policyRow
	if err := tx.Raw(`SELECT * FROM programme_policy WHERE id = 1`).Scan(&r).Error; err != nil {
		return Policy{}, fmt.Errorf("load programme policy: %w", err)
	}
	return Policy{Currency: r.Currency, ExpiryMode: ExpiryMode(r.ExpiryMode), ExpiryMonths: r.ExpiryMonths,
		ExpiryYears: r.ExpiryYears, NoticeDays: r.NoticeDays, TransfersEnabled: r.TransfersEnabled,
		TransferMin: r.TransferMin, TransferPerTransfer: r.TransferPerTransfer, TransferDaily: r.TransferDaily,
		TransferMonthly: r.TransferMonthly, TransferFeeFixed: r.TransferFeeFixed, TransferFeeRate: r.TransferFeeRate,
		BirthdayPoints: r.BirthdayPoints, TierWindow: TierWindow(r.TierWindow), TierDowngrade: Downgrade(r.TierDowngrade),
		ErasureAfterDays: r.ErasureAfterDays, UpdatedAt: r.UpdatedAt}, nil
}

func savePolicy(tx *gorm.DB, p Policy, now time.Time) error {
	return tx.Exec(`UPDATE programme_policy SET currency = ?, expiry_mode = ?, expiry_months = ?, expiry_years = ?,
		notice_days = ?, transfers_enabled = ?, transfer_min = ?, transfer_per_transfer = ?, transfer_daily = ?,
		transfer_monthly = ?, transfer_fee_fixed = ?, transfer_fee_rate = ?, birthday_points = ?, tier_window = ?,
		tier_downgrade = ?, erasure_after_days = ?, updated_at = ? WHERE id = 1`,
		p.Currency, p.ExpiryMode, p.ExpiryMonths, p.ExpiryYears, p.NoticeDays, p.TransfersEnabled, p.TransferMin,
		p.TransferPerTransfer, p.TransferDaily, p.TransferMonthly, p.TransferFeeFixed, p.TransferFeeRate,
		p.BirthdayPoints, p.TierWindow, p.TierDowngrade, p.ErasureAfterDays, now).Error
}

type tierRow struct {
	Code           string
	Name           string
	Rank           int
	InvitationOnly bool
	Entitlements   []byte
}

type thresholdRow struct {
	TierCode string
	Metric   string
	Minimum  int64
}

func loadTiers(tx *gorm.DB) ([]Tier, error) {
	var rows []tierRow
	if err := tx.Raw(`SELECT code, name, rank, invitation_only, entitlements FROM programme_tiers ORDER BY rank`).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("load tiers: %w", err)
	}
	var ths []thresholdRow
	if err := tx.Raw(`SELECT tier_code, metric, minimum FROM programme_tier_thresholds`).Scan(&ths).Error; err != nil {
		return nil, fmt.Errorf("load tier thresholds: %w", err)
	}
	out := make([]Tier, 0, len(rows))
	for _, r := range rows {
		t := Tier{Code: r.Code, Name: r.Name, Rank: r.Rank, InvitationOnly: r.InvitationOnly,
			Thresholds: map[Metric]int64{}, Entitlements: []Entitlement{}}
		if err := json.Unmarshal(r.Entitlements, &t.Entitlements); err != nil {
			return nil, fmt.Errorf("tier %s entitlements: %w", r.Code, err)
		}
		for _, th := range ths {
			if th.TierCode == r.Code {
				t.Thresholds[Metric(th.Metric)] = th.Minimum
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func saveTier(tx *gorm.DB, t Tier) error {
	ents, _ := json.Marshal(t.Entitlements)
	if err := tx.Exec(`INSERT INTO programme_tiers (code, name, rank, invitation_only, entitlements) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, rank = EXCLUDED.rank,
		invitation_only = EXCLUDED.invitation_only, entitlements = EXCLUDED.entitlements`,
		t.Code, t.Name, t.Rank, t.InvitationOnly, string(ents)).Error; err != nil {
		return fmt.Errorf("save tier %s: %w", t.Code, translate(err))
	}
	if err := tx.Exec(`DELETE FROM programme_tier_thresholds WHERE tier_code = ?`, t.Code).Error; err != nil {
		return err
	}
	for _, m := range metrics {
		if min, ok := t.Thresholds[m]; ok {
			if err := tx.Exec(`INSERT INTO programme_tier_thresholds (tier_code, metric, minimum) VALUES (?, ?, ?)`,
				t.Code, m, min).Error; err != nil {
				return fmt.Errorf("save tier %s threshold %s: %w", t.Code, m, err)
			}
		}
	}
	return nil
}

// credits sums a member's qualifying credits with occurred_at in [from, to).
// Partners counts distinct partners whose net qualifying points are positive.
func credits(tx *gorm.DB, memberID int64, from, to time.Time) (Credits, error) {
	var r struct {
		Points, Spend, Nights, Stays, Flights, Partners int64
	}
	err := tx.Raw(`SELECT coalesce(sum(qualifying_points), 0) AS points, coalesce(sum(spend_minor), 0) AS spend,
		coalesce(sum(nights), 0) AS nights, coalesce(sum(stays), 0) AS stays, coalesce(sum(flights), 0) AS flights,
		(SELECT count(*) FROM (SELECT partner_id FROM programme_qualifying_credits
			WHERE member_id = ? AND occurred_at >= ? AND occurred_at < ?
			GROUP BY partner_id HAVING sum(qualifying_points) > 0) p) AS partners
		FROM programme_qualifying_credits WHERE member_id = ? AND occurred_at >= ? AND occurred_at < ?`,
		memberID, from, to, memberID, from, to).Scan(&r).Error
	if err != nil {
		return nil, fmt.Errorf("qualifying credits of member %d: %w", memberID, err)
	}
	return Credits{MetricPoints: r.Points, MetricSpend: r.Spend, MetricNights: r.Nights, MetricStays: r.Stays,
		MetricFlights: r.Flights, MetricPartners: r.Partners}, nil
}

type memberTierRow struct {
	MemberID     int64
	TierCode     string
	Since        time.Time
	LastReviewAt *time.Time
}

func currentTier(tx *gorm.DB, memberID int64, lock bool) (*memberTierRow, error) {
	q := `SELECT member_id, tier_code, since, last_review_at FROM programme_member_tiers WHERE member_id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []memberTierRow
	if err := tx.Raw(q, memberID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

func grantsOf(tx *gorm.DB, memberID int64) ([]Grant, error) {
	var gs []Grant
	err := tx.Raw(`SELECT id, member_id, tier_code, reason, actor, starts_at, ends_at, created_at
		FROM programme_tier_grants WHERE member_id = ? ORDER BY id`, memberID).Scan(&gs).Error
	return gs, err
}

// loadCorporatePartners returns the partners whose purchases credit the
// buyer's company.
func loadCorporatePartners(tx *gorm.DB) (map[int64]bool, error) {
	var ids []int64
	if err := tx.Raw(`SELECT partner_id FROM programme_corporate_partners`).Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("load corporate partners: %w", err)
	}
	out := make(map[int64]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

func loadLevels(tx *gorm.DB) ([]CompanyLevel, error) {
	var ls []CompanyLevel
	err := tx.Raw(`SELECT code, name, min_spend_minor, rate FROM programme_company_levels ORDER BY min_spend_minor`).Scan(&ls).Error
	return ls, err
}

func loadCompany(tx *gorm.DB, id int64) (Company, error) {
	var cs []Company
	if err := tx.Raw(`SELECT id, name, account_member_id, level_code AS level, level_since, created_at
		FROM programme_companies WHERE id = ?`, id).Scan(&cs).Error; err != nil {
		return Company{}, err
	}
	if len(cs) == 0 {
		return Company{}, fmt.Errorf("company %d: %w", id, ErrCompanyNotFound)
	}
	return cs[0], nil
}

// translate maps a unique violation on a tier's rank to a field error.
func translate(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "programme_tiers_rank_key" {
		return validation.New("rank", "is used by another tier")
	}
	return err
}
