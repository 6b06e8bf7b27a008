package web

import (
	"context"
	"encoding/json"
	"github.com/coalitionhub/hub/abuse"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/settlement"
	"github.com/coalitionhub/hub/webhooks"
)

// uiEnv is the whole hub's HTTP surface over a fresh database with every
// domain service, for driving the portal and console like a browser would.
type uiEnv struct {
	t     *testing.T
	ctx   context.Context
	db    *gorm.DB
	clock *clock.Manual
	reg   *partners.Service
	acc   *access.Service
	led   *ledger.Service
	mem   *members.Service
	cat   *catalog.Service
	srv   *httptest.Server
}

const uiPassword = "correct horse battery"

func newUIEnv(t *testing.T, jobs Jobs) *uiEnv {
	t.Helper()
	return newUIEnvWith(t, jobs, nil)
}

// newUIEnvWith is newUIEnv with tune applied to the server's Deps.
func newUIEnvWith(t *testing.T, jobs Jobs, tune func(*Deps)) *uiEnv {
	t.Helper()
	db := testdb.New(t)
	// Mid-month, so "this month" and "last month" are unambiguous.
	now := time.Now().UTC()
	clk := clock.New(time.Date(now.Year(), now.Month(), 15, 12, 0, 0, 0, time.UTC))
	reg := partners.NewService(db, clk.Now)
	acc, err := access.NewService(db, reg, access.Options{Issuer: testIssuer, SecretsKey: make([]byte, 32), Now: clk.Now, PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.NewService(db, clk.Now)
	m := members.NewService(db, l, clk.Now, members.WithPasswordCost(bcrypt.MinCost))
	consent := members.NewBurnConsent(db, clk.Now, members.DefaultConsentPolicy)
	rs := rules.NewService(db, clk.Now)
	cat := catalog.NewService(db, l, m, reg, clk.Now)
	deps := Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Partners: reg, Access: acc, Members: m, Ledger: l, Consent: consent, Rules: rs,
		Webhooks:     webhooks.NewService(db, acc.SecretBox(), netguard.Policy{}, clk.Now),
		Transactions: points.NewTransactions(db, l, m, consent, reg, rs, clk.Now),
		Catalog:      cat,
		Settlement:   settlement.NewService(db, settlement.Options{Location: time.UTC, BaseCurrency: "EUR", Now: clk.Now}),
		Exchange:     exchange.NewService(db, l, m, reg, acc.SecretBox(), exchange.NewHTTPPartner(time.Minute), clk.Now),
		Programme:    programme.NewService(db, l, m, consent, clk.Now),
		Abuse:        abuse.NewService(db, l, clk.Now),
		Jobs:         jobs, Now: clk.Now,
		ClientRate: 1000, ClientBurst: 1000, LoginRate: 1000, LoginBurst: 1000}
	if tune != nil {
		tune(&deps)
	}
	s := New(deps)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &uiEnv{t: t, ctx: context.Background(), db: db, clock: clk, reg: reg, acc: acc, led: l, mem: m, cat: cat, srv: srv}
}

// member enrols a member with a password and credits points from issuer.
func (e *uiEnv) member(email string, issuer int64, pts int64) members.Member {
	e.t.Helper()
	m, _, err := e.mem.Enrol(e.ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile: members.Profile{Email: email, GivenName: "Ada", FamilyName: "Lovelace"}, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.mem.SetPassword(e.ctx, m.ID, uiPassword); err != nil {
		e.t.Fatal(err)
	}
	if pts > 0 {
		if _, err := e.led.Earn(e.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: "earn-" + email},
			MemberID: m.ID, PartnerID: issuer, Points: ledger.Points(pts), OccurredAt: e.clock.Now()}); err != nil {
			e.t.Fatal(err)
		}
	}
	return m
}

