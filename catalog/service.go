package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/webhooks"
)

// Service runs the catalog's use cases; each opens its own database
// transaction and composes the ledger inside it (ledger.In).
type Service struct {
	db       *gorm.DB
	ledger   *ledger.Service
	members  *members.Service
	registry *partners.Service
	now      func() time.Time
	// TierOf returns a member's tier name (tier prices and restrictions);
	// nil or "" means the member has no tier. The programme package wires it.
	TierOf func(ctx context.Context, memberID int64) (string, error)
	// HoldGrace is how long an order's hold outlives its fulfilment
	// deadline, so the catalog's expiry job (not the ledger's hold sweep)
	// closes late orders and tells the partner.
	HoldGrace time.Duration
}

// NewService wires the catalog.
func NewService(db *gorm.DB, l *ledger.Service, m *members.Service, registry *partners.Service, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, ledger: l, members: m, registry: registry, now: now, HoldGrace: 24 * time.Hour}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) tier(ctx context.Context, memberID int64) (string, error) {
	if s.TierOf == nil {
		return "", nil
	}
	t, err := s.TierOf(ctx, memberID)
	if err != nil {
		return "", fmt.Errorf("tier of member %d: %w", memberID, err)
	}
	return strings.ToLower(t), nil
}

// ---- rewards (partner and operator)

// CreateReward publishes a reward of the partner. Charity donations need a
// charity partner (ErrNotCharity). Errors: *validation.Error,
// partners.ErrPartnerNotFound, ErrNotCharity.
func (s *Service) CreateReward(ctx context.Context, partnerID int64, in RewardInput) (Reward, error) {
	if err := s.checkCharity(ctx, partnerID, in.Category); err != nil {
		return Reward{}, err
	}
	return s.createReward(ctx, partnerID, partnerActor(partnerID), in)
}

// CreateOperatorReward publishes a reward the operator owns; actor names the
// staff member (the reward's trail). Operator rewards are instant (a voucher
// code from the pool hands the reward over) and never charity donations.
// Errors: *validation.Error.
func (s *Service) CreateOperatorReward(ctx context.Context, actor string, in RewardInput) (Reward, error) {
	if err := operatorRule(in); err != nil {
		return Reward{}, err
	}
	return s.createReward(ctx, 0, actor, in)
}

func partnerActor(partnerID int64) string { return fmt.Sprintf("partner:%d", partnerID) }

// operatorRule is what an operator reward may be beyond RewardInput.validate.
func operatorRule(in RewardInput) error {
	var v validation.Error
	v.Check(in.Category != CategoryCharity, "category", "charity donations are offered by charity partners, not the operator")
	v.Check(in.Fulfilment == "" || in.Fulfilment == FulfilmentInstant, "fulfilment",
		"must be instant for an operator reward (a voucher code hands it over)")
	return v.Err()
}

func (s *Service) createReward(ctx context.Context, owner int64, actor string, in RewardInput) (Reward, error) {
	if owner == 0 && in.Fulfilment == "" {
		in.Fulfilment = FulfilmentInstant
	}
	in.normalise()
	if err := in.validate(); err != nil {
		return Reward{}, err
	}
	var out Reward
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.clock()
		id, err := insertReward(tx, owner, in, now)
		if err != nil {
			return err
		}
		if err := addEvent(tx, rewardEvent{RewardID: id, Kind: "created", Actor: actor, StockAfter: in.StockTotal}, now); err != nil {
			return err
		}
		out, err = getReward(tx, id, false)
		return err
	})
	if err != nil {
		return Reward{}, fmt.Errorf("create reward (owner %d): %w", owner, err)
	}
	return out, nil
}

func (s *Service) checkCharity(ctx context.Context, partnerID int64, c Category) error {
	p, err := s.registry.Partner(ctx, partnerID)
	if err != nil {
		return err
	}
	if c == CategoryCharity && p.Sector != partners.SectorCharity {
		return fmt.Errorf("partner %d is a %s partner: %w", partnerID, p.Sector, ErrNotCharity)
	}
	return nil
}

// UpdateReward replaces the partner's reward. Changing stock_total moves the
// remaining stock by the same amount; it may not take it below zero (a
// validation error). Existing orders keep their price. Errors:
// ErrRewardNotFound (also for another partner's reward), *validation.Error,
// ErrNotCharity, ErrRewardRetired.
func (s *Service) UpdateReward(ctx context.Context, partnerID, id int64, in RewardInput) (Reward, error) {
	if err := s.checkCharity(ctx, partnerID, in.Category); err != nil {
		return Reward{}, err
	}
	return s.updateReward(ctx, partnerID, partnerActor(partnerID), id, in)
}

