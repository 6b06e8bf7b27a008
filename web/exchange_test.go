package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
)

// TestExchangeHTTP drives the member flow (link, quote, confirm, read) and
// the partner's inbound exchange over HTTP against the simulator.
func TestExchangeHTTP(t *testing.T) {
	t.Parallel()
	sim := partnersim.New(partnersim.Config{APIKey: "k"})
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
	ctx := context.Background()
	p, cs := e.partnerClient("Sky Air", access.ScopeExchange)
	if _, err := e.svc.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: time.Now().AddDate(0, -1, 0), Earn: true,
		IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.Zero, Billing: partners.BillingPostpaid}, "test"); err != nil {
		t.Fatal(err)
	}
	prog, err := xs.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: p.ID, Code: "skymiles", Name: "Sky Miles", Unit: "miles",
		Out: &exchange.Ratio{From: 1000, To: 700}, In: &exchange.Ratio{From: 1000, To: 800}, Increment: 1000, MaxPoints: 90000,
		EndpointURL: simSrv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ident, _ := members.ParseIdentifier("email", "bo@example.test", 0)
	mem, _, err := m.Enrol(ctx, members.EnrolRequest{Identifier: ident, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ := e.basicToken(cs.Client.ClientID, cs.Secret, "")
	partnerToken, _ := tok["access_token"].(string)

	// Inbound: 10,000 miles → 8,000 points; a retry replays.
	in := map[string]any{"programme": "skymiles", "member_id": mem.ID, "units": 10000, "partner_transaction_id": "SKY-9"}
	code, body, _ := postJSON(t, e.srv.URL+"/v1/exchanges", partnerToken, "in-1", in)
	if code != http.StatusCreated || body["points"] != float64(8000) {
		t.Fatalf("inbound: %d %v, want 201 with 8000 points", code, body)
	}
	code, _, h := postJSON(t, e.srv.URL+"/v1/exchanges", partnerToken, "in-1", in)
	if code != http.StatusOK || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("inbound replay: %d %v", code, h)
	}
	if code, body, _ := postJSON(t, e.srv.URL+"/v1/exchanges", partnerToken, "", in); code != http.StatusBadRequest {
		t.Errorf("inbound without Idempotency-Key: %d %v, want 400", code, body)
	}

	// Member: link, quote, confirm, read.
	memberToken := signedInToken(t, m, e.acc, mem.ID)
	if code, body, _ := e.call(http.MethodPut, "/v1/me/exchange-links/"+strconv.FormatInt(prog.ID, 10), memberToken,
		map[string]string{"account": "XBAD"}); code != http.StatusUnprocessableEntity || body["code"] != "exchange_link_rejected" {
		t.Fatalf("link of a bad account: %d %v", code, body)
	}
	if code, body, _ := e.call(http.MethodPut, "/v1/me/exchange-links/"+strconv.FormatInt(prog.ID, 10), memberToken,
		map[string]string{"account": "FF1"}); code != http.StatusOK {
		t.Fatalf("link: %d %v", code, body)
	}
	code, q, _ := e.call(http.MethodPost, "/v1/me/exchange-quotes", memberToken, map[string]any{"programme_id": prog.ID, "points": 5000})
	if code != http.StatusCreated || q["units"] != float64(3500) {
		t.Fatalf("quote: %d %v, want 201 with 3500 units", code, q)
	}
	code, x, _ := e.call(http.MethodPost, "/v1/me/exchanges", memberToken, map[string]any{"quote_id": q["id"]})
	if code != http.StatusAccepted || x["status"] != "processing" {
		t.Fatalf("confirm: %d %v", code, x)
	}
	id := int64(x["id"].(float64))
	if err := xs.Deliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	code, got, _ := e.call(http.MethodGet, "/v1/me/exchanges/"+strconv.FormatInt(id, 10), memberToken, nil)
	if code != http.StatusOK || got["status"] != "completed" {
		t.Fatalf("get: %d %v, want completed", code, got)
	}
	if sim.Balance("FF1") != 3500 {
		t.Errorf("simulator credited %d miles, want 3500", sim.Balance("FF1"))
	}
	code, list, _ := e.call(http.MethodGet, "/v1/me/exchanges", memberToken, nil)
	if items, _ := list["items"].([]any); code != http.StatusOK || len(items) != 2 {
		t.Errorf("list: %d %v, want the inbound and the outbound exchange", code, list)
	}
	// The partner reverses the credit: the points come back.
	code, rev, _ := postJSON(t, e.srv.URL+"/v1/outbound-exchanges/"+x["public_id"].(string)+"/reversal", partnerToken, "",
		map[string]string{"reason": "cancelled"})
	if code != http.StatusOK || rev["status"] != "reversed" {
		t.Fatalf("reversal: %d %v", code, rev)
	}
	b, _ := l.Balance(ctx, mem.ID)
	if b.Total != 8000 {
		t.Errorf("balance %d after reversal, want 8000", b.Total)
	}
	rep, err := ledger.Audit(ctx, e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		t.Fatalf("audit: %v %+v", err, rep)
	}
}