// partner creates an active earn-and-burn partner with a contract.
func (e *uiEnv) partner(name string, sector partners.Sector) partners.Partner {
	e.t.Helper()
	p, err := e.reg.CreatePartner(e.ctx, partners.NewPartner{Name: name, Sector: sector, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.SetPartnerStatus(e.ctx, p.ID, partners.StatusActive); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.PublishContract(e.ctx, p.ID, partners.NewContract{EffectiveFrom: e.clock.Now().AddDate(0, -3, 0),
		Earn: true, Burn: true, IssuePrice: decimal.RequireFromString("0.008"),
		RedemptionRate: decimal.RequireFromString("0.005"), Billing: partners.BillingPostpaid}, "staff:test"); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *uiEnv) staffUser(email string, role access.Role) {
	e.t.Helper()
	if _, err := e.acc.EnsureStaff(e.ctx, email, uiPassword, role); err != nil {
		e.t.Fatal(err)
	}
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see each 303 and where it points.
type browser struct {
	t   *testing.T
	e   *uiEnv
	c   *http.Client
	hdr map[string]string
}

func (e *uiEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, hdr: map[string]string{}, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	for k, v := range b.hdr {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no csrf field:\n%s", body)
	}
	return m[1]
}

// page GETs path, expects 200 and a clean page, and returns its body.
func (b *browser) page(path string) string {
	b.t.Helper()
	st, body, h := b.get(path)
	if st != http.StatusOK {
		b.t.Fatalf("GET %s = %d, want 200:\n%s", path, st, body)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		b.t.Fatalf("GET %s Content-Type = %q, want text/html", path, h.Get("Content-Type"))
	}
	assertCleanPage(b.t, path, body, h)
	return body
}

// assertCleanPage fails when a page leaks a Go zero value, a raw map or
// an unescaped template, or lacks its security headers.
func assertCleanPage(t *testing.T, path, body string, h http.Header) {
	t.Helper()
	for _, bad := range []string{"<nil>", "0001-01-01", "map[", "%!", "{{", "1 Jan 0001"} {
		if strings.Contains(body, bad) {
			i := strings.Index(body, bad)
			t.Errorf("GET %s shows %q: …%s…", path, bad, body[max(0, i-120):min(len(body), i+120)])
		}
	}
	if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") || strings.Contains(got, "unsafe-inline") {
		t.Errorf("GET %s Content-Security-Policy = %q, want default-src 'self' without unsafe-inline", path, got)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("GET %s has an inline script", path)
	}
}

func (b *browser) loginPortal(email string) {
	b.t.Helper()
	body := b.page("/portal/login")
	st, _, h := b.post("/portal/login", url.Values{"csrf": {csrfOf(b.t, body)}, "email": {email}, "password": {uiPassword}})
	if st != http.StatusSeeOther || h.Get("Location") != "/portal" {
		b.t.Fatalf("portal sign-in = %d → %q, want 303 → /portal", st, h.Get("Location"))
	}
}

func (b *browser) loginConsole(email string) {
	b.t.Helper()
	body := b.page("/console/login")
	st, _, h := b.post("/console/login", url.Values{"csrf": {csrfOf(b.t, body)}, "email": {email}, "password": {uiPassword}})
	if st != http.StatusSeeOther || h.Get("Location") != "/console" {
		b.t.Fatalf("console sign-in = %d → %q, want 303 → /console", st, h.Get("Location"))
	}
}

func cookieNamed(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func audit(t *testing.T, db *gorm.DB) {
	t.Helper()
	rep, err := ledger.Audit(context.Background(), db, programme.AuditQueries()...)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledger audit failed: %+v", rep)
	}
}

func TestPortalSignInSessionCookieAndCSRF(t *testing.T) {
	t.Parallel()
	e := newUIEnvWith(t, nil, func(d *Deps) { d.TrustedProxies = []string{"127.0.0.1", "::1"} })
	air := e.partner("Sky Air", partners.SectorAirline)
	e.member("ada@example.test", air.ID, 1000)
	b := e.browser()

	// Signed out: every portal page sends to sign-in.
	if st, _, h := b.get("/portal/history"); st != http.StatusSeeOther || h.Get("Location") != "/portal/login" {
		t.Fatalf("signed-out GET /portal/history = %d → %q, want 303 → /portal/login", st, h.Get("Location"))
	}
	body := b.page("/portal/login")
	token := csrfOf(t, body)
	for _, p := range []string{"/portal/static/ui.css", "/console/static/ui.js"} {
		if st, _, h := b.get(p); st != http.StatusOK || h.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s = %d (CSP %q), want 200 with the CSP", p, st, h.Get("Content-Security-Policy"))
		}
	}
	if st, _, _ := b.get("/portal/static/nope.css"); st != http.StatusNotFound {
		t.Errorf("missing static file = %d, want 404", st)
	}

	// A sign-in post without the form's token is refused, and no session starts.
	st, _, h := b.post("/portal/login", url.Values{"email": {"ada@example.test"}, "password": {uiPassword}})
	if st != http.StatusForbidden || cookieNamed(h, portalCookie) != nil {
		t.Fatalf("sign-in without csrf = %d (cookie %v), want 403 and no session", st, cookieNamed(h, portalCookie))
	}
	// A wrong password: 401, a friendly message, no session.
	st, body, h = b.post("/portal/login", url.Values{"csrf": {token}, "email": {"ada@example.test"}, "password": {"wrong"}})
	if st != http.StatusUnauthorized || !strings.Contains(body, "Invalid email or password") || cookieNamed(h, portalCookie) != nil {
		t.Fatalf("wrong password = %d, want 401 with a message and no cookie:\n%s", st, body)
	}
	assertCleanPage(t, "/portal/login (refused)", body, h)

	st, _, h = b.post("/portal/login", url.Values{"csrf": {token}, "email": {"ada@example.test"}, "password": {uiPassword}})
	c := cookieNamed(h, portalCookie)
	if st != http.StatusSeeOther || c == nil {
		t.Fatalf("sign-in = %d, cookie %v; want 303 with a session cookie", st, c)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/portal" || c.Secure || c.MaxAge <= 0 {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/portal, not Secure over http, with MaxAge", c)
	}

	// Behind an HTTPS proxy (a trusted one: the test's peer) the cookie is Secure.
	https := e.browser()
	https.hdr["X-Forwarded-Proto"] = "https"
	body = https.page("/portal/login")
	_, _, h = https.post("/portal/login", url.Values{"csrf": {csrfOf(t, body)}, "email": {"ada@example.test"}, "password": {uiPassword}})
	if c := cookieNamed(h, portalCookie); c == nil || !c.Secure {
		t.Fatalf("session cookie over https = %+v, want Secure", c)
	}

	// A form post with a wrong or missing token is refused and changes nothing.
	home := b.page("/portal")
	if !strings.Contains(home, `id="balance-available">1,000<`) {
		t.Fatalf("dashboard does not show 1,000 available points:\n%s", home)
	}
	for _, form := range []url.Values{{"marketing": {"yes"}}, {"marketing": {"yes"}, "csrf": {"forged"}}} {
		if st, _, _ := b.post("/portal/consent", form); st != http.StatusForbidden {
			t.Fatalf("consent post with csrf %q = %d, want 403", form.Get("csrf"), st)
		}
	}
	m, _ := e.mem.Lookup(e.ctx, members.Identifier{Type: members.IdentifierEmail, Value: "ada@example.test"})
	if m.MarketingConsent {
		t.Fatal("a refused consent post changed the member's consent")
	}
	if st, _, _ := b.post("/portal/consent", url.Values{"marketing": {"yes"}, "csrf": {csrfOf(t, home)}}); st != http.StatusSeeOther {
		t.Fatalf("consent post = %d, want 303", st)
	}
	m, _ = e.mem.Get(e.ctx, m.ID)
	if !m.MarketingConsent {
		t.Fatal("consent post did not record marketing consent")
	}
	if body := b.page("/portal/consent"); !strings.Contains(body, "receive offers") {
		t.Fatalf("consent page does not confirm the change:\n%s", body)
	}

	// Signing out ends the session.
	if st, _, h := b.post("/portal/logout", url.Values{"csrf": {csrfOf(t, home)}}); st != http.StatusSeeOther || h.Get("Location") != "/portal/login" {
		t.Fatalf("sign out = %d → %q", st, h.Get("Location"))
	}
	if st, _, _ := b.get("/portal"); st != http.StatusSeeOther {
		t.Fatalf("after sign out GET /portal = %d, want 303", st)
	}
}