// UpdateOperatorReward replaces an operator reward, like UpdateReward.
// Errors: ErrRewardNotFound (also for a partner's reward),
// *validation.Error, ErrRewardRetired.
func (s *Service) UpdateOperatorReward(ctx context.Context, actor string, id int64, in RewardInput) (Reward, error) {
	if err := operatorRule(in); err != nil {
		return Reward{}, err
	}
	return s.updateReward(ctx, 0, actor, id, in)
}

func (s *Service) updateReward(ctx context.Context, owner int64, actor string, id int64, in RewardInput) (Reward, error) {
	if owner == 0 && in.Fulfilment == "" {
		in.Fulfilment = FulfilmentInstant
	}
	in.normalise()
	if err := in.validate(); err != nil {
		return Reward{}, err
	}
	var out Reward
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := ownedReward(tx, owner, id)
		if err != nil {
			return err
		}
		var remaining *int64
		if in.StockTotal != nil {
			n := *in.StockTotal
			if cur.StockTotal != nil {
				n = *cur.StockRemaining + (*in.StockTotal - *cur.StockTotal)
			}
			if n < 0 {
				return validation.New("stock_total", fmt.Sprintf("would leave %d units remaining: %d are already ordered",
					n, *cur.StockTotal-*cur.StockRemaining))
			}
			remaining = &n
		}
		now := s.clock()
		if err := updateReward(tx, id, in, remaining, now); err != nil {
			return err
		}
		ev := rewardEvent{RewardID: id, Kind: "updated", Actor: actor}
		if !sameStock(cur.StockTotal, in.StockTotal) {
			ev.Kind, ev.StockAfter = "stock_set", remaining
			if remaining != nil && cur.StockRemaining != nil {
				d := *remaining - *cur.StockRemaining
				ev.StockDelta = &d
			}
		}
		if err := addEvent(tx, ev, now); err != nil {
			return err
		}
		out, err = getReward(tx, id, false)
		return err
	})
	if err != nil {
		return Reward{}, fmt.Errorf("update reward %d: %w", id, err)
	}
	return out, nil
}

