package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

// signedInToken starts a session for member id, as a sign-in would, and
// returns the member token naming it.
func signedInToken(t testing.TB, ms *members.Service, acc *access.Service, id int64) string {
	t.Helper()
	sess, err := ms.StartSession(t.Context(), id, members.SessionInfo{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := acc.IssueMemberToken(t.Context(), sess)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// otherProcess serves the same database through fresh service instances, as
// a second hub process would: no cache or memory is shared with e's server.
func (e *uiEnv) otherProcess() *httptest.Server {
	e.t.Helper()
	reg := partners.NewService(e.db, e.clock.Now)
	acc, err := access.NewService(e.db, reg, access.Options{Issuer: testIssuer, SecretsKey: make([]byte, 32), Now: e.clock.Now, PasswordCost: bcrypt.MinCost})
	if err != nil {
		e.t.Fatal(err)
	}
	l := ledger.NewService(e.db, e.clock.Now)
	m := members.NewService(e.db, l, e.clock.Now, members.WithPasswordCost(bcrypt.MinCost))
	s := New(Deps{DB: e.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Partners: reg, Access: acc, Members: m, Ledger: l, Now: e.clock.Now,
		ClientRate: 1000, ClientBurst: 1000, LoginRate: 1000, LoginBurst: 1000})
	srv := httptest.NewServer(s.Handler())
	e.t.Cleanup(srv.Close)
	return srv
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func cookie(name, value string) map[string]string {
	return map[string]string{"Cookie": name + "=" + value}
}

// cookieValue is the value of the named cookie the browser holds for path.
func (b *browser) cookieValue(path, name string) string {
	b.t.Helper()
	u, _ := url.Parse(b.e.srv.URL + path)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	b.t.Fatalf("the browser holds no %s cookie for %s", name, path)
	return ""
}

// refusedToken asserts a 401 problem+json invalid_token with a challenge.
func refusedToken(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusUnauthorized || a.code != "invalid_token" || !strings.Contains(a.hdr.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("%s: %d %s (WWW-Authenticate %q); want 401 problem+json invalid_token", what, a.status, a.code, a.hdr.Get("WWW-Authenticate"))
	}
}

// sentToSignIn asserts the redirect of a page request to the area's sign-in.
func sentToSignIn(t *testing.T, what, area string, a answer) {
	t.Helper()
	if a.status != http.StatusSeeOther || a.hdr.Get("Location") != "/"+area+"/login" {
		t.Fatalf("%s: %d → %q; want 303 → /%s/login", what, a.status, a.hdr.Get("Location"), area)
	}
}

// After signing out of the portal, the old hub_portal cookie opens nothing:
// not the portal (sent to sign in) and not /v1/me as a bearer token (401),
// in the process that signed out and in another one.
func TestPortalLogoutEndsTheSessionEverywhere(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	m := e.member("ada@example.test", air.ID, 1000)
	other := e.otherProcess()
	b := e.browser()
	b.hdr["User-Agent"] = "Firefox/140"
	b.loginPortal("ada@example.test")
	old := b.cookieValue("/portal", portalCookie)
	for _, base := range []string{e.srv.URL, other.URL} {
		if a := rawDo(t, http.MethodGet, base+"/portal", cookie(portalCookie, old), "", ""); a.status != http.StatusOK {
			t.Fatalf("portal before sign-out at %s: %d", base, a.status)
		}
		if a := rawDo(t, http.MethodGet, base+"/v1/me", bearer(old), "", ""); a.status != http.StatusOK {
			t.Fatalf("/v1/me before sign-out at %s: %d %s", base, a.status, a.body)
		}
	}
	home := b.page("/portal")
	if st, _, h := b.post("/portal/logout", url.Values{"csrf": {csrfOf(t, home)}}); st != http.StatusSeeOther || h.Get("Location") != "/portal/login" {
		t.Fatalf("sign out = %d → %q", st, h.Get("Location"))
	}
	for _, base := range []string{e.srv.URL, other.URL} {
		sentToSignIn(t, "old cookie on /portal at "+base, "portal", rawDo(t, http.MethodGet, base+"/portal", cookie(portalCookie, old), "", ""))
		refusedToken(t, "old cookie as bearer on /v1/me at "+base, rawDo(t, http.MethodGet, base+"/v1/me", bearer(old), "", ""))
	}
	// The sign-in page no longer takes the old cookie for a session.
	if a := rawDo(t, http.MethodGet, e.srv.URL+"/portal/login", cookie(portalCookie, old), "", ""); a.status != http.StatusOK {
		t.Fatalf("sign-in page with the old cookie: %d, want the form", a.status)
	}
	var row struct {
		EndReason string
		UserAgent string
		IP        string
	}
	e.db.Raw(`SELECT end_reason, user_agent, ip FROM member_sessions WHERE member_id = ?`, m.ID).Scan(&row)
	if row.EndReason != "signed_out" || row.UserAgent != "Firefox/140" || row.IP != "127.0.0.1" {
		t.Fatalf("session row = %+v; want ended by sign-out, with the browser's user agent and address", row)
	}

	// An app signs out its own token the same way.
	tok := loginJSON(t, e.srv.URL, "/v1/me/login", "ada@example.test", uiPassword, "")
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal([]byte(tok.body), &body)
	if a := rawDo(t, http.MethodPost, other.URL+"/v1/me/logout", bearer(body.AccessToken), "", ""); a.status != http.StatusNoContent {
		t.Fatalf("POST /v1/me/logout: %d %s; want 204", a.status, a.body)
	}
	refusedToken(t, "token after /v1/me/logout", rawDo(t, http.MethodGet, e.srv.URL+"/v1/me/balance", bearer(body.AccessToken), "", ""))
}

// After signing out of the console, the old hub_console cookie opens neither
// the console nor the admin API, in any process; the admin API's own token
// signs out through POST /v1/admin/logout.
func TestConsoleLogoutEndsTheSessionEverywhere(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	e.staffUser("root@hub.test", access.RoleAdmin)
	other := e.otherProcess()
	b := e.browser()
	b.loginConsole("root@hub.test")
	old := b.cookieValue("/console", consoleCookie)
	for _, base := range []string{e.srv.URL, other.URL} {
		if a := rawDo(t, http.MethodGet, base+"/v1/admin/partners", bearer(old), "", ""); a.status != http.StatusOK {
			t.Fatalf("admin API before sign-out at %s: %d %s", base, a.status, a.body)
		}
	}
	dash := b.page("/console")
	if st, _, h := b.post("/console/logout", url.Values{"csrf": {csrfOf(t, dash)}}); st != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Fatalf("sign out = %d → %q", st, h.Get("Location"))
	}
	for _, base := range []string{e.srv.URL, other.URL} {
		sentToSignIn(t, "old cookie on /console at "+base, "console", rawDo(t, http.MethodGet, base+"/console", cookie(consoleCookie, old), "", ""))
		refusedToken(t, "old cookie as bearer on the admin API at "+base, rawDo(t, http.MethodGet, base+"/v1/admin/partners", bearer(old), "", ""))
	}

	a := loginJSON(t, e.srv.URL, "/v1/admin/login", "root@hub.test", uiPassword, "")
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal([]byte(a.body), &body)
	if a := rawDo(t, http.MethodGet, other.URL+"/v1/admin/partners", bearer(body.AccessToken), "", ""); a.status != http.StatusOK {
		t.Fatalf("admin API token: %d", a.status)
	}
	if a := rawDo(t, http.MethodPost, e.srv.URL+"/v1/admin/logout", bearer(body.AccessToken), "", ""); a.status != http.StatusNoContent {
		t.Fatalf("POST /v1/admin/logout: %d %s; want 204", a.status, a.body)
	}
	refusedToken(t, "admin token after /v1/admin/logout", rawDo(t, http.MethodGet, other.URL+"/v1/admin/partners", bearer(body.AccessToken), "", ""))
}

// A password change ends every other session of the member at once (the one
// it was made from stays), through the API and through the portal form.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	e.member("ada@example.test", air.ID, 1000)
	other := e.otherProcess()
	b := e.browser()
	b.loginPortal("ada@example.test")
	portal := b.cookieValue("/portal", portalCookie)
	apiLogin := func(password string) string {
		a := loginJSON(t, e.srv.URL, "/v1/me/login", "ada@example.test", password, "")
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &body) != nil {
			t.Fatalf("sign in with %q: %d %s", password, a.status, a.body)
		}
		return body.AccessToken
	}
	app := apiLogin(uiPassword)
	change := func(tok, current, next string) answer {
		b, _ := json.Marshal(map[string]string{"current_password": current, "new_password": next})
		return rawDo(t, http.MethodPut, other.URL+"/v1/me/password", bearer(tok), "application/json", string(b))
	}
	if a := change(app, "not the password", "a brand new secret"); a.status != http.StatusUnauthorized || a.code != "invalid_credentials" {
		t.Fatalf("change with a wrong current password: %d %s; want 401 invalid_credentials", a.status, a.code)
	}
	if a := change(app, uiPassword, "short"); a.status != http.StatusBadRequest || !strings.Contains(a.body, "new_password") {
		t.Fatalf("change to a short password: %d %s; want 400 naming new_password", a.status, a.body)
	}
	if a := rawDo(t, http.MethodGet, e.srv.URL+"/portal", cookie(portalCookie, portal), "", ""); a.status != http.StatusOK {
		t.Fatalf("a refused change ended the portal session: %d", a.status)
	}
	if a := change(app, uiPassword, "a brand new secret"); a.status != http.StatusNoContent {
		t.Fatalf("change: %d %s; want 204", a.status, a.body)
	}
	if a := rawDo(t, http.MethodGet, e.srv.URL+"/v1/me", bearer(app), "", ""); a.status != http.StatusOK {
		t.Fatalf("the session the change came from: %d; want it kept", a.status)
	}
	sentToSignIn(t, "the portal session after the change", "portal", rawDo(t, http.MethodGet, e.srv.URL+"/portal", cookie(portalCookie, portal), "", ""))
	refusedToken(t, "the portal cookie as bearer after the change", rawDo(t, http.MethodGet, e.srv.URL+"/v1/me", bearer(portal), "", ""))
	if a := loginJSON(t, e.srv.URL, "/v1/me/login", "ada@example.test", uiPassword, ""); a.status != http.StatusUnauthorized {
		t.Fatalf("old password: %d; want 401", a.status)
	}

	// The portal's form: the app's session ends, the portal's stays.
	b2 := e.browser()
	body := b2.page("/portal/login")
	if st, _, _ := b2.post("/portal/login", url.Values{"csrf": {csrfOf(t, body)}, "email": {"ada@example.test"},
		"password": {"a brand new secret"}}); st != http.StatusSeeOther {
		t.Fatalf("portal sign-in with the new password: %d", st)
	}
	page := b2.page("/portal/consent")
	form := url.Values{"csrf": {csrfOf(t, page)}, "current_password": {"a brand new secret"},
		"new_password": {"yet another secret"}, "new_password_again": {"yet another secret"}}
	if st, _, h := b2.post("/portal/password", form); st != http.StatusSeeOther || h.Get("Location") != "/portal/consent" {
		t.Fatalf("portal password form: %d → %q", st, h.Get("Location"))
	}
	if page := b2.page("/portal/consent"); !strings.Contains(page, "Your password is changed") {
		t.Fatalf("the portal does not confirm the change:\n%s", page)
	}
	refusedToken(t, "the app's token after the portal's change", rawDo(t, http.MethodGet, other.URL+"/v1/me", bearer(app), "", ""))
	apiLogin("yet another secret")
}

// Suspending a member ends its sessions at once, in every process, and
// lifting the suspension revives none of them; closing the account ends them
// too, and erasure leaves no session behind.
func TestSuspendedOrErasedMemberIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	m := e.member("ada@example.test", air.ID, 1000)
	other := e.otherProcess()
	b := e.browser()
	b.loginPortal("ada@example.test")
	portal := b.cookieValue("/portal", portalCookie)
	app := signedInToken(t, e.mem, e.acc, m.ID)
	if a := rawDo(t, http.MethodGet, other.URL+"/v1/me", bearer(app), "", ""); a.status != http.StatusOK {
		t.Fatalf("before suspension: %d", a.status)
	}
	if _, err := e.mem.Suspend(e.ctx, m.ID, "fraud review", "staff:root@hub.test"); err != nil {
		t.Fatal(err)
	}
	refusedToken(t, "token of a suspended member", rawDo(t, http.MethodGet, other.URL+"/v1/me", bearer(app), "", ""))
	sentToSignIn(t, "portal of a suspended member", "portal", rawDo(t, http.MethodGet, other.URL+"/portal", cookie(portalCookie, portal), "", ""))
	if _, err := e.mem.Reactivate(e.ctx, m.ID, "staff:root@hub.test"); err != nil {
		t.Fatal(err)
	}
	refusedToken(t, "a token from before the suspension, after reactivation", rawDo(t, http.MethodGet, e.srv.URL+"/v1/me", bearer(app), "", ""))
	sentToSignIn(t, "a portal cookie from before the suspension, after reactivation", "portal",
		rawDo(t, http.MethodGet, e.srv.URL+"/portal", cookie(portalCookie, portal), "", ""))

	app = signedInToken(t, e.mem, e.acc, m.ID)
	if _, err := e.mem.Close(e.ctx, m.ID, "member asked", "staff:root@hub.test"); err != nil {
		t.Fatal(err)
	}
	refusedToken(t, "token of a closed member", rawDo(t, http.MethodGet, other.URL+"/v1/me", bearer(app), "", ""))
	if _, err := e.mem.Erase(e.ctx, m.ID, "staff:dpo"); err != nil {
		t.Fatal(err)
	}
	refusedToken(t, "token of an erased member", rawDo(t, http.MethodGet, other.URL+"/v1/me", bearer(app), "", ""))
	var n int64
	e.db.Raw(`SELECT count(*) FROM member_sessions WHERE member_id = ?`, m.ID).Scan(&n)
	if n != 0 {
		t.Fatalf("%d sessions of the erased member remain (user agents and addresses are personal data)", n)
	}
}

