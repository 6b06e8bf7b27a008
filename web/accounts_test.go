package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/mailcatcher"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

// accountsEnv is a contract-checked hub with the member base, and a real
// SMTP catcher that the mail the hub queues is sent to (as the worker's
// mail:send task does).
type accountsEnv struct {
	*contractEnv
	mem     *members.Service
	clock   *clock.Manual // the member base's clock (link expiry)
	catcher *mailcatcher.Server
	sender  *mail.Sender
	seen    int // messages read so far
}

func newAccountsEnv(t *testing.T, tune func(*Deps)) *accountsEnv {
	t.Helper()
	clk := clock.New(time.Now().UTC().Truncate(time.Second))
	var mem *members.Service
	e := newContractEnv(t, func(d *Deps) {
		mem = members.NewService(d.DB, ledger.NewService(d.DB, clk.Now), clk.Now, members.WithPasswordCost(bcrypt.MinCost))
		d.Members, d.Ledger = mem, ledger.NewService(d.DB, clk.Now)
		d.Consent = members.NewBurnConsent(d.DB, clk.Now, members.DefaultConsentPolicy)
		if tune != nil {
			tune(d)
		}
	})
	c, err := mailcatcher.Listen("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	snd, err := mail.NewSender(e.db, mail.Config{SMTPURL: c.SMTPURL(), From: "Coalition Rewards <no-reply@rewards.test>",
		BaseURL: "http://hub.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &accountsEnv{contractEnv: e, mem: mem, clock: clk, catcher: c, sender: snd}
}

// deliver sends every queued mail to the catcher over SMTP and returns the
// messages that arrived since the last call.
func (e *accountsEnv) deliver() []mailcatcher.Message {
	e.t.Helper()
	var ids []int64
	if err := e.db.Raw(`SELECT id FROM outbound_mail WHERE sent_at IS NULL ORDER BY id`).Scan(&ids).Error; err != nil {
		e.t.Fatal(err)
	}
	for _, id := range ids {
		if err := e.sender.Send(context.Background(), id); err != nil {
			e.t.Fatalf("send mail %d: %v", id, err)
		}
	}
	all := e.catcher.Messages()
	got := all[e.seen:]
	e.seen = len(all)
	return got
}

// linkToken is the token of the one link in m.
func linkToken(t *testing.T, m mailcatcher.Message) string {
	t.Helper()
	if len(m.Links) != 1 {
		t.Fatalf("mail %q has links %v, want one", m.Subject, m.Links)
	}
	u, err := url.Parse(m.Links[0])
	if err != nil || u.Path != "/portal/verify" || u.Query().Get("token") == "" {
		t.Fatalf("link %q is not a portal verify link", m.Links[0])
	}
	return u.Query().Get("token")
}

// expectField asserts a problem of status and code that names field.
func (e *accountsEnv) expectField(status int, code, field, method, path, token string, body any) {
	e.t.Helper()
	got, out, _ := e.send(method, path, token, body)
	if got != status || out["code"] != code || !containsStr(fieldErrors(e.t, out), field) {
		e.t.Fatalf("%s %s %v: %d %v; want %d %s naming %s", method, path, body, got, out, status, code, field)
	}
}

func (e *accountsEnv) count(table string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Raw(`SELECT count(*) FROM ` + table).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *accountsEnv) signIn(email, password string) string {
	e.t.Helper()
	out := e.expect(http.StatusOK, "", http.MethodPost, "/v1/me/login", "", map[string]string{"email": email, "password": password})
	return out["access_token"].(string)
}

// A member a partner enrolled (contact email only) claims the account with
// the card number: the link goes to the email on file, sets the password,
// makes the address the sign-in email, and works once. A weak password or a
// malformed request changes nothing.
func TestMemberClaimsAccountByEmailedLink(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	m, _, err := e.mem.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierPartnerRef, Value: "HH-1", PartnerID: 7},
		Profile: members.Profile{GivenName: "Ana", Email: "ana@example.test"}, Actor: "partner:7"})
	if err != nil {
		t.Fatal(err)
	}

	// Bad input names the field and queues nothing.
	e.expectField(400, "invalid_request", "card_number", "POST", "/v1/me/claim", "", map[string]string{"card_number": "1234"})
	e.expectField(400, "invalid_request", "email", "POST", "/v1/me/claim", "", map[string]string{"email": "not-an-address"})
	e.expectField(400, "invalid_request", "card_number", "POST", "/v1/me/claim", "", map[string]string{"card_number": m.CardNumber, "email": "ana@example.test"})
	if n := e.count("outbound_mail"); n != 0 {
		t.Fatalf("%d mails queued by refused requests", n)
	}

	claimed := e.expect(202, "", "POST", "/v1/me/claim", "", map[string]string{"card_number": m.CardNumber})
	stranger, err := members.NewCardNumber()
	if err != nil {
		t.Fatal(err)
	}
	unknown := e.expect(202, "", "POST", "/v1/me/claim", "", map[string]string{"card_number": stranger})
	if claimed["message"] != unknown["message"] {
		t.Fatalf("a known and an unknown card answer differently: %v / %v", claimed, unknown)
	}
	msgs := e.deliver()
	if len(msgs) != 1 || msgs[0].To[0] != "ana@example.test" || !strings.Contains(msgs[0].Text, m.CardNumber[12:]) {
		t.Fatalf("mails after claiming a known and an unknown card: %+v; want one to ana@example.test naming the card's last digits", msgs)
	}
	token := linkToken(t, msgs[0])

	// A weak password is refused and the link still works.
	e.expectField(400, "invalid_request", "password", "POST", "/v1/me/verify", "", map[string]string{"token": token, "password": "short"})
	e.expectField(400, "invalid_request", "password", "POST", "/v1/me/verify", "", map[string]string{"token": token, "password": "1234567890"})
	e.expectField(400, "invalid_request", "token", "POST", "/v1/me/verify", "", map[string]string{"token": "forged", "password": "a long enough phrase"})
	if n := e.count("member_credentials"); n != 0 {
		t.Fatalf("refused verifications set %d passwords", n)
	}
	out := e.expect(200, "", "POST", "/v1/me/verify", "", map[string]string{"token": token, "password": "ana's long passphrase"})
	if out["purpose"] != "claim" || out["email"] != "ana@example.test" || out["card_number"] != m.CardNumber || out["created"] != false {
		t.Fatalf("verify: %v", out)
	}
	e.expectField(410, "link_used", "token", "POST", "/v1/me/verify", "", map[string]string{"token": token, "password": "another long passphrase"})
	tok := e.signIn("ana@example.test", "ana's long passphrase")
	e.expect(200, "", "GET", "/v1/me", tok, nil)
	if n := e.count("members"); n != 1 {
		t.Fatalf("%d members after a claim, want 1", n)
	}
}