func sameStock(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// ownedReward locks reward id for a change by its owner (a partner id, or 0
// for the operator); anyone else's is ErrRewardNotFound, a retired one
// ErrRewardRetired.
func ownedReward(tx *gorm.DB, owner, id int64) (Reward, error) {
	r, err := getReward(tx, id, true)
	if err != nil {
		return Reward{}, err
	}
	if r.PartnerID != owner {
		return Reward{}, fmt.Errorf("reward %d: %w", id, ErrRewardNotFound)
	}
	if r.RetiredAt != nil {
		return Reward{}, fmt.Errorf("reward %d: %w", id, ErrRewardRetired)
	}
	return r, nil
}

// PartnerReward returns one of the partner's rewards; any other is
// ErrRewardNotFound.
func (s *Service) PartnerReward(ctx context.Context, partnerID, id int64) (Reward, error) {
	r, err := getReward(s.db.WithContext(ctx), id, false)
	if err == nil && r.PartnerID != partnerID {
		err = fmt.Errorf("reward %d: %w", id, ErrRewardNotFound)
	}
	return r, err
}

// Reward returns any reward (operator view). Errors: ErrRewardNotFound.
func (s *Service) Reward(ctx context.Context, id int64) (Reward, error) {
	return getReward(s.db.WithContext(ctx), id, false)
}

// Rewards pages through rewards in id order: one partner's (q.PartnerID) or
// all of them for the operator, whatever their status and visibility.
func (s *Service) Rewards(ctx context.Context, q RewardQuery) ([]Reward, string, error) {
	where, args := "TRUE", []any{}
	if q.PartnerID > 0 {
		where += " AND r.partner_id = ?"
		args = append(args, q.PartnerID)
	}
	switch q.Owner {
	case OwnerOperator:
		where += " AND r.partner_id IS NULL"
	case OwnerPartner:
		where += " AND r.partner_id IS NOT NULL"
	}
	if q.Visibility != "" {
		where += " AND r.visibility = ?"
		args = append(args, string(q.Visibility))
	}
	return s.listRewards(ctx, where, args, q.Cursor, q.Limit)
}

func (s *Service) listRewards(ctx context.Context, where string, args []any, cursor string, limit int) ([]Reward, string, error) {
	limit = pageLimit(limit)
	if cursor != "" {
		after, err := parseCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		where += " AND r.id > ?"
		args = append(args, after)
	}
	var rows []rewardRow
	err := s.db.WithContext(ctx).Raw(`SELECT `+rewardColumns+` FROM catalog_rewards r
		WHERE `+where+` ORDER BY r.id LIMIT ?`, append(args, limit+1)...).Scan(&rows).Error
	if err != nil {
		return nil, "", fmt.Errorf("list rewards: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = strconv.FormatInt(rows[limit-1].ID, 10)
	}
	out := make([]Reward, len(rows))
	for i, r := range rows {
		out[i] = r.reward()
	}
	return out, next, nil
}

// UploadVouchers adds codes to an instant reward's pool. Codes already in
// the pool are counted as duplicates and ignored, so an upload can be
// retried. Errors: ErrRewardNotFound, ErrRewardRetired, *validation.Error
// (empty or long codes, more than 10,000 at once, a reward that is not
// instant or is a charity donation).
func (s *Service) UploadVouchers(ctx context.Context, partnerID, rewardID int64, codes []string) (VoucherUpload, error) {
	return s.uploadVouchers(ctx, partnerID, partnerActor(partnerID), rewardID, codes)
}

// UploadOperatorVouchers adds codes to an operator reward's pool, like
// UploadVouchers. The trail records the counts, never the codes.
func (s *Service) UploadOperatorVouchers(ctx context.Context, actor string, rewardID int64, codes []string) (VoucherUpload, error) {
	return s.uploadVouchers(ctx, 0, actor, rewardID, codes)
}

func (s *Service) uploadVouchers(ctx context.Context, owner int64, actor string, rewardID int64, codes []string) (VoucherUpload, error) {
	var v validation.Error
	v.Check(len(codes) >= 1 && len(codes) <= 10000, "codes", "must hold 1 to 10,000 codes")
	for i, c := range codes {
		c = strings.TrimSpace(c)
		codes[i] = c
		v.Check(c != "" && len(c) <= 200, fmt.Sprintf("codes[%d]", i), "must be 1 to 200 characters")
	}
	if err := v.Err(); err != nil {
		return VoucherUpload{}, err
	}
	var out VoucherUpload
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := getReward(tx, rewardID, false)
		if err != nil {
			return err
		}
		if r.PartnerID != owner {
			return fmt.Errorf("reward %d: %w", rewardID, ErrRewardNotFound)
		}
		if r.RetiredAt != nil {
			return fmt.Errorf("reward %d: %w", rewardID, ErrRewardRetired)
		}
		if r.Fulfilment != FulfilmentInstant || r.Category == CategoryCharity {
			return validation.New("reward_id", "only instant rewards (other than donations) take voucher codes")
		}
		now := s.clock()
		// One statement for the whole upload (the codes as one JSON array):
		// skip those already in the pool, count what went in.
		var added int
		if err := tx.Raw(`WITH ins AS (INSERT INTO catalog_vouchers (reward_id, code, uploaded_at)
				SELECT ?, c, ? FROM jsonb_array_elements_text(?::jsonb) AS c ON CONFLICT (reward_id, code) DO NOTHING RETURNING 1)
			SELECT count(*) FROM ins`, rewardID, now, mustJSON(codes)).Scan(&added).Error; err != nil {
			return fmt.Errorf("insert vouchers: %w", err)
		}
		out.Added, out.Duplicates = added, len(codes)-added
		if err := tx.Raw(`SELECT count(*) FROM catalog_vouchers WHERE reward_id = ? AND order_id IS NULL`, rewardID).
			Scan(&out.Available).Error; err != nil {
			return err
		}
		return addEvent(tx, rewardEvent{RewardID: rewardID, Kind: "vouchers_uploaded", Actor: actor,
			Detail: map[string]any{"added": out.Added, "duplicates": out.Duplicates, "available": out.Available}}, now)
	})
	if err != nil {
		return VoucherUpload{}, fmt.Errorf("upload vouchers of reward %d: %w", rewardID, err)
	}
	return out, nil
}

// Moderate features, hides, suspends or restores any reward (operator):
// approving is making it visible (the reason is cleared), rejecting is
// suspending it with a reason the partner reads. Errors: ErrRewardNotFound,
// *validation.Error.
func (s *Service) Moderate(ctx context.Context, actor string, id int64, m Moderation) (Reward, error) {
	var v validation.Error
	m.Reason = strings.TrimSpace(m.Reason)
	v.Check(m.Featured != nil || m.Visibility != nil, "body", "set featured, visibility or both")
	if m.Visibility != nil {
		vis := *m.Visibility
		v.Check(vis == VisibilityVisible || vis == VisibilityHidden || vis == VisibilitySuspended, "visibility",
			"must be visible, hidden or suspended")
		v.Check(vis == VisibilityVisible || m.Reason != "", "reason", "is required to hide or suspend a reward")
	}
	v.Check(len(m.Reason) <= 500, "reason", "must be at most 500 characters")
	if err := v.Err(); err != nil {
		return Reward{}, err
	}
	var out Reward
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := getReward(tx, id, true); err != nil {
			return err
		}
		now := s.clock()
		detail := map[string]any{}
		if m.Featured != nil {
			detail["featured"] = *m.Featured
			if err := tx.Exec(`UPDATE catalog_rewards SET featured = ?, updated_at = ? WHERE id = ?`, *m.Featured, now, id).Error; err != nil {
				return err
			}
		}
		if m.Visibility != nil {
			detail["visibility"] = string(*m.Visibility)
			reason := m.Reason
			if *m.Visibility == VisibilityVisible {
				reason = ""
			}
			if err := tx.Exec(`UPDATE catalog_rewards SET visibility = ?, moderation_reason = ?, updated_at = ? WHERE id = ?`,
				string(*m.Visibility), reason, now, id).Error; err != nil {
				return err
			}
		}
		if err := addEvent(tx, rewardEvent{RewardID: id, Kind: "moderated", Actor: actor, Reason: m.Reason, Detail: detail}, now); err != nil {
			return err
		}
		var err error
		out, err = getReward(tx, id, false)
		return err
	})
	if err != nil {
		return Reward{}, fmt.Errorf("moderate reward %d: %w", id, err)
	}
	return out, nil
}

