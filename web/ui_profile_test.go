package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

// TestPortalProfileEdits edits the profile from the portal: bad input is a
// 400 page naming the field, keeping what was typed and writing nothing (no
// profile change, no consent event); a good edit saves the profile and
// records a change of marketing consent in the trail, once.
func TestPortalProfileEdits(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	hotel := e.partner("Grand Hotels", partners.SectorHotel)
	m := e.member("rui@example.test", hotel.ID, 0)
	if _, err := e.mem.AddIdentifier(e.ctx, m.ID, members.Identifier{Type: members.IdentifierPartnerRef, Value: "GH-7781", PartnerID: hotel.ID}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.loginPortal("rui@example.test")
	page := b.page("/portal/profile")
	for _, want := range []string{m.CardNumber, `id="card-qr"`, "GH-7781", "Grand Hotels", `id="consent-trail-empty"`} {
		if !strings.Contains(page, want) {
			t.Errorf("profile page lacks %q", want)
		}
	}
	csrf := csrfOf(t, page)
	before, err := e.mem.Get(e.ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	good := url.Values{"csrf": {csrf}, "given_name": {"Rui"}, "family_name": {"Costa"}, "phone": {"+351 912 345 678"},
		"locale": {"pt"}, "marketing": {"yes"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	for _, c := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"malformed phone", with("phone", "call me maybe"), "phone"},
		{"unknown locale", with("locale", "Klingon!"), "locale"},
		{"long name", with("given_name", strings.Repeat("R", 101)), "given name"},
		{"control character", with("family_name", "Costa\x07"), "family name"},
	} {
		st, body, _ := b.post("/portal/profile", c.form)
		if st != http.StatusBadRequest || !strings.Contains(body, `id="error"`) || !strings.Contains(body, c.field) {
			t.Errorf("%s: status %d, want 400 with an error naming %q", c.name, st, c.field)
		}
		if strings.Contains(c.form.Get("phone"), "maybe") && !strings.Contains(body, `value="call me maybe"`) {
			t.Errorf("%s: the page does not keep the typed phone", c.name)
		}
		after, err := e.mem.Get(e.ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Profile != before.Profile || after.MarketingConsent {
			t.Errorf("%s wrote: profile %+v consent %v, want %+v and no consent", c.name, after.Profile, after.MarketingConsent, before.Profile)
		}
		if trail, _ := e.mem.ConsentHistory(e.ctx, m.ID); len(trail) != 0 {
			t.Errorf("%s recorded consent events %+v", c.name, trail)
		}
	}

	for i := 0; i < 2; i++ { // the second save changes nothing and records no second consent event
		if st, _, h := b.post("/portal/profile", good); st != http.StatusSeeOther || h.Get("Location") != "/portal/profile" {
			t.Fatalf("save %d: %d → %q, want 303 → /portal/profile", i, st, h.Get("Location"))
		}
	}
	after, err := e.mem.Get(e.ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := members.Profile{GivenName: "Rui", FamilyName: "Costa", Email: before.Profile.Email, Phone: "+351912345678", Locale: "pt"}
	if after.Profile != want || !after.MarketingConsent {
		t.Errorf("after save: profile %+v consent %v, want %+v and consent", after.Profile, after.MarketingConsent, want)
	}
	trail, err := e.mem.ConsentHistory(e.ctx, m.ID)
	if err != nil || len(trail) != 1 || !trail[0].Granted || trail[0].Source != "portal profile" {
		t.Fatalf("consent trail = %+v (%v), want one grant from the portal profile", trail, err)
	}
	page = b.page("/portal/profile")
	for _, want := range []string{"Your profile is saved", `id="consent-trail"`, "Agreed", `value="&#43;351912345678"`, `<option value="pt" selected>`} {
		if !strings.Contains(page, want) {
			t.Errorf("profile page after save lacks %q", want)
		}
	}
	// Withdrawing is one more event, newest first.
	if st, _, _ := b.post("/portal/profile", with("marketing", "")); st != http.StatusSeeOther {
		t.Fatalf("withdraw consent: %d", st)
	}
	if trail, _ := e.mem.ConsentHistory(e.ctx, m.ID); len(trail) != 2 || trail[0].Granted || !trail[1].Granted {
		t.Errorf("consent trail after withdrawal = %+v, want a withdrawal after the grant", trail)
	}
}

// TestPortalHomeCardExpiringAndRecent: home shows the card number with its
// QR code, the points expiring within 30 days (and not those later), and
// the latest transactions.
func TestPortalHomeCardExpiringAndRecent(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	hotel := e.partner("Grand Hotels", partners.SectorHotel)
	m := e.member("lia@example.test", hotel.ID, 0)
	now := e.clock.Now()
	for i, c := range []struct {
		pts  int64
		days int
	}{{1234, 10}, {5678, 60}} {
		exp := now.AddDate(0, 0, c.days)
		if _, err := e.led.Earn(e.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: fmt.Sprint("lot-", i)},
			MemberID: m.ID, PartnerID: hotel.ID, Points: ledger.Points(c.pts), OccurredAt: now, ExpiresAt: &exp}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.loginPortal("lia@example.test")
	home := b.page("/portal")
	soon := now.AddDate(0, 0, 10).Format("2 Jan 2006")
	for _, want := range []string{m.CardNumber, `id="card-qr"`, `id="expiring"`, "1,234 points", soon, `id="recent"`, "&#43;5,678", "&#43;1,234"} {
		if !strings.Contains(home, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	if strings.Contains(home, "5,678 points") {
		t.Errorf("home lists the points expiring in 60 days as expiring soon")
	}
}

// TestPortalTransferShowsRulesAndKeepsInput: the transfer form shows the
// programme's rules before submit; a refused transfer shows the form again
// with the member's input and the same idempotency key, and moves nothing.
func TestPortalTransferShowsRulesAndKeepsInput(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	hotel := e.partner("Grand Hotels", partners.SectorHotel)
	m := e.member("ines@example.test", hotel.ID, 900)
	b := e.browser()
	b.loginPortal("ines@example.test")
	page := b.page("/portal/transfers")
	for _, want := range []string{`id="transfer-rules"`, `id="rule-min"`, `id="rule-fee"`, `id="transfer-available">900<`} {
		if !strings.Contains(page, want) {
			t.Errorf("transfers page lacks %q", want)
		}
	}
	key := regexpFind(t, page, `name="key" value="([^"]+)"`)
	for _, c := range []struct{ card, points string }{{"7301000000000000", "12abc"}, {"7301000000000000", "500"}} {
		st, body, _ := b.post("/portal/transfers", url.Values{"csrf": {csrfOf(t, page)}, "key": {key}, "to_card": {c.card}, "points": {c.points}})
		if st < 400 || st >= 500 || !strings.Contains(body, `id="error"`) {
			t.Errorf("transfer of %q: status %d, want a 4xx page with the error", c.points, st)
		}
		for _, want := range []string{`value="` + c.card + `"`, `value="` + c.points + `"`, `value="` + key + `"`, `id="transfer-rules"`} {
			if !strings.Contains(body, want) {
				t.Errorf("transfer of %q: the page lacks %q", c.points, want)
			}
		}
	}
	if bal, err := e.led.Balance(e.ctx, m.ID); err != nil || bal.Available != 900 {
		t.Errorf("balance after refused transfers = %+v (%v), want 900 available", bal, err)
	}
}

func regexpFind(t *testing.T, body, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the page", re)
	}
	return m[1]
}

// TestMeUpdateProfile: PATCH /v1/me changes the fields it names and keeps
// the others; bad input is a 400 naming the field and writes nothing; a
// change of consent is one consent event.
func TestMeUpdateProfile(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	m, _, err := e.mem.Enrol(context.Background(), members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: "noa@example.test"},
		Profile: members.Profile{GivenName: "Noa", FamilyName: "Levi", Email: "noa@example.test"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mem.SetPassword(context.Background(), m.ID, "noa's first passphrase"); err != nil {
		t.Fatal(err)
	}
	tok := e.signIn("noa@example.test", "noa's first passphrase")
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"profile": map[string]any{"phone": "call me"}}, "profile.phone"},
		{map[string]any{"profile": map[string]any{"locale": "Klingon!"}, "marketing_consent": true}, "profile.locale"},
		{map[string]any{"profile": map[string]any{"given_name": strings.Repeat("N", 101)}}, "profile.given_name"},
		{map[string]any{"profile": map[string]any{"email": "new@example.test"}}, "profile.email"},
		{map[string]any{"marketing_consent": "yes"}, "marketing_consent"},
	} {
		e.expectField(http.StatusBadRequest, "invalid_request", c.field, http.MethodPatch, "/v1/me", tok, c.body)
	}
	after, err := e.mem.Get(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Profile != m.Profile || after.MarketingConsent {
		t.Fatalf("bad input wrote: %+v consent %v", after.Profile, after.MarketingConsent)
	}
	if trail, _ := e.mem.ConsentHistory(context.Background(), m.ID); len(trail) != 0 {
		t.Fatalf("bad input recorded consent: %+v", trail)
	}

	out := e.expect(http.StatusOK, "", http.MethodPatch, "/v1/me", tok, map[string]any{
		"profile": map[string]any{"phone": "+972 50 123 4567", "locale": "fr"}, "marketing_consent": true})
	prof, _ := out["profile"].(map[string]any)
	if prof["phone"] != "+972501234567" || prof["locale"] != "fr" || prof["given_name"] != "Noa" || out["marketing_consent"] != true {
		t.Fatalf("PATCH /v1/me answered %v", out)
	}
	e.expect(http.StatusOK, "", http.MethodPatch, "/v1/me", tok, map[string]any{"marketing_consent": true})
	if trail, err := e.mem.ConsentHistory(context.Background(), m.ID); err != nil || len(trail) != 1 || trail[0].Source != "member api" {
		t.Fatalf("consent trail = %+v (%v), want one grant from the member API", trail, err)
	}
}
