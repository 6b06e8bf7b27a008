package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/apitest"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

// catalogEnv is the hub's HTTP surface over a fresh database, with a client
// that checks every response against the OpenAPI document.
type catalogEnv struct {
	t      *testing.T
	ctx    context.Context
	db     *gorm.DB
	clock  *clock.Manual
	reg    *partners.Service
	acc    *access.Service
	rules  *rules.Service
	mem    *members.Service
	srv    *httptest.Server
	client *http.Client
}

func newCatalogEnv(t *testing.T) *catalogEnv {
	t.Helper()
	db := testdb.New(t)
	clk := clock.New(time.Now().UTC().Truncate(time.Second))
	reg := partners.NewService(db, clk.Now)
	acc, err := access.NewService(db, reg, access.Options{Issuer: testIssuer, SecretsKey: make([]byte, 32), Now: clk.Now, PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.NewService(db, clk.Now)
	m := members.NewService(db, l, clk.Now, members.WithPasswordCost(bcrypt.MinCost))
	consent := members.NewBurnConsent(db, clk.Now, members.DefaultConsentPolicy)
	rs := rules.NewService(db, clk.Now)
	s := New(Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Partners: reg, Access: acc, Members: m, Ledger: l, Consent: consent,
		Transactions: points.NewTransactions(db, l, m, consent, reg, rs, clk.Now),
		Catalog:      catalog.NewService(db, l, m, reg, clk.Now),
		ClientRate:   1000, ClientBurst: 1000, LoginRate: 1000, LoginBurst: 1000})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	v, err := apitest.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &catalogEnv{t: t, ctx: context.Background(), db: db, clock: clk, reg: reg, acc: acc, rules: rs, mem: m, srv: srv,
		client: &http.Client{Transport: &apitest.Transport{T: t, V: v}}}
}

// req sends a JSON request and decodes a JSON answer.
func (e *catalogEnv) req(method, path, token, key string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

func (e *catalogEnv) must(want int, method, path, token, key string, body any) map[string]any {
	e.t.Helper()
	code, out, _ := e.req(method, path, token, key, body)
	if code != want {
		e.t.Fatalf("%s %s: %d %v; want %d", method, path, code, out, want)
	}
	return out
}

// partner creates an active partner with a burn (and earn) contract, an
// EUR earn rule of 1 point per euro when it earns, and a client token.
func (e *catalogEnv) partner(name string, sector partners.Sector, earn bool, scopes ...access.Scope) (partners.Partner, string) {
	e.t.Helper()
	p, err := e.reg.CreatePartner(e.ctx, partners.NewPartner{Name: name, Sector: sector, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.SetPartnerStatus(e.ctx, p.ID, partners.StatusActive); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.PublishContract(e.ctx, p.ID, partners.NewContract{EffectiveFrom: e.clock.Now().Add(-time.Hour),
		Earn: earn, Burn: true, IssuePrice: decimal.RequireFromString("0.008"),
		RedemptionRate: decimal.RequireFromString("0.005"), Billing: partners.BillingPostpaid}, "staff:test"); err != nil {
		e.t.Fatal(err)
	}
	if earn {
		def := rules.RuleDefinition{Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit,
			Currency: "EUR", Rate: decimal.NewFromInt(1), PerMinor: 100}}}
		if _, err := e.rules.PublishRule(e.ctx, p.ID, def, e.clock.Now(), "staff:test"); err != nil {
			e.t.Fatal(err)
		}
	}
	cs, err := e.acc.CreateClient(e.ctx, p.ID, access.NewClient{Name: "api", Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cs.Client.ClientID), url.QueryEscape(cs.Secret))
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		e.t.Fatalf("token for %s: %d %v", name, res.StatusCode, err)
	}
	return p, tok.AccessToken
}

func (e *catalogEnv) memberToken(email string) (int64, string) {
	e.t.Helper()
	m, _, err := e.mem.Enrol(e.ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile: members.Profile{Email: email}, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.mem.SetPassword(e.ctx, m.ID, "correct horse battery"); err != nil {
		e.t.Fatal(err)
	}
	out := e.must(http.StatusOK, http.MethodPost, "/v1/me/login", "", "", map[string]any{"email": email, "password": "correct horse battery"})
	return m.ID, out["access_token"].(string)
}

func (e *catalogEnv) staffToken() string {
	e.t.Helper()
	if _, err := e.acc.EnsureStaff(e.ctx, "ops@hub.test", "correct horse battery", access.RoleAdmin); err != nil {
		e.t.Fatal(err)
	}
	out := e.must(http.StatusOK, http.MethodPost, "/v1/admin/login", "", "", map[string]any{"email": "ops@hub.test", "password": "correct horse battery"})
	return out["access_token"].(string)
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// A member earns on a flight and with a bank card through the partner API,
// browses the catalog in the portal, orders a hotel night and the hotel
// fulfils it; cancel, reject, stock and isolation rules hold over HTTP.
func TestCatalogOverHTTP(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t)
	_, airTok := e.partner("Skyways", partners.SectorAirline, true, access.ScopePointsEarn)
	_, bankTok := e.partner("Union Bank", partners.SectorBank, true, access.ScopePointsEarn)
	hotel, hotelTok := e.partner("Grand Hotels", partners.SectorHotel, false, access.ScopeCatalogManage, access.ScopeOrdersFulfil)
	_, otherTok := e.partner("Other Hotels", partners.SectorHotel, false, access.ScopeCatalogManage, access.ScopeOrdersFulfil)
	memberID, meTok := e.memberToken("ana@example.com")

	now := e.clock.Now().Format(time.RFC3339)
	e.must(http.StatusCreated, http.MethodPost, "/v1/earn", airTok, "flight-1", map[string]any{"member_id": memberID,
		"amount": map[string]any{"minor": 1200000, "currency": "EUR"}, "occurred_at": now, "external_ref": "PNR-1"})
	e.must(http.StatusCreated, http.MethodPost, "/v1/earn", bankTok, "card-1", map[string]any{"member_id": memberID,
		"amount": map[string]any{"minor": 800000, "currency": "EUR"}, "occurred_at": now, "external_ref": "STMT-1"})

	// The hotel publishes a night (one unit left) and a spa day.
	reward := map[string]any{"title": "Free night", "category": "hotel_night", "price_points": 15000,
		"value": map[string]any{"minor": 12000, "currency": "EUR"}, "stock_total": 1, "fulfilment": "async",
		"fulfilment_hours": 48}
	night := e.must(http.StatusCreated, http.MethodPost, "/v1/catalog/rewards", hotelTok, "", reward)
	nightID := num(night["id"])
	spa := e.must(http.StatusCreated, http.MethodPost, "/v1/catalog/rewards", hotelTok, "", map[string]any{"title": "Spa day",
		"category": "experience", "price_points": 2000, "value": map[string]any{"minor": 9000, "currency": "EUR"}, "fulfilment": "async"})
	spaID := num(spa["id"])
	if code, out, _ := e.req(http.MethodPost, "/v1/catalog/rewards", hotelTok, "", map[string]any{"title": ""}); code != http.StatusBadRequest {
		t.Fatalf("invalid reward: %d %v; want 400", code, out)
	}
	if code, _, _ := e.req(http.MethodGet, fmt.Sprintf("/v1/catalog/rewards/%d", nightID), otherTok, "", nil); code != http.StatusNotFound {
		t.Fatalf("another partner reads the reward: %d; want 404", code)
	}
	if code, _, _ := e.req(http.MethodPost, "/v1/catalog/rewards", airTok, "", reward); code != http.StatusForbidden {
		t.Fatalf("publish without catalog:manage: %d; want 403", code)
	}

	// The operator features the night.
	staff := e.staffToken()
	mod := e.must(http.StatusOK, http.MethodPost, fmt.Sprintf("/v1/admin/catalog/rewards/%d/moderation", nightID), staff, "",
		map[string]any{"featured": true})
	if mod["featured"] != true {
		t.Fatalf("moderation answer %v; want featured", mod)
	}
	e.must(http.StatusOK, http.MethodGet, "/v1/admin/catalog/rewards", staff, "", nil)

	// The member browses what they can afford (20,000 points).
	page := e.must(http.StatusOK, http.MethodGet, fmt.Sprintf("/v1/me/catalog?affordable=true&featured=true&partner_id=%d", hotel.ID), meTok, "", nil)
	if data := page["data"].([]any); len(data) != 1 || num(data[0].(map[string]any)["id"]) != nightID {
		t.Fatalf("affordable featured rewards %v; want the night", page)
	}

	// Order with a retry: one order, one hold.
	body := map[string]any{"reward_id": nightID, "service_date": "2030-06-12"}
	first := e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", meTok, "night-1", body)
	code, again, hdr := e.req(http.MethodPost, "/v1/me/orders", meTok, "night-1", body)
	if code != http.StatusCreated || again["id"] != first["id"] || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v %v; want the same order replayed", code, again, hdr)
	}
	if code, out, _ := e.req(http.MethodPost, "/v1/me/orders", meTok, "night-1", map[string]any{"reward_id": spaID}); code != http.StatusConflict || out["code"] != "idempotency_mismatch" {
		t.Fatalf("same key, other body: %d %v; want 409 idempotency_mismatch", code, out)
	}
	if code, out, _ := e.req(http.MethodPost, "/v1/me/orders", meTok, "", body); code != http.StatusBadRequest {
		t.Fatalf("order without Idempotency-Key: %d %v; want 400", code, out)
	}
	bal := e.must(http.StatusOK, http.MethodGet, "/v1/me/balance", meTok, "", nil)
	if num(bal["held"]) != 15000 || num(bal["available"]) != 5000 {
		t.Fatalf("balance %v; want 15000 held, 5000 available", bal)
	}
	// The last unit is gone, for anyone.
	otherID, otherMe := e.memberToken("ben@example.com")
	e.must(http.StatusCreated, http.MethodPost, "/v1/earn", airTok, "flight-2", map[string]any{"member_id": otherID,
		"amount": map[string]any{"minor": 1600000, "currency": "EUR"}, "occurred_at": now, "external_ref": "PNR-2"})
	if code, out, _ := e.req(http.MethodPost, "/v1/me/orders", otherMe, "night-2", body); code != http.StatusConflict || out["code"] != "out_of_stock" {
		t.Fatalf("second night: %d %v; want 409 out_of_stock", code, out)
	}

	// The hotel works its queue; another partner cannot see the order.
	orderPath := fmt.Sprintf("/v1/orders/%d", num(first["id"]))
	queue := e.must(http.StatusOK, http.MethodGet, "/v1/orders?status=pending", hotelTok, "", nil)
	if data := queue["data"].([]any); len(data) != 1 {
		t.Fatalf("pending queue %v; want one order", queue)
	}
	if code, _, _ := e.req(http.MethodGet, orderPath, otherTok, "", nil); code != http.StatusNotFound {
		t.Fatalf("other partner reads the order: %d; want 404", code)
	}
	done := e.must(http.StatusOK, http.MethodPost, orderPath+"/fulfil", hotelTok, "", map[string]any{"reference": "CONF-88213"})
	if done["status"] != "fulfilled" || done["reference"] != "CONF-88213" {
		t.Fatalf("fulfil: %v", done)
	}
	if code, out, _ := e.req(http.MethodPost, fmt.Sprintf("/v1/me/orders/%d/cancel", num(first["id"])), meTok, "", nil); code != http.StatusConflict || out["code"] != "order_not_pending" {
		t.Fatalf("cancel a fulfilled order: %d %v; want 409 order_not_pending", code, out)
	}

	// Spa day: the member cancels one order, the hotel rejects another.
	spaBody := map[string]any{"reward_id": spaID}
	o1 := e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", meTok, "spa-1", spaBody)
	cancelled := e.must(http.StatusOK, http.MethodPost, fmt.Sprintf("/v1/me/orders/%d/cancel", num(o1["id"])), meTok, "", nil)
	if cancelled["status"] != "cancelled" {
		t.Fatalf("cancel: %v", cancelled)
	}
	o2 := e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", meTok, "spa-2", spaBody)
	rejected := e.must(http.StatusOK, http.MethodPost, fmt.Sprintf("/v1/orders/%d/reject", num(o2["id"])), hotelTok, "",
		map[string]any{"reason": "spa closed for works"})
	if rejected["status"] != "rejected" {
		t.Fatalf("reject: %v", rejected)
	}
	mine := e.must(http.StatusOK, http.MethodGet, "/v1/me/orders", meTok, "", nil)
	if data := mine["data"].([]any); len(data) != 3 {
		t.Fatalf("member orders %v; want 3", mine)
	}
	e.must(http.StatusOK, http.MethodGet, fmt.Sprintf("/v1/me/catalog/%d", spaID), meTok, "", nil)
	bal = e.must(http.StatusOK, http.MethodGet, "/v1/me/balance", meTok, "", nil)
	if num(bal["total"]) != 5000 || num(bal["held"]) != 0 {
		t.Fatalf("final balance %v; want 5000 total, nothing held", bal)
	}
	rep, err := ledger.Audit(e.ctx, e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger audit: %+v, %v", rep, err)
	}
}
