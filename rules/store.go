package rules

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/partners"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"
)

// Queries of earn rules and promotions. Every function takes the handle to
// run on (the pool or a transaction); the Service owns transactions.

type earnRuleRow struct {
	ID            int64
	PartnerID     int64
	Version       int
	EffectiveFrom time.Time
	Definition    []byte
	CreatedAt     time.Time
	CreatedBy     string
}

func (r earnRuleRow) rule() (Rule, error) {
	var def RuleDefinition
	if err := json.Unmarshal(r.Definition, &def); err != nil {
		return Rule{}, fmt.Errorf("decode earn rule %d: %w", r.ID, err)
	}
	return Rule{ID: r.ID, PartnerID: r.PartnerID, Version: r.Version, EffectiveFrom: r.EffectiveFrom.UTC(),
		Definition: def, CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy}, nil
}

const earnRuleCols = `id, partner_id, version, effective_from, definition, created_at, created_by`

// earnLatestVersion returns the partner's highest version and its
// effective_from (0 and the zero time when it has none).
func earnLatestVersion(tx *gorm.DB, partnerID int64) (int, time.Time, error) {
	var row struct {
		Version       int
		EffectiveFrom *time.Time
	}
	err := tx.Raw(`SELECT version, effective_from FROM earn_rules WHERE partner_id = ?
		ORDER BY version DESC LIMIT 1`, partnerID).Scan(&row).Error
	if err != nil {
		return 0, time.Time{}, err
	}
	if row.EffectiveFrom == nil {
		return 0, time.Time{}, nil
	}
	return row.Version, row.EffectiveFrom.UTC(), nil
}

func earnInsertRule(tx *gorm.DB, r Rule) (Rule, error) {
	def, err := json.Marshal(r.Definition)
	if err != nil {
		return Rule{}, fmt.Errorf("encode earn rule: %w", err)
	}
	var row earnRuleRow
	err = tx.Raw(`INSERT INTO earn_rules (partner_id, version, effective_from, definition, created_at, created_by)
		VALUES (?, ?, ?, ?::jsonb, ?, ?) RETURNING `+earnRuleCols,
		r.PartnerID, r.Version, r.EffectiveFrom, string(def), r.CreatedAt, r.CreatedBy).Scan(&row).Error
	switch code := database.Code(err); {
	case code == database.UniqueViolation:
		return Rule{}, fmt.Errorf("partner %d version %d: %w", r.PartnerID, r.Version, ErrRuleConflict)
	case code == database.ForeignKeyViolation:
		return Rule{}, fmt.Errorf("partner %d: %w", r.PartnerID, partners.ErrPartnerNotFound)
	case err != nil:
		return Rule{}, err
	}
	return row.rule()
}

// earnRuleAt returns the version in force at t: the latest effective_from
// <= t, the highest version on a tie.
func earnRuleAt(tx *gorm.DB, partnerID int64, t time.Time) (Rule, error) {
	var rows []earnRuleRow
	err := tx.Raw(`SELECT `+earnRuleCols+` FROM earn_rules
		WHERE partner_id = ? AND effective_from <= ?
		ORDER BY effective_from DESC, version DESC LIMIT 1`, partnerID, t).Scan(&rows).Error
	if err != nil {
		return Rule{}, err
	}
	if len(rows) == 0 {
		return Rule{}, fmt.Errorf("partner %d at %s: %w", partnerID, t.UTC().Format(time.RFC3339), ErrNoRule)
	}
	return rows[0].rule()
}