func TestPortalPagesOrderAndCancel(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	hotel := e.partner("Grand Hotels", partners.SectorHotel)
	m := e.member("grace@example.test", hotel.ID, 20000)
	r, err := e.cat.CreateReward(e.ctx, hotel.ID, catalog.RewardInput{Title: "Free night", Category: catalog.CategoryHotelNight,
		PricePoints: 15000, Value: money.Money{Minor: 12000, Currency: "EUR"}, Fulfilment: catalog.FulfilmentAsync})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.loginPortal("grace@example.test")

	// Every page of the navigation renders cleanly, empty states included.
	for _, p := range []string{"/portal", "/portal/history", "/portal/history?type=earn&from=2020-01-01&to=2099-12-31",
		"/portal/catalog", "/portal/redeem", "/portal/exchange", "/portal/transfers", "/portal/accounts", "/portal/consent"} {
		body := b.page(p)
		for _, nav := range []string{"nav-home", "nav-history", "nav-catalog", "nav-redeem", "nav-exchange", "nav-transfers", "nav-accounts", "nav-consent"} {
			if !strings.Contains(body, `id="`+nav+`"`) {
				t.Errorf("%s lacks navigation link %s", p, nav)
			}
		}
	}
	if body := b.page("/portal/history"); !strings.Contains(body, "&#43;20,000") || !strings.Contains(body, "Grand Hotels") {
		t.Errorf("history does not show the +20,000 earn at Grand Hotels:\n%s", body)
	}
	if body := b.page("/portal/transfers"); !strings.Contains(body, "No transfers yet.") {
		t.Errorf("transfers page lacks its empty state")
	}
	if st, body, _ := b.get("/portal/history?from=yesterday"); st != http.StatusBadRequest || !strings.Contains(body, "from must be a date") {
		t.Errorf("bad history filter = %d, want 400 naming the field:\n%s", st, body)
	}

	// Order the reward: the available balance drops by its price.
	cat := b.page("/portal/catalog")
	if !strings.Contains(cat, `id="order-`) {
		t.Fatalf("catalog has no order button:\n%s", cat)
	}
	key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(cat)[1]
	form := url.Values{"csrf": {csrfOf(t, cat)}, "reward_id": {itoa(r.ID)}, "key": {key}}
	if st, _, h := b.post("/portal/orders", form); st != http.StatusSeeOther || h.Get("Location") != "/portal/catalog" {
		t.Fatalf("order = %d → %q", st, h.Get("Location"))
	}
	// The same form posted twice (a double click) orders once.
	b.post("/portal/orders", form)
	cat = b.page("/portal/catalog")
	if !strings.Contains(cat, "Ordered Free night for 15,000 points") || !strings.Contains(cat, `id="catalog-available">5,000<`) {
		t.Fatalf("after ordering the catalog does not confirm and show 5,000 available:\n%s", cat)
	}
	orders, _, err := e.cat.MemberOrders(e.ctx, m.ID, catalog.OrderQuery{Limit: 10})
	if err != nil || len(orders) != 1 {
		t.Fatalf("member orders = %d (%v), want exactly 1 after a double submit", len(orders), err)
	}
	// Ordering what the member cannot afford shows a friendly error.
	b.post("/portal/orders", url.Values{"csrf": {csrfOf(t, cat)}, "reward_id": {itoa(r.ID)}, "key": {"other"}})
	if body := b.page("/portal/catalog"); !strings.Contains(body, `id="error"`) || strings.Contains(body, "Internal") {
		t.Fatalf("unaffordable order does not show a friendly error:\n%s", body)
	}
	// Cancel: the points are available again.
	if st, _, _ := b.post("/portal/orders/"+itoa(orders[0].ID)+"/cancel", url.Values{"csrf": {csrfOf(t, cat)}}); st != http.StatusSeeOther {
		t.Fatalf("cancel = %d, want 303", st)
	}
	home := b.page("/portal")
	if !strings.Contains(home, `id="balance-available">20,000<`) || !strings.Contains(home, `id="balance-held">0<`) {
		t.Fatalf("after cancelling, dashboard does not show 20,000 available and 0 held:\n%s", home)
	}

	// A redemption code is shown big, once.
	st, body, h := b.post("/portal/redeem", url.Values{"csrf": {csrfOf(t, home)}})
	if st != http.StatusOK || !regexp.MustCompile(`id="redemption-code"[^>]*>[0-9A-Z]{4,}<`).MatchString(body) {
		t.Fatalf("redeem = %d, want a code:\n%s", st, body)
	}
	assertCleanPage(t, "POST /portal/redeem", body, h)

	// Download my data: a JSON attachment with the member in it.
	st, body, h = b.get("/portal/export")
	var x map[string]any
	if st != http.StatusOK || !strings.Contains(h.Get("Content-Disposition"), "attachment") || json.Unmarshal([]byte(body), &x) != nil {
		t.Fatalf("export = %d %q, want a JSON attachment", st, h.Get("Content-Disposition"))
	}
	if !strings.Contains(body, "grace@example.test") {
		t.Fatal("export does not contain the member's email")
	}
	audit(t, e.db)
}