// Sign-up by email makes a member with a card when the link is used; a
// sign-up with an address already on file sends a claim link to it instead,
// and nobody is enrolled twice.
func TestSignupMakesOneMember(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	old, _, err := e.mem.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: "old@example.test"},
		Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.expectField(400, "invalid_request", "email", "POST", "/v1/me/signup", "", map[string]string{"email": "nope"})
	e.expectField(400, "invalid_request", "locale", "POST", "/v1/me/signup", "", map[string]string{"email": "x@example.test", "locale": "English"})
	if n := e.count("outbound_mail"); n != 0 {
		t.Fatalf("%d mails queued by refused sign-ups", n)
	}
	a := e.expect(202, "", "POST", "/v1/me/signup", "", map[string]any{"email": "Nia@Example.test", "given_name": "Nia", "marketing_consent": true})
	b := e.expect(202, "", "POST", "/v1/me/signup", "", map[string]any{"email": "old@example.test"})
	if a["message"] != b["message"] {
		t.Fatalf("a new and a known address answer differently: %v / %v", a, b)
	}
	msgs := e.deliver()
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want 2", len(msgs))
	}
	byTo := map[string]mailcatcher.Message{}
	for _, m := range msgs {
		byTo[m.To[0]] = m
	}
	if !strings.Contains(byTo["nia@example.test"].Subject, "Confirm your email") || !strings.Contains(byTo["old@example.test"].Subject, "already have") {
		t.Fatalf("subjects: %q / %q", byTo["nia@example.test"].Subject, byTo["old@example.test"].Subject)
	}
	if n := e.count("members"); n != 1 {
		t.Fatalf("%d members before any link is used, want 1 (a sign-up makes its member when the link is used)", n)
	}
	out := e.expect(200, "", "POST", "/v1/me/verify", "", map[string]string{"token": linkToken(t, byTo["nia@example.test"]), "password": "nia's long passphrase"})
	card, _ := out["card_number"].(string)
	if out["created"] != true || out["purpose"] != "signup" || !members.LuhnValid(card) || !strings.HasPrefix(card, members.CardPrefix) {
		t.Fatalf("sign-up verify: %v", out)
	}
	nia, err := e.mem.Get(ctx, int64(out["member_id"].(float64)))
	if err != nil || nia.Profile.GivenName != "Nia" || !nia.MarketingConsent {
		t.Fatalf("new member %+v (%v): want Nia with marketing consent", nia, err)
	}
	out = e.expect(200, "", "POST", "/v1/me/verify", "", map[string]string{"token": linkToken(t, byTo["old@example.test"]), "password": "old member's passphrase"})
	if out["created"] != false || int64(out["member_id"].(float64)) != old.ID {
		t.Fatalf("sign-up of a known address claimed %v, want member %d", out, old.ID)
	}
	if n := e.count("members"); n != 2 {
		t.Fatalf("%d members, want 2: the known address was not enrolled again", n)
	}
	e.signIn("nia@example.test", "nia's long passphrase")
	e.signIn("old@example.test", "old member's passphrase")
}

