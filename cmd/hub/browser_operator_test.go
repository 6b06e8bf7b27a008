package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/coalitionhub/hub/internal/apitest"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/web"
)

// TestBrowserOperatorBringsPartnerLive starts from an empty (migrated)
// database whose only account is the admin `hub staff create` made, and
// sets a new partner up in the console in headless Chromium: the partner,
// an outlet (a refused one first: the field is named and the input kept),
// a prepaid contract with an alert threshold and a second version compared
// with the first, a top-up, an earn rule checked with the live quote
// preview, and an API client. That client then gets an OAuth token and
// earns through the API: the points are those the preview showed, and the
// console shows the prepaid balance drawn down and, after the prepaid
// alerts job, the alert.
func TestBrowserOperatorBringsPartnerLive(t *testing.T) {
	t.Parallel()
	exe := chromiumPath(t)
	_, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	env := []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, "HUB_OPERATOR_TZ=UTC", "HUB_LOG_LEVEL=warn"}

	const email, password = "ops@example.com", "correct horse battery staple"
	staffCreate(t, env, email, "admin", password)
	hub := startHub(t, env, "serve")
	b := newBrowser(t, exe, hub.URL)

	b.run(t, "console sign-in",
		chromedp.Navigate(b.url("/console/login")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#nav-dashboard[aria-current="page"]`)))

	// The partner.
	b.run(t, "create the partner",
		chromedp.Click(chromedp.CSS("#nav-partners")),
		chromedp.WaitVisible(chromedp.CSS("#partner-form")),
		chromedp.SendKeys(chromedp.CSS("#p-name"), "Fuel & Go"),
		chromedp.SetValue(chromedp.CSS("#p-sector"), "fuel"),
		chromedp.Click(chromedp.CSS("#partner-create")),
		chromedp.WaitVisible(chromedp.CSS("#outlets")))
	b.expectContains(t, "#flash", "Partner Fuel & Go created")
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	partnerPath := loc[strings.Index(loc, "/console/partners/"):]
	if i := strings.IndexAny(partnerPath, "#?"); i >= 0 {
		partnerPath = partnerPath[:i]
	}
	partnerID, err := strconv.ParseInt(strings.TrimPrefix(partnerPath, "/console/partners/"), 10, 64)
	if err != nil {
		t.Fatalf("partner page %s: %v", loc, err)
	}

	// An outlet: a refused time zone keeps what was typed and names the field.
	b.run(t, "an outlet with a bad time zone",
		chromedp.Click(chromedp.CSS("#outlet-open")),
		chromedp.SendKeys(chromedp.CSS("#o-code"), "STATION-7"),
		chromedp.SendKeys(chromedp.CSS("#o-name"), "Station 7, Ring Road"),
		chromedp.SetValue(chromedp.CSS("#o-tz"), "Mars/Olympus"),
		chromedp.Click(chromedp.CSS("#outlet-create")),
		chromedp.WaitVisible(chromedp.CSS("#o-tz-err")))
	b.expectContains(t, "#o-tz-err", "IANA time zone")
	b.expectValue(t, "#o-code", "STATION-7")
	b.expectValue(t, "#o-name", "Station 7, Ring Road")
	b.forgetConsole(t, "status of 400")
	b.run(t, "the outlet with a good time zone",
		chromedp.SetValue(chromedp.CSS("#o-tz"), "Europe/Berlin"),
		chromedp.Click(chromedp.CSS("#outlet-create")),
		chromedp.WaitVisible(chromedp.CSS("#outlets-table")))
	b.expectContains(t, "#outlets-table", "STATION-7")

	// A prepaid contract with an alert below 100.00 EUR, then a second
	// version from tomorrow, compared with the first.
	b.run(t, "publish contract v1",
		chromedp.Click(chromedp.CSS("#contract-open")),
		chromedp.SetValue(chromedp.CSS("#c-billing"), "prepaid"),
		chromedp.SetValue(chromedp.CSS("#c-threshold"), "100.00"),
		chromedp.Click(chromedp.CSS("#contract-publish")),
		chromedp.WaitVisible(chromedp.CSS("#contracts-table")))
	b.expectContains(t, "#flash", "Contract published")
	tomorrow := time.Now().UTC().AddDate(0, 0, 1)
	b.run(t, "publish contract v2",
		chromedp.Click(chromedp.CSS("#contract-open")),
		chromedp.SetValue(chromedp.CSS("#c-from"), tomorrow.Format("2006-01-02")),
		chromedp.SetValue(chromedp.CSS("#c-issue"), "0.012"),
		chromedp.Click(chromedp.CSS("#contract-publish")),
		chromedp.WaitVisible(chromedp.CSS("#contract-diff")))
	b.run(t, "the diff marks the changed price", chromedp.WaitVisible(chromedp.CSS("#diff-issue_price.changed")))
	b.expectContains(t, "#contract-diff", "0.012 EUR")

	// Money in: a top-up.
	b.run(t, "top up",
		chromedp.SendKeys(chromedp.CSS("#t-amount"), "50.00"),
		chromedp.SendKeys(chromedp.CSS("#t-ref"), "wire-0001"),
		chromedp.Click(chromedp.CSS("#topup-submit")),
		waitText("#flash", func(s string) bool { return strings.Contains(s, "Top-up") }))
	b.expectText(t, "#prepaid-balance", "50.00 EUR")
	b.expectText(t, "#prepaid-threshold", "100.00 EUR")

	// The earn rule: 1 point per EUR, fuel double; the preview prices a
	// 125.50 EUR fuel purchase while the form is edited.
	b.run(t, "draft the earn rule", chromedp.WaitVisible(chromedp.CSS("#rule-form")))
	b.run(t, "describe the earn rule", chromedp.SetValue(chromedp.CSS("#r-desc"), "1 point per euro, fuel double"))
	b.run(t, "draft the earn rule",
		chromedp.SendKeys(chromedp.CSS("#r-mult"), "fuel 2"))
	b.run(t, "the sample purchase",
		chromedp.SetValue(chromedp.CSS("#q-amount"), "125.50"),
		chromedp.SetValue(chromedp.CSS("#q-category"), "fuel"),
		waitText("#quote-total", func(s string) bool { return strings.HasPrefix(s, "250 ") }))
	b.expectContains(t, "#quote-result", "250 points")
	// A draft the server refuses says so in the preview, naming the field.
	b.run(t, "a bad rate in the preview",
		chromedp.SetValue(chromedp.CSS("#r-rate"), "x"),
		waitText("#quote-result", func(s string) bool { return strings.Contains(s, "rate") }))
	b.forgetConsole(t, "status of 400")
	b.run(t, "fix the rate", chromedp.SetValue(chromedp.CSS("#r-rate"), "1"),
		waitText("#quote-total", func(s string) bool { return strings.HasPrefix(s, "250 ") }))
	b.shots2(t, "console-partner-rule")
	b.run(t, "publish the earn rule",
		chromedp.Click(chromedp.CSS("#rule-publish")),
		chromedp.WaitVisible(chromedp.CSS("#rules-table")))
	b.expectContains(t, "#flash", "Earn rule version 1 published")

	// The API client; its secret is shown once.
	b.run(t, "create the API client",
		chromedp.SendKeys(chromedp.CSS("#cl-name"), "POS production"),
		chromedp.Click(chromedp.CSS("#scope-members\\:write")),
		chromedp.Click(chromedp.CSS("#scope-points\\:earn")),
		chromedp.Click(chromedp.CSS("#client-create")),
		chromedp.WaitVisible(chromedp.CSS("#client-secret")))
	clientID, secret := b.text(t, "#client-id"), b.text(t, "#client-secret")

	// The partner's system goes live: token, a member, an earn.
	ctx := context.Background()
	spec, err := web.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	v, err := apitest.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Every API answer is checked against the OpenAPI document.
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &apitest.Transport{T: t, V: v}}
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: hub.URL + "/oauth/token",
		Scopes: []string{"members:write", "points:earn"}, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, httpc))
	if err != nil {
		t.Fatalf("token for the client created in the console: %v", err)
	}
	p := &apiClient{t: t, base: hub.URL, http: httpc, token: tok.AccessToken}
	var m struct {
		ID int64 `json:"id"`
	}
	p.must(201, "POST", "/v1/members", map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "FG-1001"},
		"profile": map[string]string{"given_name": "Ana", "family_name": "Silva", "email": "ana@example.com"}}).decode(t, &m)
	var earned struct {
		Points int64 `json:"points"`
	}
	p.must(201, "POST", "/v1/earn", map[string]any{"member_id": m.ID, "outlet": "STATION-7",
		"amount": map[string]any{"minor": 12550, "currency": "EUR"}, "lines": []map[string]any{{"category": "fuel", "amount": 12550}},
		"external_ref": "pump-3-0001"}, "Idempotency-Key", "pump-3-0001").decode(t, &earned)
	if earned.Points != 250 {
		t.Fatalf("the earn posted %d points; the console's preview showed 250", earned.Points)
	}

	// The earn shows up: the member's balance in the console, and the
	// prepaid balance drawn down by 250 points at 0.01 EUR.
	b.run(t, "the member in the console",
		chromedp.Navigate(b.url(fmt.Sprintf("/console/members/%d", m.ID))),
		waitText("main", func(s string) bool { return strings.Contains(s, "250") }))
	b.run(t, "back to the partner", chromedp.Navigate(b.url(partnerPath)), chromedp.WaitVisible(chromedp.CSS("#prepaid-balance")))
	b.expectText(t, "#prepaid-balance", "47.50 EUR")
	b.expectContains(t, "#prepaid-alert", "none")

	// The prepaid alerts job, run on demand through the admin API, tells
	// the partner once; the console shows the alert standing.
	op := &apiClient{t: t, base: hub.URL, http: httpc}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	op.must(200, "POST", "/v1/admin/login", map[string]string{"email": email, "password": password}).decode(t, &login)
	op.token = login.AccessToken
	var run struct {
		Result struct {
			Alerted []int64 `json:"alerted"`
		} `json:"result"`
	}
	op.must(200, "POST", "/v1/admin/jobs/prepaid_alerts/run", nil).decode(t, &run)
	if len(run.Result.Alerted) != 1 || run.Result.Alerted[0] != partnerID {
		t.Fatalf("prepaid alerts alerted %v, want partner %d", run.Result.Alerted, partnerID)
	}
	op.must(200, "POST", "/v1/admin/jobs/prepaid_alerts/run", nil).decode(t, &run)
	if len(run.Result.Alerted) != 0 {
		t.Fatalf("a second run alerted %v again; want one alert per crossing", run.Result.Alerted)
	}
	b.run(t, "the alert on the partner page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#prepaid-alert .warn")))
	b.assertCleanPage(t, "partner page")
	b.shots2(t, "console-partner")
	b.assertFitsWidth(t, "partner page", 768)

	operatorSetsProgrammeAndStaff(t, b)
	operatorClosesTheEarnsMonth(t, b, env, email, password)
	b.assertNoConsoleErrors(t)
}

