package web

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/settlement"
)

// billingSetup gives partners billing details through the service: legal
// entity OP, Germany, 19 % VAT, 30 days.
func billingSetup(t testing.TB, svc *settlement.Service, partnerIDs ...int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.SetLegalEntity(ctx, settlement.LegalEntity{Code: "OP", Name: "Coalition Operator GmbH", Country: "DE"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetTaxRate(ctx, settlement.TaxRate{Country: "DE", Rate: decimal.RequireFromString("0.19"), Label: "VAT"}, "test"); err != nil {
		t.Fatal(err)
	}
	for _, id := range partnerIDs {
		if _, err := svc.SetPartnerBilling(ctx, settlement.PartnerBilling{PartnerID: id, LegalEntity: "OP", LegalName: "Partner AG",
			Country: "DE", PaymentTermsDays: 30}, "test"); err != nil {
			t.Fatal(err)
		}
	}
}

// billingAPI configures the same through the admin API, checking the
// validation of each configuration route on the way.
func billingAPI(e *contractEnv, partnerID int64) {
	e.t.Helper()
	adm := e.login("boss@hub.test", access.RoleAdmin)
	fin := e.login("books@hub.test", access.RoleFinance)
	e.expect(400, "invalid_request", http.MethodPut, "/v1/admin/settlement/legal-entities/op", adm, map[string]any{"name": "x", "country": "DE"})
	e.expect(403, "forbidden", http.MethodPut, "/v1/admin/settlement/legal-entities/OP", fin, map[string]any{"name": "x", "country": "DE"})
	e.expect(200, "", http.MethodPut, "/v1/admin/settlement/legal-entities/OP", adm,
		map[string]any{"name": "Coalition Operator GmbH", "country": "DE", "vat_id": "DE123456789", "address": "Hafenstrasse 1, Hamburg"})
	e.expect(400, "invalid_request", http.MethodPut, "/v1/admin/settlement/tax-rates/DE", fin, map[string]any{"rate": "0.19", "reverse_charge": true, "label": "VAT"})
	e.expect(200, "", http.MethodPut, "/v1/admin/settlement/tax-rates/DE", fin, map[string]any{"rate": "0.19", "reverse_charge": false, "label": "VAT"})
	e.expect(200, "", http.MethodPut, "/v1/admin/settlement/tax-rates/FR", fin, map[string]any{"rate": "0", "reverse_charge": true, "label": "VAT"})
	if rates := items(e.t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/tax-rates", fin, nil)); len(rates) != 2 {
		e.t.Errorf("tax rates %v; want DE and FR", rates)
	}
	e.expect(400, "invalid_request", http.MethodPut, "/v1/admin/partners/"+itoa(partnerID)+"/billing", fin,
		map[string]any{"legal_entity": "ZZ", "legal_name": "Sky Air AG", "country": "DE", "payment_terms_days": 30})
	e.expect(200, "", http.MethodPut, "/v1/admin/partners/"+itoa(partnerID)+"/billing", fin,
		map[string]any{"legal_entity": "OP", "legal_name": "Sky Air AG", "country": "DE", "vat_id": "DE987654321", "payment_terms_days": 30})
	if b := e.expect(200, "", http.MethodGet, "/v1/admin/partners/"+itoa(partnerID)+"/billing", fin, nil); b["legal_name"] != "Sky Air AG" {
		e.t.Errorf("billing %v", b)
	}
	e.expect(200, "", http.MethodPut, "/v1/admin/settlement/approval-limits/EUR", adm, map[string]any{"below_minor": 100})
	if l := items(e.t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/approval-limits", fin, nil)); len(l) != 1 {
		e.t.Errorf("approval limits %v; want EUR", l)
	}
}

// paymentsAPI pays a sent statement of 39.81 EUR owed by the partner in two
// parts over the admin API: Idempotency-Key required and replayed, the
// balance and ageing, and paid only at zero.
func paymentsAPI(t *testing.T, e *contractEnv, sid, fin string) {
	t.Helper()
	path := "/v1/admin/settlement/statements/" + sid + "/payments"
	part := map[string]any{"amount": map[string]any{"minor": 2000, "currency": "EUR"}, "value_date": "2026-01-05", "reference": "SEPA-1"}
	if code, body, _ := e.sendKey(http.MethodPost, path, fin, "", part); code != 400 || !strings.Contains(jsonNumAny(body), "Idempotency-Key") {
		t.Fatalf("payment without a key: %d %v; want 400 naming Idempotency-Key", code, body)
	}
	code, first, _ := e.sendKey(http.MethodPost, path, fin, "pay-1", part)
	if code != 201 {
		t.Fatalf("payment: %d %v", code, first)
	}
	bal := first["balance"].(map[string]any)
	if jsonNumAny(bal["open"]) != `{"currency":"EUR","minor":1981}` || bal["status"] != "sent" || bal["direction"] != "from_partner" {
		t.Errorf("balance after 20.00 of 39.81: %v; want 19.81 open, sent", bal)
	}
	if code, _, h := e.sendKey(http.MethodPost, path, fin, "pay-1", part); code != 201 || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same payment again: %d replayed %q; want 201 replayed", code, h.Get("Idempotent-Replayed"))
	}
	other := map[string]any{"amount": map[string]any{"minor": 1, "currency": "EUR"}, "value_date": "2026-01-05", "reference": "SEPA-1"}
	if code, _, _ := e.sendKey(http.MethodPost, path, fin, "pay-1", other); code != 409 {
		t.Errorf("another payment under the same key: %d; want 409", code)
	}
	if code, body, _ := e.sendKey(http.MethodPost, path, fin, "pay-usd", map[string]any{"amount": map[string]any{"minor": 1, "currency": "USD"},
		"value_date": "2026-01-05", "reference": "x"}); code != 400 || !strings.Contains(jsonNumAny(body), "amount.currency") {
		t.Errorf("a payment in USD: %d %v; want 400 naming amount.currency", code, body)
	}
	balances := e.expect(200, "", http.MethodGet, "/v1/admin/settlement/balances", fin, nil)
	if ps := balances["partners"].([]any); len(ps) != 1 || jsonNumAny(ps[0].(map[string]any)["receivable"].(map[string]any)["total"]) != `{"currency":"EUR","minor":1981}` {
		t.Errorf("partner balances %v; want 19.81 receivable", balances["partners"])
	}
	code, last, _ := e.sendKey(http.MethodPost, path, fin, "pay-2", map[string]any{"amount": map[string]any{"minor": 1981, "currency": "EUR"},
		"value_date": "2026-01-06", "reference": "SEPA-2"})
	if code != 201 || last["balance"].(map[string]any)["status"] != "paid" {
		t.Fatalf("the rest: %d %v; want paid", code, last)
	}
	list := e.expect(200, "", http.MethodGet, path, fin, nil)
	if len(list["data"].([]any)) != 2 {
		t.Errorf("payments %v; want two", list["data"])
	}
	tr := items(t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/statements/"+sid+"/transitions", fin, nil))
	var actions []string
	for _, x := range tr {
		actions = append(actions, x["action"].(string)+":"+x["actor"].(string))
	}
	if got := strings.Join(actions, " "); got != "created:staff:money@hub.test approved:staff:second@hub.test sent:staff:money@hub.test paid:staff:money@hub.test" {
		t.Errorf("transitions %s", got)
	}
}

// linesAPI reads the partner's statement lines with their transactions, as
// JSON a page at a time and as CSV by Accept.
func linesAPI(t *testing.T, e *contractEnv, sid, tok string) {
	t.Helper()
	page := e.expect(200, "", http.MethodGet, "/v1/statements/"+sid+"/lines?limit=1", tok, nil)
	data := page["data"].([]any)
	if len(data) != 1 || page["next_cursor"] == "" {
		t.Fatalf("first page %v; want one item and a cursor", page)
	}
	first := data[0].(map[string]any)
	if first["kind"] != "issued" || first["transaction"] == nil {
		t.Errorf("first item %v; want an issued line with its transaction", first)
	}
	next := e.expect(200, "", http.MethodGet, "/v1/statements/"+sid+"/lines?limit=5&cursor="+page["next_cursor"].(string), tok, nil)
	if rest := next["data"].([]any); len(rest) != 1 || next["next_cursor"] != "" {
		t.Errorf("second page %v; want the other earn and the end", next)
	}
	e.expect(400, "invalid_request", http.MethodGet, "/v1/statements/"+sid+"/lines?cursor=x", tok, nil)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/statements/"+sid+"/lines", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/csv")
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || res.StatusCode != 200 || len(rows) != 3 || rows[0][0] != "line" || rows[1][13] != "1000" || rows[2][13] != "2345" {
		t.Errorf("lines CSV: %d %v %q; want a header and the two earns", res.StatusCode, err, body)
	}
}
