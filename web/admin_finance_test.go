package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/settlement"
)

// TestFinanceAPI closes a month through the real services (an airline
// issues 1000 points at 0.01; 400 of them are redeemed at a hotel, paid
// 0.008 a point less a 10% fee) and reads its result, liability roll-forward
// and journal over HTTP, figures computed by hand; then sets an account of
// the chart and sees the journal book to it.
func TestFinanceAPI(t *testing.T) {
	t.Parallel()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Now().In(berlin)
	last := time.Date(now.Year(), now.Month()-1, 10, 12, 0, 0, 0, berlin)
	month := last.Format("2006-01")
	ledgerClock := clock.New(last)
	var svc *settlement.Service
	var led *ledger.Service
	e := newContractEnv(t, func(d *Deps) {
		led = ledger.NewService(d.DB, ledgerClock.Now)
		svc = settlement.NewService(d.DB, settlement.Options{Location: berlin, BaseCurrency: "EUR", Now: time.Now})
		d.Settlement, d.Ledger = svc, led
	})
	ctx := context.Background()
	air, _ := e.partnerClient("Sky Air", access.ScopeSettlementRead)
	hotel, _ := e.partnerClient("Grand Hotels", access.ScopeSettlementRead)
	for _, c := range []struct {
		id               int64
		issue, rate, fee string
	}{{air.ID, "0.01", "0.005", "0"}, {hotel.ID, "0.02", "0.008", "0.1"}} {
		if _, err := e.svc.PublishContract(ctx, c.id, partners.NewContract{EffectiveFrom: last.AddDate(0, 0, -5), Earn: true, Burn: true,
			IssuePrice: decimal.RequireFromString(c.issue), RedemptionRate: decimal.RequireFromString(c.rate),
			OperatorFeeRate: decimal.RequireFromString(c.fee), Billing: partners.BillingPostpaid}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := led.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "t", Key: "e1"}, MemberID: 7, PartnerID: air.ID,
		Points: 1000, OccurredAt: last, ExternalRef: "A-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := led.Burn(ctx, ledger.BurnRequest{Idem: ledger.Idempotency{Scope: "t", Key: "b1"}, MemberID: 7, PartnerID: hotel.ID,
		Points: 400, OccurredAt: last, ExternalRef: "H-1"}); err != nil {
		t.Fatal(err)
	}
	fin := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)
	base := "/v1/admin/settlement/periods/" + month
	e.expect(404, "period_not_found", http.MethodGet, base+"/result", support, nil)
	if _, err := svc.Period(ctx, month); err != nil {
		t.Fatal(err)
	}
	e.expect(409, "period_not_closed", http.MethodGet, base+"/liability", support, nil)
	e.expect(400, "invalid_request", http.MethodGet, "/v1/admin/settlement/periods/2026-13/result", support, nil)
	if _, err := svc.Close(ctx, month, "test", nil); err != nil {
		t.Fatal(err)
	}

	res := e.expect(200, "", http.MethodGet, base+"/result", support, nil)
	total := res["total"].(map[string]any)
	// Revenue: 400 redeemed × 0.01 released = 4.00; cost 400 × 0.008 =
	// 3.20; fee 0.32: 1.12.
	for k, want := range map[string]float64{"redemption_revenue": 400, "redemption_cost": -320, "fees": 32, "result": 112,
		"issue_charges": 1000, "liability_change": 600, "billing": 712} {
		if total[k] != want {
			t.Errorf("total %s = %v; want %v (%v)", k, total[k], want, total)
		}
	}
	ps := res["partners"].([]any)
	if len(ps) != 2 || ps[0].(map[string]any)["local"].(map[string]any)["result"] != float64(400) ||
		ps[1].(map[string]any)["local"].(map[string]any)["result"] != float64(-288) {
		t.Errorf("partners %v; want the airline +4.00, the hotel -2.88", ps)
	}
	liab := e.expect(200, "", http.MethodGet, base+"/liability", support, nil)
	lt := liab["total"].(map[string]any)["points"].(map[string]any)
	if lt["opening"] != float64(0) || lt["issued"] != float64(1000) || lt["redeemed"] != float64(-400) || lt["closing"] != float64(600) {
		t.Errorf("liability points %v; want 0 + 1000 − 400 = 600", lt)
	}
	if v := liab["total"].(map[string]any)["base"].(map[string]any); v["closing"] != float64(600) || v["rounding"] != float64(0) {
		t.Errorf("liability value %v; want 6.00, no rounding", v)
	}

	j := e.expect(200, "", http.MethodGet, base+"/journal", support, nil)
	lines := j["data"].([]any)
	var debit, credit float64
	var got []string
	for _, l := range lines {
		m := l.(map[string]any)
		debit += m["debit"].(float64)
		credit += m["credit"].(float64)
		got = append(got, fmt.Sprintf("%s %v/%v", m["account"], m["debit"], m["credit"]))
	}
	want := []string{"1410 1000/0", "0990 0/1000", "0990 400/0", "8400 0/400", "3400 320/0", "1410 0/320", "1410 32/0", "8430 0/32"}
	if debit != credit || !slices.Equal(got, want) {
		t.Errorf("journal %v (debits %v, credits %v); want %v, balanced", got, debit, credit, want)
	}
	code, csvBody, h := e.raw(http.MethodGet, base+"/journal?format=csv", support, "", "")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(csvBody, ",8400,Revenue from redeemed points,redemption_revenue,,4.00,EUR,") {
		t.Errorf("journal CSV: %d %q", code, csvBody)
	}
	code, dv, h := e.raw(http.MethodGet, base+"/journal?format=datev&consultant=4711&client=42", support, "", "")
	if code != 200 || !strings.Contains(h.Get("Content-Type"), "windows-1252") || !strings.HasPrefix(dv, `"EXTF";700;21;"Buchungsstapel";13;`) ||
		!strings.Contains(dv, ";4711;42;") || !strings.Contains(dv, "\r\n4,00;\"S\";\"EUR\";;;\"\";\"0990\";\"8400\";") {
		t.Errorf("DATEV: %d %q", code, dv)
	}
	if code, body, _ := e.send(http.MethodGet, base+"/journal?format=datev&consultant=abc", support, nil); code != 400 ||
		!slices.Contains(fieldErrors(t, body), "consultant") {
		t.Errorf("DATEV with a bad consultant: %d %v; want 400 naming consultant", code, body)
	}

	// The chart of accounts: finance sets one, support may not, bad input names its field.
	accts := items(t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/accounts", support, nil))
	if len(accts) != len(settlement.DefaultAccounts) || accts[0]["default"] != true {
		t.Errorf("accounts %v; want the defaults", accts)
	}
	e.expect(403, "forbidden", http.MethodPut, "/v1/admin/settlement/accounts/redemption_revenue", support, map[string]any{"number": "4400", "name": "x"})
	for field, body := range map[string]map[string]any{
		"number": {"number": "44a", "name": "Revenue"}, "name": {"number": "4400", "name": " "}} {
		if code, out, _ := e.send(http.MethodPut, "/v1/admin/settlement/accounts/redemption_revenue", fin, body); code != 400 ||
			!slices.Contains(fieldErrors(t, out), field) {
			t.Errorf("bad %s: %d %v; want 400 naming it", field, code, out)
		}
	}
	if code, out, _ := e.send(http.MethodPut, "/v1/admin/settlement/accounts/nonsense", fin, map[string]any{"number": "1", "name": "x"}); code != 400 ||
		!slices.Contains(fieldErrors(t, out), "posting_kind") {
		t.Errorf("unknown kind: %d %v; want 400 naming posting_kind", code, out)
	}
	set := e.expect(200, "", http.MethodPut, "/v1/admin/settlement/accounts/redemption_revenue", fin, map[string]any{"number": "4400", "name": "Erloese Einloesungen"})
	if set["number"] != "4400" || set["default"] != false || set["updated_by"] == "" {
		t.Errorf("set account %v", set)
	}
	code, csvBody, _ = e.raw(http.MethodGet, base+"/journal?format=csv", support, "", "")
	if code != 200 || !strings.Contains(csvBody, ",4400,Erloese Einloesungen,redemption_revenue,,4.00,EUR,") {
		t.Errorf("journal CSV after setting the account: %q", csvBody)
	}
}
