package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/mailcatcher"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

// mailbox sends the mail a hub queued to a real SMTP catcher, as the
// worker's mail:send task does, and reads what arrived.
type mailbox struct {
	t       *testing.T
	db      *gorm.DB
	catcher *mailcatcher.Server
	sender  *mail.Sender
	seen    int
}

func newMailbox(t *testing.T, db *gorm.DB) *mailbox {
	t.Helper()
	c, err := mailcatcher.Listen("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	snd, err := mail.NewSender(db, mail.Config{SMTPURL: c.SMTPURL(), From: "Coalition Rewards <no-reply@rewards.test>",
		BaseURL: "http://hub.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &mailbox{t: t, db: db, catcher: c, sender: snd}
}

// deliver sends every queued mail and returns those that arrived since the
// last call.
func (b *mailbox) deliver() []mailcatcher.Message {
	b.t.Helper()
	var ids []int64
	if err := b.db.Raw(`SELECT id FROM outbound_mail WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY id`).Scan(&ids).Error; err != nil {
		b.t.Fatal(err)
	}
	for _, id := range ids {
		if err := b.sender.Send(context.Background(), id); err != nil {
			b.t.Fatalf("send mail %d: %v", id, err)
		}
	}
	all := b.catcher.Messages()
	got := all[b.seen:]
	b.seen = len(all)
	return got
}

// mailsTo keeps the messages to addr.
func mailsTo(msgs []mailcatcher.Message, addr string) []mailcatcher.Message {
	var out []mailcatcher.Message
	for _, m := range msgs {
		for _, to := range m.To {
			if to == addr {
				out = append(out, m)
			}
		}
	}
	return out
}

// linkWithPath is the token of m's link to path ("" when it has none).
func linkWithPath(m mailcatcher.Message, path string) string {
	for _, l := range m.Links {
		if u, err := url.Parse(l); err == nil && u.Path == path {
			return u.Query().Get("token")
		}
	}
	return ""
}

// enrolWithEmail enrols a member whose sign-in email is email.
func enrolWithEmail(t *testing.T, mem *members.Service, email string, marketing bool) members.Member {
	t.Helper()
	m, _, err := mem.Enrol(context.Background(), members.EnrolRequest{
		Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile:    members.Profile{GivenName: strings.Split(email, "@")[0], Email: email},
		Consent:    members.Consent{Marketing: marketing, Source: "test"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func earn(t *testing.T, l *ledger.Service, memberID int64, key string, points int64, at time.Time) {
	t.Helper()
	if _, err := l.Earn(context.Background(), ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: key},
		MemberID: memberID, PartnerID: 1, Points: ledger.Points(points), OccurredAt: at, ExternalRef: key}); err != nil {
		t.Fatal(err)
	}
}

// The daily digest sends one mail per member per day, summing that day's
// earns, only to members with marketing consent; running it again sends
// nothing more. Its unsubscribe link works without signing in: opening it
// changes nothing, posting it stops digests (and only digests), a forged
// one is refused naming token, and the member can turn digests back on.
func TestPointsDigestAndUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	l := ledger.NewService(e.db, e.clock.Now)
	today := time.Date(2031, 3, 10, 9, 0, 0, 0, time.UTC)
	yesterday := today.AddDate(0, 0, -1)

	yes := enrolWithEmail(t, e.mem, "yes@example.test", true)
	no := enrolWithEmail(t, e.mem, "no@example.test", false)
	idle := enrolWithEmail(t, e.mem, "idle@example.test", true)
	e.clock.Set(yesterday.Add(2 * time.Hour))
	earn(t, l, yes.ID, "y1", 120, e.clock.Now())
	earn(t, l, yes.ID, "y2", 80, e.clock.Now())
	earn(t, l, no.ID, "n1", 500, e.clock.Now())
	e.clock.Set(today)
	earn(t, l, yes.ID, "y3", 999, e.clock.Now()) // today: tomorrow's digest
	_ = idle

	rep, err := e.mem.SendDigests(ctx, yesterday, 1) // a batch of one: the cursor pages
	if err != nil {
		t.Fatal(err)
	}
	if rep.Members != 2 || rep.Mailed != 1 {
		t.Fatalf("digest: %+v; want 2 members digested, 1 mailed", rep)
	}
	if again, err := e.mem.SendDigests(ctx, yesterday, 100); err != nil || again.Members != 0 {
		t.Fatalf("second run: %+v %v; want nothing", again, err)
	}
	msgs := e.deliver()
	if len(msgs) != 1 || msgs[0].To[0] != "yes@example.test" || !strings.Contains(msgs[0].Subject, "200 points") ||
		!strings.Contains(msgs[0].Text, "2 purchase(s)") {
		t.Fatalf("digest mails %+v; want one to yes@example.test about 200 points in 2 earns", msgs)
	}
	token := linkWithPath(msgs[0], "/portal/unsubscribe")
	if token == "" || !strings.Contains(msgs[0].HTML, "/portal/unsubscribe?token=") {
		t.Fatalf("digest has no unsubscribe link: %v", msgs[0].Links)
	}

	// Opening the link (a mail scanner, or the member) changes nothing.
	res, err := http.Get(e.srv.URL + "/portal/unsubscribe?token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "unsubscribe-form") {
		t.Fatalf("unsubscribe page: %d", res.StatusCode)
	}
	if n := e.count("member_mail_optouts"); n != 0 {
		t.Fatalf("opening the link wrote %d opt-outs", n)
	}
	// Forged and tampered tokens are refused and change nothing.
	e.expectField(400, "invalid_request", "token", "POST", "/v1/me/unsubscribe", "", map[string]string{"token": "forged"})
	tampered := strconv.FormatInt(no.ID, 10) + token[strings.IndexByte(token, '.'):]
	e.expectField(400, "invalid_request", "token", "POST", "/v1/me/unsubscribe", "", map[string]string{"token": tampered})
	other := strings.Replace(token, "points_digest", "orders", 1)
	e.expectField(400, "invalid_request", "token", "POST", "/v1/me/unsubscribe", "", map[string]string{"token": other})
	if n := e.count("member_mail_optouts"); n != 0 {
		t.Fatalf("refused tokens wrote %d opt-outs", n)
	}
	out := e.expect(200, "", "POST", "/v1/me/unsubscribe", "", map[string]string{"token": token})
	if out["kind"] != "points_digest" || out["subscribed"] != false {
		t.Fatalf("unsubscribe: %v", out)
	}
	e.expect(200, "", "POST", "/v1/me/unsubscribe", "", map[string]string{"token": token}) // again: no change

	// Today's earns: no digest for the member who unsubscribed.
	e.clock.Set(today.AddDate(0, 0, 1))
	if rep, err := e.mem.SendDigests(ctx, today, 100); err != nil || rep.Members != 1 || rep.Mailed != 0 {
		t.Fatalf("digest after unsubscribing: %+v %v; want 1 member digested, none mailed", rep, err)
	}
	if msgs := e.deliver(); len(msgs) != 0 {
		t.Fatalf("mail after unsubscribing: %+v", msgs)
	}

	// The member turns digests back on (signed in) and gets the next one.
	if err := e.mem.SetPassword(ctx, yes.ID, "yes's long passphrase"); err != nil {
		t.Fatal(err)
	}
	e.deliver() // the password notice
	tok := e.signIn("yes@example.test", "yes's long passphrase")
	e.expectField(400, "invalid_request", "weekly", "PUT", "/v1/me/notifications", tok, map[string]bool{"weekly": true})
	list := e.expect(200, "", "PUT", "/v1/me/notifications", tok, map[string]bool{"points_digest": true})
	for _, x := range list["data"].([]any) {
		if k := x.(map[string]any); k["enabled"] != true {
			t.Fatalf("notifications after turning digests on: %v", list)
		}
	}
	e.clock.Set(today.AddDate(0, 0, 1).Add(time.Hour))
	earn(t, l, yes.ID, "y4", 10, e.clock.Now())
	e.clock.Set(today.AddDate(0, 0, 2))
	if rep, err := e.mem.SendDigests(ctx, today.AddDate(0, 0, 1), 100); err != nil || rep.Mailed != 1 {
		t.Fatalf("digest after turning back on: %+v %v", rep, err)
	}
	if msgs := e.deliver(); len(msgs) != 1 || msgs[0].To[0] != "yes@example.test" {
		t.Fatalf("mails after turning back on: %+v", msgs)
	}
}

// A password change mails a security notice (no unsubscribe link: it is
// always sent) in the transaction of the change; a refused change sends
// nothing.
func TestPasswordChangedMailArrives(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	m := enrolWithEmail(t, e.mem, "pat@example.test", false)
	if err := e.mem.SetPassword(ctx, m.ID, "pat's first passphrase"); err != nil {
		t.Fatal(err)
	}
	e.deliver()
	tok := e.signIn("pat@example.test", "pat's first passphrase")
	e.expectField(400, "invalid_request", "new_password", "PUT", "/v1/me/password", tok,
		map[string]string{"current_password": "pat's first passphrase", "new_password": "short"})
	if msgs := e.deliver(); len(msgs) != 0 {
		t.Fatalf("a refused change mailed %+v", msgs)
	}
	e.expect(204, "", "PUT", "/v1/me/password", tok, map[string]string{"current_password": "pat's first passphrase",
		"new_password": "pat's second passphrase"})
	msgs := e.deliver()
	if len(msgs) != 1 || msgs[0].To[0] != "pat@example.test" || !strings.Contains(msgs[0].Subject, "password was changed") {
		t.Fatalf("mails after a password change: %+v", msgs)
	}
	if linkWithPath(msgs[0], "/portal/unsubscribe") != "" {
		t.Fatalf("a security notice has an unsubscribe link: %v", msgs[0].Links)
	}

	// A member whose locale has text gets it.
	de, _, err := e.mem.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: "jonas@example.test"},
		Profile: members.Profile{GivenName: "Jonas", Email: "jonas@example.test", Locale: "de-AT"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mem.SetPassword(ctx, de.ID, "jonas's long passphrase"); err != nil {
		t.Fatal(err)
	}
	msgs = e.deliver()
	if len(msgs) != 1 || msgs[0].Language != "de" || msgs[0].Subject != "Ihr Coalition-Rewards-Passwort wurde geändert" {
		t.Fatalf("mail to a German-speaking member: %+v", msgs)
	}
}

// A change of sign-in email sends a link to the new address and a notice to
// the old one, and applies only when the link is used; opening the link
// changes nothing. Bad input, a wrong password, a used, forged, expired or
// replaced link change nothing.
func TestEmailChangeAppliesOnlyAfterVerification(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	m := enrolWithEmail(t, e.mem, "old@example.test", false)
	enrolWithEmail(t, e.mem, "taken@example.test", false)
	if err := e.mem.SetPassword(ctx, m.ID, "a long passphrase"); err != nil {
		t.Fatal(err)
	}
	e.deliver()
	tok := e.signIn("old@example.test", "a long passphrase")

	e.expectField(400, "invalid_request", "email", "POST", "/v1/me/email", tok, map[string]string{"email": "not-an-address", "password": "a long passphrase"})
	e.expectField(400, "invalid_request", "email", "POST", "/v1/me/email", tok, map[string]string{"email": "OLD@example.test", "password": "a long passphrase"})
	e.expect(401, "invalid_credentials", "POST", "/v1/me/email", tok, map[string]string{"email": "new@example.test", "password": "wrong passphrase"})
	e.expect(409, "identifier_taken", "POST", "/v1/me/email", tok, map[string]string{"email": "taken@example.test", "password": "a long passphrase"})
	e.expect(400, "", "POST", "/v1/me/email", tok, `{"email": "new@example.test"`)
	if n := e.count("member_links"); n != 0 {
		t.Fatalf("refused requests made %d links", n)
	}
	if msgs := e.deliver(); len(msgs) != 0 {
		t.Fatalf("refused requests mailed %+v", msgs)
	}

	e.expect(202, "", "POST", "/v1/me/email", tok, map[string]string{"email": "first@example.test", "password": "a long passphrase"})
	e.expect(202, "", "POST", "/v1/me/email", tok, map[string]string{"email": "New@Example.test", "password": "a long passphrase"})
	msgs := e.deliver()
	first, fresh, notices := mailsTo(msgs, "first@example.test"), mailsTo(msgs, "new@example.test"), mailsTo(msgs, "old@example.test")
	if len(first) != 1 || len(fresh) != 1 || len(notices) != 2 || !strings.Contains(notices[1].Text, "n***@example.test") {
		t.Fatalf("mails after two requests: %+v", msgs)
	}
	replaced := linkWithPath(first[0], "/portal/verify-email")
	token := linkWithPath(fresh[0], "/portal/verify-email")
	if token == "" || replaced == "" {
		t.Fatalf("no verify-email links in %v / %v", first[0].Links, fresh[0].Links)
	}
	// Nothing changed yet: the old address still signs in, the new does not.
	e.signIn("old@example.test", "a long passphrase")
	e.expect(401, "invalid_credentials", "POST", "/v1/me/login", "", map[string]string{"email": "new@example.test", "password": "a long passphrase"})
	// Opening the link changes nothing either.
	res, err := http.Get(e.srv.URL + "/portal/verify-email?token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("verify-email page: %d", res.StatusCode)
	}
	e.signIn("old@example.test", "a long passphrase")

	e.expectField(400, "invalid_request", "token", "POST", "/v1/me/email/verify", "", map[string]string{"token": "forged"})
	e.expectField(410, "link_used", "token", "POST", "/v1/me/email/verify", "", map[string]string{"token": replaced})
	// The link cannot set a password, nor a password link change an email.
	e.expectField(400, "invalid_request", "token", "POST", "/v1/me/verify", "", map[string]string{"token": token, "password": "another long phrase"})

	out := e.expect(200, "", "POST", "/v1/me/email/verify", "", map[string]string{"token": token})
	if out["email"] != "new@example.test" || int64(out["member_id"].(float64)) != m.ID {
		t.Fatalf("verify: %v", out)
	}
	e.expectField(410, "link_used", "token", "POST", "/v1/me/email/verify", "", map[string]string{"token": token})
	e.signIn("new@example.test", "a long passphrase")
	e.expect(401, "invalid_credentials", "POST", "/v1/me/login", "", map[string]string{"email": "old@example.test", "password": "a long passphrase"})
	got, err := e.mem.Get(ctx, m.ID)
	if err != nil || got.Profile.Email != "new@example.test" {
		t.Fatalf("member after the change: %+v %v", got.Profile, err)
	}

	// An expired link changes nothing.
	tok = e.signIn("new@example.test", "a long passphrase")
	e.expect(202, "", "POST", "/v1/me/email", tok, map[string]string{"email": "late@example.test", "password": "a long passphrase"})
	late := linkWithPath(mailsTo(e.deliver(), "late@example.test")[0], "/portal/verify-email")
	e.clock.Add(members.EmailChangeLinkTTL + time.Minute)
	e.expectField(410, "link_expired", "token", "POST", "/v1/me/email/verify", "", map[string]string{"token": late})
	e.signIn("new@example.test", "a long passphrase")
}

// Orders mail the member when placed, fulfilled and rejected, each with an
// unsubscribe link; a member who turned order mail off gets none.
func TestOrderMailsArrive(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t)
	box := newMailbox(t, e.db)
	_, airTok := e.partner("Skyways", partners.SectorAirline, true, access.ScopePointsEarn)
	_, hotelTok := e.partner("Grand Hotels", partners.SectorHotel, false, access.ScopeCatalogManage, access.ScopeOrdersFulfil)
	memberID, meTok := e.memberToken("ana@example.com")
	quietID, quietTok := e.memberToken("quiet@example.com")
	now := e.clock.Now().Format(time.RFC3339)
	for i, id := range []int64{memberID, quietID} {
		e.must(http.StatusCreated, http.MethodPost, "/v1/earn", airTok, "flight-"+strconv.Itoa(i), map[string]any{"member_id": id,
			"amount": map[string]any{"minor": 1000000, "currency": "EUR"}, "occurred_at": now, "external_ref": "PNR-" + strconv.Itoa(i)})
	}
	night := e.must(http.StatusCreated, http.MethodPost, "/v1/catalog/rewards", hotelTok, "", map[string]any{"title": "Free night",
		"category": "hotel_night", "price_points": 3000, "value": map[string]any{"minor": 12000, "currency": "EUR"},
		"fulfilment": "async", "fulfilment_hours": 48})
	box.deliver()
	if err := e.mem.SetNotification(e.ctx, quietID, members.NoticeOrders, false); err != nil {
		t.Fatal(err)
	}

	a := e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", meTok, "o-1", map[string]any{"reward_id": num(night["id"])})
	b := e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", meTok, "o-2", map[string]any{"reward_id": num(night["id"])})
	e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", quietTok, "q-1", map[string]any{"reward_id": num(night["id"])})
	e.must(http.StatusOK, http.MethodPost, "/v1/orders/"+strconv.FormatInt(num(a["id"]), 10)+"/fulfil", hotelTok, "", map[string]any{"reference": "BOOK-77"})
	e.must(http.StatusOK, http.MethodPost, "/v1/orders/"+strconv.FormatInt(num(b["id"]), 10)+"/reject", hotelTok, "", map[string]any{"reason": "fully booked"})

	msgs := box.deliver()
	if q := mailsTo(msgs, "quiet@example.com"); len(q) != 0 {
		t.Fatalf("a member who turned order mail off got %+v", q)
	}
	got := mailsTo(msgs, "ana@example.com")
	var subjects []string
	for _, m := range got {
		subjects = append(subjects, m.Subject)
		if linkWithPath(m, "/portal/unsubscribe") == "" {
			t.Errorf("order mail %q has no unsubscribe link", m.Subject)
		}
	}
	want := []string{"Your order of Free night is placed", "Your order of Free night is placed",
		"Your order of Free night is ready", "Your order of Free night is rejected"}
	if strings.Join(subjects, "|") != strings.Join(want, "|") {
		t.Fatalf("order mails %q; want %q", subjects, want)
	}
	if !strings.Contains(got[2].Text, "BOOK-77") || !strings.Contains(got[3].Text, "fully booked") {
		t.Fatalf("fulfilled / rejected mails lack the reference or reason:\n%s\n%s", got[2].Text, got[3].Text)
	}
}

// An exchange mails the member when it completes and when it fails.
func TestExchangeMailsArrive(t *testing.T) {
	t.Parallel()
	sim := partnersim.New(partnersim.Config{APIKey: "k", RefuseOver: 5000})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	var xs *exchange.Service
	var l *ledger.Service
	var m *members.Service
	e := newAuthEnv(t, func(d *Deps) {
		l = ledger.NewService(d.DB, time.Now)
		m = members.NewService(d.DB, l, time.Now)
		xs = exchange.NewService(d.DB, l, m, d.Partners, d.Access.SecretBox(), exchange.NewHTTPPartner(time.Minute), time.Now)
		d.Ledger, d.Members, d.Exchange = l, m, xs
	})
	box := newMailbox(t, e.db)
	ctx := context.Background()
	p, _ := e.partnerClient("Sky Air", access.ScopeExchange)
	if _, err := e.svc.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: time.Now().AddDate(0, -1, 0), Earn: true,
		IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.Zero, Billing: partners.BillingPostpaid}, "test"); err != nil {
		t.Fatal(err)
	}
	prog, err := xs.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: p.ID, Code: "skymiles", Name: "Sky Miles", Unit: "miles",
		Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MaxPoints: 90000, EndpointURL: simSrv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	mem := enrolWithEmail(t, m, "bo@example.test", false)
	earn(t, l, mem.ID, "bo-1", 20000, time.Now())
	tok := signedInToken(t, m, e.acc, mem.ID)
	if code, body, _ := e.call(http.MethodPut, "/v1/me/exchange-links/"+strconv.FormatInt(prog.ID, 10), tok,
		map[string]string{"account": "FF1"}); code != http.StatusOK {
		t.Fatalf("link: %d %v", code, body)
	}
	exchangeOf := func(points int) int64 {
		t.Helper()
		code, q, _ := e.call(http.MethodPost, "/v1/me/exchange-quotes", tok, map[string]any{"programme_id": prog.ID, "points": points})
		if code != http.StatusCreated {
			t.Fatalf("quote: %d %v", code, q)
		}
		code, x, _ := e.call(http.MethodPost, "/v1/me/exchanges", tok, map[string]any{"quote_id": q["id"]})
		if code != http.StatusAccepted {
			t.Fatalf("confirm: %d %v", code, x)
		}
		id := int64(x["id"].(float64))
		if err := xs.Deliver(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	exchangeOf(5000)  // 3,500 miles: completed
	exchangeOf(10000) // 7,000 miles: over what the partner takes, refused
	got := mailsTo(box.deliver(), "bo@example.test")
	if len(got) != 2 || got[0].Subject != "Your exchange to Sky Miles is complete" || !strings.Contains(got[0].Text, "3500 miles") ||
		got[1].Subject != "Your exchange to Sky Miles failed" || !strings.Contains(got[1].Text, "amount out of range") {
		t.Fatalf("exchange mails %+v; want completed (3500 miles) then failed", got)
	}
}

// Notification mail carries List-Unsubscribe and List-Unsubscribe-Post, and a
// mail client's one-click POST to that link (no form token) unsubscribes; a
// forged one is refused naming token.
func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, nil)
	ctx := context.Background()
	l := ledger.NewService(e.db, e.clock.Now)
	m := enrolWithEmail(t, e.mem, "click@example.test", true)
	day := e.clock.Now().UTC()
	earn(t, l, m.ID, "c1", 50, day)
	if rep, err := e.mem.SendDigests(ctx, day, 10); err != nil || rep.Mailed != 1 {
		t.Fatalf("digest: %+v %v", rep, err)
	}
	msgs := e.deliver()
	if len(msgs) != 1 {
		t.Fatalf("mails: %+v", msgs)
	}
	parsed, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Raw()))
	if err != nil {
		t.Fatal(err)
	}
	token := linkWithPath(msgs[0], "/portal/unsubscribe")
	want := "<http://hub.test/portal/unsubscribe?token=" + token + ">"
	if got := strings.TrimSpace(parsed.Header.Get("List-Unsubscribe")); got != want ||
		parsed.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("digest headers: List-Unsubscribe %q (want %q), List-Unsubscribe-Post %q", got, want,
			parsed.Header.Get("List-Unsubscribe-Post"))
	}
	post := func(tok string) (int, string) {
		res, err := http.PostForm(e.srv.URL+"/portal/unsubscribe?token="+url.QueryEscape(tok), url.Values{"List-Unsubscribe": {"One-Click"}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := post("1.points_digest.forged"); code != 400 || !strings.Contains(body, `"field":"token"`) {
		t.Fatalf("forged one-click: %d %s", code, body)
	}
	if code, body := post(token); code != 200 {
		t.Fatalf("one-click: %d %s", code, body)
	}
	if on, err := e.mem.Notifications(ctx, m.ID); err != nil || on[members.NoticePointsDigest] {
		t.Fatalf("after one-click: %v %v", on, err)
	}
}
