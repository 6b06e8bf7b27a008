package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/partners"
)

// TestConsoleCompanies: an admin enrols a company (refused until a
// corporate level exists, with nothing written), adds an employee (a
// malformed company id is refused naming the field, an unknown company with
// 404) and a corporate partner from the programme page; finance may not.
func TestConsoleCompanies(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	shop := e.partner("Office Supplies", partners.SectorRetail)
	m := e.member("bo@example.test", shop.ID, 0)
	e.staffUser("admin@hub.test", access.RoleAdmin)
	e.staffUser("fin@hub.test", access.RoleFinance)
	admin := e.browser()
	admin.loginConsole("admin@hub.test")
	page := admin.page("/console/programme")
	for _, id := range []string{`id="company-form"`, `id="employee-form"`, `id="corporate-form"`} {
		if !strings.Contains(page, id) {
			t.Fatalf("programme page lacks %s", id)
		}
	}
	csrf := csrfOf(t, page)
	company := url.Values{"csrf": {csrf}, "name": {"Acme Ltd"}, "email": {"points@acme.example"}}

	// No corporate level yet: refused, the typed values kept, nothing written.
	st, body, _ := admin.post("/console/programme/companies", company)
	if st != http.StatusUnprocessableEntity || !strings.Contains(body, "Define company levels first") || !strings.Contains(body, `value="points@acme.example"`) {
		t.Fatalf("company before any level = %d, want 422 saying so with the input kept:\n%s", st, body)
	}
	if n := countRows(t, e.db, "programme_companies"); n != 0 {
		t.Fatalf("a refused company wrote %d rows", n)
	}
	if st, _, _ := admin.post("/console/programme/company-levels", url.Values{"csrf": {csrf}, "code": {"base"}, "name": {"Base"},
		"min_spend": {"0"}, "rate": {"0.01"}}); st != http.StatusSeeOther {
		t.Fatalf("level = %d", st)
	}
	st, _, h := admin.post("/console/programme/companies", company)
	if st != http.StatusSeeOther || !strings.HasSuffix(h.Get("Location"), "#companies") {
		t.Fatalf("company = %d → %q", st, h.Get("Location"))
	}
	if flash := admin.page("/console/programme"); !strings.Contains(flash, "Company Acme Ltd enrolled") {
		t.Fatalf("no confirmation after enrolling:\n%s", flash)
	}
	var companyID int64
	if err := e.db.Raw(`SELECT id FROM programme_companies WHERE name = 'Acme Ltd'`).Scan(&companyID).Error; err != nil || companyID == 0 {
		t.Fatalf("company row: %d, %v", companyID, err)
	}

	st, body, _ = admin.post("/console/programme/employees", url.Values{"csrf": {csrf}, "company_id": {"x"}, "member_id": {itoa(m.ID)}})
	if st != http.StatusBadRequest || !strings.Contains(body, `id="emp-company-err"`) {
		t.Fatalf("employee of company x = %d, want 400 naming the company field:\n%s", st, body)
	}
	if st, _, _ = admin.post("/console/programme/employees", url.Values{"csrf": {csrf}, "company_id": {"987654"}, "member_id": {itoa(m.ID)}}); st != http.StatusNotFound {
		t.Fatalf("employee of an unknown company = %d, want 404", st)
	}
	if st, _, _ = admin.post("/console/programme/employees", url.Values{"csrf": {csrf}, "company_id": {itoa(companyID)},
		"member_id": {itoa(m.ID)}, "can_spend": {"on"}}); st != http.StatusSeeOther {
		t.Fatalf("employee = %d", st)
	}
	var canSpend bool
	if err := e.db.Raw(`SELECT can_spend FROM programme_company_employees WHERE company_id = ? AND member_id = ?`, companyID, m.ID).Scan(&canSpend).Error; err != nil || !canSpend {
		t.Fatalf("employee row: can_spend %v, %v; want true", canSpend, err)
	}
	if st, _, _ = admin.post("/console/programme/corporate-partners", url.Values{"csrf": {csrf}, "partner_id": {itoa(shop.ID)}}); st != http.StatusSeeOther {
		t.Fatalf("corporate partner = %d", st)
	}
	if n := countRows(t, e.db, "programme_corporate_partners"); n != 1 {
		t.Fatalf("corporate partners: %d rows, want 1", n)
	}

	fin := e.browser()
	fin.loginConsole("fin@hub.test")
	finPage := fin.page("/console/programme")
	if strings.Contains(finPage, `id="company-form"`) {
		t.Error("finance is offered the company form")
	}
	if st, _, _ := fin.post("/console/programme/companies", url.Values{"csrf": {csrfOf(t, finPage)}, "name": {"B"}, "email": {"b@b.example"}}); st != http.StatusForbidden {
		t.Errorf("finance enrolling a company = %d, want 403", st)
	}
	audit(t, e.db)
}