// ---- member catalog

// offered is the SQL condition of rewards a member of tier may see at now:
// active, visible, valid, for the tier, and of an active partner.
func (s *Service) offered(ctx context.Context, tier string) (string, []any, error) {
	active, err := s.registry.ActivePartnerIDs(ctx)
	if err != nil {
		return "", nil, err
	}
	now := s.clock()
	return `r.status = 'active' AND r.visibility = 'visible' AND (r.partner_id IS NULL OR r.partner_id = ANY(CAST(? AS bigint[])))
		AND (r.valid_from IS NULL OR r.valid_from <= ?) AND (r.valid_until IS NULL OR r.valid_until > ?)
		AND (jsonb_array_length(r.eligible_tiers) = 0 OR r.eligible_tiers @> jsonb_build_array(?::text))`,
		[]any{database.Int64Array(active), now, now, tier}, nil
}

// Browse lists the rewards offered to a member, in id order, at the member's
// tier price; Affordable keeps those the member's available points cover.
func (s *Service) Browse(ctx context.Context, memberID int64, q BrowseQuery) ([]Offer, string, error) {
	tier, err := s.tier(ctx, memberID)
	if err != nil {
		return nil, "", err
	}
	bal, err := s.ledger.Balance(ctx, memberID)
	if err != nil {
		return nil, "", err
	}
	where, args, err := s.offered(ctx, tier)
	if err != nil {
		return nil, "", err
	}
	if q.PartnerID > 0 {
		where += " AND r.partner_id = ?"
		args = append(args, q.PartnerID)
	}
	if q.Category != "" {
		where += " AND r.category = ?"
		args = append(args, string(q.Category))
	}
	if q.Featured {
		where += " AND r.featured"
	}
	if q.Affordable {
		where += " AND COALESCE((r.tier_prices ->> ?::text)::bigint, r.price_points) <= ?"
		args = append(args, tier, int64(bal.Available))
	}
	list, next, err := s.listRewards(ctx, where, args, q.Cursor, q.Limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]Offer, len(list))
	for i, r := range list {
		out[i] = offerOf(r, tier, bal)
	}
	return out, next, nil
}

func offerOf(r Reward, tier string, bal ledger.Balance) Offer {
	p := r.PriceFor(tier)
	return Offer{Reward: r, Price: p, Affordable: p <= int64(bal.Available)}
}

// Offer returns one reward offered to the member. Errors: ErrRewardNotFound
// (also for rewards not offered to the member).
func (s *Service) Offer(ctx context.Context, memberID, id int64) (Offer, error) {
	tier, err := s.tier(ctx, memberID)
	if err != nil {
		return Offer{}, err
	}
	bal, err := s.ledger.Balance(ctx, memberID)
	if err != nil {
		return Offer{}, err
	}
	where, args, err := s.offered(ctx, tier)
	if err != nil {
		return Offer{}, err
	}
	list, _, err := s.listRewards(ctx, where+" AND r.id = ?", append(args, id), "", 1)
	if err != nil {
		return Offer{}, err
	}
	if len(list) == 0 {
		return Offer{}, fmt.Errorf("reward %d: %w", id, ErrRewardNotFound)
	}
	return offerOf(list[0], tier, bal), nil
}

// ---- orders (member)

func orderHash(in OrderInput) []byte {
	h := sha256.Sum256([]byte(mustJSON(in)))
	return h[:]
}

// orderIdem is the ledger idempotency of a member's order: member-scoped,
// apart from the member's other keyed operations.
func orderIdem(memberID int64, key string, hash []byte) ledger.Idempotency {
	return ledger.Idempotency{Scope: fmt.Sprintf("catalog:member:%d", memberID), Key: key, RequestHash: hash}
}

// stepIdem is the ledger idempotency of a step of an order's life.
func stepIdem(orderID int64, step string) ledger.Idempotency {
	return ledger.Idempotency{Scope: "catalog", Key: fmt.Sprintf("order:%d:%s", orderID, step)}
}