func TestConsoleRolesPagesAndAudit(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky <Air>", partners.SectorAirline)
	hotel := e.partner("Grand Hotels", partners.SectorHotel)
	m := e.member("lin@example.test", air.ID, 3000)
	e.staffUser("admin@hub.test", access.RoleAdmin)
	e.staffUser("fin@hub.test", access.RoleFinance)
	e.staffUser("support@hub.test", access.RoleSupport)

	anon := e.browser()
	if st, _, h := anon.get("/console/members"); st != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Fatalf("signed-out console = %d → %q, want 303 → /console/login", st, h.Get("Location"))
	}
	// A member session is not a staff session.
	mb := e.browser()
	mb.loginPortal("lin@example.test")
	if st, _, _ := mb.get("/console"); st != http.StatusSeeOther {
		t.Fatalf("member cookie on the console = %d, want a redirect to sign-in", st)
	}

	admin := e.browser()
	admin.loginConsole("admin@hub.test")
	pages := []string{"/console", "/console/partners", "/console/partners/" + itoa(air.ID), "/console/members",
		"/console/members?q=lin@example.test", "/console/members/" + itoa(m.ID), "/console/catalog", "/console/settlement",
		"/console/reconciliation", "/console/jobs", "/console/audit"}
	for _, p := range pages {
		body := admin.page(p)
		for _, nav := range []string{"nav-dashboard", "nav-partners", "nav-members", "nav-catalog", "nav-settlement", "nav-reconciliation", "nav-jobs", "nav-audit"} {
			if !strings.Contains(body, `id="`+nav+`"`) {
				t.Errorf("%s lacks navigation link %s", p, nav)
			}
		}
	}
	dash := admin.page("/console")
	if !strings.Contains(dash, `id="stat-members">1<`) || !strings.Contains(dash, `id="stat-liability">3,000<`) ||
		!strings.Contains(dash, `id="stat-partners">2<`) || strings.Count(dash, `<svg class="chart `) != 3 {
		t.Fatalf("dashboard figures or charts are wrong:\n%s", dash)
	}
	if strings.Contains(dash, "Sky <Air>") || !strings.Contains(dash, "Sky &lt;Air&gt;") {
		t.Fatal("a partner name is not escaped in the dashboard chart")
	}
	if body := admin.page("/console/members?q=lin@example.test"); !strings.Contains(body, `id="member-`+itoa(m.ID)+`"`) {
		t.Fatal("member search by email does not find the member")
	}

	// Support reads but may not act or see the audit log.
	sup := e.browser()
	sup.loginConsole("support@hub.test")
	supPage := sup.page("/console/members/" + itoa(m.ID))
	if strings.Contains(supPage, `id="adjust-form"`) {
		t.Error("support sees the adjustment form")
	}
	if st, _, _ := sup.get("/console/audit"); st != http.StatusForbidden {
		t.Errorf("support GET /console/audit = %d, want 403", st)
	}
	if st, body, _ := sup.post("/console/members/"+itoa(m.ID)+"/adjustments",
		url.Values{"csrf": {csrfOf(t, supPage)}, "points": {"100"}, "reason": {"x"}}); st != http.StatusForbidden {
		t.Errorf("support adjustment = %d, want 403:\n%s", st, body)
	}

	// Finance adjusts with a reason; a forged token is refused first.
	fin := e.browser()
	fin.loginConsole("fin@hub.test")
	mp := fin.page("/console/members/" + itoa(m.ID))
	adj := url.Values{"points": {"-500"}, "reason": {"Goodwill correction"}, "key": {"k1"}}
	adj.Set("csrf", "forged")
	if st, _, _ := fin.post("/console/members/"+itoa(m.ID)+"/adjustments", adj); st != http.StatusForbidden {
		t.Fatalf("adjustment with a forged csrf = %d, want 403", st)
	}
	adj.Set("csrf", csrfOf(t, mp))
	if st, _, _ := fin.post("/console/members/"+itoa(m.ID)+"/adjustments", adj); st != http.StatusSeeOther {
		t.Fatalf("adjustment = %d, want 303", st)
	}
	if bal, _ := e.led.Balance(e.ctx, m.ID); bal.Total != 2500 {
		t.Fatalf("balance after -500 adjustment = %d, want 2500", bal.Total)
	}
	if body := fin.page("/console/members/" + itoa(m.ID)); !strings.Contains(body, "Goodwill correction") || !strings.Contains(body, "Adjusted by -500 points.") {
		t.Fatal("member page does not show the adjustment and its reason")
	}
	// Finance may not suspend (admin only).
	if st, _, _ := fin.post("/console/members/"+itoa(m.ID)+"/status", url.Values{"csrf": {csrfOf(t, mp)}, "action": {"suspend"}}); st != http.StatusForbidden {
		t.Fatalf("finance suspend = %d, want 403", st)
	}
	// An adjustment without a reason is refused with the field named.
	fin.post("/console/members/"+itoa(m.ID)+"/adjustments", url.Values{"csrf": {csrfOf(t, mp)}, "points": {"5"}, "key": {"k2"}})
	if body := fin.page("/console/members/" + itoa(m.ID)); !strings.Contains(body, "reason is required") {
		t.Fatalf("adjustment without reason does not name the field:\n%s", body)
	}

	// Admin suspends; the member's portal session stops working.
	ap := admin.page("/console/members/" + itoa(m.ID))
	if st, _, _ := admin.post("/console/members/"+itoa(m.ID)+"/status", url.Values{"csrf": {csrfOf(t, ap)}, "action": {"suspend"}, "reason": {"fraud check"}}); st != http.StatusSeeOther {
		t.Fatalf("suspend = %d", st)
	}
	if st, _, _ := mb.get("/portal"); st != http.StatusSeeOther {
		t.Fatalf("suspended member's portal = %d, want a redirect to sign-in", st)
	}

	// Admin creates an API client: its secret is shown once.
	pp := admin.page("/console/partners/" + itoa(hotel.ID))
	st, body, h := admin.post("/console/partners/"+itoa(hotel.ID)+"/clients", url.Values{"csrf": {csrfOf(t, pp)}, "name": {"POS"}, "scope": {"points:earn", "points:burn"}})
	sec := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(body)
	if st != http.StatusOK || sec == nil {
		t.Fatalf("create client = %d, want the secret shown:\n%s", st, body)
	}
	assertCleanPage(t, "POST clients", body, h)
	if strings.Contains(admin.page("/console/partners/"+itoa(hotel.ID)), sec[1]) {
		t.Fatal("the client secret is shown again on the partner page")
	}

	// Every console action is in the audit log, failures included.
	log := admin.page("/console/audit")
	for _, want := range []string{"member.adjust", "member.suspend", "client.create", "fin@hub.test", "admin@hub.test", "failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	if err := e.db.Exec(`DELETE FROM operator_audit_log`).Error; err == nil {
		t.Error("the audit log accepted a DELETE; it must be append-only")
	}
	audit(t, e.db)
}

