package catalog_test

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/rules"
)

// A member earns on a flight and on card spend, then redeems a free night
// at the hotel chain: the capture is a redemption at the hotel, attributed
// to the airline's and the bank's lots.
func TestEarnAtAirlineAndBankRedeemHotelNight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	bank := e.partner("Union Bank", partners.SectorBank, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	for _, p := range []partners.Partner{airline, bank} {
		def := rules.RuleDefinition{Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit,
			Currency: "EUR", Rate: decimal.NewFromInt(1), PerMinor: 100}}}
		if _, err := e.rules.PublishRule(e.ctx, p.ID, def, t0, "staff:test"); err != nil {
			t.Fatal(err)
		}
	}
	m := e.member(0, 0)
	earn := func(p partners.Partner, minor int64, ref string) {
		t.Helper()
		tr, err := e.tx.Earn(e.ctx, access.Principal{PartnerID: p.ID},
			ledger.Idempotency{Scope: fmt.Sprintf("partner:%d", p.ID), Key: ref},
			points.EarnInput{MemberID: m.ID, Amount: money.Money{Minor: minor, Currency: "EUR"}, OccurredAt: e.clock.Now(), ExternalRef: ref})
		if err != nil {
			t.Fatalf("earn at %s: %v", p.Name, err)
		}
		if tr.PartnerID != p.ID {
			t.Fatalf("earn %+v; want issued by %s", tr, p.Name)
		}
	}
	earn(airline, 900000, "PNR-ABC123") // a EUR 9,000 long-haul fare: 9000 points
	earn(bank, 700000, "CARD-2026-05")  // EUR 7,000 of card spend: 7000 points
	e.wantBalance(m.ID, 16000, 0)

	night := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](10) })
	offers, _, err := e.svc.Browse(e.ctx, m.ID, catalog.BrowseQuery{Affordable: true, PartnerID: hotel.ID})
	if err != nil || len(offers) != 1 || offers[0].ID != night.ID {
		t.Fatalf("affordable hotel rewards %+v, %v; want the free night", offers, err)
	}
	o, err := e.svc.PlaceOrder(e.ctx, m.ID, "night-1", catalog.OrderInput{RewardID: night.ID, ServiceDate: "2026-06-12"})
	if err != nil {
		t.Fatal(err)
	}
	e.wantBalance(m.ID, 16000, 15000)
	o, err = e.svc.Fulfil(e.ctx, hotel.ID, o.ID, "CONF-88213")
	if err != nil {
		t.Fatal(err)
	}
	e.wantBalance(m.ID, 1000, 0)
	tr, err := e.ledger.Get(e.ctx, o.CaptureTransactionID)
	if err != nil {
		t.Fatal(err)
	}
	byIssuer := map[int64]ledger.Points{}
	for _, c := range tr.Consumptions {
		byIssuer[c.IssuerPartnerID] += c.Points
	}
	if tr.PartnerID != hotel.ID || byIssuer[airline.ID]+byIssuer[bank.ID] != 15000 || byIssuer[airline.ID] == 0 || byIssuer[bank.ID] == 0 {
		t.Fatalf("capture at partner %d consumed %v; want 15000 at the hotel from airline and bank lots", tr.PartnerID, byIssuer)
	}
	// The hotel sees the redemption among its transactions, like a POS burn.
	list, _, err := e.tx.List(e.ctx, access.Principal{PartnerID: hotel.ID}, ledger.Filter{})
	if err != nil || len(list) != 1 || list[0].ID != tr.ID {
		t.Fatalf("hotel's transactions %+v, %v; want the capture", list, err)
	}
	e.audit()
}