// holdDetails is stored on the order's hold and copied to its capture: what
// settlement needs to reimburse the providing partner, like a POS burn's.
type holdDetails struct {
	Contract           *holdContract `json:"contract,omitempty"`
	ReimbursementMinor int64         `json:"reimbursement_minor"`
	Channel            string        `json:"channel"`
	OrderID            int64         `json:"order_id"`
	RewardID           int64         `json:"reward_id"`
	Category           Category      `json:"category"`
	Owner              Owner         `json:"owner"`
	Cost               *money.Money  `json:"cost,omitempty"`
}

type holdContract struct {
	ID             int64  `json:"id"`
	Version        int    `json:"version"`
	RedemptionRate string `json:"redemption_rate"`
	Currency       string `json:"currency"`
}

// orderDetails is what an order's hold carries for settlement and the
// statement of the member's history, its destination account, and the rate
// and currency the order records. A partner's reward is a redemption at the
// partner (partner_redeemed, reimbursed at the contract's redemption rate);
// an operator reward goes to operator_redeemed with rate 0: nobody is
// reimbursed, and cost_minor (the reward's value) is what the operator bears.
func orderDetails(r Reward, c partners.Contract, price, orderID int64) (json.RawMessage, ledger.AccountKind, decimal.Decimal, string) {
	var d holdDetails
	d.Channel, d.OrderID, d.RewardID, d.Category, d.Owner = "catalog", orderID, r.ID, r.Category, r.Owner
	if r.Owner == OwnerOperator {
		d.Cost = &r.Value
		b, _ := json.Marshal(d)
		return b, ledger.KindOperatorRedeemed, decimal.Zero, r.Value.Currency
	}
	d.Contract = &holdContract{ID: c.ID, Version: c.Version, RedemptionRate: c.RedemptionRate.String(), Currency: c.Currency}
	d.ReimbursementMinor = money.PointsValue(price, c.RedemptionRate, c.Currency)
	b, _ := json.Marshal(d)
	return b, ledger.KindPartnerRedeemed, c.RedemptionRate, c.Currency
}