func earnRuleByID(tx *gorm.DB, id int64) (Rule, error) {
	var rows []earnRuleRow
	if err := tx.Raw(`SELECT `+earnRuleCols+` FROM earn_rules WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return Rule{}, err
	}
	if len(rows) == 0 {
		return Rule{}, fmt.Errorf("earn rule %d: %w", id, ErrRuleNotFound)
	}
	return rows[0].rule()
}

func earnRulesOf(tx *gorm.DB, partnerID int64) ([]Rule, error) {
	return earnRulesOrdered(tx, partnerID, "version DESC")
}

// earnRuleVersions returns every version of the partner's rule, latest
// effective_from (then version) first: the order pricing searches.
func earnRuleVersions(tx *gorm.DB, partnerID int64) ([]Rule, error) {
	return earnRulesOrdered(tx, partnerID, "effective_from DESC, version DESC")
}

// earnRulesOrdered returns every version of the partner's rule in order (a
// constant ORDER BY list, never input).
func earnRulesOrdered(tx *gorm.DB, partnerID int64, order string) ([]Rule, error) {
	var rows []earnRuleRow
	if err := tx.Raw(`SELECT `+earnRuleCols+` FROM earn_rules WHERE partner_id = ?
		ORDER BY `+order, partnerID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Rule, 0, len(rows))
	for _, r := range rows {
		rule, err := r.rule()
		if err != nil {
			return nil, err
		}
		out = append(out, rule)
	}
	return out, nil
}

type promotionRow struct {
	ID          int64
	PartnerID   *int64
	Name        string
	Code        *string
	StartsAt    time.Time
	EndsAt      time.Time
	Effect      string
	Multiplier  decimal.NullDecimal
	BonusPoints *int64
	FundedBy    string
	Exclusive   bool
	Definition  []byte
	Status      string
	EndedAt     *time.Time
	EndedBy     *string
	CreatedAt   time.Time
	CreatedBy   string
}

const promotionCols = `id, partner_id, name, code, starts_at, ends_at, effect, multiplier, bonus_points,
	funded_by, exclusive, definition, status, ended_at, ended_by, created_at, created_by`

func (r promotionRow) promotion() (Promotion, error) {
	p := Promotion{ID: r.ID, Name: r.Name, StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(),
		Effect: PromotionEffect(r.Effect), FundedBy: Funder(r.FundedBy), Exclusive: r.Exclusive,
		Status: r.Status, CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy}
	if r.PartnerID != nil {
		p.PartnerID = *r.PartnerID
	}
	if r.Code != nil {
		p.Code = *r.Code
	}
	if r.Multiplier.Valid {
		p.Multiplier = r.Multiplier.Decimal
	}
	if r.BonusPoints != nil {
		p.Bonus = *r.BonusPoints
	}
	if r.EndedAt != nil {
		t := r.EndedAt.UTC()
		p.EndedAt = &t
	}
	if err := json.Unmarshal(r.Definition, &p.Conditions); err != nil {
		return Promotion{}, fmt.Errorf("decode promotion %d: %w", r.ID, err)
	}
	return p, nil
}

func promotionsFrom(rows []promotionRow) ([]Promotion, error) {
	out := make([]Promotion, 0, len(rows))
	for _, r := range rows {
		p, err := r.promotion()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func promoInsert(tx *gorm.DB, n NewPromotion, now time.Time, actor string) (Promotion, error) {
	cond, err := json.Marshal(n.Conditions)
	if err != nil {
		return Promotion{}, fmt.Errorf("encode promotion conditions: %w", err)
	}
	var partnerID *int64
	if n.PartnerID != 0 {
		partnerID = &n.PartnerID
	}
	var code *string
	if n.Code != "" {
		code = &n.Code
	}
	var mult *string
	var bonus *int64
	if n.Effect == EffectMultiplier {
		s := n.Multiplier.String()
		mult = &s
	} else {
		bonus = &n.Bonus
	}
	var row promotionRow
	err = tx.Raw(`INSERT INTO promotions (partner_id, name, code, starts_at, ends_at, effect, multiplier,
		bonus_points, funded_by, exclusive, definition, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?::numeric, ?, ?, ?, ?::jsonb, ?, ?) RETURNING `+promotionCols,
		partnerID, n.Name, code, n.StartsAt, n.EndsAt, string(n.Effect), mult, bonus, string(n.FundedBy),
		n.Exclusive, string(cond), now, actor).Scan(&row).Error
	switch code := database.Code(err); {
	case code == database.ExclusionViolation:
		return Promotion{}, fmt.Errorf("promotion code %s: %w", n.Code, ErrPromotionCodeInUse)
	case code == database.ForeignKeyViolation:
		return Promotion{}, fmt.Errorf("partner %d: %w", n.PartnerID, partners.ErrPartnerNotFound)
	case err != nil:
		return Promotion{}, err
	}
	return row.promotion()
}

// promoList returns the promotions that concern partnerID (its own and the
// coalition-wide ones; only the latter for partnerID 0), in id order; with a
// non-zero at, only those whose window, cut short when ended, holds at.
func promoList(tx *gorm.DB, partnerID int64, at time.Time) ([]Promotion, error) {
	q := `SELECT ` + promotionCols + ` FROM promotions WHERE (partner_id = ? OR partner_id IS NULL)`
	args := []any{partnerID}
	if !at.IsZero() {
		q += ` AND starts_at <= ? AND ? < ends_at AND (ended_at IS NULL OR ? < ended_at)`
		args = append(args, at, at, at)
	}
	var rows []promotionRow
	if err := tx.Raw(q+` ORDER BY id`, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	return promotionsFrom(rows)
}

// promosSince returns the promotions that concern partnerID and are not
// over before horizon (ended early or not), in id order.
func promosSince(tx *gorm.DB, partnerID int64, horizon time.Time) ([]Promotion, error) {
	var rows []promotionRow
	if err := tx.Raw(`SELECT `+promotionCols+` FROM promotions WHERE (partner_id = ? OR partner_id IS NULL)
		AND ends_at > ? AND (ended_at IS NULL OR ended_at > ?) ORDER BY id`, partnerID, horizon, horizon).Scan(&rows).Error; err != nil {
		return nil, err
	}
	return promotionsFrom(rows)
}

func promoByID(tx *gorm.DB, id int64) (Promotion, error) {
	var rows []promotionRow
	if err := tx.Raw(`SELECT `+promotionCols+` FROM promotions WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return Promotion{}, err
	}
	if len(rows) == 0 {
		return Promotion{}, fmt.Errorf("promotion %d: %w", id, ErrPromotionNotFound)
	}
	return rows[0].promotion()
}

// promoEnd ends an active promotion at now; it reports false when no active
// promotion has that id.
func promoEnd(tx *gorm.DB, id int64, now time.Time, actor string) (Promotion, bool, error) {
	var rows []promotionRow
	err := tx.Raw(`UPDATE promotions SET status = 'ended', ended_at = ?, ended_by = ?
		WHERE id = ? AND status = 'active' RETURNING `+promotionCols, now, actor, id).Scan(&rows).Error
	if err != nil {
		return Promotion{}, false, err
	}
	if len(rows) == 0 {
		return Promotion{}, false, nil
	}
	p, err := rows[0].promotion()
	return p, err == nil, err
}