// Disabling a staff account refuses its tokens and console cookie at once in
// every process (no cache grace), and enabling it again revives none.
func TestDisabledStaffIsRefusedAtOnceEverywhere(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	e.staffUser("root@hub.test", access.RoleAdmin)
	st, err := e.acc.EnsureStaff(e.ctx, "ops@hub.test", uiPassword, access.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	other := e.otherProcess()
	tokenOf := func(email string) string {
		a := loginJSON(t, e.srv.URL, "/v1/admin/login", email, uiPassword, "")
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &body) != nil {
			t.Fatalf("login %s: %d %s", email, a.status, a.body)
		}
		return body.AccessToken
	}
	admin, ops := tokenOf("root@hub.test"), tokenOf("ops@hub.test")
	b := e.browser()
	b.loginConsole("ops@hub.test")
	console := b.cookieValue("/console", consoleCookie)
	// The other process has seen (and could have cached) the account as active.
	if a := rawDo(t, http.MethodGet, other.URL+"/v1/admin/partners", bearer(ops), "", ""); a.status != http.StatusOK {
		t.Fatalf("before disabling: %d", a.status)
	}
	if a := rawDo(t, http.MethodGet, other.URL+"/console", cookie(consoleCookie, console), "", ""); a.status != http.StatusOK {
		t.Fatalf("console before disabling: %d", a.status)
	}
	path := "/v1/admin/staff/" + strconv.FormatInt(st.ID, 10) + "/status"
	if a := rawDo(t, http.MethodPost, e.srv.URL+path, bearer(admin), "application/json", `{"status":"disabled"}`); a.status != http.StatusOK {
		t.Fatalf("disable: %d %s", a.status, a.body)
	}
	refusedToken(t, "token of a disabled account in another process", rawDo(t, http.MethodGet, other.URL+"/v1/admin/partners", bearer(ops), "", ""))
	sentToSignIn(t, "console of a disabled account in another process", "console",
		rawDo(t, http.MethodGet, other.URL+"/console", cookie(consoleCookie, console), "", ""))
	if a := rawDo(t, http.MethodPost, e.srv.URL+path, bearer(admin), "application/json", `{"status":"active"}`); a.status != http.StatusOK {
		t.Fatalf("enable: %d %s", a.status, a.body)
	}
	refusedToken(t, "a token from before disabling, after enabling", rawDo(t, http.MethodGet, other.URL+"/v1/admin/partners", bearer(ops), "", ""))
	tokenOf("ops@hub.test")
}
