package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// Fraud and abuse rules: a partner's rules (admin API and the console's
// partner page), the flags held for review (admin API, the console's review
// queue) and a partner's own flags (GET /v1/flags).

// abuseRulesRequest is the body of PUT /v1/admin/partners/{id}/abuse-rules:
// every limit (0 = none) and the action caps, replacing the partner's.
type abuseRulesRequest struct {
	MemberEarnsPerHour  int64             `json:"member_earns_per_hour"`
	MemberPointsPerDay  int64             `json:"member_points_per_day"`
	MemberBurnsPerHour  int64             `json:"member_burns_per_hour"`
	CardEarnsPerHour    int64             `json:"card_earns_per_hour"`
	CardPointsPerDay    int64             `json:"card_points_per_day"`
	CardBurnsPerHour    int64             `json:"card_burns_per_hour"`
	PartnerEarnsPerHour int64             `json:"partner_earns_per_hour"`
	PartnerPointsPerDay int64             `json:"partner_points_per_day"`
	PartnerBurnsPerHour int64             `json:"partner_burns_per_hour"`
	RefundShare         *decimal.Decimal  `json:"refund_share"`
	RefundMinPoints     int64             `json:"refund_min_points"`
	ActionCaps          []abuse.ActionCap `json:"action_caps"`
}

func (r abuseRulesRequest) rules() abuse.Rules {
	out := abuse.Rules{MemberEarnsPerHour: r.MemberEarnsPerHour, MemberPointsPerDay: r.MemberPointsPerDay,
		MemberBurnsPerHour: r.MemberBurnsPerHour, CardEarnsPerHour: r.CardEarnsPerHour, CardPointsPerDay: r.CardPointsPerDay,
		CardBurnsPerHour: r.CardBurnsPerHour, PartnerEarnsPerHour: r.PartnerEarnsPerHour,
		PartnerPointsPerDay: r.PartnerPointsPerDay, PartnerBurnsPerHour: r.PartnerBurnsPerHour,
		RefundMinPoints: r.RefundMinPoints, ActionCaps: r.ActionCaps}
	if r.RefundShare != nil {
		out.RefundShare = *r.RefundShare
	}
	if out.ActionCaps == nil {
		out.ActionCaps = []abuse.ActionCap{}
	}
	return out
}

// adminAbuseRules is GET /v1/admin/partners/{id}/abuse-rules.
func (s *Server) adminAbuseRules(c *gin.Context) {
	id, err := pathID(c, "id")
	if err == nil {
		_, err = s.deps.Partners.Partner(c.Request.Context(), id)
	}
	var r abuse.Rules
	if err == nil {
		r, err = s.deps.Abuse.Rules(c.Request.Context(), id)
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// adminSetAbuseRules is PUT /v1/admin/partners/{id}/abuse-rules.
func (s *Server) adminSetAbuseRules(c *gin.Context) {
	id, err := pathID(c, "id")
	if err == nil {
		_, err = s.deps.Partners.Partner(c.Request.Context(), id)
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req abuseRulesRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Abuse.SetRules(c.Request.Context(), id, req.rules(), actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// flagFilter reads ?status=, ?partner_id= (admin only) and the page.
func flagFilter(c *gin.Context, admin bool) (abuse.Filter, error) {
	var v validation.Error
	f := abuse.Filter{Status: c.Query("status"), Limit: queryLimit(c, 50, 200, &v)}
	v.Check(f.Status == "" || f.Status == abuse.StatusOpen || f.Status == abuse.StatusApproved || f.Status == abuse.StatusRejected,
		"status", "must be open, approved or rejected")
	if raw := c.Query("partner_id"); admin && raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && id > 0, "partner_id", "must be a positive integer")
		f.PartnerID = id
	}
	page, err := adminPage(c)
	if err != nil {
		return f, err
	}
	f.After = page.After
	return f, v.Err()
}

func (s *Server) listFlags(c *gin.Context, f abuse.Filter) {
	list, err := s.deps.Abuse.Flags(c.Request.Context(), f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	adminList(c, partners.Page{After: f.After, Limit: f.Limit}, list, func(f abuse.Flag) int64 { return f.ID }, func(f abuse.Flag) abuse.Flag { return f })
}

// adminListFlags is GET /v1/admin/flags: every partner's flags, oldest first.
func (s *Server) adminListFlags(c *gin.Context) {
	f, err := flagFilter(c, true)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	s.listFlags(c, f)
}

// adminGetFlag is GET /v1/admin/flags/{id}.
func (s *Server) adminGetFlag(c *gin.Context) {
	id, err := pathID(c, "id")
	var f abuse.Flag
	if err == nil {
		f, err = s.deps.Abuse.Flag(c.Request.Context(), id, 0)
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, f)
}

type flagReviewRequest struct {
	Decision string `json:"decision"`
	Note     string `json:"note"`
}

// reviewFlag decides flag id for the calling staff member and records it in
// the audit log (flag.approve or flag.reject, the note as detail).
func (s *Server) reviewFlag(c *gin.Context, id int64, decision, note string) (abuse.Flag, error) {
	if decision != "approve" && decision != "reject" {
		return abuse.Flag{}, validation.New("decision", "must be approve or reject")
	}
	f, err := s.deps.Transactions.ReviewFlag(c.Request.Context(), id, decision == "approve", actor(c), note)
	s.audit(c, "flag."+decision, "flag:"+strconv.FormatInt(id, 10), note, err)
	return f, err
}

// adminReviewFlag is POST /v1/admin/flags/{id}/review: approve (the held
// points mature as the contract says) or reject (the earn is reversed).
func (s *Server) adminReviewFlag(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req flagReviewRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	f, err := s.reviewFlag(c, id, req.Decision, req.Note)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, f)
}

// partnerFlags is GET /v1/flags: the calling partner's flags, oldest first.
func (s *Server) partnerFlags(c *gin.Context) {
	f, err := flagFilter(c, false)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	f.PartnerID = principal(c).PartnerID
	s.listFlags(c, f)
}
