package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
)

// TestBrowserFraudAndPrivacyPages walks the pages of the fraud rules and
// the register of data-subject requests in a real browser: a partner with a
// market and category, its fraud rules form (a bad action cap keeps the
// input and names the field), the review queue and the privacy page; each
// at 1280 px and at 375 px, where nothing scrolls sideways.
func TestBrowserFraudAndPrivacyPages(t *testing.T) {
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
	b.run(t, "create a partner with a market",
		chromedp.Click(chromedp.CSS("#nav-partners")),
		chromedp.WaitVisible(chromedp.CSS("#partner-form")),
		chromedp.SendKeys(chromedp.CSS("#p-name"), "Frische Markt"),
		chromedp.SetValue(chromedp.CSS("#p-sector"), "retail"),
		chromedp.SendKeys(chromedp.CSS("#p-market"), "DE"),
		chromedp.SendKeys(chromedp.CSS("#p-category"), "supermarket"),
		chromedp.Click(chromedp.CSS("#partner-create")),
		chromedp.WaitVisible(chromedp.CSS("#fraud")))
	b.expectText(t, "#partner-market", "DE")
	b.run(t, "a bad action cap",
		chromedp.Click(chromedp.CSS("#fraud-open")),
		chromedp.SetValue(chromedp.CSS("#a-member_earns_per_hour"), "10"),
		chromedp.SetValue(chromedp.CSS("#a-caps"), "health_check 2 fortnight"),
		chromedp.Click(chromedp.CSS("#fraud-save")),
		chromedp.WaitVisible(chromedp.CSS("#a-caps-err")))
	b.expectContains(t, "#a-caps-err", "day, week, month or year")
	b.expectValue(t, "#a-member_earns_per_hour", "10")
	b.forgetConsole(t, "status of 400")
	b.run(t, "save the rules",
		chromedp.SetValue(chromedp.CSS("#a-caps"), "health_check 2 month"),
		chromedp.Click(chromedp.CSS("#fraud-save")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Fraud rules saved")
	b.run(t, "open the rules", chromedp.Click(chromedp.CSS("#fraud-open")), chromedp.ScrollIntoView(chromedp.CSS("#fraud")))
	b.assertCleanPage(t, "partner page")
	b.screenshot(t, "console-partner-fraud")
	b.phoneShot(t, "console-partner-fraud-phone", "#fraud")

	b.run(t, "review queue", chromedp.Click(chromedp.CSS("#nav-flags")), chromedp.WaitVisible(chromedp.CSS("#flags-filter")))
	b.assertCleanPage(t, "review queue")
	b.screenshot(t, "console-flags")
	b.phoneShot(t, "console-flags-phone", "#flags-filter")

	b.run(t, "privacy page", chromedp.Click(chromedp.CSS("#nav-privacy")), chromedp.WaitVisible(chromedp.CSS("#access-form")))
	b.assertCleanPage(t, "privacy page")
	b.screenshot(t, "console-privacy")
	b.phoneShot(t, "console-privacy-phone", "#access-form")
	b.assertNoConsoleErrors(t)
}

// phoneShot reloads the page at 375 px, checks that nothing scrolls
// sideways, saves <name>.png and goes back to desktop width.
func (b *browserSession) phoneShot(t *testing.T, name, ready string) {
	t.Helper()
	b.run(t, "phone width", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(ready)))
	defer b.run(t, "desktop width", chromedp.EmulateViewport(1280, 900))
	if l := b.phoneLayout(t); l.Width > 375 {
		t.Errorf("%s at 375 px scrolls sideways: scrollWidth %d", name, l.Width)
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
