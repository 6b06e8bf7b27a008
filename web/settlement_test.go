package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// raw sends a request through the validating client and returns the raw body.
func (e *contractEnv) raw(method, path, token, contentType, body string) (int, string, http.Header) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// TestSettlementAPI drives a period through close, approval, sending and
// payment over HTTP; the partner reads its statement as JSON, CSV and PDF
// and uploads a reconciliation file that finance resolves.
func TestSettlementAPI(t *testing.T) {
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
	p, cs := e.partnerClient("Sky Air", access.ScopeSettlementRead)
	other, ocs := e.partnerClient("Other Air", access.ScopeSettlementRead)
	for _, id := range []int64{p.ID, other.ID} {
		if _, err := e.svc.PublishContract(ctx, id, partners.NewContract{EffectiveFrom: last.AddDate(0, 0, -5), Earn: true, Burn: true,
			IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.005"), Billing: partners.BillingPostpaid}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for i, pts := range []int64{1000, 2345} {
		if _, err := led.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "t", Key: fmt.Sprint("e", i)}, MemberID: 7,
			PartnerID: p.ID, Points: ledger.Points(pts), OccurredAt: last, ExternalRef: fmt.Sprint("R-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(cs access.ClientSecret) string {
		code, body, _ := e.basicToken(cs.Client.ClientID, cs.Secret, "settlement:read")
		if code != 200 {
			t.Fatalf("token: %d %v", code, body)
		}
		return body["access_token"].(string)
	}
	tok, otherTok := token(cs), token(ocs)
	fin := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)

	e.expect(403, "forbidden", http.MethodPost, "/v1/admin/settlement/periods/"+month+"/close", support, nil)
	e.expect(400, "invalid_request", http.MethodPost, "/v1/admin/settlement/periods/2026-13/close", fin, nil)
	next := now.AddDate(0, 1, 0).Format("2006-01")
	e.expect(409, "period_not_ended", http.MethodPost, "/v1/admin/settlement/periods/"+next+"/close", fin, nil)
	// Closing runs as a job (web/jobs_test.go tests the run itself): wait
	// for each run, and closing again gives the same hash.
	closeWorker(t, e.db, berlin, time.Now)
	closeRun := func() map[string]any {
		run := e.expect(202, "", http.MethodPost, "/v1/admin/settlement/periods/"+month+"/close", fin, nil)
		done := awaitRun(t, func() map[string]any {
			return e.expect(200, "", http.MethodGet, "/v1/admin/jobs/runs/"+idOf(t, run), support, nil)
		})
		if done["state"] != "succeeded" {
			t.Fatalf("close run %v; want succeeded", done)
		}
		return done["result"].(map[string]any)
	}
	period, again := closeRun(), closeRun()
	if period["status"] != "closed" || period["report_sha256"] != again["report_sha256"] {
		t.Fatalf("close twice: %v / %v; want closed with the same hash", period, again)
	}
	rep := e.expect(200, "", http.MethodGet, "/v1/admin/settlement/periods/"+month+"/report", support, nil)
	if out := jsonNumAny(rep["outstanding"]); !strings.Contains(out, `"points":3345`) || !strings.Contains(out, `"minor":3345`) {
		t.Errorf("report outstanding %s; want 3345 points worth 33.45 EUR", out)
	}

	list := e.expect(200, "", http.MethodGet, "/v1/admin/settlement/statements?period="+month+"&partner_id="+itoa(p.ID), support, nil)
	sts := items(t, list)
	if len(sts) != 1 || sts[0]["status"] != "draft" {
		t.Fatalf("admin statements %v; want one draft", sts)
	}
	sid := idOf(t, sts[0])
	if net := sts[0]["net"].(map[string]any); net["minor"] != float64(-3345) || net["currency"] != "EUR" {
		t.Errorf("net %v; want -3345 EUR (3345 points at 0.01)", net)
	}
	// Not visible to the partner until sent.
	if got := items(t, e.expect(200, "", http.MethodGet, "/v1/statements", tok, nil)); len(got) != 0 {
		t.Errorf("partner sees %d statements before sending; want 0", len(got))
	}
	e.expect(404, "statement_not_found", http.MethodGet, "/v1/statements/"+sid, tok, nil)
	e.expect(409, "statement_state", http.MethodPost, "/v1/admin/settlement/statements/"+sid+"/send", fin, nil)
	// Four eyes: the finance user who closed the period may not approve.
	if refused := e.expect(403, "four_eyes", http.MethodPost, "/v1/admin/settlement/statements/"+sid+"/approve", fin, nil); !strings.Contains(fmt.Sprint(refused["detail"]), "closed its period") {
		t.Errorf("four-eyes refusal %v; want a detail naming the close", refused)
	}
	fin2 := e.login("second@hub.test", access.RoleFinance)
	e.expect(409, "billing_details_missing", http.MethodPost, "/v1/admin/settlement/statements/"+sid+"/approve", fin2, nil)
	billingAPI(e, p.ID)
	e.expect(200, "", http.MethodPost, "/v1/admin/settlement/statements/"+sid+"/approve", fin2, nil)
	inv := e.expect(200, "", http.MethodGet, "/v1/admin/settlement/statements/"+sid+"/invoice", support, nil)
	// 33.45 EUR owed by the partner, 19 % tax = 6.3555 → 6.36 (half-even): 39.81.
	if inv["kind"] != "invoice" || jsonNumAny(inv["total"]) != `{"currency":"EUR","minor":3981}` {
		t.Errorf("invoice %v; want an invoice of 39.81 EUR", inv)
	}
	sent := e.expect(200, "", http.MethodPost, "/v1/admin/settlement/statements/"+sid+"/send", fin, nil)
	if sent["status"] != "sent" {
		t.Fatalf("send: %v", sent)
	}
	got := items(t, e.expect(200, "", http.MethodGet, "/v1/statements", tok, nil))
	if len(got) != 1 || idOf(t, got[0]) != sid {
		t.Fatalf("partner statements %v; want the sent one", got)
	}
	e.expect(404, "statement_not_found", http.MethodGet, "/v1/statements/"+sid, otherTok, nil)
	code, csvBody, h := e.raw(http.MethodGet, "/v1/statements/"+sid+"?format=csv", tok, "", "")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(csvBody, "issued") ||
		!strings.Contains(csvBody, ",net,from_partner,") || !strings.Contains(csvBody, "-33.45") {
		t.Errorf("CSV: %d %q", code, csvBody)
	}
	code, pdf, h := e.raw(http.MethodGet, "/v1/statements/"+sid+"?format=pdf", tok, "", "")
	if code != 200 || h.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf, "%PDF-") || !strings.Contains(pdf, "%%EOF") {
		t.Errorf("PDF: %d %q...", code, pdf[:min(len(pdf), 20)])
	}
	code, pdf, h = e.raw(http.MethodGet, "/v1/statements/"+sid+"/invoice?format=pdf", tok, "", "")
	if code != 200 || h.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf, "%PDF-") {
		t.Errorf("partner's invoice PDF: %d %q...", code, pdf[:min(len(pdf), 20)])
	}
	paymentsAPI(t, e, sid, fin)
	linesAPI(t, e, sid, tok)

	// Reconciliation: the partner's file has R-0 right, R-1 with another amount, and a line
	// the hub does not know, plus one malformed line.
	file := "external_ref,type,points\nR-0,earn,1000\nR-1,earn,2300\nR-9,earn,5\nR-x,earn,lots\n"
	code, body, _ := e.raw(http.MethodPost, "/v1/statements/"+month+"/reconciliation", tok, "text/csv", file)
	if code != 202 || !strings.Contains(body, `"malformed":1`) || !strings.Contains(body, `"lines":4`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	var up struct{ ID int64 }
	_ = jsonUnmarshal(body, &up)
	if _, err := svc.Match(ctx, up.ID); err != nil { // what the job does
		t.Fatal(err)
	}
	r := e.expect(200, "", http.MethodGet, "/v1/reconciliations/"+itoa(up.ID), tok, nil)
	if r["matched"] != float64(1) || r["mismatched"] != float64(1) || r["missing_in_hub"] != float64(1) || r["missing_in_file"] != float64(0) {
		t.Fatalf("reconciliation %v; want 1 matched, 1 mismatch, 1 missing in hub", r)
	}
	e.expect(404, "reconciliation_not_found", http.MethodGet, "/v1/reconciliations/"+itoa(up.ID), otherTok, nil)
	errs := items(t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/reconciliations/"+itoa(up.ID)+"/errors", support, nil))
	if len(errs) != 1 || errs[0]["line_no"] != float64(5) {
		t.Errorf("malformed lines %v; want line 5", errs)
	}
	lines := items(t, e.expect(200, "", http.MethodGet, "/v1/admin/settlement/reconciliations/"+itoa(up.ID)+"/lines?outcome=amount_mismatch", support, nil))
	if len(lines) != 1 || lines[0]["external_ref"] != "R-1" || lines[0]["file_points"] != float64(2300) || lines[0]["hub_points"] != float64(2345) {
		t.Fatalf("mismatch lines %v", lines)
	}
	res := e.expect(200, "", http.MethodPost, "/v1/admin/settlement/reconciliation-lines/"+idOf(t, lines[0])+"/resolve", fin,
		map[string]any{"action": "accept", "note": "partner's figure is right"})
	if res["resolution"] != "accepted" || res["adjustment_id"] == nil {
		t.Errorf("accept: %v", res)
	}
	e.expect(409, "already_resolved", http.MethodPost, "/v1/admin/settlement/reconciliation-lines/"+idOf(t, lines[0])+"/resolve", fin,
		map[string]any{"action": "dispute", "note": "x"})
	e.expect(400, "invalid_request", http.MethodPut, "/v1/admin/settlement/periods/"+month+"/rates", fin,
		map[string]any{"from": "USD", "to": "EUR", "rate": "zero", "source": "x"})
	e.expect(409, "period_closed", http.MethodPut, "/v1/admin/settlement/periods/"+month+"/rates", fin,
		map[string]any{"from": "USD", "to": "EUR", "rate": "0.9", "source": "ECB"})
	// Money adjustments are idempotent under Idempotency-Key.
	adj := map[string]any{"partner_id": p.ID, "amount": map[string]any{"minor": -120, "currency": "EUR"}, "reason": "late fee",
		"corrects": map[string]any{"statement_id": mustInt(t, sid), "line_no": 1}}
	const adjPath = "/v1/admin/settlement/adjustments"
	var before int64
	e.db.Raw(`SELECT count(*) FROM settlement_adjustments`).Scan(&before)
	if code, body, _ := e.sendKey(http.MethodPost, adjPath, fin, "", adj); code != 400 || !slices.Contains(fieldErrors(t, body), "Idempotency-Key") {
		t.Fatalf("adjustment without a key: %d %v; want 400 naming Idempotency-Key", code, body)
	}
	c1, first, h1 := e.sendKey(http.MethodPost, adjPath, fin, "adj-1", adj)
	if c1 != 201 || h1.Get("Idempotent-Replayed") != "" {
		t.Fatalf("adjustment: %d %v; want 201", c1, first)
	}
	c2, again, h2 := e.sendKey(http.MethodPost, adjPath, fin, "adj-1", adj)
	if c2 != 201 || again["id"] != first["id"] || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed adjustment: %d %v (replayed %q); want 201, adjustment %v, Idempotent-Replayed: true", c2, again, h2.Get("Idempotent-Replayed"), first["id"])
	}
	adj["reason"] = "another fee"
	if code, body, _ := e.sendKey(http.MethodPost, adjPath, fin, "adj-1", adj); code != 409 || body["code"] != "idempotency_mismatch" {
		t.Fatalf("same key, other adjustment: %d %v; want 409 idempotency_mismatch", code, body)
	}
	var after int64
	e.db.Raw(`SELECT count(*) FROM settlement_adjustments`).Scan(&after)
	if after-before != 1 {
		t.Fatalf("%d adjustments recorded; want 1 (the replay and the refusals record none)", after-before)
	}
	c3, adjBody, _ := e.sendKey(http.MethodPost, adjPath, fin, "adj-2", map[string]any{"partner_id": other.ID,
		"amount": map[string]any{"minor": 5, "currency": "EUR"}, "reason": "x", "corrects": map[string]any{"statement_id": mustInt(t, sid), "line_no": 1}})
	if c3 != 422 || adjBody["code"] != "statement_line_not_found" {
		t.Fatalf("adjustment of another partner's line: %d %v; want 422 statement_line_not_found", c3, adjBody)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
