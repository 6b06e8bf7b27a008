package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// The catalog: partners publish rewards and fulfil orders, the operator
// moderates, members browse and order (package catalog). Another partner's
// reward or order, and another member's order, answer 404.

type rewardRequest struct {
	Title           string           `json:"title"`
	Description     string           `json:"description"`
	Category        string           `json:"category"`
	PricePoints     int64            `json:"price_points"`
	TierPrices      map[string]int64 `json:"tier_prices"`
	EligibleTiers   []string         `json:"eligible_tiers"`
	Value           money.Money      `json:"value"`
	StockTotal      *int64           `json:"stock_total"`
	ValidFrom       *time.Time       `json:"valid_from"`
	ValidUntil      *time.Time       `json:"valid_until"`
	BlackoutDates   []string         `json:"blackout_dates"`
	PerMemberLimit  int              `json:"per_member_limit"`
	Fulfilment      string           `json:"fulfilment"`
	FulfilmentHours int              `json:"fulfilment_hours"`
	Status          string           `json:"status"`
}

func (r rewardRequest) input() catalog.RewardInput {
	return catalog.RewardInput{Title: r.Title, Description: r.Description, Category: catalog.Category(r.Category),
		PricePoints: r.PricePoints, TierPrices: r.TierPrices, EligibleTiers: r.EligibleTiers,
		Value: r.Value, StockTotal: r.StockTotal,
		ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil, BlackoutDates: r.BlackoutDates,
		PerMemberLimit: r.PerMemberLimit, Fulfilment: catalog.Fulfilment(r.Fulfilment),
		FulfilmentHours: r.FulfilmentHours, Status: catalog.Status(r.Status)}
}

type rewardJSON struct {
	ID                int64            `json:"id"`
	PartnerID         *int64           `json:"partner_id"`
	Owner             string           `json:"owner"`
	Title             string           `json:"title"`
	Description       string           `json:"description"`
	Category          string           `json:"category"`
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
	Fulfilment        string           `json:"fulfilment"`
	FulfilmentHours   int              `json:"fulfilment_hours"`
	Status            string           `json:"status"`
	Visibility        string           `json:"visibility"`
	Featured          bool             `json:"featured"`
	VouchersAvailable int64            `json:"vouchers_available"`
	ModerationReason  string           `json:"moderation_reason,omitempty"`
	RetiredAt         *time.Time       `json:"retired_at,omitempty"`
	ImageURL          string           `json:"image_url,omitempty"`
	CreatedAt         time.Time        `json:"created_at"`
	UpdatedAt         time.Time        `json:"updated_at"`
}

