package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/settlement"
)

// TestBrowser drives the member portal and the operator console of a real
// hub process in headless Chromium: a member signs in,
// orders a reward and sees the balance drop; the operator signs in, closes
// last month's settlement period, opens a statement and downloads its CSV.
// Screenshots of the key pages are taken on the way (docs/screenshots/ when
// HUB_SCREENSHOTS=1, a temporary folder otherwise).
//
// One hub and one browser serve both parts, run one after the other: the
// machine is small and Chromium is the expensive part.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromiumPath(t)
	db, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	d := seedBrowserData(t, db)
	// "all": closing a period is a job the worker runs while the page
	// shows its progress.
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, "HUB_OPERATOR_TZ=UTC",
		"HUB_LOG_LEVEL=warn"}, "all")
	b := newBrowser(t, exe, hub.URL)

	t.Run("member orders a reward", func(t *testing.T) { memberOrdersReward(t, b, d) })
	t.Run("operator closes a period and downloads a statement", func(t *testing.T) { operatorClosesPeriod(t, b, db, d) })
	t.Run("the API reference renders every operation", func(t *testing.T) { apiReferenceRendersEveryOperation(t, b) })
	b.assertNoConsoleErrors(t)

	rep, err := ledger.Audit(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledger audit after the browser tests: %+v", rep)
	}
}

