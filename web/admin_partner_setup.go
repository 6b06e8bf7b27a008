package web

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

// Admin API routes for setting a partner up that the console's partner page
// uses too: an earn quote (with the rule in force or a draft definition),
// and the partner's webhooks with their failed deliveries and a replay.

// ruleQuoteRequest is a purchase to price; Definition, when present, is a
// draft rule to price it with instead of the rule in force.
type ruleQuoteRequest struct {
	Definition *rules.RuleDefinition `json:"definition"`
	Amount     *purchaseJSON         `json:"amount"`
	Lines      []rules.Line          `json:"lines"`
	Activity   []rules.Activity      `json:"activity"`
	EventCode  string                `json:"event_code"`
	MemberTier string                `json:"member_tier"`
	PromoCodes []string              `json:"promo_codes"`
	OccurredAt *time.Time            `json:"occurred_at"`
}

func (r ruleQuoteRequest) purchase(partnerID int64) (rules.Purchase, error) {
	p := rules.Purchase{PartnerID: partnerID, Lines: r.Lines, Activity: r.Activity, EventCode: r.EventCode,
		MemberTier: r.MemberTier, PromoCodes: r.PromoCodes}
	if r.Amount != nil {
		if r.Amount.Minor == nil {
			return p, validation.New("amount.minor", "is required: the purchase amount in minor units")
		}
		p.Amount = money.Money{Minor: *r.Amount.Minor, Currency: r.Amount.Currency}
	}
	if r.OccurredAt != nil {
		p.OccurredAt = *r.OccurredAt
	}
	return p, nil
}

// quoteRule prices p with def (a draft) or, when def is nil, the partner's
// rule in force: the one path of the admin quote route and the console's
// preview. Unknown partners are ErrPartnerNotFound.
func (s *Server) quoteRule(ctx context.Context, def *rules.RuleDefinition, p rules.Purchase) (quoteJSON, error) {
	if _, err := s.deps.Partners.Partner(ctx, p.PartnerID); err != nil {
		return quoteJSON{}, err
	}
	var (
		q   rules.Quote
		err error
	)
	if def != nil {
		q, err = s.deps.Rules.QuotePreview(ctx, *def, p)
	} else {
		q, err = s.deps.Rules.Quote(ctx, p)
	}
	if err != nil {
		return quoteJSON{}, err
	}
	if q.Breakdown == nil {
		q.Breakdown = []rules.QuoteLine{}
	}
	return quoteJSON{Points: q.Points, OperatorFunded: q.OperatorFunded, Total: q.Total, RuleID: q.RuleID,
		RuleVersion: q.RuleVersion, Breakdown: q.Breakdown, IgnoredPromoCodes: q.IgnoredPromoCodes}, nil
}

// adminQuoteRule is POST /v1/admin/partners/{id}/earn-rules/quote: what a
// purchase would earn, posting nothing.
func (s *Server) adminQuoteRule(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req ruleQuoteRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, err := req.purchase(id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	q, err := s.quoteRule(c.Request.Context(), req.Definition, p)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, q)
}

// adminPartnerWebhooks is GET /v1/admin/partners/{id}/webhooks: the
// partner's endpoints and its failed deliveries, newest first.
func (s *Server) adminPartnerWebhooks(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ctx := c.Request.Context()
	if _, err := s.deps.Partners.Partner(ctx, id); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	endpoints, err := s.deps.Webhooks.ListEndpoints(ctx, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	failed, err := s.deps.Webhooks.FailedDeliveries(ctx, id, 100)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if endpoints == nil {
		endpoints = []webhooks.Endpoint{}
	}
	if failed == nil {
		failed = []webhooks.Delivery{}
	}
	c.JSON(http.StatusOK, gin.H{"endpoints": endpoints, "failed_deliveries": failed})
}

// adminReplayDelivery is POST
// /v1/admin/partners/{id}/webhook-deliveries/{delivery_id}/replay.
func (s *Server) adminReplayDelivery(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	did, err := pathID(c, "delivery_id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	d, err := s.deps.Webhooks.Replay(c.Request.Context(), id, did)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, d)
}
