package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/apitest"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/web"
	"github.com/coalitionhub/hub/webhooks"
)

// apiClient talks JSON to a running hub; every response it receives is
// validated against the OpenAPI document.
type apiClient struct {
	t     *testing.T
	base  string
	http  *http.Client
	token string
}

type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r apiResponse) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (c *apiClient) do(method, path string, body any, headers ...string) apiResponse {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (c *apiClient) must(status int, method, path string, body any, headers ...string) apiResponse {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.Status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	return r
}

// webhookReceiver is a partner's endpoint on loopback that keeps what it gets.
type webhookReceiver struct {
	mu   sync.Mutex
	got  []received
	srv  *httptest.Server
	seen chan struct{}
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{seen: make(chan struct{}, 100)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.got = append(w.got, received{r.Header.Clone(), b})
		w.mu.Unlock()
		w.seen <- struct{}{}
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// TestPartnerQuickstart runs docs/partner-quickstart.md against a real hub
// process (API and worker), as a partner's engineer would: the operator
// creates the partner, the partner gets a token with a stock OAuth client,
// enrols, quotes, earns, burns with the member's redemption code, captures
// and voids holds, reverses, replays, and receives a signed webhook.
func TestPartnerQuickstart(t *testing.T) {
	t.Parallel()
	db, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	// The webhook receiver below is on loopback over http: allowed only with the development setting.
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, "HUB_WEBHOOK_ALLOW_LOOPBACK=1"}, "all")
	spec, err := web.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	v, err := apitest.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	httpc := &http.Client{Timeout: 2 * time.Minute, Transport: &apitest.Transport{T: t, V: v}}
	ctx := context.Background()

	// The operator's first admin (the seed does this in `make run`).
	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	ps := partners.NewService(db, nil)
	acc, err := access.NewService(db, ps, access.Options{Issuer: hub.URL, SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.CreateStaff(ctx, "ops@coalition.example", "correct horse battery", access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	op := &apiClient{t: t, base: hub.URL, http: httpc}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	op.must(200, "POST", "/v1/admin/login", map[string]string{"email": "ops@coalition.example", "password": "correct horse battery"}).decode(t, &login)
	op.token = login.AccessToken

	// Operator: partner, contract, earn rule, API client.
	var partner struct {
		ID int64 `json:"id"`
	}
	op.must(201, "POST", "/v1/admin/partners", map[string]any{"name": "Harbour Hotels", "sector": "hotel",
		"settlement_currency": "EUR", "time_zone": "Europe/Lisbon"}).decode(t, &partner)
	op.must(200, "POST", fmt.Sprintf("/v1/admin/partners/%d/status", partner.ID), map[string]any{"status": "active"})
	op.must(201, "POST", fmt.Sprintf("/v1/admin/partners/%d/contracts", partner.ID), map[string]any{
		"effective_from": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "roles": []string{"earn", "burn"},
		"issue_price": "0.0075", "redemption_rate": "0.006", "billing": "postpaid"})
	op.must(201, "POST", fmt.Sprintf("/v1/admin/partners/%d/earn-rules", partner.ID), map[string]any{
		"definition": map[string]any{"description": "1 point per EUR",
			"earn": []map[string]any{{"kind": "per_currency_unit", "rate": "1", "currency": "EUR", "per_minor": 100}}}})
	var client struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
	}
	op.must(201, "POST", fmt.Sprintf("/v1/admin/partners/%d/clients", partner.ID), map[string]any{"name": "front desk",
		"scopes": []string{"members:read", "members:write", "points:earn", "points:burn", "points:reverse"}}).decode(t, &client)
	if client.ClientID == "" || client.Secret == "" {
		t.Fatalf("client creation returned no credentials")
	}

	// 1. Token, with a stock OAuth 2.0 client.
	cc := clientcredentials.Config{ClientID: client.ClientID, ClientSecret: client.Secret, TokenURL: hub.URL + "/oauth/token",
		Scopes: []string{"members:read", "members:write", "points:earn", "points:burn", "points:reverse"}, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, httpc))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	p := &apiClient{t: t, base: hub.URL, http: httpc, token: tok.AccessToken}

	// 7 (first, so deliveries can be watched). Webhook endpoint.
	rcv := newReceiver(t)
	var hook struct {
		Secret string `json:"secret"`
	}
	p.must(201, "POST", "/v1/webhooks", map[string]any{"url": rcv.srv.URL, "events": []string{"transaction.*", "burn.captured"}}).decode(t, &hook)

	// 2. Enrol.
	var m struct {
		ID         int64  `json:"id"`
		CardNumber string `json:"card_number"`
	}
	enrol := map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "HH-778812"},
		"profile": map[string]string{"given_name": "Ana", "family_name": "Silva", "email": "ana@example.com"}}
	p.must(201, "POST", "/v1/members", enrol).decode(t, &m)
	p.must(200, "POST", "/v1/members", enrol) // idempotent by identifier
	p.must(200, "GET", "/v1/members?identifier=partner_ref:HH-778812", nil)
	p.must(200, "GET", "/v1/members?identifier=card:"+m.CardNumber, nil)
	p.must(400, "POST", "/v1/members", map[string]any{"identifier": map[string]string{"type": "card", "value": "123"}})

	// 3. Quote and earn.
	var q struct {
		Points int64 `json:"points"`
	}
	p.must(200, "POST", "/v1/earn/quote", map[string]any{"member_id": m.ID, "amount": map[string]any{"minor": 12050, "currency": "EUR"}}).decode(t, &q)
	if q.Points != 120 {
		t.Fatalf("quote: %d points, want 120 (1 per EUR, rounded down)", q.Points)
	}
	earnBody := map[string]any{"member_id": m.ID, "amount": map[string]any{"minor": 12050, "currency": "EUR"}, "external_ref": "folio-1"}
	first := p.must(201, "POST", "/v1/earn", earnBody, "Idempotency-Key", "folio-1")
	replay := p.must(201, "POST", "/v1/earn", earnBody, "Idempotency-Key", "folio-1")
	if !bytes.Equal(first.Body, replay.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, replay.Body)
	}
	conflict := p.must(409, "POST", "/v1/earn", map[string]any{"member_id": m.ID, "amount": map[string]any{"minor": 99900, "currency": "EUR"}},
		"Idempotency-Key", "folio-1")
	var prob web.Problem
	conflict.decode(t, &prob)
	if prob.Code != "idempotency_mismatch" {
		t.Fatalf("same key, different body: code %q", prob.Code)
	}
	p.must(400, "POST", "/v1/earn", earnBody) // no Idempotency-Key
	p.must(415, "POST", "/v1/earn", earnBody, "Idempotency-Key", "folio-text", "Content-Type", "text/plain")
	var earned struct {
		ID     int64 `json:"id"`
		Points int64 `json:"points"`
	}
	first.decode(t, &earned)
	p.must(201, "POST", "/v1/earn", map[string]any{"member_id": m.ID, "amount": map[string]any{"minor": 50000, "currency": "EUR"}},
		"Idempotency-Key", "folio-2")

	// 4. Burn with the member's consent: the member signs in and makes a code.
	ms := members.NewService(db, ledger.NewService(db, time.Now), time.Now)
	// The member claims the account in the portal: a sign-in email and a password.
	if _, err := ms.AddIdentifier(ctx, m.ID, members.Identifier{Type: members.IdentifierEmail, Value: "ana@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := ms.SetPassword(ctx, m.ID, "ana's long password"); err != nil {
		t.Fatal(err)
	}
	member := &apiClient{t: t, base: hub.URL, http: httpc}
	member.must(200, "POST", "/v1/me/login", map[string]string{"email": "ana@example.com", "password": "ana's long password"}).decode(t, &login)
	member.token = login.AccessToken
	code := func() string {
		var rc struct {
			Code string `json:"code"`
		}
		member.must(201, "POST", "/v1/me/redemption-codes", nil).decode(t, &rc)
		return rc.Code
	}
	type burnOut struct {
		ID             int64  `json:"id"`
		Status         string `json:"status"`
		CapturedPoints int64  `json:"captured_points"`
	}
	var b burnOut
	p.must(403, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 50, "redemption_code": "000000"}, "Idempotency-Key", "bad-code")
	p.must(201, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 50, "redemption_code": code()},
		"Idempotency-Key", "till-1").decode(t, &b)
	if b.Status != "captured" || b.CapturedPoints != 50 {
		t.Fatalf("one-step burn: %+v", b)
	}
	p.must(201, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 100, "redemption_code": code(), "capture": false},
		"Idempotency-Key", "stay-auth").decode(t, &b)
	if b.Status != "authorized" {
		t.Fatalf("authorisation: %+v", b)
	}
	var bal struct {
		Total, Available, Held int64
	}
	member.must(200, "GET", "/v1/me/balance", nil).decode(t, &bal)
	if bal.Total != 570 || bal.Held != 100 || bal.Available != 470 {
		t.Fatalf("balance with a hold: %+v, want total 570, held 100, available 470", bal)
	}
	p.must(400, "POST", fmt.Sprintf("/v1/burns/%d/capture", b.ID), map[string]any{"points": 0}, "Idempotency-Key", "stay-capture-0")
	p.must(200, "POST", fmt.Sprintf("/v1/burns/%d/capture", b.ID), map[string]any{"points": 60}, "Idempotency-Key", "stay-capture").decode(t, &b)
	if b.Status != "captured" || b.CapturedPoints != 60 {
		t.Fatalf("partial capture: %+v", b)
	}
	var b2 burnOut
	p.must(201, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 30, "redemption_code": code(), "capture": false},
		"Idempotency-Key", "stay2-auth").decode(t, &b2)
	p.must(200, "POST", fmt.Sprintf("/v1/burns/%d/void", b2.ID), nil, "Idempotency-Key", "stay2-void").decode(t, &b2)
	if b2.Status != "voided" {
		t.Fatalf("void: %+v", b2)
	}
	p.must(422, "POST", "/v1/burns", map[string]any{"member_id": m.ID, "points": 100000, "redemption_code": code()}, "Idempotency-Key", "too-much")

	// 5. Reverse part of the first earn.
	var rev struct {
		Type   string `json:"type"`
		Points int64  `json:"points"`
	}
	p.must(201, "POST", fmt.Sprintf("/v1/transactions/%d/reversals", earned.ID), map[string]any{"points": 20, "reason": "item returned"},
		"Idempotency-Key", "return-1").decode(t, &rev)
	if rev.Type != "reversal" || rev.Points != 20 {
		t.Fatalf("reversal: %+v", rev)
	}
	p.must(422, "POST", fmt.Sprintf("/v1/transactions/%d/reversals", earned.ID), map[string]any{"points": 500, "reason": "too much"},
		"Idempotency-Key", "return-2")
	p.must(400, "POST", fmt.Sprintf("/v1/transactions/%d/reversals", earned.ID), map[string]any{"points": 0, "reason": "a zero default"},
		"Idempotency-Key", "return-0")
	member.must(200, "GET", "/v1/me/balance", nil).decode(t, &bal)
	if bal.Total != 490 || bal.Held != 0 { // 120 + 500 - 50 - 60 - 20
		t.Fatalf("final balance %+v, want total 490 and nothing held", bal)
	}

	// 6. Transactions: own only, paginated.
	var page struct {
		Data []struct {
			ID int64 `json:"id"`
		} `json:"data"`
		NextCursor string `json:"next_cursor"`
	}
	p.must(200, "GET", fmt.Sprintf("/v1/transactions?member_id=%d&limit=2", m.ID), nil).decode(t, &page)
	if len(page.Data) != 2 || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	p.must(200, "GET", fmt.Sprintf("/v1/transactions/%d", earned.ID), nil)

	// 7. The webhook arrives, signed with the endpoint secret.
	select {
	case <-rcv.seen:
	case <-time.After(2 * time.Minute):
		t.Fatal("no webhook delivery within 2 minutes")
	}
	rcv.mu.Lock()
	got := rcv.got[0]
	rcv.mu.Unlock()
	if err := webhooks.VerifySignature(hook.Secret, got.header, got.body, time.Now()); err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	var event struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(got.body, &event); err != nil || event.ID != got.header.Get("webhook-id") ||
		(event.Type != "transaction.posted" && event.Type != "burn.captured") {
		t.Fatalf("unexpected webhook %s (%v)", got.body, err)
	}
	if strings.Contains(string(got.body), "entries") || strings.Contains(string(got.body), "consumptions") {
		t.Fatalf("webhook leaks ledger internals: %s", got.body)
	}

	// The ledger agrees with everything above.
	out, err := runHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_SECRETS_KEY=" + testSecretsKey}, "audit")
	if err != nil {
		t.Fatalf("audit after the quickstart: %v\n%s", err, out)
	}
}
