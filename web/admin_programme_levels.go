package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/programme"
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

// The programme's corporate side read back: companies, their employees and
// the corporate partners, each a paged, filtered list and one by id.

func companyOut(co programme.Company) programmeCompanyJSON {
	return programmeCompanyJSON{ID: co.ID, Name: co.Name, AccountMemberID: co.AccountMemberID,
		Level: co.Level, LevelSince: co.LevelSince.UTC(), CreatedAt: co.CreatedAt.UTC()}
}

// pageOut writes a page of items with the cursor of the next one ("" at
// the end): the last item's key when more follow.
func pageOut[T any, J any](c *gin.Context, items []T, more bool, key func(T) int64, out func(T) J) {
	data := make([]J, len(items))
	for i, it := range items {
		data[i] = out(it)
	}
	next := ""
	if more && len(items) > 0 {
		next = strconv.FormatInt(key(items[len(items)-1]), 10)
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// adminListCompanies is GET /v1/admin/programme/companies (?level, ?name).
func (s *Server) adminListCompanies(c *gin.Context) {
	var v validation.Error
	q := programme.CompanyQuery{Level: c.Query("level"), Name: c.Query("name"), After: queryCursorID(c, &v),
		Limit: queryLimit(c, 50, 200, &v)}
	v.Check(len(q.Name) <= 200, "name", "must be at most 200 characters")
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, more, err := s.deps.Programme.Companies(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	pageOut(c, list, more, func(co programme.Company) int64 { return co.ID }, companyOut)
}

// adminGetCompany is GET /v1/admin/programme/companies/{id}.
func (s *Server) adminGetCompany(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, programme.ErrCompanyNotFound)
		return
	}
	co, err := s.deps.Programme.Company(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, companyOut(co))
}

func employeeOut(e programme.Employee) programme.Employee { e.AddedAt = e.AddedAt.UTC(); return e }

// adminListEmployees is GET /v1/admin/programme/employees (?company_id, ?can_spend).
func (s *Server) adminListEmployees(c *gin.Context) {
	var v validation.Error
	q := programme.EmployeeQuery{After: queryCursorID(c, &v), Limit: queryLimit(c, 50, 200, &v)}
	if raw := c.Query("company_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && id > 0, "company_id", "must be a company id")
		q.CompanyID = id
	}
	if c.Query("can_spend") != "" {
		b := queryBool(c, "can_spend", &v)
		q.CanSpend = &b
	}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, more, err := s.deps.Programme.Employees(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	pageOut(c, list, more, func(e programme.Employee) int64 { return e.MemberID }, employeeOut)
}

// adminGetEmployee is GET /v1/admin/programme/employees/{member_id}.
func (s *Server) adminGetEmployee(c *gin.Context) {
	id, err := pathID(c, "member_id")
	if err != nil {
		fail(c, s.deps.Log, programme.ErrEmployeeNotFound)
		return
	}
	e, err := s.deps.Programme.Employee(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, employeeOut(e))
}

func corporateOut(p programme.CorporatePartner) programme.CorporatePartner {
	p.CreatedAt = p.CreatedAt.UTC()
	return p
}

// adminListCorporatePartners is GET /v1/admin/programme/corporate-partners.
func (s *Server) adminListCorporatePartners(c *gin.Context) {
	var v validation.Error
	after, limit := queryCursorID(c, &v), queryLimit(c, 50, 200, &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, more, err := s.deps.Programme.CorporatePartners(c.Request.Context(), after, limit)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	pageOut(c, list, more, func(p programme.CorporatePartner) int64 { return p.PartnerID }, corporateOut)
}

// adminGetCorporatePartner is GET /v1/admin/programme/corporate-partners/{partner_id}.
func (s *Server) adminGetCorporatePartner(c *gin.Context) {
	id, err := pathID(c, "partner_id")
	if err != nil {
		fail(c, s.deps.Log, programme.ErrCorporatePartnerNotFound)
		return
	}
	p, err := s.deps.Programme.CorporatePartner(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, corporateOut(p))
}