// PlaceOrder orders a reward for a member: it holds the points, reserves a
// unit of stock and records the order, atomically. Instant rewards get a
// voucher code (or a donation reference) and are captured at once; async
// rewards notify the partner (order.created) and wait for fulfilment.
// key is the client's Idempotency-Key: a replay returns the first order with
// Replayed set, whatever happened since. Errors: *validation.Error,
// members.ErrMemberInactive, ErrRewardNotFound, ErrRewardUnavailable,
// points.ErrRoleNotInContract / ErrNoContract (the partner cannot take
// redemptions), ErrOrderLimit, ErrOutOfStock, ledger.ErrInsufficientPoints,
// ledger.ErrAccountBlocked, ledger.ErrIdempotencyMismatch.
func (s *Service) PlaceOrder(ctx context.Context, memberID int64, key string, in OrderInput) (Order, error) {
	var v validation.Error
	v.Check(len(key) >= 1 && len(key) <= 200, "Idempotency-Key", "is required (1 to 200 characters)")
	v.Check(in.RewardID > 0, "reward_id", "is required")
	if in.ServiceDate != "" {
		_, err := time.Parse(time.DateOnly, in.ServiceDate)
		v.Check(err == nil, "service_date", "must be a date (YYYY-MM-DD)")
	}
	if err := v.Err(); err != nil {
		return Order{}, err
	}
	hash := orderHash(in)
	var out Order
	// What other domains know (the member, its tier, the partner and its
	// contract) is read before the transaction, on the pool: the transaction
	// holds one connection and never waits for a second, so concurrent
	// orders cannot exhaust the pool.
	var (
		tier string
		r    Reward
		c    partners.Contract
		now  time.Time
	)
	replayed, err := func() (bool, error) {
		// A committed earlier answer under this key: replay it before any
		// check that may have changed since (stock, balance, validity); the
		// transaction looks again for one committed meanwhile.
		db := s.db.WithContext(ctx)
		if prev, ok, err := findOrder(db, false, "o.member_id = ? AND o.idempotency_key = ?", memberID, key); err != nil || ok {
			if err == nil {
				err = replay(prev, hash, &out)
			}
			return ok, err
		}
		m, err := s.members.Get(ctx, memberID)
		if err != nil {
			return false, err
		}
		if err := members.CanTransact(m); err != nil {
			return false, err
		}
		if tier, err = s.tier(ctx, memberID); err != nil {
			return false, err
		}
		now = s.clock()
		if r, err = getReward(db, in.RewardID, false); err != nil {
			return false, err
		}
		if err := r.orderable(now, tier, in.ServiceDate); err != nil {
			return false, err
		}
		if r.Owner == OwnerOperator {
			return false, nil // no partner, no contract: the operator bears the cost
		}
		p, err := s.registry.Partner(ctx, r.PartnerID)
		if err != nil {
			return false, err
		}
		if p.Status != partners.StatusActive {
			return false, fmt.Errorf("partner %d is %s: %w", p.ID, p.Status, ErrRewardUnavailable)
		}
		if c, err = s.registry.ContractAt(ctx, r.PartnerID, now); err != nil {
			return false, err
		}
		if !c.Burn {
			return false, fmt.Errorf("redeem at partner %d: %w", r.PartnerID, points.ErrRoleNotInContract)
		}
		return false, nil
	}()
	if err != nil || replayed {
		if err != nil {
			return Order{}, fmt.Errorf("order reward %d for member %d: %w", in.RewardID, memberID, err)
		}
		return out, nil
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if prev, ok, err := findOrder(tx, false, "o.member_id = ? AND o.idempotency_key = ?", memberID, key); err != nil {
			return err
		} else if ok {
			return replay(prev, hash, &out)
		}
		var orderID int64
		if err := tx.Raw(`SELECT nextval(pg_get_serial_sequence('catalog_orders', 'id'))`).Scan(&orderID).Error; err != nil {
			return fmt.Errorf("draw order id: %w", err)
		}
		price := r.PriceFor(tier)
		details, dest, rate, currency := orderDetails(r, c, price, orderID)
		deadline := now.Add(time.Duration(r.FulfilmentHours) * time.Hour)
		l := s.ledger.In(tx)
		// The hold locks the member's account for the rest of the
		// transaction and claims the idempotency key: a concurrent duplicate
		// waits here and then replays.
		h, err := l.Hold(ctx, ledger.HoldRequest{Idem: orderIdem(memberID, key, hash), MemberID: memberID,
			PartnerID: r.PartnerID, Points: ledger.Points(price), ExpiresAt: deadline.Add(s.HoldGrace),
			Purpose: "order", Destination: dest, ExternalRef: fmt.Sprintf("order:%d", orderID),
			Details: details})
		if err != nil {
			return err
		}
		if h.Replayed {
			prev, err := getOrderByHold(tx, h.ID)
			if err != nil {
				return err
			}
			return replay(prev, hash, &out)
		}
		if r.PerMemberLimit > 0 {
			var n int
			if err := tx.Raw(`SELECT count(*) FROM catalog_orders WHERE member_id = ? AND reward_id = ?
				AND status IN ('pending','fulfilled')`, memberID, r.ID).Scan(&n).Error; err != nil {
				return err
			}
			if n >= r.PerMemberLimit {
				return fmt.Errorf("reward %d allows %d per member: %w", r.ID, r.PerMemberLimit, ErrOrderLimit)
			}
		}
		if r.StockTotal != nil {
			ok, err := takeStock(tx, r.ID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("reward %d: %w", r.ID, ErrOutOfStock)
			}
		}
		var serviceDate *string
		if in.ServiceDate != "" {
			serviceDate = &in.ServiceDate
		}
		if err := tx.Exec(`INSERT INTO catalog_orders (id, member_id, reward_id, partner_id, points, status, fulfilment,
			service_date, hold_id, redemption_rate, currency, deadline_at, idempotency_key, request_hash, created_at)
			VALUES (?, ?, ?, ?, ?, 'pending', ?, ?::date, ?, ?, ?, ?, ?, ?, ?)`,
			orderID, memberID, r.ID, nullID(r.PartnerID), price, string(r.Fulfilment), serviceDate, h.ID, rate,
			currency, deadline, key, hash, now).Error; err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if r.Fulfilment == FulfilmentInstant {
			ref := fmt.Sprintf("DONATION-%d", orderID)
			if r.Category != CategoryCharity {
				code, ok, err := assignVoucher(tx, r.ID, orderID, now)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("reward %d has no voucher codes left: %w", r.ID, ErrOutOfStock)
				}
				ref = code
			}
			if out, err = s.fulfil(ctx, tx, orderID, ref, now); err != nil {
				return err
			}
			return nil
		}
		row, err := getOrder(tx, orderID, false)
		if err != nil {
			return err
		}
		out = row.order()
		if err := publish(tx, now, out, webhooks.EventOrderCreated); err != nil {
			return err
		}
		return s.notify(ctx, tx, out)
	})
	if err != nil {
		return Order{}, fmt.Errorf("order reward %d for member %d: %w", in.RewardID, memberID, err)
	}
	return out, nil
}

// publish tells the providing partner about order o in tx; the operator's
// own orders have no partner to tell.
func publish(tx *gorm.DB, now time.Time, o Order, event string) error {
	if o.PartnerID == 0 {
		return nil
	}
	_, err := webhooks.Publish(tx, now, o.PartnerID, event, o)
	return err
}

