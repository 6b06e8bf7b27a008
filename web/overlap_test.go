package web

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/partners"
)

// TestCategoryOverlap: a second supermarket in DE is 409 category_overlap
// naming the active one, through the admin API, for the partner and for its
// contract, unless the override is sent; each override is in the audit log.
func TestCategoryOverlap(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	staff := e.staffToken()
	create := func(name, market, category string, override bool) (int, map[string]any) {
		return e.call("POST", "/v1/admin/partners", staff, map[string]any{"name": name, "sector": "retail",
			"settlement_currency": "EUR", "time_zone": "Europe/Berlin", "market": market, "category": category,
			"override_overlap": override})
	}
	first := e.must(201, "POST", "/v1/admin/partners", staff, map[string]any{"name": "Frische Markt", "sector": "retail",
		"settlement_currency": "EUR", "time_zone": "Europe/Berlin", "market": "de", "category": "Supermarket"})
	if first["market"] != "DE" || first["category"] != "supermarket" {
		t.Fatalf("partner %v: want market DE, category supermarket", first)
	}
	firstID := int64(first["id"].(float64))
	// Onboarding partners compete with nobody yet.
	if code, body := create("Spar Mit", "DE", "supermarket", false); code != 201 {
		t.Fatalf("overlap with an onboarding partner: %d %v", code, body)
	}
	if _, err := e.reg.SetPartnerStatus(e.ctx, firstID, partners.StatusActive); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, market, category string
		conflict               bool
	}{
		{"Billig Markt", "DE", "supermarket", true},
		{"Alles Retail", "DE", "", true},             // the whole sector overlaps
		{"Marché Frais", "FR", "supermarket", false}, // another market
		{"Buch Haus", "DE", "books", false},          // another category
		{"Nowhere Shop", "", "supermarket", false},   // no market
	}
	for _, c := range cases {
		code, body := create(c.name, c.market, c.category, false)
		if c.conflict && (code != 409 || body["code"] != "category_overlap" || !strings.Contains(fmt.Sprint(body["detail"]), "Frische Markt")) {
			t.Errorf("%s: %d %v; want 409 category_overlap naming Frische Markt", c.name, code, body)
		}
		if !c.conflict && code != 201 {
			t.Errorf("%s: %d %v; want 201", c.name, code, body)
		}
	}
	over := e.must(201, "POST", "/v1/admin/partners", staff, map[string]any{"name": "Billig Markt", "sector": "retail",
		"settlement_currency": "EUR", "time_zone": "Europe/Berlin", "market": "DE", "category": "supermarket", "override_overlap": true})
	overID := int64(over["id"].(float64))
	contract := map[string]any{"effective_from": e.clock.Now().Add(24 * 3600e9).Format("2006-01-02T15:04:05Z"),
		"roles": []string{"earn"}, "issue_price": "0.01", "redemption_rate": "0.005", "billing": "postpaid"}
	path := fmt.Sprintf("/v1/admin/partners/%d/contracts", overID)
	if code, body := e.call("POST", path, staff, contract); code != 409 || body["code"] != "category_overlap" {
		t.Fatalf("contract of an overlapping partner: %d %v; want 409 category_overlap", code, body)
	}
	contract["override_overlap"] = true
	e.must(201, "POST", path, staff, contract)
	var details []string
	e.db.Raw(`SELECT detail FROM operator_audit_log WHERE action IN ('partner.create', 'contract.publish') AND outcome = 'ok'
		AND detail LIKE '%overlap overridden%' ORDER BY id`).Scan(&details)
	if len(details) != 2 || !strings.Contains(details[0], "overlaps Frische Markt") {
		t.Fatalf("audit details %q: want the partner's and the contract's overrides naming Frische Markt", details)
	}
}
