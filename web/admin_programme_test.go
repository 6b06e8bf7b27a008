package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

// programmeAdminEnv is a contractEnv (every answer validated against the
// OpenAPI document) with the members, ledger and programme services wired.
type programmeAdminEnv struct {
	*contractEnv
	mem *members.Service
}

func nowUTC() time.Time { return time.Now().UTC() }

func newProgrammeAdminEnv(t *testing.T) *programmeAdminEnv {
	t.Helper()
	var mem *members.Service
	e := newContractEnv(t, func(d *Deps) {
		l := ledger.NewService(d.DB, nowUTC)
		mem = members.NewService(d.DB, l, nowUTC)
		consent := members.NewBurnConsent(d.DB, nowUTC, members.DefaultConsentPolicy)
		d.Ledger, d.Members, d.Consent = l, mem, consent
		d.Programme = programme.NewService(d.DB, l, mem, consent, nowUTC)
	})
	return &programmeAdminEnv{contractEnv: e, mem: mem}
}

func (e *programmeAdminEnv) member(email string) members.Member {
	e.t.Helper()
	m, _, err := e.mem.Enrol(context.Background(), members.EnrolRequest{
		Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile:    members.Profile{Email: email, GivenName: "Ada", FamilyName: "Lovelace"}, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// fieldErrors returns the field names of a validation problem.
func fieldErrors(t *testing.T, body map[string]any) []string {
	t.Helper()
	raw, _ := body["errors"].([]any)
	var out []string
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m["field"].(string))
		}
	}
	return out
}

func (e *programmeAdminEnv) expectField(field, method, path, token string, body any) {
	e.t.Helper()
	out := e.expect(http.StatusBadRequest, "invalid_request", method, path, token, body)
	for _, f := range fieldErrors(e.t, out) {
		if f == field {
			return
		}
	}
	e.t.Fatalf("%s %s: errors %v; want one naming %q", method, path, out["errors"], field)
}

func validPolicy() map[string]any {
	return map[string]any{"currency": "EUR", "expiry_mode": "fixed_lifetime", "expiry_months": 24, "expiry_years": 0,
		"notice_days": 30, "transfers_enabled": true, "transfer_min": 100, "transfer_per_transfer": 5000,
		"transfer_daily": 10000, "transfer_monthly": 20000, "transfer_fee_fixed": 10, "transfer_fee_rate": "0.02",
		"birthday_points": 250, "tier_window": "calendar_year", "tier_downgrade": "one_level"}
}

