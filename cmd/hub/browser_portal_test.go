package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/coalitionhub/hub/exchange"
)

// acceptingPartner is a partner programme that accepts every account the
// seed links (the seed links one; nothing is credited through it).
type acceptingPartner struct{}

func (acceptingPartner) ValidateMember(context.Context, exchange.Endpoint, string) (exchange.ValidateResult, error) {
	return exchange.ValidateResult{Valid: true}, nil
}

func (acceptingPartner) Credit(context.Context, exchange.Endpoint, exchange.CreditRequest) (exchange.CreditResult, error) {
	return exchange.CreditResult{}, exchange.ErrPartnerUnavailable
}

func (acceptingPartner) CreditStatus(context.Context, exchange.Endpoint, string) (exchange.CreditResult, error) {
	return exchange.CreditResult{}, exchange.ErrPartnerUnavailable
}

// expectValue checks the value of a form field.
func (b *browserSession) expectValue(t *testing.T, sel, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).value`))
	if err != nil {
		t.Fatalf("value of %s: %v", sel, err)
	}
	if got != want {
		t.Errorf("%s holds %q, want %q", sel, got, want)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// phoneLayoutJS measures the page at phone width: whether the navigation is
// shown, the height of the menu button, and every visible control (button,
// field, menu link) lower than 44 px.
const phoneLayoutJS = `(() => {
  const box = el => { const r = el && el.getBoundingClientRect(); return r && r.width > 0 && r.height > 0 ? r : null; };
  const small = [];
  for (const el of document.querySelectorAll('button, .button, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, nav a, .menu-button')) {
    const r = box(el);
    if (r && r.height < 44) small.push((el.id || el.tagName.toLowerCase() + ' ' + el.textContent.trim()) + ': ' + Math.round(r.height) + ' px');
  }
  const nav = document.getElementById('nav');
  const menu = box(document.getElementById('menu-button'));
  return JSON.stringify({nav: !!box(nav), menu: menu ? menu.height : 0, top: box(document.querySelector('.top')).height,
    width: document.scrollingElement.scrollWidth, small});
})()`

type phoneLayout struct {
	Nav   bool     `json:"nav"`
	Menu  float64  `json:"menu"`
	Top   float64  `json:"top"`
	Width int      `json:"width"`
	Small []string `json:"small"`
}

func (b *browserSession) phoneLayout(t *testing.T) phoneLayout {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](phoneLayoutJS))
	if err != nil {
		t.Fatalf("measure the phone layout: %v", err)
	}
	var l phoneLayout
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		t.Fatalf("phone layout %s: %v", raw, err)
	}
	return l
}

// assertPhoneLayout checks a signed-in portal page at 375 px: nothing
// scrolls sideways, the navigation is collapsed behind one menu button
// (the header is one line), every control is at least 44 px high, and the
// menu opens to links that are too. The page is left at desktop width.
func (b *browserSession) assertPhoneLayout(t *testing.T, path, ready string) {
	t.Helper()
	b.run(t, "phone width", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(ready)))
	defer b.run(t, "desktop width", chromedp.EmulateViewport(1280, 900))
	l := b.phoneLayout(t)
	if l.Width > 375 {
		t.Errorf("%s at 375 px scrolls sideways: scrollWidth %d", path, l.Width)
	}
	if l.Nav || l.Menu < 44 || l.Top > 60 {
		t.Errorf("%s at 375 px: navigation shown %v, menu button %.0f px high, header %.0f px high; want the navigation collapsed behind a 44 px menu button on a one-line header",
			path, l.Nav, l.Menu, l.Top)
	}
	if len(l.Small) > 0 {
		t.Errorf("%s at 375 px: touch targets lower than 44 px: %s", path, strings.Join(l.Small, ", "))
	}
	b.run(t, "open the menu", chromedp.Click(chromedp.CSS("#menu-button")), chromedp.WaitVisible(chromedp.CSS("#nav-home")),
		chromedp.WaitVisible(chromedp.CSS("#logout")))
	l = b.phoneLayout(t)
	if !l.Nav || len(l.Small) > 0 || l.Width > 375 {
		t.Errorf("%s at 375 px with the menu open: navigation shown %v, scrollWidth %d, small targets %v", path, l.Nav, l.Width, l.Small)
	}
}

// profileEdits edits the profile in the portal: a malformed phone number
// is refused with the field named and the input kept; a good one is saved,
// and the marketing consent given on the way shows in the trail.
func (b *browserSession) profileEdits(t *testing.T) {
	t.Helper()
	b.run(t, "profile", chromedp.Navigate(b.url("/portal/profile")), chromedp.WaitVisible(chromedp.CSS("#profile-form")))
	b.run(t, "the card's QR code", chromedp.WaitVisible(chromedp.CSS("#card-qr")))
	// A click on a submit button shows it busy at once (here the post is
	// held back by the page, so the busy state stays to be looked at), and
	// a second click does not submit the form again.
	b.run(t, "hold the post back", chromedp.Evaluate[chromedp.Void](`window.posts = 0;
		document.getElementById("profile-form").addEventListener("submit", e => { e.preventDefault(); window.posts++; });`),
		chromedp.Click(chromedp.CSS("#profile-save")), chromedp.Click(chromedp.CSS("#profile-save")))
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	busy, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const b = document.getElementById("profile-save");
		return b.getAttribute("aria-busy") + " " + getComputedStyle(b, "::before").animationName + " " + getComputedStyle(b).cursor +
			" " + window.posts; })()`))
	cancel()
	if err != nil || busy != "true spin progress 1" {
		t.Errorf("submit button after two clicks: %q (%v), want busy with a spinner, and one submit", busy, err)
	}
	b.run(t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#profile-form")))
	b.run(t, "a bad phone number",
		chromedp.SetValue(chromedp.CSS("#profile-phone"), "call me maybe"),
		chromedp.SetValue(chromedp.CSS("#profile-given"), "Augusta Ada"),
		chromedp.Click(chromedp.CSS("#profile-save")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	b.expectContains(t, "#error", "phone")
	b.expectValue(t, "#profile-phone", "call me maybe")
	b.expectValue(t, "#profile-given", "Augusta Ada")
	b.forgetConsole(t, "status of 400")
	b.run(t, "a good phone number and consent",
		chromedp.SetValue(chromedp.CSS("#profile-phone"), "+351 912 345 678"),
		chromedp.Click(chromedp.CSS("#profile-marketing")),
		chromedp.Click(chromedp.CSS("#profile-save")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Your profile is saved")
	b.expectValue(t, "#profile-phone", "+351912345678")
	b.expectValue(t, "#profile-given", "Augusta Ada")
	b.expectContains(t, "#consent-trail", "Agreed")
	b.expectContains(t, "#current-user", "Augusta Ada")
}
