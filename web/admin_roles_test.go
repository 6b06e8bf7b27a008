package web

import (
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/access"
	"github.com/prometheus/client_golang/prometheus"
)

// Who may call each admin API route. A route missing here, or an entry
// matching no route, fails TestAdminRoleMatrix: every new admin endpoint
// gets its role check written down and tested for admin, finance and
// support.
const (
	rolesAll = "admin finance support"
	rolesFin = "admin finance"
	rolesAdm = "admin"
)

var adminRoleMatrix = map[string]string{
	"GET /v1/admin/settlement/periods/:month/result":             rolesAll,
	"GET /v1/admin/settlement/periods/:month/liability":          rolesAll,
	"GET /v1/admin/settlement/periods/:month/journal":            rolesAll,
	"GET /v1/admin/settlement/accounts":                          rolesAll,
	"PUT /v1/admin/settlement/accounts/:kind":                    rolesFin,
	"GET /v1/admin/partners/:id/abuse-rules":                     rolesAll,
	"PUT /v1/admin/partners/:id/abuse-rules":                     rolesAdm,
	"GET /v1/admin/flags":                                        rolesAll,
	"GET /v1/admin/flags/:id":                                    rolesAll,
	"POST /v1/admin/flags/:id/review":                            rolesAdm,
	"GET /v1/admin/privacy/requests":                             rolesAll,
	"GET /v1/admin/privacy/requests/:id":                         rolesAll,
	"PUT /v1/admin/privacy/requests/:id":                         rolesAdm,
	"POST /v1/admin/members/:id/access-requests":                 rolesAdm,
	"POST /v1/admin/logout":                                      rolesAll,
	"GET /v1/admin/partners":                                     rolesAll,
	"POST /v1/admin/partners":                                    rolesAdm,
	"GET /v1/admin/partners/:id":                                 rolesAll,
	"POST /v1/admin/partners/:id/status":                         rolesAdm,
	"GET /v1/admin/partners/:id/outlets":                         rolesAll,
	"POST /v1/admin/partners/:id/outlets":                        rolesAdm,
	"GET /v1/admin/partners/:id/contracts":                       rolesAll,
	"POST /v1/admin/partners/:id/contracts":                      rolesFin,
	"GET /v1/admin/partners/:id/contract":                        rolesAll,
	"GET /v1/admin/partners/:id/prepaid":                         rolesAll,
	"POST /v1/admin/partners/:id/prepaid/top-ups":                rolesFin,
	"GET /v1/admin/partners/:id/clients":                         rolesAll,
	"POST /v1/admin/partners/:id/clients":                        rolesAdm,
	"POST /v1/admin/clients/:client_id/secret":                   rolesAdm,
	"POST /v1/admin/clients/:client_id/revoke":                   rolesAdm,
	"PUT /v1/admin/clients/:client_id/public-key":                rolesAdm,
	"GET /v1/admin/signing-keys":                                 rolesAdm,
	"POST /v1/admin/signing-keys/rotate":                         rolesAdm,
	"GET /v1/admin/staff":                                        rolesAdm,
	"POST /v1/admin/staff":                                       rolesAdm,
	"POST /v1/admin/staff/:id/status":                            rolesAdm,
	"PUT /v1/admin/staff/:id/role":                               rolesAdm,
	"GET /v1/admin/members":                                      rolesAll,
	"GET /v1/admin/members/:id":                                  rolesAll,
	"POST /v1/admin/members/:id/adjustments":                     rolesFin,
	"POST /v1/admin/members/:id/status":                          rolesAdm,
	"POST /v1/admin/members/:id/merge":                           rolesAdm,
	"POST /v1/admin/members/:id/export":                          rolesAdm,
	"POST /v1/admin/members/:id/erasure":                         rolesAdm,
	"GET /v1/admin/jobs":                                         rolesAll,
	"POST /v1/admin/jobs/retry":                                  rolesAdm,
	"POST /v1/admin/jobs/:name/run":                              rolesAdm,
	"GET /v1/admin/jobs/runs":                                    rolesAll,
	"GET /v1/admin/audit":                                        rolesAdm,
	"GET /v1/admin/segments":                                     rolesAll,
	"POST /v1/admin/segments":                                    rolesFin,
	"POST /v1/admin/segments/count":                              rolesAll,
	"GET /v1/admin/segments/:id":                                 rolesAll,
	"PUT /v1/admin/segments/:id":                                 rolesFin,
	"GET /v1/admin/segments/:id/count":                           rolesAll,
	"GET /v1/admin/campaigns":                                    rolesAll,
	"POST /v1/admin/campaigns":                                   rolesFin,
	"POST /v1/admin/campaigns/goodwill":                          rolesFin,
	"GET /v1/admin/campaigns/:id":                                rolesAll,
	"GET /v1/admin/campaigns/:id/preview":                        rolesAll,
	"POST /v1/admin/campaigns/:id/run":                           rolesFin,
	"GET /v1/admin/exports":                                      rolesAdm,
	"POST /v1/admin/exports":                                     rolesAdm,
	"GET /v1/admin/exports/:id/file":                             rolesAdm,
	"GET /v1/admin/jobs/runs/:id":                                rolesAll,
	"GET /v1/admin/settlement/statements/:id/transactions":       rolesAll,
	"GET /v1/admin/partners/:id/earn-rules":                      rolesAll,
	"POST /v1/admin/partners/:id/earn-rules":                     rolesFin,
	"GET /v1/admin/partners/:id/promotions":                      rolesAll,
	"POST /v1/admin/partners/:id/promotions":                     rolesFin,
	"POST /v1/admin/promotions/:id/end":                          rolesFin,
	"GET /v1/admin/catalog/rewards":                              rolesAll,
	"POST /v1/admin/catalog/rewards/:id/moderation":              rolesAdm,
	"POST /v1/admin/catalog/rewards":                             rolesAdm,
	"GET /v1/admin/catalog/rewards/:id":                          rolesAll,
	"PUT /v1/admin/catalog/rewards/:id":                          rolesAdm,
	"POST /v1/admin/catalog/rewards/:id/retire":                  rolesAdm,
	"POST /v1/admin/catalog/rewards/:id/stock":                   rolesAdm,
	"POST /v1/admin/catalog/rewards/:id/vouchers":                rolesAdm,
	"PUT /v1/admin/catalog/rewards/:id/image":                    rolesAdm,
	"GET /v1/admin/catalog/rewards/:id/events":                   rolesAll,
	"GET /v1/admin/settlement/periods":                           rolesAll,
	"GET /v1/admin/settlement/periods/:month":                    rolesAll,
	"POST /v1/admin/settlement/periods/:month/close":             rolesFin,
	"GET /v1/admin/settlement/periods/:month/report":             rolesAll,
	"GET /v1/admin/settlement/periods/:month/rates":              rolesAll,
	"PUT /v1/admin/settlement/periods/:month/rates":              rolesFin,
	"POST /v1/admin/settlement/periods/:month/reconciliations":   rolesFin,
	"GET /v1/admin/settlement/statements":                        rolesAll,
	"GET /v1/admin/settlement/statements/:id":                    rolesAll,
	"POST /v1/admin/settlement/statements/:id/approve":           rolesFin,
	"POST /v1/admin/settlement/statements/:id/send":              rolesFin,
	"GET /v1/admin/settlement/statements/:id/transitions":        rolesAll,
	"GET /v1/admin/settlement/statements/:id/invoice":            rolesAll,
	"GET /v1/admin/settlement/statements/:id/payments":           rolesAll,
	"POST /v1/admin/settlement/statements/:id/payments":          rolesFin,
	"POST /v1/admin/settlement/nettings":                         rolesFin,
	"GET /v1/admin/settlement/balances":                          rolesAll,
	"GET /v1/admin/settlement/tax-rates":                         rolesAll,
	"PUT /v1/admin/settlement/tax-rates/:country":                rolesFin,
	"GET /v1/admin/settlement/legal-entities":                    rolesAll,
	"PUT /v1/admin/settlement/legal-entities/:code":              rolesAdm,
	"GET /v1/admin/partners/:id/billing":                         rolesAll,
	"PUT /v1/admin/partners/:id/billing":                         rolesFin,
	"GET /v1/admin/settlement/approval-limits":                   rolesAll,
	"PUT /v1/admin/settlement/approval-limits/:currency":         rolesAdm,
	"POST /v1/admin/settlement/adjustments":                      rolesFin,
	"GET /v1/admin/settlement/reconciliations/:id":               rolesAll,
	"GET /v1/admin/settlement/reconciliations/:id/lines":         rolesAll,
	"GET /v1/admin/settlement/reconciliations/:id/errors":        rolesAll,
	"POST /v1/admin/settlement/reconciliation-lines/:id/resolve": rolesFin,
	"GET /v1/admin/exchanges":                                    rolesAll,
	"GET /v1/admin/exchanges/:id":                                rolesAll,
	"GET /v1/admin/exchange-programmes":                          rolesAll,
	"POST /v1/admin/exchange-programmes":                         rolesAdm,
	"GET /v1/admin/programme/policy":                             rolesAll,
	"PUT /v1/admin/programme/policy":                             rolesAdm,
	"GET /v1/admin/programme/tiers":                              rolesAll,
	"PUT /v1/admin/programme/tiers/:code":                        rolesAdm,
	"POST /v1/admin/programme/grants":                            rolesFin,
	"GET /v1/admin/members/:id/tier":                             rolesAll,
	"GET /v1/admin/programme/company-levels/:code":               rolesAll,
	"PUT /v1/admin/programme/company-levels/:code":               rolesAdm,
	"POST /v1/admin/programme/companies":                         rolesAdm,
	"GET /v1/admin/programme/companies":                          rolesAll,
	"GET /v1/admin/programme/companies/:id":                      rolesAll,
	"GET /v1/admin/programme/employees":                          rolesAll,
	"GET /v1/admin/programme/employees/:member_id":               rolesAll,
	"GET /v1/admin/programme/corporate-partners":                 rolesAll,
	"GET /v1/admin/programme/corporate-partners/:partner_id":     rolesAll,
	"POST /v1/admin/programme/companies/:id/employees":           rolesAdm,
	"POST /v1/admin/programme/corporate-partners":                rolesAdm,

	// Setting a partner up, and the programme's company levels
	// (web/admin_partner_setup.go, web/admin_programme_levels.go).
	"POST /v1/admin/partners/:id/earn-rules/quote":                       rolesAll,
	"GET /v1/admin/partners/:id/webhooks":                                rolesAll,
	"POST /v1/admin/partners/:id/webhook-deliveries/:delivery_id/replay": rolesAdm,
	"GET /v1/admin/programme/company-levels":                             rolesAll,
}