// Password reset by mail: same answer for known and unknown addresses, a
// link that expires and works once, every session ended by it; throttled
// per account (known or not) after three links; the change of password and
// the list of sessions with "sign out everywhere".
func TestPasswordResetAndSessions(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	m, _, err := e.mem.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: "lin@example.test"},
		Profile: members.Profile{GivenName: "Lin"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mem.SetPassword(ctx, m.ID, "lin's first passphrase"); err != nil {
		t.Fatal(err)
	}
	e.deliver() // the notice of the new password
	a := e.signIn("lin@example.test", "lin's first passphrase")
	b := e.signIn("lin@example.test", "lin's first passphrase")
	list := items(t, e.expect(200, "", "GET", "/v1/me/sessions", a, nil))
	if len(list) != 2 || list[0]["current"] == list[1]["current"] {
		t.Fatalf("sessions: %v; want two, one of them current", list)
	}

	e.expectField(400, "invalid_request", "email", "POST", "/v1/me/password-reset", "", map[string]string{"email": "lin@"})
	known := e.expect(202, "", "POST", "/v1/me/password-reset", "", map[string]string{"email": "LIN@example.test"})
	unknown := e.expect(202, "", "POST", "/v1/me/password-reset", "", map[string]string{"email": "nobody@example.test"})
	if known["message"] != unknown["message"] {
		t.Fatalf("answers differ: %v / %v", known, unknown)
	}
	msgs := e.deliver()
	if len(msgs) != 1 || msgs[0].To[0] != "lin@example.test" {
		t.Fatalf("mails after a reset of a known and an unknown address: %+v", msgs)
	}
	expired := linkToken(t, msgs[0])
	e.clock.Add(members.ResetLinkTTL + time.Minute)
	e.expectField(410, "link_expired", "token", "POST", "/v1/me/verify", "", map[string]string{"token": expired, "password": "lin's second passphrase"})

	e.expect(202, "", "POST", "/v1/me/password-reset", "", map[string]string{"email": "lin@example.test"})
	fresh := linkToken(t, e.deliver()[0])
	e.expect(200, "", "POST", "/v1/me/verify", "", map[string]string{"token": fresh, "password": "lin's second passphrase"})
	e.expectField(410, "link_used", "token", "POST", "/v1/me/verify", "", map[string]string{"token": fresh, "password": "lin's third passphrase"})
	for _, tok := range []string{a, b} {
		e.expect(401, "invalid_token", "GET", "/v1/me", tok, nil)
	}
	e.expect(401, "invalid_credentials", "POST", "/v1/me/login", "", map[string]string{"email": "lin@example.test", "password": "lin's first passphrase"})
	c := e.signIn("lin@example.test", "lin's second passphrase")

	// Three links at once per account, then one every ten minutes, for an
	// address on file and one that is not alike (the expired link was asked
	// for more than an hour ago and no longer counts).
	e.expect(202, "", "POST", "/v1/me/password-reset", "", map[string]string{"email": "lin@example.test"})
	e.expect(202, "", "POST", "/v1/me/password-reset", "", map[string]string{"email": "lin@example.test"})
	for i := 0; i < 3; i++ {
		e.expect(202, "", "POST", "/v1/me/password-reset", "", map[string]string{"email": "nobody@example.test"})
	}
	for _, addr := range []string{"lin@example.test", "nobody@example.test"} {
		got, out, h := e.send("POST", "/v1/me/password-reset", "", map[string]string{"email": addr})
		if got != 429 || out["code"] != "mail_throttled" || h.Get("Retry-After") == "" {
			t.Fatalf("fourth link for %s: %d %v (Retry-After %q); want 429 mail_throttled", addr, got, out, h.Get("Retry-After"))
		}
	}

	// Changing the password ends the other sessions; sign out everywhere ends all.
	d := e.signIn("lin@example.test", "lin's second passphrase")
	e.expectField(400, "invalid_request", "new_password", "PUT", "/v1/me/password", c, map[string]string{"current_password": "lin's second passphrase", "new_password": "qwertyuiop"})
	e.expect(204, "", "PUT", "/v1/me/password", c, map[string]string{"current_password": "lin's second passphrase", "new_password": "lin's fourth passphrase"})
	e.expect(401, "invalid_token", "GET", "/v1/me", d, nil)
	e.expect(200, "", "GET", "/v1/me", c, nil)
	d = e.signIn("lin@example.test", "lin's fourth passphrase")
	e.expect(204, "", "POST", "/v1/me/logout-all", c, nil)
	e.expect(401, "invalid_token", "GET", "/v1/me/sessions", c, nil)
	e.expect(401, "invalid_token", "GET", "/v1/me/sessions", d, nil)
}

