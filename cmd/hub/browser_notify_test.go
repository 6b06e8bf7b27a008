package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/internal/mailcatcher"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// TestBrowserNotificationMailAndEmailChange follows notification mail and
// the change of sign-in email through the running hub, the mail catcher and
// a browser: the daily digest (queued by the members service, sent by the
// hub's worker) carries an unsubscribe link that works signed out and asks
// before it acts; the privacy page then shows digests turned off; the
// profile page asks for a new email, whose link (mailed to the new address,
// with a notice to the old) changes the sign-in email once confirmed. Every
// new page is checked at 1280 and 375 px and photographed.
func TestBrowserNotificationMailAndEmailChange(t *testing.T) {
	t.Parallel()
	exe := chromiumPath(t)
	db, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	mc, err := mailcatcher.Listen("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Close() })
	key := bytes.Repeat([]byte{9}, 32)
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, "HUB_SMTP_URL=" + mc.SMTPURL(),
		"HUB_UNSUBSCRIBE_KEY=" + base64.StdEncoding.EncodeToString(key), "HUB_LOG_LEVEL=warn"}, "all")
	ctx := context.Background()

	// A member with marketing consent earned yesterday; the digest job's step
	// runs here, with the hub's key, and the hub's worker sends the mail.
	l := ledger.NewService(db, time.Now)
	mem := members.NewService(db, l, time.Now, members.WithPasswordCost(bcrypt.MinCost), members.WithUnsubscribeKey(key))
	const email, password = "ines.costa@example.com", "ines's long passphrase"
	m, _, err := mem.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile: members.Profile{GivenName: "Ines", FamilyName: "Costa", Email: email, Locale: "en"},
		Consent: members.Consent{Marketing: true, Source: "test"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.SetPassword(ctx, m.ID, password); err != nil {
		t.Fatal(err)
	}
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	then := ledger.NewService(db, func() time.Time { return yesterday }) // posted yesterday
	if _, err := then.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: "e1"}, MemberID: m.ID,
		OperatorFunded: 450, OccurredAt: yesterday.Add(-time.Hour), ExternalRef: "e1"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := mem.SendDigests(ctx, yesterday, 100); err != nil || rep.Mailed != 1 {
		t.Fatalf("digest: %+v %v", rep, err)
	}
	inbox := &catcherInbox{t: t, base: mc.WebURL}
	// The worker sends the password notice and the digest in either order.
	var digest mailcatcher.Message
	for range 2 {
		if n := inbox.next(email); strings.HasPrefix(n.Subject, "You earned") {
			digest = n
		}
	}
	var unsubscribe string
	for _, link := range digest.Links {
		if strings.Contains(link, "/portal/unsubscribe?token=") {
			unsubscribe = link
		}
	}
	if !strings.Contains(digest.Subject, "450 points") || unsubscribe == "" {
		t.Fatalf("digest %q with links %v", digest.Subject, digest.Links)
	}

	b := newBrowser(t, exe, hub.URL)
	b.run(t, "the digest in the catcher", chromedp.Navigate(mc.WebURL+"/messages/"+strconv.Itoa(digest.ID)), chromedp.WaitVisible(chromedp.CSS("#text")))
	b.shots2(t, "mailcatcher-digest")
	b.run(t, "open the unsubscribe link", chromedp.Navigate(unsubscribe), chromedp.WaitVisible(chromedp.CSS("#unsubscribe-form")))
	b.expectContains(t, "#unsubscribe-kind", "daily summary")
	b.assertCleanPage(t, "/portal/unsubscribe")
	b.shots2(t, "portal-unsubscribe")
	if on, err := mem.Notifications(ctx, m.ID); err != nil || !on[members.NoticePointsDigest] {
		t.Fatalf("opening the link turned digests off: %v %v", on, err)
	}
	b.run(t, "unsubscribe", chromedp.Click(chromedp.CSS("#unsubscribe-submit")), chromedp.WaitVisible(chromedp.CSS("#unsubscribe-done")))
	b.assertCleanPage(t, "/portal/unsubscribe (done)")
	b.shots2(t, "portal-unsubscribed")
	if on, err := mem.Notifications(ctx, m.ID); err != nil || on[members.NoticePointsDigest] || !on[members.NoticeOrders] {
		t.Fatalf("after unsubscribing: %v %v; want digests off, orders on", on, err)
	}

	// Signed in, the privacy page shows the choice.
	b.run(t, "sign in", chromedp.Navigate(b.url("/portal/login")), chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS("#balance-available")))
	b.run(t, "privacy page", chromedp.Click(chromedp.CSS("#nav-consent")), chromedp.WaitVisible(chromedp.CSS("#notifications-form")))
	boxes, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]bool](
		`[document.querySelector("#mail-points_digest").checked, document.querySelector("#mail-orders").checked]`))
	if err != nil {
		t.Fatal(err)
	}
	if digestOn, ordersOn := boxes[0], boxes[1]; digestOn || !ordersOn {
		t.Fatalf("privacy page boxes: digest %v, orders %v; want off, on", boxes[0], boxes[1])
	}
	b.assertCleanPage(t, "/portal/consent")
	b.shots2(t, "portal-notifications")
	b.run(t, "turn digests back on", chromedp.Click(chromedp.CSS("#mail-points_digest")),
		chromedp.Click(chromedp.CSS("#notifications-save")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Your email choices are saved")
	if on, err := mem.Notifications(ctx, m.ID); err != nil || !on[members.NoticePointsDigest] {
		t.Fatalf("after ticking digests again: %v %v", on, err)
	}

	// Change the sign-in email from the profile page.
	const newEmail = "ines@costa.example"
	b.run(t, "profile page", chromedp.Click(chromedp.CSS("#nav-profile")), chromedp.WaitVisible(chromedp.CSS("#email-form")))
	b.assertCleanPage(t, "/portal/profile")
	b.shots2(t, "portal-profile-email")
	b.run(t, "ask for the change", chromedp.SendKeys(chromedp.CSS("#email-new"), newEmail),
		chromedp.SendKeys(chromedp.CSS("#email-password"), password),
		chromedp.Click(chromedp.CSS("#email-save")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "A link is on its way")
	if n := inbox.next(email); !strings.Contains(n.Subject, "new sign-in email") || !strings.Contains(n.Text, "i***@costa.example") {
		t.Fatalf("notice to the old address: %q\n%s", n.Subject, n.Text)
	}
	verify := (&catcherInbox{t: t, base: mc.WebURL}).next(newEmail)
	if len(verify.Links) != 1 || !strings.Contains(verify.Links[0], "/portal/verify-email?token=") {
		t.Fatalf("verify mail links %v", verify.Links)
	}
	b.run(t, "open the link", chromedp.Navigate(verify.Links[0]), chromedp.WaitVisible(chromedp.CSS("#verify-email-form")))
	b.expectText(t, "#verify-new-email", newEmail)
	b.assertCleanPage(t, "/portal/verify-email")
	b.shots2(t, "portal-verify-email")
	if got, err := mem.Get(ctx, m.ID); err != nil || got.Profile.Email != email {
		t.Fatalf("opening the link changed the email: %v %v", got.Profile.Email, err)
	}
	b.run(t, "confirm", chromedp.Click(chromedp.CSS("#verify-email-submit")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Your sign-in email is now "+newEmail)
	if got, err := mem.Get(ctx, m.ID); err != nil || got.Profile.Email != newEmail {
		t.Fatalf("after confirming: %v %v", got.Profile.Email, err)
	}
	b.assertNoConsoleErrors(t)
}
