package catalog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// rewardRow is a catalog_rewards row plus the count of free voucher codes.
type rewardRow struct {
	ID                int64
	PartnerID         *int64
	Title             string
	Description       string
	Category          string
	PricePoints       int64
	TierPrices        string
	EligibleTiers     string
	ValueMinor        int64
	ValueCurrency     string
	StockTotal        *int64
	StockRemaining    *int64
	ValidFrom         *time.Time
	ValidUntil        *time.Time
	BlackoutDates     string
	PerMemberLimit    int
	Fulfilment        string
	FulfilmentHours   int
	Status            string
	Visibility        string
	Featured          bool
	VouchersAvailable int64
	ModerationReason  string
	RetiredAt         *time.Time
	ImageSHA256       *string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

const rewardColumns = `r.id, r.partner_id, r.title, r.description, r.category, r.price_points,
	r.tier_prices::text AS tier_prices, r.eligible_tiers::text AS eligible_tiers, r.value_minor, r.value_currency,
	r.stock_total, r.stock_remaining, r.valid_from, r.valid_until, r.blackout_dates::text AS blackout_dates,
	r.per_member_limit, r.fulfilment, r.fulfilment_hours, r.status, r.visibility, r.featured,
	(SELECT count(*) FROM catalog_vouchers v WHERE v.reward_id = r.id AND v.order_id IS NULL) AS vouchers_available,
	r.moderation_reason, r.retired_at,
	(SELECT i.sha256 FROM catalog_reward_images i WHERE i.reward_id = r.id) AS image_sha256,
	r.created_at, r.updated_at`

func (r rewardRow) reward() Reward {
	out := Reward{ID: r.ID, PartnerID: deref(r.PartnerID), Owner: OwnerPartner, Title: r.Title, Description: r.Description,
		Category: Category(r.Category), PricePoints: r.PricePoints,
		Value:      money.Money{Minor: r.ValueMinor, Currency: r.ValueCurrency},
		StockTotal: r.StockTotal, StockRemaining: r.StockRemaining, ValidFrom: utcPtr(r.ValidFrom),
		ValidUntil: utcPtr(r.ValidUntil), PerMemberLimit: r.PerMemberLimit, Fulfilment: Fulfilment(r.Fulfilment),
		FulfilmentHours: r.FulfilmentHours, Status: Status(r.Status), Visibility: Visibility(r.Visibility),
		Featured: r.Featured, VouchersAvailable: r.VouchersAvailable, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	out.ModerationReason, out.RetiredAt = r.ModerationReason, utcPtr(r.RetiredAt)
	if r.PartnerID == nil {
		out.Owner = OwnerOperator
	}
	if r.ImageSHA256 != nil {
		// The digest in the address lets browsers cache an image for good:
		// a new image is a new address.
		out.ImageURL = fmt.Sprintf("/catalog/images/%d?v=%.12s", r.ID, *r.ImageSHA256)
	}
	// The columns are CHECKed JSON of the right shape, written by this package.
	_ = json.Unmarshal([]byte(r.TierPrices), &out.TierPrices)
	_ = json.Unmarshal([]byte(r.EligibleTiers), &out.EligibleTiers)
	_ = json.Unmarshal([]byte(r.BlackoutDates), &out.BlackoutDates)
	return out
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// nullID is NULL for 0 (an operator reward's partner).
func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// getReward loads a reward; lock takes its row lock (FOR UPDATE).
func getReward(tx *gorm.DB, id int64, lock bool) (Reward, error) {
	q := `SELECT ` + rewardColumns + ` FROM catalog_rewards r WHERE r.id = ?`
	if lock {
		q += ` FOR UPDATE OF r`
	}
	var rows []rewardRow
	if err := tx.Raw(q, id).Scan(&rows).Error; err != nil {
		return Reward{}, fmt.Errorf("load reward %d: %w", id, err)
	}
	if len(rows) == 0 {
		return Reward{}, fmt.Errorf("reward %d: %w", id, ErrRewardNotFound)
	}
	return rows[0].reward(), nil
}

func insertReward(tx *gorm.DB, partnerID int64, in RewardInput, now time.Time) (int64, error) {
	var id int64
	err := tx.Raw(`INSERT INTO catalog_rewards (partner_id, title, description, category, price_points, tier_prices,
		eligible_tiers, value_minor, value_currency, stock_total, stock_remaining, valid_from, valid_until, blackout_dates,
		per_member_limit, fulfilment, fulfilment_hours, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?) RETURNING id`,
		nullID(partnerID), in.Title, in.Description, string(in.Category), in.PricePoints, mustJSON(in.TierPrices),
		mustJSON(in.EligibleTiers), in.Value.Minor, in.Value.Currency, in.StockTotal, in.StockTotal,
		in.ValidFrom, in.ValidUntil, mustJSON(in.BlackoutDates), in.PerMemberLimit, string(in.Fulfilment),
		in.FulfilmentHours, string(in.Status), now, now).Scan(&id).Error
	if err != nil {
		return 0, fmt.Errorf("insert reward: %w", err)
	}
	return id, nil
}

// updateReward replaces a reward's partner-owned fields; remaining is the new
// stock_remaining (nil with an unlimited StockTotal).
func updateReward(tx *gorm.DB, id int64, in RewardInput, remaining *int64, now time.Time) error {
	err := tx.Exec(`UPDATE catalog_rewards SET title = ?, description = ?, category = ?, price_points = ?,
		tier_prices = ?::jsonb, eligible_tiers = ?::jsonb, value_minor = ?, value_currency = ?, stock_total = ?,
		stock_remaining = ?, valid_from = ?, valid_until = ?, blackout_dates = ?::jsonb, per_member_limit = ?,
		fulfilment = ?, fulfilment_hours = ?, status = ?, updated_at = ? WHERE id = ?`,
		in.Title, in.Description, string(in.Category), in.PricePoints, mustJSON(in.TierPrices),
		mustJSON(in.EligibleTiers), in.Value.Minor, in.Value.Currency, in.StockTotal, remaining,
		in.ValidFrom, in.ValidUntil, mustJSON(in.BlackoutDates), in.PerMemberLimit, string(in.Fulfilment),
		in.FulfilmentHours, string(in.Status), now, id).Error
	if err != nil {
		return fmt.Errorf("update reward %d: %w", id, err)
	}
	return nil
}

// takeStock reserves one unit of a counted reward. It reports false when
// none is left. The conditional UPDATE is what makes overselling impossible:
// concurrent orders queue on the row and re-check stock_remaining > 0.
func takeStock(tx *gorm.DB, rewardID int64) (bool, error) {
	res := tx.Exec(`UPDATE catalog_rewards SET stock_remaining = stock_remaining - 1
		WHERE id = ? AND stock_remaining > 0`, rewardID)
	if res.Error != nil {
		return false, fmt.Errorf("reserve stock of reward %d: %w", rewardID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// returnStock gives a unit back (never above the current total).
func returnStock(tx *gorm.DB, rewardID int64) error {
	if err := tx.Exec(`UPDATE catalog_rewards SET stock_remaining = LEAST(stock_remaining + 1, stock_total)
		WHERE id = ? AND stock_total IS NOT NULL`, rewardID).Error; err != nil {
		return fmt.Errorf("return stock of reward %d: %w", rewardID, err)
	}
	return nil
}

// assignVoucher gives the oldest free code of the reward's pool to the
// order. Codes locked by concurrent orders are skipped, not waited for.
func assignVoucher(tx *gorm.DB, rewardID, orderID int64, now time.Time) (string, bool, error) {
	var codes []string
	err := tx.Raw(`UPDATE catalog_vouchers SET order_id = ?, assigned_at = ?
		WHERE id = (SELECT id FROM catalog_vouchers WHERE reward_id = ? AND order_id IS NULL
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING code`, orderID, now, rewardID).Scan(&codes).Error
	if err != nil {
		return "", false, fmt.Errorf("assign voucher of reward %d: %w", rewardID, err)
	}
	if len(codes) == 0 {
		return "", false, nil
	}
	return codes[0], true, nil
}

type orderRow struct {
	ID                   int64
	MemberID             int64
	RewardID             int64
	PartnerID            *int64
	RewardTitle          string
	Category             string
	Points               int64
	Status               string
	Fulfilment           string
	ServiceDate          *string
	Reference            *string
	Reason               string
	HoldID               int64
	CaptureTransactionID *int64
	RedemptionRate       decimal.Decimal
	Currency             string
	DeadlineAt           time.Time
	IdempotencyKey       string
	RequestHash          []byte
	CreatedAt            time.Time
	ClosedAt             *time.Time
}

const orderColumns = `o.id, o.member_id, o.reward_id, o.partner_id, r.title AS reward_title, r.category, o.points,
	o.status, o.fulfilment, to_char(o.service_date, 'YYYY-MM-DD') AS service_date, o.reference, o.reason, o.hold_id,
	o.capture_transaction_id, o.redemption_rate, o.currency, o.deadline_at, o.idempotency_key, o.request_hash,
	o.created_at, o.closed_at`

func (r orderRow) order() Order {
	o := Order{ID: r.ID, MemberID: r.MemberID, RewardID: r.RewardID, PartnerID: deref(r.PartnerID),
		RewardTitle: r.RewardTitle, Category: Category(r.Category), Points: r.Points, Status: OrderStatus(r.Status),
		Fulfilment: Fulfilment(r.Fulfilment), Reason: r.Reason, HoldID: r.HoldID, RedemptionRate: r.RedemptionRate,
		Currency: r.Currency, DeadlineAt: r.DeadlineAt.UTC(), CreatedAt: r.CreatedAt.UTC(), ClosedAt: utcPtr(r.ClosedAt)}
	if r.ServiceDate != nil {
		o.ServiceDate = *r.ServiceDate
	}
	if r.Reference != nil {
		o.Reference = *r.Reference
	}
	if r.CaptureTransactionID != nil {
		o.CaptureTransactionID = *r.CaptureTransactionID
	}
	return o
}

// findOrder loads one order by a condition on o; lock takes the order row lock.
func findOrder(tx *gorm.DB, lock bool, where string, args ...any) (orderRow, bool, error) {
	q := `SELECT ` + orderColumns + ` FROM catalog_orders o JOIN catalog_rewards r ON r.id = o.reward_id WHERE ` + where
	if lock {
		q += ` FOR UPDATE OF o`
	}
	var rows []orderRow
	if err := tx.Raw(q, args...).Scan(&rows).Error; err != nil {
		return orderRow{}, false, fmt.Errorf("load order: %w", err)
	}
	if len(rows) == 0 {
		return orderRow{}, false, nil
	}
	return rows[0], true, nil
}

func getOrder(tx *gorm.DB, id int64, lock bool) (orderRow, error) {
	r, ok, err := findOrder(tx, lock, "o.id = ?", id)
	if err != nil {
		return orderRow{}, err
	}
	if !ok {
		return orderRow{}, fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
	}
	return r, nil
}

// listOrders pages orders matching where, newest first (keyset on id).
func listOrders(tx *gorm.DB, q OrderQuery, where string, args ...any) ([]Order, string, error) {
	limit := pageLimit(q.Limit)
	if q.Status != "" {
		where += " AND o.status = ?"
		args = append(args, string(q.Status))
	}
	if q.Cursor != "" {
		before, err := parseCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += " AND o.id < ?"
		args = append(args, before)
	}
	var rows []orderRow
	err := tx.Raw(`SELECT `+orderColumns+` FROM catalog_orders o JOIN catalog_rewards r ON r.id = o.reward_id
		WHERE `+where+` ORDER BY o.id DESC LIMIT ?`, append(args, limit+1)...).Scan(&rows).Error
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = strconv.FormatInt(rows[limit-1].ID, 10)
	}
	out := make([]Order, len(rows))
	for i, r := range rows {
		out[i] = r.order()
	}
	return out, next, nil
}

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 200:
		return 200
	}
	return n
}

func parseCursor(c string) (int64, error) {
	id, err := strconv.ParseInt(c, 10, 64)
	if err != nil || id <= 0 {
		return 0, validation.New("cursor", "is not a cursor returned by this list")
	}
	return id, nil
}

func unmarshalObject(text string, out *map[string]any) error {
	return json.Unmarshal([]byte(text), out)
}