func rewardOut(r catalog.Reward) rewardJSON {
	return rewardJSON{ID: r.ID, PartnerID: partnerRef(r.PartnerID), Owner: string(r.Owner), Title: r.Title, Description: r.Description,
		Category: string(r.Category), PricePoints: r.PricePoints, TierPrices: orEmptyMap(r.TierPrices),
		EligibleTiers: orEmpty(r.EligibleTiers), Value: r.Value,
		StockTotal: r.StockTotal, StockRemaining: r.StockRemaining, ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil,
		BlackoutDates: orEmpty(r.BlackoutDates), PerMemberLimit: r.PerMemberLimit, Fulfilment: string(r.Fulfilment),
		FulfilmentHours: r.FulfilmentHours, Status: string(r.Status), Visibility: string(r.Visibility),
		Featured: r.Featured, VouchersAvailable: r.VouchersAvailable, ModerationReason: r.ModerationReason,
		RetiredAt: r.RetiredAt, ImageURL: r.ImageURL, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// partnerRef is a reward's or order's partner, null for the operator's own.
func partnerRef(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// offerJSON is a reward as a member sees it: its price for the member's
// tier, whether the member can afford it, and no partner-side counters.
type offerJSON struct {
	ID             int64       `json:"id"`
	PartnerID      *int64      `json:"partner_id"`
	Owner          string      `json:"owner"`
	ImageURL       string      `json:"image_url,omitempty"`
	Title          string      `json:"title"`
	Description    string      `json:"description"`
	Category       string      `json:"category"`
	Price          int64       `json:"price"`
	Affordable     bool        `json:"affordable"`
	Value          money.Money `json:"value"`
	StockRemaining *int64      `json:"stock_remaining"`
	ValidUntil     *time.Time  `json:"valid_until,omitempty"`
	BlackoutDates  []string    `json:"blackout_dates"`
	PerMemberLimit int         `json:"per_member_limit"`
	Fulfilment     string      `json:"fulfilment"`
	Featured       bool        `json:"featured"`
}

func offerOut(o catalog.Offer) offerJSON {
	return offerJSON{ID: o.ID, PartnerID: partnerRef(o.PartnerID), Owner: string(o.Owner), ImageURL: o.ImageURL, Title: o.Title, Description: o.Description,
		Category: string(o.Category), Price: o.Price, Affordable: o.Affordable,
		Value: o.Value, StockRemaining: o.StockRemaining,
		ValidUntil: o.ValidUntil, BlackoutDates: orEmpty(o.BlackoutDates), PerMemberLimit: o.PerMemberLimit,
		Fulfilment: string(o.Fulfilment), Featured: o.Featured}
}

type orderJSON struct {
	ID                   int64      `json:"id"`
	MemberID             int64      `json:"member_id"`
	RewardID             int64      `json:"reward_id"`
	PartnerID            *int64     `json:"partner_id"`
	RewardTitle          string     `json:"reward_title"`
	Category             string     `json:"category"`
	Points               int64      `json:"points"`
	Status               string     `json:"status"`
	Fulfilment           string     `json:"fulfilment"`
	ServiceDate          string     `json:"service_date,omitempty"`
	Reference            string     `json:"reference,omitempty"`
	Reason               string     `json:"reason,omitempty"`
	CaptureTransactionID int64      `json:"capture_transaction_id,omitempty"`
	DeadlineAt           time.Time  `json:"deadline_at"`
	CreatedAt            time.Time  `json:"created_at"`
	ClosedAt             *time.Time `json:"closed_at,omitempty"`
}

func orderOut(o catalog.Order) orderJSON {
	return orderJSON{ID: o.ID, MemberID: o.MemberID, RewardID: o.RewardID, PartnerID: partnerRef(o.PartnerID),
		RewardTitle: o.RewardTitle, Category: string(o.Category), Points: o.Points, Status: string(o.Status),
		Fulfilment: string(o.Fulfilment), ServiceDate: o.ServiceDate, Reference: o.Reference, Reason: o.Reason,
		CaptureTransactionID: o.CaptureTransactionID, DeadlineAt: o.DeadlineAt, CreatedAt: o.CreatedAt, ClosedAt: o.ClosedAt}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func listOut[T any, J any](c *gin.Context, items []T, next string, out func(T) J) {
	data := make([]J, len(items))
	for i, it := range items {
		data[i] = out(it)
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// ---- partner: rewards (catalog:manage)

func (s *Server) createReward(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	var req rewardRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Catalog.CreateReward(c.Request.Context(), p.PartnerID, req.input())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, rewardOut(r))
}

func (s *Server) listRewards(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	var v validation.Error
	q := catalog.RewardQuery{PartnerID: p.PartnerID, Cursor: c.Query("cursor"), Limit: queryLimit(c, 50, 200, &v)}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Catalog.Rewards(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	listOut(c, list, next, rewardOut)
}

func (s *Server) getReward(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	r, err := s.deps.Catalog.PartnerReward(c.Request.Context(), p.PartnerID, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

func (s *Server) updateReward(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var req rewardRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Catalog.UpdateReward(c.Request.Context(), p.PartnerID, id, req.input())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, rewardOut(r))
}

func (s *Server) uploadVouchers(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var req struct {
		Codes []string `json:"codes"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	up, err := s.deps.Catalog.UploadVouchers(c.Request.Context(), p.PartnerID, id, req.Codes)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, up)
}

// ---- partner: orders (orders:fulfil)

func orderQuery(c *gin.Context) (catalog.OrderQuery, error) {
	var v validation.Error
	q := catalog.OrderQuery{Status: catalog.OrderStatus(c.Query("status")), Cursor: c.Query("cursor"),
		Limit: queryLimit(c, 50, 200, &v)}
	switch q.Status {
	case "", catalog.OrderPending, catalog.OrderFulfilled, catalog.OrderRejected, catalog.OrderCancelled, catalog.OrderExpired:
	default:
		v.Add("status", "must be pending, fulfilled, rejected, cancelled or expired")
	}
	return q, v.Err()
}

func (s *Server) listOrders(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	q, err := orderQuery(c)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Catalog.PartnerOrders(c.Request.Context(), p.PartnerID, q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	listOut(c, list, next, orderOut)
}

func (s *Server) getOrder(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrOrderNotFound)
		return
	}
	o, err := s.deps.Catalog.PartnerOrder(c.Request.Context(), p.PartnerID, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, orderOut(o))
}

func (s *Server) fulfilOrder(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrOrderNotFound)
		return
	}
	var req struct {
		Reference string `json:"reference"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	o, err := s.deps.Catalog.Fulfil(c.Request.Context(), p.PartnerID, id, req.Reference)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, o.Replayed)
	c.JSON(http.StatusOK, orderOut(o))
}

func (s *Server) rejectOrder(c *gin.Context) {
	p, _ := partnerPrincipal(c)
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrOrderNotFound)
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	o, err := s.deps.Catalog.Reject(c.Request.Context(), p.PartnerID, id, req.Reason)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, o.Replayed)
	c.JSON(http.StatusOK, orderOut(o))
}

// ---- operator moderation

func (s *Server) adminListRewards(c *gin.Context) {
	var v validation.Error
	q := catalog.RewardQuery{Cursor: c.Query("cursor"), Limit: queryLimit(c, 50, 200, &v)}
	if raw := c.Query("partner_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && id > 0, "partner_id", "must be a partner id")
		q.PartnerID = id
	}
	q.Owner = catalog.Owner(c.Query("owner"))
	v.Check(q.Owner == "" || q.Owner == catalog.OwnerOperator || q.Owner == catalog.OwnerPartner, "owner", "must be operator or partner")
	q.Visibility = catalog.Visibility(c.Query("visibility"))
	v.Check(q.Visibility == "" || q.Visibility == catalog.VisibilityVisible || q.Visibility == catalog.VisibilityHidden ||
		q.Visibility == catalog.VisibilitySuspended, "visibility", "must be visible, hidden or suspended")
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Catalog.Rewards(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	listOut(c, list, next, rewardOut)
}

func (s *Server) adminModerateReward(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	var req struct {
		Featured   *bool   `json:"featured"`
		Visibility *string `json:"visibility"`
		Reason     string  `json:"reason"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	m := catalog.Moderation{Featured: req.Featured, Reason: req.Reason}
	if req.Visibility != nil {
		vis := catalog.Visibility(*req.Visibility)
		m.Visibility = &vis
	}
	r, err := s.deps.Catalog.Moderate(c.Request.Context(), actor(c), id, m)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	s.deps.Log.InfoContext(c.Request.Context(), "reward moderated", "reward_id", id, "actor", actor(c),
		"featured", r.Featured, "visibility", r.Visibility)
	c.JSON(http.StatusOK, rewardOut(r))
}

// ---- member: catalog and orders

func (s *Server) meCatalog(c *gin.Context) {
	var v validation.Error
	q := catalog.BrowseQuery{Category: catalog.Category(c.Query("category")), Cursor: c.Query("cursor"),
		Limit: queryLimit(c, 50, 200, &v)}
	if raw := c.Query("partner_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && id > 0, "partner_id", "must be a partner id")
		q.PartnerID = id
	}
	q.Affordable = queryBool(c, "affordable", &v)
	q.Featured = queryBool(c, "featured", &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Catalog.Browse(c.Request.Context(), me(c), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	listOut(c, list, next, offerOut)
}

func queryBool(c *gin.Context, name string, v *validation.Error) bool {
	raw := c.Query(name)
	if raw == "" {
		return false
	}
	b, err := strconv.ParseBool(raw)
	v.Check(err == nil, name, "must be true or false")
	return b
}

func (s *Server) meCatalogReward(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrRewardNotFound)
		return
	}
	o, err := s.deps.Catalog.Offer(c.Request.Context(), me(c), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, offerOut(o))
}

func (s *Server) mePlaceOrder(c *gin.Context) {
	var req catalog.OrderInput
	body, err := decodeJSON(c, &req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	idem, err := idempotency(c, "member", body)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	o, err := s.deps.Catalog.PlaceOrder(c.Request.Context(), me(c), idem.Key, req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, o.Replayed)
	c.JSON(http.StatusCreated, orderOut(o))
}

func (s *Server) meListOrders(c *gin.Context) {
	q, err := orderQuery(c)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Catalog.MemberOrders(c.Request.Context(), me(c), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	listOut(c, list, next, orderOut)
}

func (s *Server) meGetOrder(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrOrderNotFound)
		return
	}
	o, err := s.deps.Catalog.MemberOrder(c.Request.Context(), me(c), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, orderOut(o))
}

func (s *Server) meCancelOrder(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, catalog.ErrOrderNotFound)
		return
	}
	o, err := s.deps.Catalog.Cancel(c.Request.Context(), me(c), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, o.Replayed)
	c.JSON(http.StatusOK, orderOut(o))
}