func getOrderByHold(tx *gorm.DB, holdID int64) (orderRow, error) {
	r, ok, err := findOrder(tx, false, "o.hold_id = ?", holdID)
	if err != nil {
		return orderRow{}, err
	}
	if !ok {
		return orderRow{}, fmt.Errorf("order of hold %d: %w", holdID, ErrOrderNotFound)
	}
	return r, nil
}

func replay(prev orderRow, hash []byte, out *Order) error {
	if string(prev.RequestHash) != string(hash) {
		return fmt.Errorf("order with key %q: %w", prev.IdempotencyKey, ledger.ErrIdempotencyMismatch)
	}
	*out = prev.order()
	out.Replayed = true
	return nil
}

// fulfil captures a pending order's hold inside tx and records the
// reference; it publishes order.fulfilled to the providing partner.
func (s *Service) fulfil(ctx context.Context, tx *gorm.DB, orderID int64, ref string, now time.Time) (Order, error) {
	row, err := getOrder(tx, orderID, true)
	if err != nil {
		return Order{}, err
	}
	t, err := s.ledger.In(tx).Capture(ctx, ledger.CaptureRequest{Idem: stepIdem(orderID, "capture"), HoldID: row.HoldID})
	if err != nil {
		return Order{}, err
	}
	if err := tx.Exec(`UPDATE catalog_orders SET status = 'fulfilled', reference = ?, capture_transaction_id = ?,
		closed_at = ? WHERE id = ?`, ref, t.ID, now, orderID).Error; err != nil {
		return Order{}, fmt.Errorf("close order %d: %w", orderID, err)
	}
	row, err = getOrder(tx, orderID, false)
	if err != nil {
		return Order{}, err
	}
	o := row.order()
	if err := publish(tx, now, o, webhooks.EventOrderFulfilled); err != nil {
		return o, err
	}
	return o, s.notify(ctx, tx, o)
}

// notify queues the member's mail about order o's new status in tx, the
// transaction that changed it (members.NoticeOrders).
func (s *Service) notify(ctx context.Context, tx *gorm.DB, o Order) error {
	_, err := s.members.Notify(ctx, tx, o.MemberID, members.Notice{Kind: members.NoticeOrders, Template: "order_status",
		Data: map[string]any{"status": string(o.Status), "reward": o.RewardTitle, "points": o.Points, "order_id": o.ID,
			"reference": o.Reference, "reason": o.Reason, "deadline": o.DeadlineAt.UTC().Format("2 Jan 2006 15:04 UTC")}})
	return err
}

// MemberOrder returns one of the member's orders; any other is ErrOrderNotFound.
func (s *Service) MemberOrder(ctx context.Context, memberID, id int64) (Order, error) {
	r, err := getOrder(s.db.WithContext(ctx), id, false)
	if err == nil && r.MemberID != memberID {
		err = fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
	}
	return r.order(), err
}

// MemberOrders pages through the member's orders, newest first.
func (s *Service) MemberOrders(ctx context.Context, memberID int64, q OrderQuery) ([]Order, string, error) {
	return listOrders(s.db.WithContext(ctx), q, "o.member_id = ?", memberID)
}

// Cancel cancels the member's pending order: the hold is voided and the
// stock unit returned; the partner gets order.cancelled. Cancelling a
// cancelled order returns it (Replayed). Errors: ErrOrderNotFound,
// ErrOrderNotPending.
func (s *Service) Cancel(ctx context.Context, memberID, id int64) (Order, error) {
	return s.close(ctx, id, OrderCancelled, "cancelled by the member", func(o orderRow) error {
		if o.MemberID != memberID {
			return fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
		}
		return nil
	})
}

// ---- orders (partner)

// PartnerOrder returns one order of a reward the partner provides; any other
// is ErrOrderNotFound.
func (s *Service) PartnerOrder(ctx context.Context, partnerID, id int64) (Order, error) {
	r, err := getOrder(s.db.WithContext(ctx), id, false)
	if err == nil && deref(r.PartnerID) != partnerID {
		err = fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
	}
	return r.order(), err
}

// PartnerOrders pages through orders of the partner's rewards, newest first;
// Status "pending" is the fulfilment queue.
func (s *Service) PartnerOrders(ctx context.Context, partnerID int64, q OrderQuery) ([]Order, string, error) {
	return listOrders(s.db.WithContext(ctx), q, "o.partner_id = ?", partnerID)
}

