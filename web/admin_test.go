package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
)

func TestAdminPartnersContractsAndRoles(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	admin := e.staffToken("root@hub.test", access.RoleAdmin)
	finance := e.staffToken("money@hub.test", access.RoleFinance)
	support := e.staffToken("help@hub.test", access.RoleSupport)

	code, body, _ := e.call(http.MethodPost, "/v1/admin/partners", admin, map[string]any{
		"name": "Sky Air", "sector": "airline", "settlement_currency": "EUR", "time_zone": "Europe/Berlin"})
	if code != 201 || body["status"] != "onboarding" {
		t.Fatalf("create partner: %d %v", code, body)
	}
	pid := itoa(int64(body["id"].(float64)))
	if code, body, _ = e.call(http.MethodPost, "/v1/admin/partners", support, map[string]any{"name": "X"}); code != 403 || body["code"] != "forbidden" {
		t.Fatalf("support creating a partner: %d %v; want 403 forbidden", code, body)
	}
	code, body, _ = e.call(http.MethodPost, "/v1/admin/partners", admin, map[string]any{
		"name": "", "sector": "casino", "settlement_currency": "EUR", "time_zone": "Europe/Berlin"})
	if code != 400 || body["code"] != "invalid_request" || !strings.Contains(jsonNumAny(body["errors"]), `"sector"`) {
		t.Fatalf("bad partner: %d %v; want 400 invalid_request naming sector", code, body)
	}
	if code, body, _ = e.call(http.MethodPost, "/v1/admin/partners", admin, map[string]any{
		"name": "sky air", "sector": "airline", "settlement_currency": "EUR", "time_zone": "UTC"}); code != 409 || body["code"] != "partner_exists" {
		t.Fatalf("duplicate partner: %d %v; want 409 partner_exists", code, body)
	}

	contract := map[string]any{"effective_from": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"roles": []string{"earn", "burn"}, "issue_price": "0.0075", "redemption_rate": "0.005",
		"billing": "prepaid", "prepaid_alert_threshold": 10000, "pending_days": 30, "cap_per_transaction": 50000,
		"breakage_share": "0.25"}
	if code, _, _ = e.call(http.MethodPost, "/v1/admin/partners/"+pid+"/contracts", support, contract); code != 403 {
		t.Fatalf("support publishing a contract: %d; want 403", code)
	}
	code, body, _ = e.call(http.MethodPost, "/v1/admin/partners/"+pid+"/contracts", finance, contract)
	if code != 201 || body["version"] != float64(1) || body["issue_price"] != "0.0075" || body["currency"] != "EUR" || body["created_by"] != "staff:money@hub.test" {
		t.Fatalf("finance publishing a contract: %d %v", code, body)
	}
	code, body, _ = e.call(http.MethodGet, "/v1/admin/partners/"+pid+"/contract", support, nil)
	if code != 200 || body["version"] != float64(1) {
		t.Fatalf("contract in force: %d %v", code, body)
	}
	if code, body, _ = e.call(http.MethodPost, "/v1/admin/partners/"+pid+"/prepaid/top-ups", finance,
		map[string]any{"amount": map[string]any{"minor": 500000, "currency": "EUR"}, "ref": "SEPA-1"}); code != 201 {
		t.Fatalf("top-up: %d %v", code, body)
	}
	code, body, _ = e.call(http.MethodGet, "/v1/admin/partners/"+pid+"/prepaid", support, nil)
	if bal, _ := body["balance"].(map[string]any); code != 200 || bal["minor"] != float64(500000) {
		t.Fatalf("prepaid balance: %d %v; want 500000", code, body)
	}

	if code, _, _ = e.call(http.MethodPost, "/v1/admin/partners/"+pid+"/clients", finance, map[string]any{"name": "pos", "scopes": []string{"points:earn"}}); code != 403 {
		t.Fatalf("finance creating a client: %d; want 403", code)
	}
	code, body, _ = e.call(http.MethodPost, "/v1/admin/partners/"+pid+"/clients", admin, map[string]any{"name": "pos", "scopes": []string{"points:earn", "teleport"}})
	if code != 400 || !strings.Contains(jsonNumAny(body["errors"]), "scopes[1]") {
		t.Fatalf("unknown scope: %d %v; want 400 naming scopes[1]", code, body)
	}
	code, body, _ = e.call(http.MethodPost, "/v1/admin/partners/"+pid+"/clients", admin, map[string]any{"name": "pos", "scopes": []string{"points:earn"}})
	if code != 201 || !strings.HasPrefix(body["client_secret"].(string), "cs_") {
		t.Fatalf("create client: %d %v; want a secret shown once", code, body)
	}
	if code, _, _ = e.call(http.MethodPost, "/v1/admin/signing-keys/rotate", finance, nil); code != 403 {
		t.Fatalf("finance rotating keys: %d; want 403", code)
	}
	if code, _, _ = e.call(http.MethodGet, "/v1/admin/partners/99999", support, nil); code != 404 {
		t.Fatalf("unknown partner: %d; want 404", code)
	}
}

func TestAdminListsPaginate(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	admin := e.staffToken("root@hub.test", access.RoleAdmin)
	for _, n := range []string{"A", "B", "C", "D", "E"} {
		e.partnerClient("Partner "+n, access.ScopePointsEarn)
	}
	seen := map[string]bool{}
	path := "/v1/admin/partners?limit=2"
	for pages := 0; ; pages++ {
		code, body, _ := e.call(http.MethodGet, path, admin, nil)
		if code != 200 || pages > 3 {
			t.Fatalf("page %d: %d %v", pages, code, body)
		}
		for _, p := range body["data"].([]any) {
			name := p.(map[string]any)["name"].(string)
			if seen[name] {
				t.Fatalf("%s listed twice", name)
			}
			seen[name] = true
		}
		next := body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/admin/partners?limit=2&cursor=" + next
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d partners; want 5", len(seen))
	}
	if code, body, _ := e.call(http.MethodGet, "/v1/admin/partners?cursor=bm90LWFuLWlk", admin, nil); code != 400 {
		t.Fatalf("bad cursor: %d %v; want 400", code, body)
	}
}

func TestAdminLoginLocksAfterFailures(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	e.staffToken("root@hub.test", access.RoleAdmin)
	for i := range 5 {
		code, body, _ := e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "wrong password!"})
		if code != 401 || body["code"] != "invalid_credentials" {
			t.Fatalf("failure %d: %d %v; want 401 invalid_credentials", i, code, body)
		}
	}
	code, body, _ := e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "correct horse battery"})
	if code != 429 || body["code"] != "login_locked" {
		t.Fatalf("right password while locked: %d %v; want 429 login_locked", code, body)
	}
	e.clock.Add(16 * time.Minute)
	if code, _, _ = e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "correct horse battery"}); code != 200 {
		t.Fatalf("after the lockout: %d; want 200", code)
	}
	if code, body, _ = e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "nobody@hub.test", "password": "correct horse battery"}); code != 401 {
		t.Fatalf("unknown email: %d %v; want 401", code, body)
	}
}

func TestLoginRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, func(d *Deps) { d.LoginRate, d.LoginBurst = 0.01, 2 })
	for range 2 {
		e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "a@hub.test", "password": "x"})
	}
	code, _, hdr := e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "a@hub.test", "password": "x"})
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("third login: %d Retry-After %q; want 429", code, hdr.Get("Retry-After"))
	}
}
