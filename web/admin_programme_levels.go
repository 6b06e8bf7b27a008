package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// adminCompanyLevels is GET /v1/admin/programme/company-levels.
func (s *Server) adminCompanyLevels(c *gin.Context) {
	ls, err := s.deps.Programme.CompanyLevels(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]programmeCompanyLevelJSON, len(ls))
	for i, l := range ls {
		out[i] = programmeCompanyLevelJSON{Code: l.Code, Name: l.Name, MinSpendMinor: l.MinSpendMinor, Rate: l.Rate}
	}
	c.JSON(http.StatusOK, gin.H{"data": out})
}
