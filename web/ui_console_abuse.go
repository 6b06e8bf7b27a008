package web

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/internal/validation"
)

// The console's fraud pages: a partner's rules on its page (the form posts
// to consoleSetAbuseRules, the service method of PUT
// /v1/admin/partners/{id}/abuse-rules) and the review queue (/console/flags,
// each decision through reviewFlag as POST /v1/admin/flags/{id}/review).

// abuseLimitFields are the rules' limits as the form names them.
var abuseLimitFields = []struct{ Name, Label string }{
	{"member_earns_per_hour", "Earns per member and hour"}, {"member_points_per_day", "Points per member and day"},
	{"member_burns_per_hour", "Burns per member and hour"}, {"card_earns_per_hour", "Earns per card and hour"},
	{"card_points_per_day", "Points per card and day"}, {"card_burns_per_hour", "Burns per card and hour"},
	{"partner_earns_per_hour", "Earns at the partner per hour"}, {"partner_points_per_day", "Points at the partner per day"},
	{"partner_burns_per_hour", "Burns at the partner per hour"},
}

func abuseLimits(r abuse.Rules) map[string]int64 {
	return map[string]int64{"member_earns_per_hour": r.MemberEarnsPerHour, "member_points_per_day": r.MemberPointsPerDay,
		"member_burns_per_hour": r.MemberBurnsPerHour, "card_earns_per_hour": r.CardEarnsPerHour,
		"card_points_per_day": r.CardPointsPerDay, "card_burns_per_hour": r.CardBurnsPerHour,
		"partner_earns_per_hour": r.PartnerEarnsPerHour, "partner_points_per_day": r.PartnerPointsPerDay,
		"partner_burns_per_hour": r.PartnerBurnsPerHour}
}

// abuseFormDefaults fills the rules form with the partner's rules.
func abuseFormDefaults(f formState, r abuse.Rules) {
	for k, v := range abuseLimits(r) {
		f.set("abuse", k, strconv.FormatInt(v, 10))
	}
	f.set("abuse", "refund_share", r.RefundShare.String())
	f.set("abuse", "refund_min_points", strconv.FormatInt(r.RefundMinPoints, 10))
	var caps []string
	for _, c := range r.ActionCaps {
		caps = append(caps, fmt.Sprintf("%s %d %s", c.EventCode, c.Max, c.Period))
	}
	f.set("abuse", "action_caps", strings.Join(caps, "\n"))
}

// abuseRulesForm reads the rules form; action caps are one per line,
// "event_code max period".
func abuseRulesForm(c *gin.Context) (abuse.Rules, error) {
	var v validation.Error
	n := map[string]int64{}
	for _, f := range abuseLimitFields {
		n[f.Name] = formInt(c.PostForm(f.Name), f.Name, &v)
	}
	r := abuse.Rules{MemberEarnsPerHour: n["member_earns_per_hour"], MemberPointsPerDay: n["member_points_per_day"],
		MemberBurnsPerHour: n["member_burns_per_hour"], CardEarnsPerHour: n["card_earns_per_hour"],
		CardPointsPerDay: n["card_points_per_day"], CardBurnsPerHour: n["card_burns_per_hour"],
		PartnerEarnsPerHour: n["partner_earns_per_hour"], PartnerPointsPerDay: n["partner_points_per_day"],
		PartnerBurnsPerHour: n["partner_burns_per_hour"], RefundMinPoints: formInt(c.PostForm("refund_min_points"), "refund_min_points", &v),
		RefundShare: formDecimal(c.PostForm("refund_share"), "refund_share", &v), ActionCaps: []abuse.ActionCap{}}
	for _, line := range strings.Split(c.PostForm("action_caps"), "\n") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		var max int64
		if len(fs) == 3 {
			max, _ = strconv.ParseInt(fs[1], 10, 64)
		}
		if !v.Check(len(fs) == 3 && max > 0, "action_caps", "one cap per line: event_code max period, e.g. health_check 2 month") {
			continue
		}
		r.ActionCaps = append(r.ActionCaps, abuse.ActionCap{EventCode: fs[0], Max: max, Period: abuse.Period(fs[2])})
	}
	return r, v.Err()
}

// consoleSetAbuseRules replaces a partner's fraud rules.
func (s *Server) consoleSetAbuseRules(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	r, err := abuseRulesForm(c)
	if err == nil {
		_, err = s.deps.Abuse.SetRules(c.Request.Context(), id, r, staffActor(staff(c)))
	}
	s.audit(c, "abuse_rules.set", "partner:"+c.Param("id"), "", err)
	if err != nil {
		if ve := (*validation.Error)(nil); errors.As(err, &ve) {
			for i := range ve.Fields {
				if strings.HasPrefix(ve.Fields[i].Field, "action_caps") {
					ve.Fields[i].Field = "action_caps"
				}
			}
		}
		s.partnerPage(c, refusedStatus(err), "abuse", c.Request.PostForm, err)
		return
	}
	okBack(c, partnerBack(c, "fraud"), "Fraud rules saved.")
}

// consoleFlags is the review queue: open flags first (oldest first), or
// those of ?status=.
func (s *Server) consoleFlags(c *gin.Context) {
	status := c.DefaultQuery("status", abuse.StatusOpen)
	f := abuse.Filter{Status: status, Limit: 200}
	if id, err := strconv.ParseInt(c.Query("partner_id"), 10, 64); err == nil && id > 0 {
		f.PartnerID = id
	}
	list, err := s.deps.Abuse.Flags(c.Request.Context(), f)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	names := map[int64]string{}
	for _, fl := range list {
		if _, ok := names[fl.PartnerID]; !ok {
			if p, err := s.deps.Partners.Partner(c.Request.Context(), fl.PartnerID); err == nil {
				names[fl.PartnerID] = p.Name
			}
		}
	}
	s.render(c, "console_flags", consolePage("flags", "Fraud review", gin.H{"Flags": list, "Names": names, "Status": status,
		"Statuses": []string{abuse.StatusOpen, abuse.StatusApproved, abuse.StatusRejected}}))
}

// consoleReviewFlag approves or rejects one flag.
func (s *Server) consoleReviewFlag(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	decision := c.PostForm("decision")
	_, err := s.reviewFlag(c, id, decision, c.PostForm("note"))
	if err != nil {
		s.failBack(c, "/console/flags", err)
		return
	}
	okBack(c, "/console/flags", fmt.Sprintf("Flag %d: %sd.", id, decision))
}
