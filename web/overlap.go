package web

import (
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/partners"
)

// Partners of one sector and category in one market compete: creating a
// partner or publishing a contract that overlaps an active partner is 409
// category_overlap naming it, unless the operator sends the override; an
// override is recorded in the audit log (partner.create or contract.publish,
// detail "category overlap overridden: ..."). The admin API and the console
// share these two helpers.

// createPartner creates in and records it in the audit log.
func (s *Server) createPartner(c *gin.Context, in partners.NewPartner) (partners.Partner, error) {
	overlaps := s.overlapsOverridden(c, in.OverrideOverlap, 0, in.Sector, in.Market, in.Category)
	p, err := s.deps.Partners.CreatePartner(c.Request.Context(), in)
	s.audit(c, "partner.create", "partner:"+strconv.FormatInt(p.ID, 10), overlapDetail(in.Name, overlaps), err)
	return p, err
}

// publishContract publishes in for partner id and records it in the audit log.
func (s *Server) publishContract(c *gin.Context, id int64, in partners.NewContract) (partners.Contract, error) {
	var overlaps []string
	if p, err := s.deps.Partners.Partner(c.Request.Context(), id); err == nil {
		overlaps = s.overlapsOverridden(c, in.OverrideOverlap, id, p.Sector, p.Market, p.Category)
	}
	ct, err := s.deps.Partners.PublishContract(c.Request.Context(), id, in, actor(c))
	s.audit(c, "contract.publish", "partner:"+strconv.FormatInt(id, 10),
		overlapDetail("effective "+in.EffectiveFrom.UTC().Format("2006-01-02"), overlaps), err)
	return ct, err
}

// overlapsOverridden names the partners an override overrides (none
// without an override).
func (s *Server) overlapsOverridden(c *gin.Context, override bool, except int64, sector partners.Sector, market, category string) []string {
	if !override {
		return nil
	}
	names, err := s.deps.Partners.Overlaps(c.Request.Context(), except, sector, market, category)
	if err != nil {
		s.deps.Log.WarnContext(c.Request.Context(), "read overlapping partners", "err", err)
	}
	return names
}

func overlapDetail(detail string, overlaps []string) string {
	if len(overlaps) == 0 {
		return detail
	}
	return detail + "; category overlap overridden: overlaps " + strings.Join(overlaps, ", ")
}