func postJSON(t *testing.T, url, token, idem string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

// A partner's completion callback for an outbound exchange whose points hold
// is no longer active (here voided directly, as a clawback can) answers 409
// hold_not_active as the document says, through the contract-checking
// client, and leaves the exchange pending with nothing taken.
func TestOutboundCompletionWithoutActiveHoldIsHoldNotActive(t *testing.T) {
	t.Parallel()
	sim := partnersim.New(partnersim.Config{APIKey: "k", PendingPolls: 1000})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	var xs *exchange.Service
	var l *ledger.Service
	var m *members.Service
	e := newContractEnv(t, func(d *Deps) {
		l = ledger.NewService(d.DB, time.Now)
		m = members.NewService(d.DB, l, time.Now)
		xs = exchange.NewService(d.DB, l, m, d.Partners, d.Access.SecretBox(), exchange.NewHTTPPartner(2*time.Second), time.Now)
		d.Ledger, d.Members, d.Exchange = l, m, xs
	})
	ctx := context.Background()
	p, cs := e.partnerClient("Sky Air", access.ScopeExchange)
	if _, err := e.svc.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: time.Now().AddDate(0, -1, 0), Earn: true,
		IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.Zero, Billing: partners.BillingPostpaid}, "test"); err != nil {
		t.Fatal(err)
	}
	prog, err := xs.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: p.ID, Code: "skymiles", Name: "Sky Miles", Unit: "miles",
		Out: &exchange.Ratio{From: 1000, To: 700}, In: &exchange.Ratio{From: 1000, To: 800}, Increment: 1000, MaxPoints: 90000,
		EndpointURL: simSrv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ident, _ := members.ParseIdentifier("email", "cy@example.test", 0)
	mem, _, err := m.Enrol(ctx, members.EnrolRequest{Identifier: ident, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ := e.basicToken(cs.Client.ClientID, cs.Secret, "")
	partnerToken, _ := tok["access_token"].(string)
	if code, body, _ := postJSON(t, e.srv.URL+"/v1/exchanges", partnerToken, "in-1",
		map[string]any{"programme": "skymiles", "member_id": mem.ID, "units": 10000, "partner_transaction_id": "SKY-1"}); code != http.StatusCreated {
		t.Fatalf("inbound: %d %v", code, body)
	}
	mt := signedInToken(t, m, e.acc, mem.ID)
	e.expect(http.StatusOK, "", http.MethodPut, "/v1/me/exchange-links/"+strconv.FormatInt(prog.ID, 10), mt,
		map[string]string{"account": "FF1"})
	q := e.expect(http.StatusCreated, "", http.MethodPost, "/v1/me/exchange-quotes", mt,
		map[string]any{"programme_id": prog.ID, "points": 5000})
	x := e.expect(http.StatusAccepted, "", http.MethodPost, "/v1/me/exchanges", mt, map[string]any{"quote_id": q["id"]})
	id := int64(x["id"].(float64))
	if err := xs.Deliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	pending, err := xs.Get(ctx, id)
	if err != nil || pending.Status != exchange.StatusPending || pending.HoldID == 0 {
		t.Fatalf("after delivery: %+v (%v), want a pending exchange with a hold", pending, err)
	}
	if _, err := l.Void(ctx, ledger.VoidRequest{Idem: ledger.Idempotency{Scope: "test", Key: "void-exchange-hold"}, HoldID: pending.HoldID}); err != nil {
		t.Fatal(err)
	}
	before, _ := l.Balance(ctx, mem.ID)

	e.expect(http.StatusConflict, "hold_not_active", http.MethodPost, "/v1/outbound-exchanges/"+pending.PublicID+"/status", partnerToken,
		map[string]string{"status": "completed", "partner_ref": "SKY-CREDIT-1"})
	after, err := xs.Get(ctx, id)
	if err != nil || after.Status != exchange.StatusPending || after.TransactionID != 0 {
		t.Errorf("after the refused completion: %+v (%v), want the exchange still pending with no transaction", after, err)
	}
	if b, _ := l.Balance(ctx, mem.ID); b != before {
		t.Errorf("balance %+v after the refused completion, want %+v", b, before)
	}
}