// operatorClosesTheEarnsMonth closes, from the console, the month the
// partner's client just earned in, and finds the earn on the partner's
// statement. Periods take transactions by the time they were posted and
// close only once the month has ended, so a second hub process (`all`: the
// API and the worker that runs the close) shares the database on a clock
// moved to the second day of next month (HUB_TEST_CLOCK_SHIFT); the
// operator signs in there, starts the close and watches its progress bar
// until the period page shows the run's result.
func operatorClosesTheEarnsMonth(t *testing.T, b *browserSession, env []string, email, password string) {
	wall := time.Now().UTC()
	month := wall.Format("2006-01")
	later := time.Date(wall.Year(), wall.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 1)
	next := startHub(t, append(env, "HUB_TEST_CLOCK_SHIFT="+later.Sub(wall).String()), "all")
	b.base = next.URL
	b.run(t, "console sign-in a month later",
		chromedp.Navigate(b.url("/console/login")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#nav-dashboard[aria-current="page"]`)))
	dialogs := b.dialogs.Load()
	b.run(t, "the settlement periods", chromedp.Click(chromedp.CSS("#nav-settlement")), chromedp.WaitVisible(chromedp.CSS("#close-"+month)))
	// The close asks for confirmation (the session accepts it), starts a
	// job run and lands on the period page, whose progress bar follows the
	// run and gives way to its result when the worker is done.
	b.run(t, "close the month of the earn", chromedp.Click(chromedp.CSS("#close-"+month)), chromedp.WaitVisible(chromedp.CSS("#close-result")))
	if b.dialogs.Load() == dialogs {
		t.Errorf("closing %s asked for no confirmation", month)
	}
	b.expectText(t, "#period-status", "closed")
	b.expectContains(t, "#close-result", "1 statements")
	b.assertCleanPage(t, "/console/settlement/"+month)
	b.run(t, "the partner's statement",
		chromedp.Click(chromedp.CSS("#statements tbody a[id^=statement-]")),
		chromedp.WaitVisible(chromedp.CSS("#statement-lines")))
	b.expectContains(t, "#statement-summary", "Fuel & Go")
	// The earn's 250 points, issued under contract v1 at 0.01 EUR a point.
	b.expectContains(t, "#summary-0", "Points issued, contract v1 at 0.01 EUR/point")
	b.expectText(t, "#summary-0 td:nth-child(2)", "250")
	b.expectContains(t, "#statement-status", "draft")
	b.assertCleanPage(t, "partner statement")
	b.shots2(t, "console-statement-operator")
}

// operatorSetsProgrammeAndStaff edits the programme (policy, a tier, a
// corporate level refused once for its rate) and the staff (a finance
// account created, given another role and disabled) in the console.
func operatorSetsProgrammeAndStaff(t *testing.T, b *browserSession) {
	b.run(t, "the programme page", chromedp.Click(chromedp.CSS("#nav-programme")), chromedp.WaitVisible(chromedp.CSS("#policy-form")))
	b.run(t, "a birthday bonus",
		chromedp.SetValue(chromedp.CSS("#pol-birthday"), "150"),
		chromedp.Click(chromedp.CSS("#policy-save")),
		waitText("#flash", func(s string) bool { return strings.Contains(s, "policy saved") }))
	b.expectValue(t, "#pol-birthday", "150")
	b.run(t, "a gold tier",
		chromedp.Click(chromedp.CSS("#tier-open")),
		chromedp.SetValue(chromedp.CSS("#tier-code"), "gold"),
		chromedp.SetValue(chromedp.CSS("#tier-name"), "Gold"),
		chromedp.SetValue(chromedp.CSS("#tier-rank"), "2"),
		chromedp.SetValue(chromedp.CSS("#th-qualifying_points"), "5000"),
		chromedp.SetValue(chromedp.CSS("#tier-ents"), "late_checkout=16:00\nlounge"),
		chromedp.Click(chromedp.CSS("#tier-save")),
		chromedp.WaitVisible(chromedp.CSS("#tier-gold")))
	b.expectContains(t, "#tier-gold", "late checkout: 16:00")
	b.run(t, "a corporate level with a rate above 1",
		chromedp.Click(chromedp.CSS("#level-open")),
		chromedp.SetValue(chromedp.CSS("#lvl-code"), "corporate_plus"),
		chromedp.SetValue(chromedp.CSS("#lvl-name"), "Corporate Plus"),
		chromedp.SetValue(chromedp.CSS("#lvl-min"), "25000"),
		chromedp.SetValue(chromedp.CSS("#lvl-rate"), "1.5"),
		chromedp.Click(chromedp.CSS("#level-save")),
		chromedp.WaitVisible(chromedp.CSS("#lvl-rate-err")))
	b.expectContains(t, "#lvl-rate-err", "at most 1")
	b.expectValue(t, "#lvl-name", "Corporate Plus")
	b.forgetConsole(t, "status of 400")
	b.run(t, "the level with a good rate",
		chromedp.SetValue(chromedp.CSS("#lvl-rate"), "0.05"),
		chromedp.Click(chromedp.CSS("#level-save")),
		chromedp.WaitVisible(chromedp.CSS("#levels-table")))
	b.expectContains(t, "#levels-table", "25,000.00 EUR")
	b.assertCleanPage(t, "programme page")
	b.shots2(t, "console-programme")
	b.assertFitsWidth(t, "programme page", 768)

	b.run(t, "the staff page", chromedp.Click(chromedp.CSS("#nav-staff")), chromedp.WaitVisible(chromedp.CSS("#staff-form")))
	b.run(t, "a finance account",
		chromedp.SetValue(chromedp.CSS("#st-email"), "finance@example.com"),
		chromedp.SetValue(chromedp.CSS("#st-password"), "ledgers and more ledgers"),
		chromedp.SetValue(chromedp.CSS("#st-role"), "finance"),
		chromedp.Click(chromedp.CSS("#staff-create")),
		waitText("#flash", func(s string) bool { return strings.Contains(s, "finance@example.com created as finance") }))
	id := b.text(t, "#staff-table tbody tr:last-child td:nth-child(3)")
	if id != "active" {
		t.Fatalf("the new account's status shows %q, want active", id)
	}
	row, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS("#staff-table tbody tr:last-child"), "id"))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.TrimPrefix(row.Value, "staff-")
	b.run(t, "make it support",
		chromedp.SetValue(chromedp.CSS("#role-"+n), "support"),
		chromedp.Click(chromedp.CSS("#role-save-"+n)),
		waitText("#flash", func(s string) bool { return strings.Contains(s, "is now support") }))
	b.run(t, "disable it",
		chromedp.Click(chromedp.CSS("#disable-"+n)),
		waitText("#flash", func(s string) bool { return strings.Contains(s, "is now disabled") }))
	b.expectText(t, "#staff-status-"+n, "disabled")
	b.assertCleanPage(t, "staff page")
	b.shots2(t, "console-staff")
	b.assertFitsWidth(t, "staff page", 768)
}

// assertFitsWidth fails when the page scrolls sideways at width px (a
// tablet held upright at 768).
func (b *browserSession) assertFitsWidth(t *testing.T, name string, width int64) {
	t.Helper()
	b.run(t, "narrow width", chromedp.EmulateViewport(width, 1024))
	defer b.run(t, "desktop width", chromedp.EmulateViewport(1280, 900))
	w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64]("document.scrollingElement.scrollWidth"))
	if err != nil {
		t.Fatal(err)
	}
	if w > width {
		t.Errorf("%s at %d px scrolls sideways: scrollWidth %d", name, width, w)
	}
}

// staffCreate runs `hub staff create` with the password on standard input,
// as an operator bootstraps the first admin of an empty database.
func staffCreate(t *testing.T, env []string, email, role, password string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "staff", "create", "--email", email, "--role", role)
	cmd.Env = append(append(os.Environ(), "HUB_RUN_AS_HUB=1", "HUB_SECRETS_KEY="+testSecretsKey), env...)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hub staff create: %v\n%s", err, out)
	}
}
