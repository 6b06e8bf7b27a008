package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/apitest"
	"github.com/coalitionhub/hub/internal/mailcatcher"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/web"
)

// TestBrowserMemberClaimsAndPays is the whole way of a member a partner
// enrolled, with nothing but the portal and the mail catcher: the partner
// enrols the member (POST /v1/members) and credits points; the member claims
// the account from /portal, reads the mail in the catcher (over real SMTP,
// sent by the hub's worker through the outbox), sets a password, signs in,
// sets a PIN and gets a redemption code; the partner burns with that code,
// and with the PIN, through the API. Then the member resets the password by
// mail, and a person without a card joins. Every new page is checked at
// 1280 px and at 375 px (nothing scrolls sideways) and photographed.
func TestBrowserMemberClaimsAndPays(t *testing.T) {
	t.Parallel()
	exe := chromiumPath(t)
	db, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	mc, err := mailcatcher.Listen("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Close() })
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, "HUB_SMTP_URL=" + mc.SMTPURL(),
		"HUB_LOG_LEVEL=warn"}, "all")
	spec, err := web.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	v, err := apitest.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	httpc := &http.Client{Timeout: 2 * time.Minute, Transport: &apitest.Transport{T: t, V: v}}
	ctx := context.Background()

	// The operator sets up a partner with an API client (as in the quickstart).
	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	ps := partners.NewService(db, nil)
	acc, err := access.NewService(db, ps, access.Options{Issuer: hub.URL, SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.CreateStaff(ctx, "ops@coalition.example", "correct horse battery", access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	op := &apiClient{t: t, base: hub.URL, http: httpc}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	op.must(200, "POST", "/v1/admin/login", map[string]string{"email": "ops@coalition.example", "password": "correct horse battery"}).decode(t, &login)
	op.token = login.AccessToken
	var partner struct {
		ID int64 `json:"id"`
	}
	op.must(201, "POST", "/v1/admin/partners", map[string]any{"name": "Harbour Hotels", "sector": "hotel",
		"settlement_currency": "EUR", "time_zone": "Europe/Lisbon"}).decode(t, &partner)
	op.must(200, "POST", fmt.Sprintf("/v1/admin/partners/%d/status", partner.ID), map[string]any{"status": "active"})
	op.must(201, "POST", fmt.Sprintf("/v1/admin/partners/%d/contracts", partner.ID), map[string]any{
		"effective_from": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "roles": []string{"earn", "burn"},
		"issue_price": "0.0075", "redemption_rate": "0.006", "billing": "postpaid"})
	op.must(201, "POST", fmt.Sprintf("/v1/admin/partners/%d/earn-rules", partner.ID), map[string]any{
		"definition": map[string]any{"description": "1 point per EUR",
			"earn": []map[string]any{{"kind": "per_currency_unit", "rate": "1", "currency": "EUR", "per_minor": 100}}}})
	var client struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
	}
	scopes := []string{"members:read", "members:write", "points:earn", "points:burn"}
	op.must(201, "POST", fmt.Sprintf("/v1/admin/partners/%d/clients", partner.ID), map[string]any{"name": "front desk",
		"scopes": scopes}).decode(t, &client)
	cc := clientcredentials.Config{ClientID: client.ClientID, ClientSecret: client.Secret, TokenURL: hub.URL + "/oauth/token",
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, httpc))
	if err != nil {
		t.Fatal(err)
	}
	p := &apiClient{t: t, base: hub.URL, http: httpc, token: tok.AccessToken}

	// The partner enrols a guest at the front desk and credits a stay.
	const email = "rosa.lima@example.com"
	var m struct {
		ID         int64  `json:"id"`
		CardNumber string `json:"card_number"`
	}
	p.must(201, "POST", "/v1/members", map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "HH-5501"},
		"profile": map[string]string{"given_name": "Rosa", "family_name": "Lima", "email": email}}).decode(t, &m)
	p.must(201, "POST", "/v1/earn", map[string]any{"member_id": m.ID, "amount": map[string]any{"minor": 84000, "currency": "EUR"},
		"external_ref": "folio-5501"}, "Idempotency-Key", "folio-5501")

	b := newBrowser(t, exe, hub.URL)
	inbox := &catcherInbox{t: t, base: mc.WebURL}

	// Claim from /portal with the card number.
	b.run(t, "open the portal", chromedp.Navigate(b.url("/portal")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.shots2(t, "portal-login")
	b.run(t, "go to claim", chromedp.Click(chromedp.CSS("#claim-link")), chromedp.WaitVisible(chromedp.CSS("#claim-form")))
	b.assertCleanPage(t, "/portal/claim")
	b.shots2(t, "portal-claim")
	b.run(t, "claim with the card number",
		chromedp.SendKeys(chromedp.CSS("#claim-card"), m.CardNumber),
		chromedp.Click(chromedp.CSS("#claim-submit")),
		chromedp.WaitVisible(chromedp.CSS("#sent")))
	b.assertCleanPage(t, "claim sent")
	b.shots2(t, "portal-sent")

	claim := inbox.next(email)
	if claim.Subject != "Claim your Coalition Rewards account" || len(claim.Links) != 1 {
		t.Fatalf("claim mail: %q links %v", claim.Subject, claim.Links)
	}
	b.run(t, "open the emailed link", chromedp.Navigate(claim.Links[0]), chromedp.WaitVisible(chromedp.CSS("#verify-form")))
	b.expectText(t, "#verify-email", email)
	b.assertCleanPage(t, "/portal/verify")
	b.shots2(t, "portal-verify")
	const password = "rosa's harbour passphrase"
	b.run(t, "choose a password",
		chromedp.SendKeys(chromedp.CSS("#verify-password"), password),
		chromedp.SendKeys(chromedp.CSS("#verify-password-again"), password),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Your password is set")
	b.run(t, "sign in", chromedp.SendKeys(chromedp.CSS("#password"), password), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#balance-available")))
	b.expectText(t, "#balance-available", "840")

	// PIN and a redemption code.
	b.run(t, "pay with points", chromedp.Click(chromedp.CSS("#nav-redeem")), chromedp.WaitVisible(chromedp.CSS("#pin-form")))
	b.expectContains(t, "#pin-status", "no PIN yet")
	b.run(t, "set the PIN",
		chromedp.SendKeys(chromedp.CSS("#pin"), "4821"),
		chromedp.SendKeys(chromedp.CSS("#pin-again"), "4821"),
		chromedp.Click(chromedp.CSS("#pin-save")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#pin-status", "Your PIN was set")
	b.run(t, "get a code", chromedp.Click(chromedp.CSS("#redeem-code")), chromedp.WaitVisible(chromedp.CSS("#redemption-code")))
	code := b.text(t, "#redemption-code")
	b.expectContains(t, "#code-use", "one payment with points")
	b.run(t, "the countdown runs", waitText("#code-countdown", func(s string) bool { return len(s) >= 4 && s[1] == ':' }))
	b.assertCleanPage(t, "/portal/redeem (code)")
	b.shots2(t, "portal-redeem")

	var burn struct {
		Status         string `json:"status"`
		CapturedPoints int64  `json:"captured_points"`
	}
	p.must(201, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 300, "redemption_code": code},
		"Idempotency-Key", "till-code").decode(t, &burn)
	if burn.Status != "captured" || burn.CapturedPoints != 300 {
		t.Fatalf("burn with the portal's code: %+v", burn)
	}
	p.must(201, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 40, "pin": "4821"},
		"Idempotency-Key", "till-pin").decode(t, &burn)
	b.run(t, "home shows the spend", chromedp.Click(chromedp.CSS("#nav-home")), chromedp.WaitVisible(chromedp.CSS("#balance-available")))
	b.expectText(t, "#balance-available", "500")

	// Sessions and sign out everywhere (privacy and security page).
	b.run(t, "privacy page", chromedp.Click(chromedp.CSS("#nav-consent")), chromedp.WaitVisible(chromedp.CSS("#sessions")))
	b.run(t, "this session listed", chromedp.WaitVisible(chromedp.CSS("#session-current")))
	b.assertCleanPage(t, "/portal/consent")
	b.shots2(t, "portal-security")
	b.run(t, "sign out everywhere", chromedp.Click(chromedp.CSS("#logout-everywhere")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.expectContains(t, "#flash", "signed out everywhere")

	// Password reset by mail.
	b.run(t, "forgot password", chromedp.Click(chromedp.CSS("#reset-link")), chromedp.WaitVisible(chromedp.CSS("#reset-form")))
	b.assertCleanPage(t, "/portal/reset")
	b.shots2(t, "portal-reset")
	b.run(t, "ask for a reset", chromedp.SendKeys(chromedp.CSS("#reset-email"), email), chromedp.Click(chromedp.CSS("#reset-submit")),
		chromedp.WaitVisible(chromedp.CSS("#sent")))
	reset := inbox.next(email)
	if reset.Subject != "Reset your Coalition Rewards password" {
		t.Fatalf("reset mail: %q", reset.Subject)
	}
	const newPassword = "rosa's second passphrase"
	b.run(t, "choose a new password", chromedp.Navigate(reset.Links[0]), chromedp.WaitVisible(chromedp.CSS("#verify-form")),
		chromedp.SendKeys(chromedp.CSS("#verify-password"), newPassword),
		chromedp.SendKeys(chromedp.CSS("#verify-password-again"), newPassword),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	// A used link's page answers 410 Gone, which Chromium logs as a failed
	// load: check the console up to here, then forget that one line.
	b.assertNoConsoleErrors(t)
	b.run(t, "the used link is dead", chromedp.Navigate(reset.Links[0]), chromedp.WaitVisible(chromedp.CSS("#new-reset")))
	b.shots2(t, "portal-link-used")
	b.forgetConsole(t, "status of 410")
	member := &apiClient{t: t, base: hub.URL, http: httpc}
	member.must(401, "POST", "/v1/me/login", map[string]string{"email": email, "password": password})
	member.must(200, "POST", "/v1/me/login", map[string]string{"email": email, "password": newPassword})

	// A person without a card joins.
	b.run(t, "join", chromedp.Navigate(b.url("/portal/signup")), chromedp.WaitVisible(chromedp.CSS("#signup-form")))
	b.assertCleanPage(t, "/portal/signup")
	b.shots2(t, "portal-signup")
	b.run(t, "sign up", chromedp.SendKeys(chromedp.CSS("#signup-email"), "joao@example.com"),
		chromedp.SendKeys(chromedp.CSS("#given-name"), "João"),
		chromedp.Click(chromedp.CSS("#signup-submit")), chromedp.WaitVisible(chromedp.CSS("#sent")))
	welcome := inbox.next("joao@example.com")
	b.run(t, "confirm and choose a password", chromedp.Navigate(welcome.Links[0]), chromedp.WaitVisible(chromedp.CSS("#verify-form")),
		chromedp.SendKeys(chromedp.CSS("#verify-password"), "joão's first passphrase"),
		chromedp.SendKeys(chromedp.CSS("#verify-password-again"), "joão's first passphrase"),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Your card number is 7301")
	b.run(t, "sign in as the new member", chromedp.SendKeys(chromedp.CSS("#password"), "joão's first passphrase"),
		chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS("#balance-available")))
	b.expectText(t, "#balance-available", "0")

	// The mail catcher's own pages show what the hub sent.
	b.run(t, "the catcher's list", chromedp.Navigate(mc.WebURL+"/"), chromedp.WaitVisible(chromedp.CSS("#messages")))
	b.shots2(t, "mailcatcher")
	b.run(t, "a message in the catcher", chromedp.Navigate(fmt.Sprintf("%s/messages/%d", mc.WebURL, claim.ID)),
		chromedp.WaitVisible(chromedp.CSS("#text")))
	b.expectContains(t, "#text", "card")
	b.shots2(t, "mailcatcher-message")
	b.assertNoConsoleErrors(t)

	rep, err := ledger.Audit(ctx, db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger audit: %+v %v", rep, err)
	}
}

// catcherInbox reads the mail catcher's JSON endpoint as a test would read
// a mailbox: each next call returns the next message to an address, waiting
// for it (the endpoint holds the answer until one arrives).
type catcherInbox struct {
	t    *testing.T
	base string
	last int
}

func (in *catcherInbox) next(to string) mailcatcher.Message {
	in.t.Helper()
	q := url.Values{"to": {to}, "after": {strconv.Itoa(in.last)}, "wait": {"90s"}}
	resp, err := http.Get(in.base + "/api/messages?" + q.Encode())
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []mailcatcher.Message `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Messages) == 0 {
		in.t.Fatalf("no mail to %s within 90 s (%v)", to, err)
	}
	in.last = out.Messages[0].ID
	return out.Messages[0]
}

// forgetConsole drops the console lines logged so far that contain want,
// failing when there is none.
func (b *browserSession) forgetConsole(t *testing.T, want string) {
	t.Helper()
	b.run(t, "log the drain marker", chromedp.Evaluate[chromedp.Void](`console.info("`+drainMarker+`")`))
	<-b.drained
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.console[:0]
	found := false
	for _, line := range b.console {
		if strings.Contains(line, want) {
			found = true
			continue
		}
		kept = append(kept, line)
	}
	b.console = kept
	if !found {
		t.Errorf("the console logged no %q", want)
	}
}

// waitText waits until the element's text passes ok.
func waitText(sel string, ok func(string) bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if s, err := chromedp.Text(chromedp.CSS(sel))(ctx, t); err == nil && ok(s) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for the text of %s: %w", sel, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// shots2 photographs the page at desktop width (name.png) and at 375 px
// (name-phone.png), failing when the phone layout scrolls sideways.
func (b *browserSession) shots2(t *testing.T, name string) {
	t.Helper()
	b.screenshot(t, name)
	b.run(t, "phone width", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	defer b.run(t, "desktop width", chromedp.EmulateViewport(1280, 900))
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.scrollingElement.scrollWidth"))
	if err != nil {
		t.Fatal(err)
	}
	if w > 375 {
		t.Errorf("%s at 375 px scrolls sideways: scrollWidth %d", name, w)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("phone screenshot %s: %v", name, err)
	}
	if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
		t.Fatalf("phone screenshot %s is not a PNG: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+"-phone.png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
