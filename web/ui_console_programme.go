package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
)

// The console's programme page: the policy (expiry, transfers, birthday
// bonus, tier window and downgrade), the tiers, the corporate levels, and
// companies with their employees and corporate partners. Each form calls the
// service method of its admin API route (PUT /v1/admin/programme/policy,
// .../tiers/{code}, .../company-levels/{code}, POST .../companies,
// .../companies/{id}/employees, .../corporate-partners).

// programmeMetrics are the tier thresholds the form offers, in the order shown.
var programmeMetrics = []struct {
	Metric programme.Metric
	Label  string
}{
	{programme.MetricPoints, "Qualifying points"}, {programme.MetricSpend, "Spend (minor units)"},
	{programme.MetricNights, "Nights"}, {programme.MetricStays, "Stays"}, {programme.MetricFlights, "Flights"},
	{programme.MetricPartners, "Distinct partners"},
}

// consoleProgramme is GET /console/programme.
func (s *Server) consoleProgramme(c *gin.Context) {
	s.programmePage(c, http.StatusOK, "", nil, nil)
}

func (s *Server) programmePage(c *gin.Context, status int, form string, posted url.Values, err error) {
	ctx := c.Request.Context()
	pol, lerr := s.deps.Programme.Policy(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	tiers, lerr := s.deps.Programme.Tiers(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	sort.Slice(tiers, func(i, j int) bool { return tiers[i].Rank < tiers[j].Rank })
	levels, lerr := s.deps.Programme.CompanyLevels(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}

	partnerList, lerr := s.deps.Partners.Partners(ctx, partners.Page{Limit: 200})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}

	// The corporate side read back: companies (?name, ?companies= cursor),
	// the employees of one company (?company=) or all, corporate partners.
	var v validation.Error
	coQ := programme.CompanyQuery{Name: c.Query("name"), Limit: 50}
	if raw := c.Query("companies"); raw != "" {
		coQ.After = formInt(raw, "companies", &v)
	}
	empQ := programme.EmployeeQuery{Limit: 50}
	if raw := c.Query("company"); raw != "" {
		empQ.CompanyID = formInt(raw, "company", &v)
	}
	if raw := c.Query("employees"); raw != "" {
		empQ.After = formInt(raw, "employees", &v)
	}
	if lerr := v.Err(); lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	companies, moreCo, lerr := s.deps.Programme.Companies(ctx, coQ)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	employees, moreEmp, lerr := s.deps.Programme.Employees(ctx, empQ)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	corporate, _, lerr := s.deps.Programme.CorporatePartners(ctx, 0, 200)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	lists := gin.H{"Companies": companies, "Employees": employees, "Corporate": corporate,
		"CompanyFilter": empQ.CompanyID, "NameFilter": coQ.Name, "PartnerNames": s.partnerNames(c)}
	if moreCo {
		lists["CompaniesNext"] = fmt.Sprintf("/console/programme?name=%s&companies=%d#company-list",
			url.QueryEscape(coQ.Name), companies[len(companies)-1].ID)
	}
	if moreEmp {
		lists["EmployeesNext"] = fmt.Sprintf("/console/programme?company=%d&employees=%d#employee-list",
			empQ.CompanyID, employees[len(employees)-1].MemberID)
	}

	f := newFormState()
	f.set("policy", "currency", pol.Currency)
	f.set("policy", "expiry_mode", string(pol.ExpiryMode))
	f.set("policy", "expiry_months", strconv.Itoa(pol.ExpiryMonths))
	f.set("policy", "expiry_years", strconv.Itoa(pol.ExpiryYears))
	f.set("policy", "notice_days", strconv.Itoa(pol.NoticeDays))
	if pol.TransfersEnabled {
		f.set("policy", "transfers_enabled", "on")
	}
	f.set("policy", "transfer_min", strconv.FormatInt(pol.TransferMin, 10))
	f.set("policy", "transfer_per_transfer", strconv.FormatInt(pol.TransferPerTransfer, 10))
	f.set("policy", "transfer_daily", strconv.FormatInt(pol.TransferDaily, 10))
	f.set("policy", "transfer_monthly", strconv.FormatInt(pol.TransferMonthly, 10))
	f.set("policy", "transfer_fee_fixed", strconv.FormatInt(pol.TransferFeeFixed, 10))
	f.set("policy", "transfer_fee_rate", pol.TransferFeeRate.String())
	f.set("policy", "birthday_points", strconv.FormatInt(pol.BirthdayPoints, 10))
	f.set("policy", "tier_window", string(pol.TierWindow))
	f.set("policy", "tier_downgrade", string(pol.TierDowngrade))
	if pol.ErasureAfterDays != nil {
		f.set("policy", "erasure_after_days", strconv.Itoa(*pol.ErasureAfterDays))
	}

	// The tier form edits ?tier=code, or starts a new tier above the others.
	f.set("tier", "rank", strconv.Itoa(len(tiers)))
	for _, t := range tiers {
		if t.Code != c.Query("tier") {
			continue
		}
		f.set("tier", "code", t.Code)
		f.set("tier", "name", t.Name)
		f.set("tier", "rank", strconv.Itoa(t.Rank))
		if t.InvitationOnly {
			f.set("tier", "invitation_only", "on")
		}
		for m, v := range t.Thresholds {
			f.set("tier", "th_"+string(m), strconv.FormatInt(v, 10))
		}
		var ents []string
		for _, e := range t.Entitlements {
			ents = append(ents, strings.TrimSuffix(e.Code+"="+e.Value, "="))
		}
		f.set("tier", "entitlements", strings.Join(ents, "\n"))
		f.Open = "tier"
	}
	for _, l := range levels {
		if l.Code != c.Query("level") {
			continue
		}
		f.set("level", "code", l.Code)
		f.set("level", "name", l.Name)
		f.set("level", "min_spend", majorUnits(l.MinSpendMinor, pol.Currency))
		f.set("level", "rate", l.Rate.String())
		f.Open = "level"
	}
	if form != "" {
		f.refused(form, posted, err, programmeFieldAliases[form])
	}
	page := consolePage("programme", "Programme", formData(f, gin.H{"Policy": pol, "Tiers": tiers, "Levels": levels,
		"Metrics": programmeMetrics, "Partners": partnerList, "Lists": lists}))
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_programme", page)
}

var programmeFieldAliases = func() map[string]map[string]string {
	tier := map[string]string{"entitlements.code": "entitlements", "entitlements.value": "entitlements"}
	for _, m := range programmeMetrics {
		tier["thresholds."+string(m.Metric)] = "th_" + string(m.Metric)
	}
	return map[string]map[string]string{"tier": tier, "level": {"min_spend_minor": "min_spend"}}
}()

// consoleSetPolicy is POST /console/programme/policy: the whole policy.
func (s *Server) consoleSetPolicy(c *gin.Context) {
	var v validation.Error
	p := programme.Policy{Currency: strings.ToUpper(strings.TrimSpace(c.PostForm("currency"))),
		ExpiryMode:          programme.ExpiryMode(c.PostForm("expiry_mode")),
		ExpiryMonths:        int(formInt(c.PostForm("expiry_months"), "expiry_months", &v)),
		ExpiryYears:         int(formInt(c.PostForm("expiry_years"), "expiry_years", &v)),
		NoticeDays:          int(formInt(c.PostForm("notice_days"), "notice_days", &v)),
		TransfersEnabled:    c.PostForm("transfers_enabled") == "on",
		TransferMin:         formInt(c.PostForm("transfer_min"), "transfer_min", &v),
		TransferPerTransfer: formInt(c.PostForm("transfer_per_transfer"), "transfer_per_transfer", &v),
		TransferDaily:       formInt(c.PostForm("transfer_daily"), "transfer_daily", &v),
		TransferMonthly:     formInt(c.PostForm("transfer_monthly"), "transfer_monthly", &v),
		TransferFeeFixed:    formInt(c.PostForm("transfer_fee_fixed"), "transfer_fee_fixed", &v),
		TransferFeeRate:     formDecimal(c.PostForm("transfer_fee_rate"), "transfer_fee_rate", &v),
		BirthdayPoints:      formInt(c.PostForm("birthday_points"), "birthday_points", &v),
		TierWindow:          programme.TierWindow(c.PostForm("tier_window")),
		TierDowngrade:       programme.Downgrade(c.PostForm("tier_downgrade"))}
	if raw := strings.TrimSpace(c.PostForm("erasure_after_days")); raw != "" {
		n := int(formInt(raw, "erasure_after_days", &v))
		p.ErasureAfterDays = &n
	}
	err := v.Err()
	if err == nil {
		_, err = s.deps.Programme.SetPolicy(c.Request.Context(), p)
	}
	s.audit(c, "programme.policy", "programme:policy", fmt.Sprintf("expiry %s, transfers %v, birthday %d", p.ExpiryMode,
		p.TransfersEnabled, p.BirthdayPoints), err)
	if err != nil {
		s.programmePage(c, refusedStatus(err), "policy", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/programme#policy", "Programme policy saved.")
}

// consolePutTier is POST /console/programme/tiers: create or replace the
// tier named by the form's code.
func (s *Server) consolePutTier(c *gin.Context) {
	var v validation.Error
	t := programme.Tier{Code: strings.TrimSpace(c.PostForm("code")), Name: strings.TrimSpace(c.PostForm("name")),
		Rank: int(formInt(c.PostForm("rank"), "rank", &v)), InvitationOnly: c.PostForm("invitation_only") == "on",
		Thresholds: map[programme.Metric]int64{}}
	v.Check(t.Code != "", "code", "is required")
	for _, m := range programmeMetrics {
		if raw := strings.TrimSpace(c.PostForm("th_" + string(m.Metric))); raw != "" {
			t.Thresholds[m.Metric] = formInt(raw, "th_"+string(m.Metric), &v)
		}
	}
	for _, line := range strings.Split(c.PostForm("entitlements"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			code, value, _ := strings.Cut(line, "=")
			t.Entitlements = append(t.Entitlements, programme.Entitlement{Code: strings.TrimSpace(code), Value: strings.TrimSpace(value)})
		}
	}
	err := v.Err()
	if err == nil {
		_, err = s.deps.Programme.PutTier(c.Request.Context(), t)
	}
	s.audit(c, "programme.tier", "tier:"+t.Code, t.Name, err)
	if err != nil {
		s.programmePage(c, refusedStatus(err), "tier", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/programme#tiers", "Tier "+t.Name+" saved.")
}

// consolePutCompanyLevel is POST /console/programme/company-levels.
func (s *Server) consolePutCompanyLevel(c *gin.Context) {
	var v validation.Error
	pol, err := s.deps.Programme.Policy(c.Request.Context())
	l := programme.CompanyLevel{Code: strings.TrimSpace(c.PostForm("code")), Name: strings.TrimSpace(c.PostForm("name")),
		MinSpendMinor: formMinor(c.PostForm("min_spend"), pol.Currency, "min_spend", &v),
		Rate:          formDecimal(c.PostForm("rate"), "rate", &v)}
	v.Check(l.Code != "", "code", "is required")
	if err == nil {
		err = v.Err()
	}
	if err == nil {
		_, err = s.deps.Programme.PutCompanyLevel(c.Request.Context(), l)
	}
	s.audit(c, "programme.company_level", "company_level:"+l.Code, l.Name, err)
	if err != nil {
		s.programmePage(c, refusedStatus(err), "level", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/programme#levels", "Company level "+l.Name+" saved.")
}

// consoleCreateCompany is POST /console/programme/companies: a company
// enrolled at the lowest corporate level (POST /v1/admin/programme/companies).
func (s *Server) consoleCreateCompany(c *gin.Context) {
	name, email := strings.TrimSpace(c.PostForm("name")), strings.TrimSpace(c.PostForm("email"))
	var err error
	if email == "" {
		err = validation.New("email", "is required")
	}
	var co programme.Company
	if err == nil {
		co, err = s.deps.Programme.CreateCompany(c.Request.Context(), name, email)
	}
	s.audit(c, "programme.company", "company:"+strconv.FormatInt(co.ID, 10), name+" <"+email+">", err)
	if err != nil {
		s.programmePage(c, refusedStatus(err), "company", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/programme#companies", fmt.Sprintf("Company %s enrolled as company %d (account member %d, level %s).",
		co.Name, co.ID, co.AccountMemberID, co.Level))
}

// consoleAddEmployee is POST /console/programme/employees: a member linked
// to a company, perhaps allowed to spend its points (POST
// /v1/admin/programme/companies/{id}/employees).
func (s *Server) consoleAddEmployee(c *gin.Context) {
	var v validation.Error
	companyID := formInt(c.PostForm("company_id"), "company_id", &v)
	memberID := formInt(c.PostForm("member_id"), "member_id", &v)
	v.Check(companyID > 0, "company_id", "is required")
	v.Check(memberID > 0, "member_id", "is required")
	canSpend := c.PostForm("can_spend") == "on"
	err := v.Err()
	if err == nil {
		err = s.deps.Programme.AddEmployee(c.Request.Context(), companyID, memberID, canSpend)
	}
	s.audit(c, "programme.employee", "company:"+strconv.FormatInt(companyID, 10),
		fmt.Sprintf("member %d, can spend %v", memberID, canSpend), err)
	if err != nil {
		s.programmePage(c, refusedStatus(err), "employee", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/programme#companies", fmt.Sprintf("Member %d now works for company %d.", memberID, companyID))
}

// consoleAddCorporatePartner is POST /console/programme/corporate-partners:
// purchases at the partner credit the buyer's company (POST
// /v1/admin/programme/corporate-partners).
func (s *Server) consoleAddCorporatePartner(c *gin.Context) {
	var v validation.Error
	partnerID := formInt(c.PostForm("partner_id"), "partner_id", &v)
	v.Check(partnerID > 0, "partner_id", "is required")
	err := v.Err()
	var name string
	if err == nil {
		var p partners.Partner
		if p, err = s.deps.Partners.Partner(c.Request.Context(), partnerID); err == nil {
			name = p.Name
			err = s.deps.Programme.AddCorporatePartner(c.Request.Context(), partnerID)
		}
	}
	s.audit(c, "programme.corporate_partner", "partner:"+strconv.FormatInt(partnerID, 10), name, err)
	if err != nil {
		s.programmePage(c, refusedStatus(err), "corporate", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/programme#companies", "Purchases at "+name+" now credit the buyer's company.")
}