// routeList is "METHOD /path" of every route of the router.
func routeList() []string {
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var out []string
	for _, r := range s.engine().Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// adminRoutes lists "METHOD /path" of every admin API route behind a staff
// token (the sign-in itself is not).
func adminRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range routeList() {
		if strings.HasPrefix(r, "POST /v1/admin/login") {
			continue
		}
		if strings.Contains(r, " /v1/admin/") {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// concretePath fills a route's parameters with values naming nothing.
func concretePath(route string) string {
	r := strings.NewReplacer(":client_id", "cl_nothing", ":month", "2001-01", ":code", "nothing", ":name", "nothing", ":id", "987654")
	return r.Replace(route)
}

// TestAdminRoleMatrix calls every admin route as admin, finance and
// support: a role the matrix does not allow gets 403 forbidden and nothing
// else; an allowed one gets past the role check (any answer but 401 or
// 403). Logout is only checked against the table, since calling it ends
// the session.
func TestAdminRoleMatrix(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	tokens := map[string]string{}
	for _, role := range []access.Role{access.RoleAdmin, access.RoleFinance, access.RoleSupport} {
		email := string(role) + "@hub.test"
		if _, err := e.acc.EnsureStaff(e.ctx, email, "correct horse battery", role); err != nil {
			t.Fatal(err)
		}
		out := e.must(200, http.MethodPost, "/v1/admin/login", "", map[string]any{"email": email, "password": "correct horse battery"})
		tokens[string(role)] = out["access_token"].(string)
	}
	routes := adminRoutes(t)
	seen := map[string]bool{}
	changes := int64(0) // calls that may change something, not refused as bad input: each is audited once
	for _, r := range routes {
		seen[r] = true
		allowed, ok := adminRoleMatrix[r]
		if !ok {
			t.Errorf("admin route %s has no row in adminRoleMatrix (web/admin_roles_test.go): write down who may call it", r)
			continue
		}
		if r == "POST /v1/admin/logout" {
			continue
		}
		method, route, _ := strings.Cut(r, " ")
		var body any
		if method != http.MethodGet {
			body = map[string]any{}
		}
		for _, role := range []string{"admin", "finance", "support"} {
			code, out := e.call(method, concretePath(route), tokens[role], body)
			if method != http.MethodGet && !badInputStatus(code) {
				changes++
			}
			may := strings.Contains(" "+allowed+" ", " "+role+" ")
			switch {
			case may && (code == 401 || code == 403):
				t.Errorf("%s as %s: %d %v; the matrix allows %s", r, role, code, out, role)
			case !may && (code != 403 || out["code"] != "forbidden"):
				t.Errorf("%s as %s: %d %v; want 403 forbidden (allowed: %s)", r, role, code, out, allowed)
			}
		}
	}
	for r := range adminRoleMatrix {
		if !seen[r] {
			t.Errorf("adminRoleMatrix row %s matches no route (renamed or removed?)", r)
		}
	}
	if got := e.count("operator_audit_log"); got != changes {
		t.Errorf("the audit log holds %d entries after %d admin calls that may change something (bad input aside); want one each", got, changes)
	}
	var forbidden int64
	e.db.Raw(`SELECT count(*) FROM operator_audit_log WHERE role = 'support' AND outcome = 'ok'`).Scan(&forbidden)
	if forbidden != 0 {
		t.Errorf("%d calls by support are audited as ok; support may change nothing", forbidden)
	}
}

// consoleToAPI maps every POST route of the console to the admin API
// route(s) doing the same thing: the console is a client of the same
// actions, and an operator can script everything it does.
var consoleToAPI = map[string][]string{
	"POST /console/finance/accounts":                 {"PUT /v1/admin/settlement/accounts/:kind"},
	"POST /console/flags/:id/review":                 {"POST /v1/admin/flags/:id/review"},
	"POST /console/partners/:id/abuse-rules":         {"PUT /v1/admin/partners/:id/abuse-rules"},
	"POST /console/privacy/:id":                      {"PUT /v1/admin/privacy/requests/:id"},
	"POST /console/privacy/access":                   {"POST /v1/admin/members/:id/access-requests"},
	"POST /console/login":                            {"POST /v1/admin/login"},
	"POST /console/logout":                           {"POST /v1/admin/logout"},
	"POST /console/partners":                         {"POST /v1/admin/partners"},
	"POST /console/partners/:id/status":              {"POST /v1/admin/partners/:id/status"},
	"POST /console/partners/:id/contracts":           {"POST /v1/admin/partners/:id/contracts"},
	"POST /console/partners/:id/clients":             {"POST /v1/admin/partners/:id/clients"},
	"POST /console/clients/:client_id/secret":        {"POST /v1/admin/clients/:client_id/secret"},
	"POST /console/clients/:client_id/revoke":        {"POST /v1/admin/clients/:client_id/revoke"},
	"POST /console/members/:id/adjustments":          {"POST /v1/admin/members/:id/adjustments"},
	"POST /console/members/:id/status":               {"POST /v1/admin/members/:id/status"},
	"POST /console/members/:id/merge":                {"POST /v1/admin/members/:id/merge"},
	"POST /console/catalog/:id/moderation":           {"POST /v1/admin/catalog/rewards/:id/moderation"},
	"POST /console/catalog":                          {"POST /v1/admin/catalog/rewards"},
	"POST /console/catalog/:id":                      {"PUT /v1/admin/catalog/rewards/:id"},
	"POST /console/catalog/:id/stock":                {"POST /v1/admin/catalog/rewards/:id/stock"},
	"POST /console/catalog/:id/vouchers":             {"POST /v1/admin/catalog/rewards/:id/vouchers"},
	"POST /console/catalog/:id/image":                {"PUT /v1/admin/catalog/rewards/:id/image"},
	"POST /console/catalog/:id/retire":               {"POST /v1/admin/catalog/rewards/:id/retire"},
	"POST /console/settlement/:month/close":          {"POST /v1/admin/settlement/periods/:month/close"},
	"POST /console/statements/:id/:action":           {"POST /v1/admin/settlement/statements/:id/approve", "POST /v1/admin/settlement/statements/:id/send", "POST /v1/admin/settlement/statements/:id/payments"},
	"POST /console/nettings":                         {"POST /v1/admin/settlement/nettings"},
	"POST /console/reconciliation":                   {"POST /v1/admin/settlement/periods/:month/reconciliations"},
	"POST /console/reconciliation-lines/:id/resolve": {"POST /v1/admin/settlement/reconciliation-lines/:id/resolve"},
	"POST /console/jobs/retry":                       {"POST /v1/admin/jobs/retry"},

	// The partner, programme and staff pages (web/ui_console_partner.go,
	// web/ui_console_programme.go, web/ui_console_staff.go).
	"POST /console/partners/:id/outlets":                                {"POST /v1/admin/partners/:id/outlets"},
	"POST /console/partners/:id/earn-rules":                             {"POST /v1/admin/partners/:id/earn-rules"},
	"POST /console/partners/:id/earn-rules/quote":                       {"POST /v1/admin/partners/:id/earn-rules/quote"},
	"POST /console/partners/:id/promotions":                             {"POST /v1/admin/partners/:id/promotions"},
	"POST /console/promotions/:id/end":                                  {"POST /v1/admin/promotions/:id/end"},
	"POST /console/partners/:id/prepaid/top-ups":                        {"POST /v1/admin/partners/:id/prepaid/top-ups"},
	"POST /console/partners/:id/webhook-deliveries/:delivery_id/replay": {"POST /v1/admin/partners/:id/webhook-deliveries/:delivery_id/replay"},
	"POST /console/programme/policy":                                    {"PUT /v1/admin/programme/policy"},
	"POST /console/programme/tiers":                                     {"PUT /v1/admin/programme/tiers/:code"},
	"POST /console/programme/company-levels":                            {"PUT /v1/admin/programme/company-levels/:code"},
	"POST /console/programme/companies":                                 {"POST /v1/admin/programme/companies"},
	"POST /console/programme/employees":                                 {"POST /v1/admin/programme/companies/:id/employees"},
	"POST /console/programme/corporate-partners":                        {"POST /v1/admin/programme/corporate-partners"},
	"POST /console/segments":                                            {"POST /v1/admin/segments"},
	"POST /console/segments/count":                                      {"POST /v1/admin/segments/count"},
	"POST /console/segments/:id":                                        {"PUT /v1/admin/segments/:id"},
	"POST /console/campaigns":                                           {"POST /v1/admin/campaigns"},
	"POST /console/campaigns/goodwill":                                  {"POST /v1/admin/campaigns/goodwill"},
	"POST /console/campaigns/:id/run":                                   {"POST /v1/admin/campaigns/:id/run"},
	"POST /console/exports":                                             {"POST /v1/admin/exports"},
	"POST /console/staff":                                               {"POST /v1/admin/staff"},
	"POST /console/staff/:id/status":                                    {"POST /v1/admin/staff/:id/status"},
	"POST /console/staff/:id/role":                                      {"PUT /v1/admin/staff/:id/role"},
}

// TestEveryConsoleActionHasAnAdminAPIRoute fails when a console POST route
// has no row in consoleToAPI, or a row names an API route that does not
// exist.
func TestEveryConsoleActionHasAnAdminAPIRoute(t *testing.T) {
	t.Parallel()
	routes := map[string]bool{}
	var console []string
	for _, r := range routeList() {
		routes[r] = true
		if strings.HasPrefix(r, "POST /console") {
			console = append(console, r)
		}
	}
	sort.Strings(console)
	if len(console) == 0 {
		t.Fatal("the router has no console POST routes")
	}
	for _, r := range console {
		api, ok := consoleToAPI[r]
		if !ok {
			t.Errorf("console action %s has no admin API route in consoleToAPI (web/admin_roles_test.go): add the API route first", r)
		}
		for _, a := range api {
			if !routes[a] {
				t.Errorf("console action %s maps to %s, which the router does not serve", r, a)
			}
		}
	}
	for r := range consoleToAPI {
		if !routes[r] {
			t.Errorf("consoleToAPI row %s matches no console route (renamed or removed?)", r)
		}
	}
}