// Requests that send mail are limited per client address too.
func TestAccountMailRequestsAreLimitedPerAddress(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, func(d *Deps) { d.LoginRate, d.LoginBurst = 0.001, 2 })
	e.expect(202, "", "POST", "/v1/me/signup", "", map[string]string{"email": "a@example.test"})
	e.expect(202, "", "POST", "/v1/me/claim", "", map[string]string{"email": "b@example.test"})
	e.expect(429, "rate_limited", "POST", "/v1/me/password-reset", "", map[string]string{"email": "c@example.test"})
}

// The portal's account pages: a forged form is refused, bad input is shown
// on the form with its status and changes nothing (the link stays usable),
// a PIN is set from the pay-with-points page, and "sign out everywhere"
// ends every session.
func TestPortalAccountPages(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	m := e.member("kim@example.test", air.ID, 100)
	b := e.browser()

	var before int64 // the notice of the member's password
	e.db.Raw(`SELECT count(*) FROM outbound_mail`).Scan(&before)
	login := b.page("/portal/login")
	for _, link := range []string{`href="/portal/reset"`, `href="/portal/claim"`, `href="/portal/signup"`} {
		if !strings.Contains(login, link) {
			t.Fatalf("sign-in page lacks %s", link)
		}
	}
	claim := b.page("/portal/claim")
	if st, _, _ := b.post("/portal/claim", url.Values{"csrf": {"forged"}, "card_number": {m.CardNumber}}); st != http.StatusForbidden {
		t.Fatalf("claim with a forged form: %d, want 403", st)
	}
	st, body, _ := b.post("/portal/claim", url.Values{"csrf": {csrfOf(t, claim)}, "card_number": {"12"}})
	if st != http.StatusBadRequest || !strings.Contains(body, `id="error"`) || !strings.Contains(body, "card number") {
		t.Fatalf("claim with a bad card: %d; want 400 with the error on the form", st)
	}
	var queued int64
	e.db.Raw(`SELECT count(*) FROM outbound_mail`).Scan(&queued)
	if queued != before {
		t.Fatalf("%d mails queued by refused forms", queued-before)
	}
	reset := b.page("/portal/reset")
	st, body, _ = b.post("/portal/reset", url.Values{"csrf": {csrfOf(t, reset)}, "email": {"kim@example.test"}})
	if st != http.StatusOK || !strings.Contains(body, `id="sent"`) {
		t.Fatalf("reset: %d", st)
	}
	var data string
	e.db.Raw(`SELECT data->>'token' FROM outbound_mail WHERE template = 'password_reset'`).Scan(&data)
	verify := b.page("/portal/verify?token=" + data)
	st, body, _ = b.post("/portal/verify", url.Values{"csrf": {csrfOf(t, verify)}, "token": {data},
		"password": {"qwertyuiop"}, "password_again": {"qwertyuiop"}})
	if st != http.StatusBadRequest || !strings.Contains(body, "too easy to guess") || !strings.Contains(body, `id="verify-form"`) {
		t.Fatalf("weak password: %d; want 400 with the form shown again", st)
	}
	st, _, h := b.post("/portal/verify", url.Values{"csrf": {csrfOf(t, verify)}, "token": {data},
		"password": {"kim's new passphrase"}, "password_again": {"kim's new passphrase"}})
	if st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/portal/login?email=kim%40example.test") {
		t.Fatalf("verify: %d → %q", st, h.Get("Location"))
	}
	if st, _, _ := b.get("/portal/verify?token=" + data); st != http.StatusGone {
		t.Fatalf("the used link's page: %d, want 410", st)
	}

	// Signed in: PIN and sign out everywhere.
	body = b.page("/portal/login")
	if st, _, _ := b.post("/portal/login", url.Values{"csrf": {csrfOf(t, body)}, "email": {"kim@example.test"}, "password": {"kim's new passphrase"}}); st != http.StatusSeeOther {
		t.Fatalf("sign in with the new password: %d", st)
	}
	redeem := b.page("/portal/redeem")
	if !strings.Contains(redeem, "no PIN yet") {
		t.Fatal("pay-with-points page does not say there is no PIN")
	}
	if st, _, h := b.post("/portal/pin", url.Values{"csrf": {csrfOf(t, redeem)}, "pin": {"1234"}, "pin_again": {"4321"}}); st != http.StatusSeeOther || h.Get("Location") != "/portal/redeem" {
		t.Fatalf("mismatched PIN: %d", st)
	}
	if at, _ := members.NewBurnConsent(e.db, e.clock.Now, members.DefaultConsentPolicy).PINSetAt(e.ctx, m.ID); at != nil {
		t.Fatal("a mismatched PIN was set")
	}
	b.post("/portal/pin", url.Values{"csrf": {csrfOf(t, redeem)}, "pin": {"2468"}, "pin_again": {"2468"}})
	if !strings.Contains(b.page("/portal/redeem"), "Your PIN was set") {
		t.Fatal("the PIN is not shown as set")
	}
	consent := b.page("/portal/consent")
	if !strings.Contains(consent, `id="session-current"`) {
		t.Fatal("privacy page does not list this session")
	}
	if st, _, h := b.post("/portal/sessions/end-all", url.Values{"csrf": {csrfOf(t, consent)}}); st != http.StatusSeeOther || h.Get("Location") != "/portal/login" {
		t.Fatalf("sign out everywhere: %d → %q", st, h.Get("Location"))
	}
	open, err := e.mem.OpenSessions(e.ctx, m.ID)
	if err != nil || len(open) != 0 {
		t.Fatalf("open sessions after signing out everywhere: %v (%v)", open, err)
	}
}
