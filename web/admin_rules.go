package web

import (
	"net/http"
	"time"

	"github.com/coalitionhub/hub/rules"
	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"
)

// Operator management of earn rules (versioned, immutable) and promotions.

type ruleJSON struct {
	ID            int64                `json:"id"`
	PartnerID     int64                `json:"partner_id"`
	Version       int                  `json:"version"`
	EffectiveFrom time.Time            `json:"effective_from"`
	Definition    rules.RuleDefinition `json:"definition"`
	CreatedAt     time.Time            `json:"created_at"`
	CreatedBy     string               `json:"created_by"`
}

func ruleOut(r rules.Rule) ruleJSON {
	return ruleJSON{ID: r.ID, PartnerID: r.PartnerID, Version: r.Version, EffectiveFrom: r.EffectiveFrom.UTC(),
		Definition: r.Definition, CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy}
}

func (s *Server) adminPublishRule(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		EffectiveFrom *time.Time           `json:"effective_from"`
		Definition    rules.RuleDefinition `json:"definition"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var from time.Time // zero: from now on
	if req.EffectiveFrom != nil {
		from = *req.EffectiveFrom
	}
	st, _ := staffPrincipal(c)
	r, err := s.deps.Rules.PublishRule(c.Request.Context(), id, req.Definition, from, st.Actor())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, ruleOut(r))
}

func (s *Server) adminListRules(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Rules.ListRules(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]ruleJSON, len(list))
	for i, r := range list {
		out[i] = ruleOut(r)
	}
	c.JSON(http.StatusOK, gin.H{"data": out, "next_cursor": ""})
}

type promotionJSON struct {
	ID         int64                     `json:"id"`
	PartnerID  int64                     `json:"partner_id"`
	Name       string                    `json:"name"`
	Code       string                    `json:"code,omitempty"`
	StartsAt   time.Time                 `json:"starts_at"`
	EndsAt     time.Time                 `json:"ends_at"`
	Effect     string                    `json:"effect"`
	Multiplier string                    `json:"multiplier,omitempty"`
	Bonus      int64                     `json:"bonus,omitempty"`
	FundedBy   string                    `json:"funded_by"`
	Exclusive  bool                      `json:"exclusive"`
	Conditions rules.PromotionConditions `json:"conditions"`
	Status     string                    `json:"status"`
	EndedAt    *time.Time                `json:"ended_at,omitempty"`
	CreatedAt  time.Time                 `json:"created_at"`
}

func promotionOut(p rules.Promotion) promotionJSON {
	out := promotionJSON{ID: p.ID, PartnerID: p.PartnerID, Name: p.Name, Code: p.Code, StartsAt: p.StartsAt.UTC(),
		EndsAt: p.EndsAt.UTC(), Effect: string(p.Effect), Bonus: p.Bonus, FundedBy: string(p.FundedBy),
		Exclusive: p.Exclusive, Conditions: p.Conditions, Status: p.Status, EndedAt: p.EndedAt, CreatedAt: p.CreatedAt.UTC()}
	if !p.Multiplier.IsZero() {
		out.Multiplier = p.Multiplier.String()
	}
	return out
}

func (s *Server) adminCreatePromotion(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		Name       string                    `json:"name"`
		Code       string                    `json:"code"`
		StartsAt   time.Time                 `json:"starts_at"`
		EndsAt     time.Time                 `json:"ends_at"`
		Effect     string                    `json:"effect"`
		Multiplier decimal.Decimal           `json:"multiplier"`
		Bonus      int64                     `json:"bonus"`
		FundedBy   string                    `json:"funded_by"`
		Exclusive  bool                      `json:"exclusive"`
		Conditions rules.PromotionConditions `json:"conditions"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, _ := staffPrincipal(c)
	p, err := s.deps.Rules.CreatePromotion(c.Request.Context(), rules.NewPromotion{PartnerID: id, Name: req.Name, Code: req.Code,
		StartsAt: req.StartsAt, EndsAt: req.EndsAt, Effect: rules.PromotionEffect(req.Effect), Multiplier: req.Multiplier,
		Bonus: req.Bonus, FundedBy: rules.Funder(req.FundedBy), Exclusive: req.Exclusive, Conditions: req.Conditions}, st.Actor())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, promotionOut(p))
}

func (s *Server) adminListPromotions(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Rules.ListPromotions(c.Request.Context(), id, time.Time{})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]promotionJSON, len(list))
	for i, p := range list {
		out[i] = promotionOut(p)
	}
	c.JSON(http.StatusOK, gin.H{"data": out, "next_cursor": ""})
}

func (s *Server) adminEndPromotion(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, _ := staffPrincipal(c)
	p, err := s.deps.Rules.EndPromotion(c.Request.Context(), id, st.Actor())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, promotionOut(p))
}