func memberOrdersReward(t *testing.T, b *browserSession, d browserData) {
	ctx := context.Background()
	b.run(t, "portal sign-in",
		chromedp.Navigate(b.url("/portal/login")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
	)
	b.screenshot(t, "portal-login")
	b.run(t, "portal sign-in",
		chromedp.SendKeys(chromedp.CSS("#email"), d.memberEmail),
		chromedp.SendKeys(chromedp.CSS("#password"), browserPassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#balance-available")),
	)
	b.expectText(t, "#balance-available", pointsText(d.memberPoints))
	b.expectText(t, "#balance-held", "0")
	b.expectText(t, "#current-user", d.memberName)
	b.assertCleanPage(t, "/portal")
	b.screenshot(t, "portal-home")

	b.run(t, "open the catalog", chromedp.Click(chromedp.CSS("#nav-catalog")), chromedp.WaitVisible(chromedp.CSS("#offers")))
	b.expectText(t, "#catalog-available", pointsText(d.memberPoints))
	b.assertCleanPage(t, "/portal/catalog")
	order := fmt.Sprintf("#order-%d", d.rewardID)
	b.run(t, "order the reward", chromedp.Click(chromedp.CSS(order)), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.expectContains(t, "#flash", "Ordered "+d.rewardTitle+" for "+pointsText(d.rewardPrice)+" points")
	after := d.memberPoints - d.rewardPrice
	b.expectText(t, "#catalog-available", pointsText(after))
	b.run(t, "the order is listed", chromedp.WaitVisible(chromedp.CSS("#orders")))
	b.assertCleanPage(t, "/portal/catalog (ordered)")
	b.screenshot(t, "portal-catalog")

	b.run(t, "back to my points", chromedp.Click(chromedp.CSS("#nav-home")), chromedp.WaitVisible(chromedp.CSS("#balance-available")))
	b.expectText(t, "#balance-available", pointsText(after))
	b.expectText(t, "#balance-held", pointsText(d.rewardPrice))

	// What the browser showed is what the ledger holds.
	orders, _, err := d.catalog.MemberOrders(ctx, d.memberID, catalog.OrderQuery{Limit: 10})
	if err != nil || len(orders) != 1 || orders[0].RewardID != d.rewardID {
		t.Fatalf("member orders after one click = %+v (%v), want exactly one order of reward %d", orders, err, d.rewardID)
	}
	bal, err := d.ledger.Balance(ctx, d.memberID)
	if err != nil {
		t.Fatal(err)
	}
	if int64(bal.Available) != after || int64(bal.Held) != d.rewardPrice {
		t.Fatalf("ledger balance after ordering = %+v, want available %d and held %d", bal, after, d.rewardPrice)
	}
	// Every page of the navigation opens from its link and renders cleanly.
	b.visitNav(t, "nav-history", "nav-catalog", "nav-redeem", "nav-exchange", "nav-transfers", "nav-accounts", "nav-profile",
		"nav-consent", "nav-home")
	b.expectText(t, "#card-number", d.memberCard)
	b.run(t, "home lists the latest transactions", chromedp.WaitVisible(chromedp.CSS("#recent")), chromedp.WaitVisible(chromedp.CSS("#card-qr")))

	// The transfer form shows its rules before submit and keeps what the
	// member typed after a refusal.
	b.run(t, "transfers", chromedp.Click(chromedp.CSS("#nav-transfers")), chromedp.WaitVisible(chromedp.CSS("#transfer-rules")))
	b.run(t, "a transfer to an unknown card",
		chromedp.SendKeys(chromedp.CSS("#to_card"), "7301000000000000"),
		chromedp.SendKeys(chromedp.CSS("#transfer-points"), "1500"),
		chromedp.Click(chromedp.CSS("#transfer-submit")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	b.expectValue(t, "#to_card", "7301000000000000")
	b.expectValue(t, "#transfer-points", "1500")
	// The refusal is a 4xx page (no such card), which Chromium logs as a failed load.
	b.forgetConsole(t, "status of 4")

	// Every signed-in page at phone width: nothing scrolls sideways, the
	// navigation is one menu button, touch targets are 44 px high; each
	// page is photographed at 1280 and 375 px.
	for _, pg := range []struct{ path, ready, shot string }{
		{"/portal", "#balance-available", "portal-home"},
		{"/portal/history", "#history", "portal-history"},
		{"/portal/catalog", "#offers", "portal-catalog"},
		{"/portal/redeem", "#pin-form", "portal-pay"},
		{"/portal/exchange", "#programmes", "portal-exchange"},
		{"/portal/transfers", "#transfer-form", "portal-transfers"},
		{"/portal/accounts", "#identifiers", "portal-accounts"},
		{"/portal/profile", "#profile-form", "portal-profile"},
		{"/portal/consent", "#sessions", "portal-privacy"},
	} {
		b.run(t, "open "+pg.path, chromedp.Navigate(b.url(pg.path)), chromedp.WaitVisible(chromedp.CSS(pg.ready)))
		b.shots2(t, pg.shot)
		b.assertPhoneLayout(t, pg.path, pg.ready)
	}
	b.profileEdits(t)
	b.run(t, "portal sign-out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
}

func operatorClosesPeriod(t *testing.T, b *browserSession, db *gorm.DB, d browserData) {
	ctx := context.Background()
	b.run(t, "console sign-in",
		chromedp.Navigate(b.url("/console/login")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#email"), d.staffEmail),
		chromedp.SendKeys(chromedp.CSS("#password"), browserPassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#stat-members")),
	)
	b.expectText(t, "#stat-members", strconv.Itoa(d.members))
	b.expectText(t, "#stat-partners", strconv.Itoa(d.partners))
	b.run(t, "dashboard charts", chromedp.WaitVisible(chromedp.CSS("#chart-issued")), chromedp.WaitVisible(chromedp.CSS("#chart-trend")))
	b.assertCleanPage(t, "/console")
	b.screenshot(t, "console-dashboard")

	b.run(t, "find the member",
		chromedp.Click(chromedp.CSS("#nav-members")),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), d.memberEmail),
		chromedp.Click(chromedp.CSS("#member-search-submit")),
		// The list may show the member before the search too: wait for the results page.
		waitLocation("q="),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf("#member-%d", d.memberID))),
	)
	b.assertCleanPage(t, "/console/members?q=")
	b.screenshot(t, "console-members")
	b.run(t, "open the member", chromedp.Click(chromedp.CSS(fmt.Sprintf("#member-%d", d.memberID))), chromedp.WaitVisible(chromedp.CSS("#member-ledger")))
	b.assertCleanPage(t, "/console/members/:id")
	b.screenshot(t, "console-member")

	// Close last month: the close form asks window.confirm, which the
	// browser session accepts. The close runs as a job: the period page
	// shows its progress and reloads with the result when it is done.
	b.run(t, "settlement periods", chromedp.Click(chromedp.CSS("#nav-settlement")), chromedp.WaitVisible(chromedp.CSS("#close-"+d.month)))
	b.assertCleanPage(t, "/console/settlement")
	b.run(t, "close the period", chromedp.Click(chromedp.CSS("#close-"+d.month)), chromedp.WaitVisible(chromedp.CSS("#heatmap")))
	if n := b.dialogs.Load(); n < 1 {
		t.Errorf("closing the period asked for no confirmation (%d dialogs), want one", n)
	}
	b.expectText(t, "#period-status", "closed")
	// Harbour Bank's points spent at Sky Air are a cell of the matrix.
	b.expectContains(t, "#heatmap", pointsText(d.bankAtAirline))
	b.run(t, "statements listed", chromedp.WaitVisible(chromedp.CSS("#statements")))
	b.assertCleanPage(t, "/console/settlement/"+d.month)
	b.screenshot(t, "console-period")

	ss := settlement.NewService(db, settlement.Options{Location: time.UTC, BaseCurrency: "EUR", Now: time.Now})
	sts, err := ss.Statements(ctx, settlement.StatementFilter{PartnerID: d.airlineID, Period: d.month, Limit: 10})
	if err != nil || len(sts) != 1 {
		t.Fatalf("statements of %s for the airline = %d (%v), want 1 after closing in the browser", d.month, len(sts), err)
	}
	st := sts[0]
	b.run(t, "open the statement", chromedp.Click(chromedp.CSS(fmt.Sprintf("#statement-%d", st.ID))), chromedp.WaitVisible(chromedp.CSS("#statement-lines")))
	b.expectContains(t, "#statement-status", "draft")
	b.assertCleanPage(t, fmt.Sprintf("/console/statements/%d", st.ID))
	b.screenshot(t, "console-statement")

	csv := b.download(t, "#statement-csv")
	var want bytes.Buffer
	if err := st.WriteCSV(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(csv, want.Bytes()) {
		t.Fatalf("downloaded CSV differs from the statement:\n got %q\nwant %q", csv, want.String())
	}
	if !bytes.Contains(csv, []byte(",issued,")) || !bytes.Contains(csv, []byte(","+strconv.FormatInt(d.airlineIssued, 10)+",")) {
		t.Fatalf("CSV lacks the issued line of %d points:\n%s", d.airlineIssued, csv)
	}
	// Finance: the closed period's result and liability roll-forward, and
	// its general-ledger journal, downloaded as the service writes it.
	b.run(t, "finance", chromedp.Click(chromedp.CSS("#nav-finance")), chromedp.WaitVisible(chromedp.CSS("#result-waterfall svg")),
		chromedp.WaitVisible(chromedp.CSS("#liability-waterfall svg")), chromedp.WaitVisible(chromedp.CSS("#result-table")))
	fr, err := ss.Finance(ctx, d.month)
	if err != nil {
		t.Fatal(err)
	}
	b.expectContains(t, "#total-result", moneyText(fr.Total.Result, "EUR"))
	b.assertCleanPage(t, "/console/finance/"+d.month)
	j, err := ss.Journal(ctx, d.month)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.download(t, "#journal-csv"); !bytes.Equal(got, j.CSV()) {
		t.Fatalf("downloaded journal differs from the service's:\n got %q\nwant %q", got, j.CSV())
	}
	b.shots2(t, "console-finance")
	// A second finance user approves it (four eyes: the closer may not),
	// which issues its invoice; a first payment leaves part of it open.
	if _, err := ss.SetLegalEntity(ctx, settlement.LegalEntity{Code: "OP", Name: "Coalition Operator GmbH", Country: "DE",
		VATID: "DE123456789", Address: "Hafenstrasse 1, 20457 Hamburg"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.SetTaxRate(ctx, settlement.TaxRate{Country: "DE", Rate: decimal.RequireFromString("0.19"), Label: "VAT"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.SetPartnerBilling(ctx, settlement.PartnerBilling{PartnerID: d.airlineID, LegalEntity: "OP", LegalName: "Sky Air AG",
		Country: "DE", VATID: "DE987654321", Address: "Flughafenstrasse 5, Frankfurt", PaymentTermsDays: 30}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Approve(ctx, st.ID, "staff:second@demo.coalition.example"); err != nil {
		t.Fatalf("approve as a second finance user: %v", err)
	}
	bal, err := ss.StatementBalance(ctx, st.ID)
	if err != nil || bal.Due.Minor == 0 {
		t.Fatalf("balance of the approved statement: %+v %v", bal, err)
	}
	if _, err := ss.RecordPayment(ctx, settlement.PaymentInput{StatementID: st.ID, Amount: money.Money{Minor: bal.Due.Minor / 2, Currency: bal.Due.Currency},
		ValueDate: time.Now().UTC().Format(time.DateOnly), Reference: "SEPA-2026-0001", Actor: "staff:second@demo.coalition.example",
		Key: settlement.RequestKey{Scope: "test", Key: "browser-pay", Hash: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	b.run(t, "the statement with its payment", chromedp.Navigate(b.url(fmt.Sprintf("/console/statements/%d", st.ID))),
		chromedp.WaitVisible(chromedp.CSS("#statement-payments")))
	b.expectContains(t, "#statement-transitions", "approved by staff:second@demo.coalition.example")
	b.assertCleanPage(t, fmt.Sprintf("/console/statements/%d", st.ID))
	b.shots2(t, "console-statement-payments")
	b.run(t, "receivables", chromedp.Navigate(b.url("/console/receivables")), chromedp.WaitVisible(chromedp.CSS("#balances")))
	b.assertCleanPage(t, "/console/receivables")
	b.shots2(t, "console-receivables")
	b.visitNav(t, "nav-partners", "nav-members", "nav-catalog", "nav-settlement", "nav-finance", "nav-receivables", "nav-reconciliation", "nav-jobs", "nav-audit", "nav-dashboard")
	// The catalog and a partner's page fit a phone: their tables scroll
	// inside their own box or become cards (shots2 checks the width).
	b.run(t, "the console catalog", chromedp.Navigate(b.url("/console/catalog")), chromedp.WaitVisible(chromedp.CSS("#rewards")))
	b.shots2(t, "console-catalog")
	b.run(t, "a partner's page", chromedp.Navigate(b.url(fmt.Sprintf("/console/partners/%d", d.airlineID))), chromedp.WaitVisible(chromedp.CSS("#contracts-table")))
	b.shots2(t, "console-partner-seeded")
	b.run(t, "console sign-out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
}

// browserPassword is every test account's password.
const browserPassword = "correct horse battery staple"

// browserData is what seedBrowserData made, for the assertions.
type browserData struct {
	month                         string // the closed period, YYYY-MM (last month, UTC)
	memberID                      int64
	memberEmail, memberName       string
	memberCard                    string
	memberPoints                  int64
	rewardID                      int64
	rewardTitle                   string
	rewardPrice                   int64
	staffEmail                    string
	airlineID                     int64
	airlineIssued                 int64 // points the airline issued last month
	bankAtAirline                 int64 // bank-issued points redeemed at the airline last month
	members, partners             int
	hotelID, bankID, restaurantID int64

	ledger  *ledger.Service  // on the real clock once seeding is done
	catalog *catalog.Service // on the real clock once seeding is done
}

// seedBrowserData builds a small coalition through the domain services: four
// partners with contracts and earn rules, members with points earned last
// month (and a few this month) and burns at other partners last month (so the
// liability matrix has cells), catalog rewards, and an admin.
//
// Last month's movements are posted by services whose clock is set on the
// 15th of last month, so their posted_at falls in the period the console
// closes. The hub process itself runs on the real clock.
func seedBrowserData(t *testing.T, db *gorm.DB) browserData {
	t.Helper()
	ctx := context.Background()
	wall := time.Now().UTC()
	lastMonth := time.Date(wall.Year(), wall.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	clock := lastMonth.AddDate(0, 0, 14).Add(9 * time.Hour)
	seeding := true
	now := func() time.Time {
		if !seeding {
			return time.Now()
		}
		return clock
	}

	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	reg := partners.NewService(db, now)
	acc, err := access.NewService(db, reg, access.Options{Issuer: "http://127.0.0.1", SecretsKey: key, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.NewService(db, now)
	mem := members.NewService(db, led, now)
	consent := members.NewBurnConsent(db, now, members.DefaultConsentPolicy)
	rs := rules.NewService(db, now)
	txs := points.NewTransactions(db, led, mem, consent, reg, rs, now)
	cat := catalog.NewService(db, led, mem, reg, now)

	partner := func(name string, sector partners.Sector, pointsPerEUR string) int64 {
		t.Helper()
		p, err := reg.CreatePartner(ctx, partners.NewPartner{Name: name, Sector: sector, SettlementCurrency: "EUR", TimeZone: "UTC"})
		if err != nil {
			t.Fatalf("create partner %s: %v", name, err)
		}
		if _, err := reg.SetPartnerStatus(ctx, p.ID, partners.StatusActive); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: clock.AddDate(0, 0, -10),
			Earn: true, Burn: true, IssuePrice: decimal.RequireFromString("0.008"),
			RedemptionRate: decimal.RequireFromString("0.006"), Billing: partners.BillingPostpaid}, "staff:seed"); err != nil {
			t.Fatalf("contract of %s: %v", name, err)
		}
		if _, err := rs.PublishRule(ctx, p.ID, rules.RuleDefinition{Description: pointsPerEUR + " points per EUR",
			Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Rate: decimal.RequireFromString(pointsPerEUR),
				Currency: "EUR", PerMinor: 100}}}, clock, "staff:seed"); err != nil {
			t.Fatalf("earn rule of %s: %v", name, err)
		}
		return p.ID
	}
	d := browserData{month: lastMonth.Format("2006-01"), staffEmail: "ops@coalition.example"}
	d.airlineID = partner("Sky Air", partners.SectorAirline, "2")
	d.hotelID = partner("Grand Hotels", partners.SectorHotel, "1")
	d.bankID = partner("Harbour Bank", partners.SectorBank, "1")
	d.restaurantID = partner("Olive Kitchen", partners.SectorRestaurant, "1")
	d.partners = 4
	d.bankAtAirline = 6_500

	enrol := func(email, given, family string) int64 {
		t.Helper()
		m, _, err := mem.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
			Profile: members.Profile{Email: email, GivenName: given, FamilyName: family}, Actor: "seed"})
		if err != nil {
			t.Fatalf("enrol %s: %v", email, err)
		}
		if err := mem.SetPassword(ctx, m.ID, browserPassword); err != nil {
			t.Fatal(err)
		}
		d.members++
		return m.ID
	}
	n := 0
	earn := func(partnerID, memberID, minor int64) int64 {
		t.Helper()
		n++
		tr, err := txs.Earn(ctx, access.Principal{PartnerID: partnerID}, ledger.Idempotency{Scope: fmt.Sprintf("partner:%d", partnerID),
			Key: fmt.Sprintf("seed-earn-%d", n)}, points.EarnInput{MemberID: memberID, Amount: money.Money{Minor: minor, Currency: "EUR"},
			OccurredAt: clock, ExternalRef: fmt.Sprintf("receipt-%d", n)})
		if err != nil {
			t.Fatalf("earn %d at partner %d: %v", minor, partnerID, err)
		}
		return int64(tr.Points)
	}
	burn := func(partnerID, memberID, pts int64) {
		t.Helper()
		n++
		code, err := consent.IssueCode(ctx, memberID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := txs.Burn(ctx, access.Principal{PartnerID: partnerID}, ledger.Idempotency{Scope: fmt.Sprintf("partner:%d", partnerID),
			Key: fmt.Sprintf("seed-burn-%d", n)}, points.BurnInput{MemberID: memberID, Points: pts, RedemptionCode: code.Code,
			Capture: true, OccurredAt: clock, ExternalRef: fmt.Sprintf("till-%d", n)}); err != nil {
			t.Fatalf("burn %d at partner %d: %v", pts, partnerID, err)
		}
	}

	// The member who uses the portal: points from the airline and the bank.
	d.memberEmail, d.memberName = "ada@example.com", "Ada Lovelace"
	d.memberID = enrol(d.memberEmail, "Ada", "Lovelace")
	if m, err := mem.Get(ctx, d.memberID); err != nil {
		t.Fatal(err)
	} else {
		d.memberCard = m.CardNumber
	}
	d.airlineIssued += earn(d.airlineID, d.memberID, 612_000) // 12,240 points
	d.memberPoints = d.airlineIssued + earn(d.bankID, d.memberID, 31_000)

	// Other members earn at one partner and spend at another.
	others := []struct {
		email, given, family string
		earnAt, minor        int64
		burnAt, burn         int64
	}{
		{"grace@example.com", "Grace", "Hopper", d.airlineID, 415_000, d.hotelID, 5_000},
		{"alan@example.com", "Alan", "Turing", d.bankID, 980_000, d.airlineID, d.bankAtAirline},
		{"katherine@example.com", "Katherine", "Johnson", d.hotelID, 240_000, d.restaurantID, 1_200},
		{"edsger@example.com", "Edsger", "Dijkstra", d.airlineID, 150_000, d.restaurantID, 2_000},
		{"barbara@example.com", "Barbara", "Liskov", d.restaurantID, 88_000, d.hotelID, 400},
	}
	var otherIDs []int64
	for _, o := range others {
		id := enrol(o.email, o.given, o.family)
		otherIDs = append(otherIDs, id)
		pts := earn(o.earnAt, id, o.minor)
		if o.earnAt == d.airlineID {
			d.airlineIssued += pts
		}
		burn(o.burnAt, id, o.burn)
	}

	// Rewards at partners other than the ones Ada earned at.
	night, err := cat.CreateReward(ctx, d.hotelID, catalog.RewardInput{Title: "Weekend night in Lisbon", Description: "One night for two with breakfast at any Grand Hotels property.",
		Category: catalog.CategoryHotelNight, PricePoints: 8_000, Value: money.Money{Minor: 14_000, Currency: "EUR"}, Fulfilment: catalog.FulfilmentAsync})
	if err != nil {
		t.Fatalf("create reward: %v", err)
	}
	d.rewardID, d.rewardTitle, d.rewardPrice = night.ID, night.Title, 8_000
	for _, r := range []catalog.RewardInput{
		{Title: "Dinner for two", Description: "A three-course dinner at Olive Kitchen.", Category: catalog.CategoryDining,
			PricePoints: 5_000, Value: money.Money{Minor: 8_000, Currency: "EUR"}, Fulfilment: catalog.FulfilmentAsync},
		{Title: "Business class upgrade", Description: "Upgrade one Sky Air flight in Europe.", Category: catalog.CategoryFlight,
			PricePoints: 40_000, Value: money.Money{Minor: 30_000, Currency: "EUR"}, Fulfilment: catalog.FulfilmentAsync},
	} {
		partnerID := d.restaurantID
		if r.Category == catalog.CategoryFlight {
			partnerID = d.airlineID
		}
		if _, err := cat.CreateReward(ctx, partnerID, r); err != nil {
			t.Fatalf("create reward %s: %v", r.Title, err)
		}
	}

	// Two exchange programmes, one of them linked to Ada's account, so the
	// exchange page shows both the link form and the quote form.
	xch := exchange.NewService(db, led, mem, reg, acc.SecretBox(), acceptingPartner{}, now)
	miles, err := xch.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: d.airlineID, Code: "skymiles", Name: "Sky Air Miles",
		Unit: "miles", Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MinPoints: 1000, MaxPoints: 200000, FeePoints: 50,
		EndpointURL: "http://127.0.0.1:9/miles", APIKey: "browser-test"})
	if err != nil {
		t.Fatalf("create exchange programme: %v", err)
	}
	if _, err := xch.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: d.hotelID, Code: "grandstay", Name: "Grand Hotels Stay Points",
		Unit: "stay points", Out: &exchange.Ratio{From: 100, To: 50}, Increment: 100, MinPoints: 500, MaxPoints: 50000,
		EndpointURL: "http://127.0.0.1:9/stays", APIKey: "browser-test"}); err != nil {
		t.Fatalf("create exchange programme: %v", err)
	}
	if _, err := xch.Link(ctx, d.memberID, miles.ID, "SA-20931877"); err != nil {
		t.Fatalf("link exchange account: %v", err)
	}

	// A little activity this month, so the dashboard's monthly charts have bars.
	clock = wall
	earn(d.hotelID, otherIDs[0], 120_000)
	earn(d.bankID, otherIDs[1], 64_000)
	earn(d.airlineID, otherIDs[2], 210_000)

	if _, err := acc.CreateStaff(ctx, d.staffEmail, browserPassword, access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	// From here on the services read on the real clock, like the hub.
	seeding = false
	d.ledger, d.catalog = led, cat
	return d
}

// pointsText formats n the way the pages do (thousands separated by commas).
func pointsText(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// moneyText formats minor units the way the pages do ("-1,234.56 EUR").
func moneyText(minor int64, cur string) string {
	num, c, _ := strings.Cut(money.Format(minor, cur), " ")
	whole, frac, _ := strings.Cut(num, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	w := pointsText(n)
	if strings.HasPrefix(whole, "-") && n == 0 {
		w = "-0"
	}
	return w + "." + frac + " " + c
}

// screenshotDir is docs/screenshots when HUB_SCREENSHOTS=1 (to refresh the
// README's pictures), else a temporary folder: a plain test run leaves the
// work tree as it was.
func screenshotDir(t *testing.T) string {
	if os.Getenv("HUB_SCREENSHOTS") == "1" {
		dir, err := filepath.Abs(filepath.Join("..", "..", "docs", "screenshots"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}