// Fulfil records the partner's delivery (voucher or booking reference) of a
// pending order and captures its points: a redemption at the partner.
// Fulfilling again with the same reference returns the order (Replayed).
// Errors: *validation.Error, ErrOrderNotFound, ErrOrderNotPending,
// ErrDeadlinePassed.
func (s *Service) Fulfil(ctx context.Context, partnerID, id int64, reference string) (Order, error) {
	reference = strings.TrimSpace(reference)
	if reference == "" || len(reference) > 200 {
		return Order{}, validation.New("reference", "is required (the voucher code or booking reference, at most 200 characters)")
	}
	var out Order
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := getOrder(tx, id, true)
		if err != nil {
			return err
		}
		if deref(row.PartnerID) != partnerID {
			return fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
		}
		now := s.clock()
		switch {
		case row.Status == string(OrderFulfilled) && row.Reference != nil && *row.Reference == reference:
			out = row.order()
			out.Replayed = true
			return nil
		case row.Status != string(OrderPending):
			return fmt.Errorf("order %d is %s: %w", id, row.Status, ErrOrderNotPending)
		case !now.Before(row.DeadlineAt):
			return fmt.Errorf("order %d was due by %s: %w", id, row.DeadlineAt.UTC().Format(time.RFC3339), ErrDeadlinePassed)
		}
		out, err = s.fulfil(ctx, tx, id, reference, now)
		return err
	})
	if err != nil {
		return Order{}, fmt.Errorf("fulfil order %d: %w", id, err)
	}
	return out, nil
}

// Reject declines a pending order of the partner's reward: the hold is
// voided, the stock unit returned and the member's points released.
// Errors: *validation.Error, ErrOrderNotFound, ErrOrderNotPending.
func (s *Service) Reject(ctx context.Context, partnerID, id int64, reason string) (Order, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 {
		return Order{}, validation.New("reason", "is required (at most 500 characters)")
	}
	return s.close(ctx, id, OrderRejected, reason, func(o orderRow) error {
		if deref(o.PartnerID) != partnerID {
			return fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
		}
		return nil
	})
}

// close ends a pending order without capture (rejected, cancelled,
// expired): void the hold, give the stock back, tell the partner. Closing an
// order already in the target state returns it (Replayed).
func (s *Service) close(ctx context.Context, id int64, status OrderStatus, reason string, allowed func(orderRow) error) (Order, error) {
	var out Order
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := getOrder(tx, id, true)
		if err != nil {
			return err
		}
		if err := allowed(row); err != nil {
			return err
		}
		if row.Status == string(status) {
			out = row.order()
			out.Replayed = true
			return nil
		}
		if row.Status != string(OrderPending) {
			return fmt.Errorf("order %d is %s: %w", id, row.Status, ErrOrderNotPending)
		}
		now := s.clock()
		l := s.ledger.In(tx)
		if _, err := l.Void(ctx, ledger.VoidRequest{Idem: stepIdem(id, "void"), HoldID: row.HoldID}); err != nil {
			// The ledger's hold sweep may have expired it already: the points
			// are released either way.
			h, herr := l.GetHold(ctx, row.HoldID)
			if !errors.Is(err, ledger.ErrHoldNotActive) || herr != nil || h.Status != ledger.HoldExpired {
				return err
			}
		}
		if err := returnStock(tx, row.RewardID); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE catalog_orders SET status = ?, reason = ?, closed_at = ? WHERE id = ?`,
			string(status), reason, now, id).Error; err != nil {
			return fmt.Errorf("close order %d: %w", id, err)
		}
		row, err = getOrder(tx, id, false)
		if err != nil {
			return err
		}
		out = row.order()
		if err := publish(tx, now, out, webhooks.EventOrderCancelled); err != nil {
			return err
		}
		return s.notify(ctx, tx, out)
	})
	if err != nil {
		return Order{}, fmt.Errorf("%s order %d: %w", strings.TrimSuffix(string(status), "ed"), id, err)
	}
	return out, nil
}

// ExpireOrders cancels up to limit pending orders past their fulfilment
// deadline (status expired), each in its own transaction, and returns how
// many it expired; call it until it returns less than limit. Idempotent: an
// order already closed is skipped.
func (s *Service) ExpireOrders(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 500
	}
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM catalog_orders WHERE status = 'pending' AND deadline_at <= ?
		ORDER BY deadline_at, id LIMIT ?`, s.clock(), limit).Scan(&ids).Error; err != nil {
		return 0, fmt.Errorf("expire orders: %w", err)
	}
	n := 0
	for _, id := range ids {
		o, err := s.close(ctx, id, OrderExpired, "not fulfilled by the partner's deadline", func(o orderRow) error {
			if o.Status == string(OrderPending) && s.clock().Before(o.DeadlineAt) {
				return errNotDue
			}
			return nil
		})
		switch {
		case errors.Is(err, errNotDue), errors.Is(err, ErrOrderNotPending):
			continue // fulfilled or cancelled meanwhile
		case err != nil:
			return n, err
		case !o.Replayed:
			n++
		}
	}
	return n, nil
}

var errNotDue = errors.New("order is not past its deadline")