func TestConsoleClosesPeriodAndDownloadsStatement(t *testing.T) {
	t.Parallel()
	var set *settlement.Service
	e := newUIEnvWith(t, nil, func(d *Deps) { set = d.Settlement })
	air := e.partner("Sky Air", partners.SectorAirline)
	billingSetup(t, set, air.ID)
	e.member("sam@example.test", air.ID, 4000)
	month := e.clock.Now().Format("2006-01")
	e.staffUser("fin@hub.test", access.RoleFinance)
	e.clock.Add(31 * 24 * time.Hour) // next month: the earn's period has ended
	b := e.browser()
	b.loginConsole("fin@hub.test")

	list := b.page("/console/settlement")
	if !strings.Contains(list, `id="close-`+month+`"`) {
		t.Fatalf("settlement page lists no close button for %s:\n%s", month, list)
	}
	if st, _, h := b.post("/console/settlement/"+month+"/close", url.Values{"csrf": {csrfOf(t, list)}}); st != http.StatusSeeOther || h.Get("Location") != "/console/settlement/"+month {
		t.Fatalf("close = %d → %q", st, h.Get("Location"))
	}
	run := regexp.MustCompile(`data-run="(/console/jobs/runs/[0-9]+)"`).FindStringSubmatch(b.page("/console/settlement/" + month))
	if run == nil {
		t.Fatal("the period page shows no close run")
	}
	closeWorker(t, e.db, time.UTC, e.clock.Now)
	awaitRun(t, func() map[string]any {
		var r map[string]any
		_, body, _ := b.get(run[1])
		_ = json.Unmarshal([]byte(body), &r)
		return r
	})
	per := b.page("/console/settlement/" + month)
	if !strings.Contains(per, `id="period-status">closed<`) || !strings.Contains(per, `id="heatmap"`) {
		t.Fatalf("closed period page lacks status or heatmap:\n%s", per)
	}
	id := regexp.MustCompile(`id="statement-([0-9]+)"`).FindStringSubmatch(per)
	if id == nil {
		t.Fatalf("no statement listed:\n%s", per)
	}
	stPage := b.page("/console/statements/" + id[1])
	if !strings.Contains(stPage, `id="statement-approve"`) {
		t.Fatal("draft statement has no approve button")
	}
	// One summary line (4,000 points issued), the transactions behind it a click away.
	link := regexp.MustCompile(`href="([^"]+)" id="summary-0-transactions"`).FindStringSubmatch(stPage)
	if link == nil || !strings.Contains(stPage, "4,000") || strings.Contains(stPage, `id="summary-1"`) {
		t.Fatalf("statement page: want one summary line of 4,000 points with its transactions linked:\n%s", stPage)
	}
	lines := b.page(html.UnescapeString(link[1]))
	if !strings.Contains(lines, `id="line-transactions"`) || !strings.Contains(lines, "4,000") || !strings.Contains(lines, `id="transactions-csv"`) {
		t.Fatalf("transactions page: want the earn of 4,000 points and a CSV link:\n%s", lines)
	}
	if st, body, h := b.get(html.UnescapeString(link[1]) + "&format=csv"); st != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") ||
		!strings.Contains(body, ",earn,") {
		t.Fatalf("transactions CSV = %d %q", st, body)
	}
	st, body, h := b.get("/console/statements/" + id[1] + "/file/csv")
	if st != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "attachment") || len(body) == 0 {
		t.Fatalf("CSV download = %d %q %q", st, h.Get("Content-Type"), h.Get("Content-Disposition"))
	}
	if st, body, _ := b.get("/console/statements/" + id[1] + "/file/pdf"); st != http.StatusOK || !strings.HasPrefix(body, "%PDF") {
		t.Fatalf("PDF download = %d, want a PDF", st)
	}
	// Four eyes: the finance user who closed the period is refused; a
	// second one approves.
	if st, _, _ := b.post("/console/statements/"+id[1]+"/approve", url.Values{"csrf": {csrfOf(t, stPage)}}); st != http.StatusSeeOther {
		t.Fatalf("approve = %d", st)
	}
	if body := b.page("/console/statements/" + id[1]); !strings.Contains(body, `status-draft">draft<`) || !strings.Contains(body, "Another finance user must approve this statement") {
		t.Fatal("the closer's approval was not refused with the reason")
	}
	e.staffUser("fin2@hub.test", access.RoleFinance)
	b2 := e.browser()
	b2.loginConsole("fin2@hub.test")
	stPage = b2.page("/console/statements/" + id[1])
	if st, _, _ := b2.post("/console/statements/"+id[1]+"/approve", url.Values{"csrf": {csrfOf(t, stPage)}}); st != http.StatusSeeOther {
		t.Fatalf("approve = %d", st)
	}
	body = b2.page("/console/statements/" + id[1])
	if !strings.Contains(body, `status-approved">approved<`) || !strings.Contains(body, `id="statement-invoice-pdf"`) ||
		!strings.Contains(body, "approved</strong> by staff:fin2@hub.test") {
		t.Fatalf("statement is not approved with its invoice and history:\n%s", body)
	}
	if st, pdf, _ := b2.get("/console/statements/" + id[1] + "/invoice"); st != http.StatusOK || !strings.HasPrefix(pdf, "%PDF") {
		t.Fatalf("invoice download = %d", st)
	}
	// The payment form: a refusal keeps what was typed and names the field.
	st, refused, _ := b2.post("/console/statements/"+id[1]+"/payment", url.Values{"csrf": {csrfOf(t, body)}, "currency": {"EUR"},
		"amount": {"12.345"}, "value_date": {"2026-01-05"}, "reference": {"SEPA-9"}, "key": {"k1"}})
	if st != http.StatusBadRequest || !strings.Contains(refused, `id="p-amount-err"`) || !strings.Contains(refused, `value="SEPA-9"`) {
		t.Fatalf("refused payment = %d; want 400 with the amount's message and the reference kept:\n%s", st, refused)
	}
	open := regexp.MustCompile(`id="p-amount" name="amount"[^>]*value="([0-9.]+)"`).FindStringSubmatch(body)
	if open == nil {
		t.Fatalf("payment form without the open balance:\n%s", body)
	}
	recv := b2.page("/console/receivables")
	if !strings.Contains(recv, `id="balance-`+itoa(air.ID)+`-receivable"`) || !strings.Contains(recv, `id="open-`+id[1]+`"`) {
		t.Fatalf("receivables page lacks the partner's balance:\n%s", recv)
	}
	st, refused, _ = b2.post("/console/nettings", url.Values{"csrf": {csrfOf(t, recv)}, "receivable": {id[1]}, "payable": {"x"},
		"value_date": {"2026-01-05"}, "currency": {"EUR"}, "key": {"n1"}})
	if st != http.StatusBadRequest || !strings.Contains(refused, `id="n-payable-err"`) || !strings.Contains(refused, `value="`+id[1]+`"`) {
		t.Fatalf("refused netting = %d; want 400 naming the payable statement:\n%s", st, refused)
	}
	if st, _, _ := b2.post("/console/statements/"+id[1]+"/payment", url.Values{"csrf": {csrfOf(t, body)}, "currency": {"EUR"},
		"amount": {open[1]}, "value_date": {"2026-01-05"}, "reference": {"SEPA-10"}, "key": {"k2"}}); st != http.StatusSeeOther {
		t.Fatalf("payment = %d", st)
	}
	if st, _, _ := b2.post("/console/statements/"+id[1]+"/send", url.Values{"csrf": {csrfOf(t, body)}}); st != http.StatusSeeOther {
		t.Fatalf("send = %d", st)
	}
	if body := b2.page("/console/statements/" + id[1]); !strings.Contains(body, `status-paid">paid<`) || !strings.Contains(body, `id="payment-0"`) {
		t.Fatalf("statement paid in full is not paid once sent:\n%s", body)
	}
	audit(t, e.db)
}

func TestConsoleJobsOverRealQueue(t *testing.T) {
	t.Parallel()
	jobs, in, info := failedTaskQueue(t)
	e := newUIEnv(t, jobs)
	e.staffUser("admin@hub.test", access.RoleAdmin)
	b := e.browser()
	b.loginConsole("admin@hub.test")
	body := b.page("/console/jobs")
	if !strings.Contains(body, `id="queue-low"`) || !strings.Contains(body, `id="retry-`+info.ID+`"`) {
		t.Fatalf("jobs page lacks the queue or the failed task:\n%s", body)
	}
	if st, _, _ := b.post("/console/jobs/retry", url.Values{"csrf": {csrfOf(t, body)}, "queue": {"low"}, "task_id": {info.ID}}); st != http.StatusSeeOther {
		t.Fatalf("retry = %d", st)
	}
	ti, err := in.GetTaskInfo("low", info.ID)
	if err != nil || ti.State != asynq.TaskStatePending {
		t.Fatalf("task after retry = %v (%v), want pending", ti, err)
	}
	if body := b.page("/console/jobs"); !strings.Contains(body, "No failed tasks.") {
		t.Fatal("the retried task is still listed as failed")
	}
}