func TestAdminProgrammePolicyAndTiers(t *testing.T) {
	t.Parallel()
	e := newProgrammeAdminEnv(t)
	admin := e.login("root@hub.test", access.RoleAdmin)
	support := e.login("help@hub.test", access.RoleSupport)
	finance := e.login("money@hub.test", access.RoleFinance)

	// Policy: any role reads, admin replaces.
	e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/policy", support, nil)
	e.expect(http.StatusForbidden, "forbidden", "PUT", "/v1/admin/programme/policy", finance, validPolicy())
	got := e.expect(http.StatusOK, "", "PUT", "/v1/admin/programme/policy", admin, validPolicy())
	if got["expiry_mode"] != "fixed_lifetime" || got["expiry_months"] != float64(24) || got["transfer_fee_rate"] != "0.02" ||
		got["tier_window"] != "calendar_year" || got["birthday_points"] != float64(250) {
		t.Fatalf("PUT policy answered %v; want the values sent", got)
	}
	read := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/policy", support, nil)
	if read["transfer_monthly"] != float64(20000) || read["tier_downgrade"] != "one_level" {
		t.Fatalf("GET policy after PUT = %v; want the stored values", read)
	}
	bad := validPolicy()
	bad["notice_days"] = 0
	e.expectField("notice_days", "PUT", "/v1/admin/programme/policy", admin, bad)
	missing := validPolicy()
	delete(missing, "tier_window")
	e.expectField("tier_window", "PUT", "/v1/admin/programme/policy", admin, missing)
	unknown := validPolicy()
	unknown["colour"] = "red"
	e.expectField("colour", "PUT", "/v1/admin/programme/policy", admin, unknown)

	// Tiers.
	e.expect(http.StatusOK, "", "PUT", "/v1/admin/programme/tiers/blue", admin, map[string]any{"name": "Blue", "rank": 0})
	gold := e.expect(http.StatusOK, "", "PUT", "/v1/admin/programme/tiers/gold", admin, map[string]any{
		"name": "Gold", "rank": 10, "thresholds": map[string]any{"qualifying_points": 5000, "nights": 20},
		"entitlements": []any{map[string]any{"code": "late_checkout", "value": "16:00"}}})
	if th, _ := gold["thresholds"].(map[string]any); gold["code"] != "gold" || th["nights"] != float64(20) {
		t.Fatalf("PUT tier gold = %v; want code gold with a nights threshold of 20", gold)
	}
	e.expect(http.StatusForbidden, "forbidden", "PUT", "/v1/admin/programme/tiers/silver", finance, map[string]any{"name": "Silver", "rank": 5})
	e.expectField("thresholds.miles", "PUT", "/v1/admin/programme/tiers/silver", admin,
		map[string]any{"name": "Silver", "rank": 5, "thresholds": map[string]any{"miles": 1}})
	e.expectField("code", "PUT", "/v1/admin/programme/tiers/Not-A-Code", admin, map[string]any{"name": "X", "rank": 7})
	e.expectField("rank", "PUT", "/v1/admin/programme/tiers/silver", admin, map[string]any{"name": "Silver", "rank": 10})
	list := items(t, e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/tiers", support, nil))
	if len(list) != 2 || list[0]["code"] != "blue" || list[1]["code"] != "gold" {
		t.Fatalf("GET tiers = %v; want blue then gold", list)
	}
}

func TestAdminProgrammeGrantsAndStatus(t *testing.T) {
	t.Parallel()
	e := newProgrammeAdminEnv(t)
	admin := e.login("root@hub.test", access.RoleAdmin)
	support := e.login("help@hub.test", access.RoleSupport)
	finance := e.login("money@hub.test", access.RoleFinance)
	e.expect(http.StatusOK, "", "PUT", "/v1/admin/programme/tiers/blue", admin, map[string]any{"name": "Blue", "rank": 0})
	e.expect(http.StatusOK, "", "PUT", "/v1/admin/programme/tiers/gold", admin, map[string]any{"name": "Gold", "rank": 10,
		"invitation_only": true, "entitlements": []any{map[string]any{"code": "lounge"}}})
	m := e.member("ada@example.test")
	path := "/v1/admin/members/" + itoa(m.ID) + "/tier"

	st := e.expect(http.StatusOK, "", "GET", path, support, nil)
	if st["tier"] != "blue" || st["member_id"] != float64(m.ID) {
		t.Fatalf("status before the grant = %v; want the base tier blue", st)
	}

	grant := map[string]any{"member_id": m.ID, "tier_code": "gold", "reason": "VIP guest"}
	e.expect(http.StatusForbidden, "forbidden", "POST", "/v1/admin/programme/grants", support, grant)
	g := e.expect(http.StatusCreated, "", "POST", "/v1/admin/programme/grants", finance, grant)
	if g["actor"] != "staff:money@hub.test" || g["tier_code"] != "gold" || g["ends_at"] != nil {
		t.Fatalf("grant = %v; want a lifetime gold grant by staff:money@hub.test", g)
	}
	st = e.expect(http.StatusOK, "", "GET", path, support, nil)
	ents, _ := st["entitlements"].([]any)
	if st["tier"] != "gold" || st["rank"] != float64(10) || len(ents) != 1 || st["since"] == nil {
		t.Fatalf("status after the grant = %v; want gold with the lounge entitlement", st)
	}
	if _, ok := st["credits"].(map[string]any); !ok {
		t.Fatalf("status has no credits object: %v", st)
	}

	e.expectField("reason", "POST", "/v1/admin/programme/grants", finance, map[string]any{"member_id": m.ID, "tier_code": "gold"})
	e.expectField("tier_code", "POST", "/v1/admin/programme/grants", finance, map[string]any{"member_id": m.ID, "reason": "x"})
	e.expectField("member_id", "POST", "/v1/admin/programme/grants", finance, map[string]any{"member_id": "one", "tier_code": "gold", "reason": "x"})
	e.expect(http.StatusNotFound, "tier_not_found", "POST", "/v1/admin/programme/grants", finance,
		map[string]any{"member_id": m.ID, "tier_code": "platinum", "reason": "x"})
	e.expect(http.StatusNotFound, "member_not_found", "POST", "/v1/admin/programme/grants", finance,
		map[string]any{"member_id": m.ID + 1000, "tier_code": "gold", "reason": "x"})
	e.expect(http.StatusNotFound, "member_not_found", "GET", "/v1/admin/members/"+itoa(m.ID+1000)+"/tier", support, nil)
	e.expect(http.StatusNotFound, "not_found", "GET", "/v1/admin/members/abc/tier", support, nil)
	e.expect(http.StatusUnauthorized, "", "GET", path, "", nil)
}

func TestAdminProgrammeCompanies(t *testing.T) {
	t.Parallel()
	e := newProgrammeAdminEnv(t)
	admin := e.login("root@hub.test", access.RoleAdmin)
	support := e.login("help@hub.test", access.RoleSupport)
	finance := e.login("money@hub.test", access.RoleFinance)

	company := map[string]any{"name": "Acme Ltd", "email": "travel@acme.test"}
	e.expect(http.StatusUnprocessableEntity, "company_level_missing", "POST", "/v1/admin/programme/companies", admin, company)

	e.expect(http.StatusNotFound, "company_level_not_found", "GET", "/v1/admin/programme/company-levels/base", support, nil)
	e.expect(http.StatusForbidden, "forbidden", "PUT", "/v1/admin/programme/company-levels/base", finance,
		map[string]any{"name": "Base", "min_spend_minor": 0, "rate": "0.5"})
	e.expectField("rate", "PUT", "/v1/admin/programme/company-levels/base", admin,
		map[string]any{"name": "Base", "min_spend_minor": 0, "rate": "1.5"})
	e.expectField("rate", "PUT", "/v1/admin/programme/company-levels/base", admin, map[string]any{"name": "Base", "min_spend_minor": 0})
	lvl := e.expect(http.StatusOK, "", "PUT", "/v1/admin/programme/company-levels/base", admin,
		map[string]any{"name": "Base", "min_spend_minor": 0, "rate": "0.5"})
	if lvl["code"] != "base" || lvl["rate"] != "0.5" {
		t.Fatalf("PUT company level = %v; want base at rate 0.5", lvl)
	}
	got := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/company-levels/base", support, nil)
	if got["name"] != "Base" || got["min_spend_minor"] != float64(0) {
		t.Fatalf("GET company level = %v; want Base from 0", got)
	}

	e.expect(http.StatusForbidden, "forbidden", "POST", "/v1/admin/programme/companies", finance, company)
	e.expectField("name", "POST", "/v1/admin/programme/companies", admin, map[string]any{"name": " ", "email": "x@acme.test"})
	co := e.expect(http.StatusCreated, "", "POST", "/v1/admin/programme/companies", admin, company)
	if co["level"] != "base" || co["account_member_id"] == nil {
		t.Fatalf("company = %v; want level base with an account member", co)
	}
	emps := "/v1/admin/programme/companies/" + idOf(t, co) + "/employees"

	m := e.member("bob@example.test")
	e.expect(http.StatusForbidden, "forbidden", "POST", emps, support, map[string]any{"member_id": m.ID})
	e.expectField("member_id", "POST", emps, admin, map[string]any{"can_spend": true})
	link := e.expect(http.StatusCreated, "", "POST", emps, admin, map[string]any{"member_id": m.ID, "can_spend": true})
	if link["member_id"] != float64(m.ID) || link["can_spend"] != true {
		t.Fatalf("employee link = %v; want member %d able to spend", link, m.ID)
	}
	e.expect(http.StatusConflict, "already_employee", "POST", emps, admin, map[string]any{"member_id": m.ID})
	e.expect(http.StatusNotFound, "company_not_found", "POST", "/v1/admin/programme/companies/999999/employees", admin,
		map[string]any{"member_id": m.ID})
	e.expect(http.StatusNotFound, "member_not_found", "POST", emps, admin, map[string]any{"member_id": m.ID + 1000})

	p, _ := e.partnerClient("Sky Air", access.ScopePointsEarn)
	body := map[string]any{"partner_id": p.ID}
	e.expect(http.StatusForbidden, "forbidden", "POST", "/v1/admin/programme/corporate-partners", finance, body)
	e.expect(http.StatusOK, "", "POST", "/v1/admin/programme/corporate-partners", admin, body)
	e.expect(http.StatusOK, "", "POST", "/v1/admin/programme/corporate-partners", admin, body) // idempotent
	e.expectField("partner_id", "POST", "/v1/admin/programme/corporate-partners", admin, map[string]any{})
	e.expect(http.StatusNotFound, "partner_not_found", "POST", "/v1/admin/programme/corporate-partners", admin,
		map[string]any{"partner_id": p.ID + 1000})
	var n int64
	if err := e.db.Raw(`SELECT count(*) FROM programme_corporate_partners WHERE partner_id = ?`, p.ID).Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("corporate partner rows for %d = %d (%v); want 1", p.ID, n, err)
	}
	// Read back: lists (paged, filtered) and one of each, for any role.
	co2 := e.expect(http.StatusCreated, "", "POST", "/v1/admin/programme/companies", admin,
		map[string]any{"name": "Globex", "email": "travel@globex.test"})
	all := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/companies?limit=1", support, nil)
	if data := all["data"].([]any); len(data) != 1 || all["next_cursor"] == "" {
		t.Fatalf("first page of companies = %v; want one and a cursor", all)
	}
	rest := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/companies?limit=1&cursor="+all["next_cursor"].(string), support, nil)
	if data := rest["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "Globex" || rest["next_cursor"] != "" {
		t.Fatalf("second page of companies = %v; want Globex and no cursor", rest)
	}
	named := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/companies?name=acme", finance, nil)
	if data := named["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "Acme Ltd" {
		t.Fatalf("companies named acme = %v", named)
	}
	one := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/companies/"+idOf(t, co2), support, nil)
	if one["name"] != "Globex" {
		t.Fatalf("GET company = %v", one)
	}
	e.expect(http.StatusNotFound, "company_not_found", "GET", "/v1/admin/programme/companies/999999", support, nil)
	staff := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/employees?can_spend=true&company_id="+idOf(t, co), support, nil)
	if data := staff["data"].([]any); len(data) != 1 || data[0].(map[string]any)["member_id"] != float64(m.ID) {
		t.Fatalf("designated employees = %v; want member %d", staff, m.ID)
	}
	none := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/employees?company_id="+idOf(t, co2), support, nil)
	if data := none["data"].([]any); len(data) != 0 {
		t.Fatalf("employees of Globex = %v; want none", none)
	}
	e.expectField("can_spend", "GET", "/v1/admin/programme/employees?can_spend=maybe", support, nil)
	emp := e.expect(http.StatusOK, "", "GET", fmt.Sprintf("/v1/admin/programme/employees/%d", m.ID), support, nil)
	if emp["company_id"] != co["id"] || emp["can_spend"] != true {
		t.Fatalf("GET employee = %v", emp)
	}
	e.expect(http.StatusNotFound, "employee_not_found", "GET", fmt.Sprintf("/v1/admin/programme/employees/%d", m.ID+1000), support, nil)
	cps := e.expect(http.StatusOK, "", "GET", "/v1/admin/programme/corporate-partners", support, nil)
	if data := cps["data"].([]any); len(data) != 1 || data[0].(map[string]any)["partner_id"] != float64(p.ID) {
		t.Fatalf("corporate partners = %v", cps)
	}
	e.expect(http.StatusOK, "", "GET", fmt.Sprintf("/v1/admin/programme/corporate-partners/%d", p.ID), support, nil)
	e.expect(http.StatusNotFound, "corporate_partner_not_found", "GET", fmt.Sprintf("/v1/admin/programme/corporate-partners/%d", p.ID+1000), support, nil)
}
