package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/coalitionhub/hub/abuse"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/settlement"
	"github.com/coalitionhub/hub/webhooks"
)

// hubEnv is the whole HTTP surface (every domain service, as cmd/hub wires
// it) over a fresh database: what the reliability, isolation and abuse
// tests drive.
type hubEnv struct {
	t     testing.TB
	ctx   context.Context
	db    *gorm.DB
	clock *clock.Manual
	reg   *partners.Service
	acc   *access.Service
	rules *rules.Service
	led   *ledger.Service
	mem   *members.Service
	cat   *catalog.Service
	set   *settlement.Service
	xch   *exchange.Service
	abuse *abuse.Service
	srv   *httptest.Server
	keys  atomic.Int64
}

func newHubEnv(t testing.TB, tune func(*Deps)) *hubEnv {
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
	tx := points.NewTransactions(db, l, m, consent, reg, rs, clk.Now)
	cat := catalog.NewService(db, l, m, reg, clk.Now)
	set := settlement.NewService(db, settlement.Options{Location: time.UTC, BaseCurrency: "EUR", Now: clk.Now})
	xch := exchange.NewService(db, l, m, reg, acc.SecretBox(), exchange.NewHTTPPartner(time.Minute), clk.Now)
	prog := programme.NewService(db, l, m, consent, clk.Now)
	tx.Programme = prog
	runs := jobs.NewService(db, clk.Now, nil)
	camps := campaigns.NewService(db, m, l, prog, runs, clk.Now)
	ab := abuse.NewService(db, l, clk.Now)
	deps := Deps{DB: db, Runs: runs, Campaigns: camps, Exports: exports.NewService(db, m, l, prog, camps, runs, clk.Now), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Partners: reg, Access: acc, Transactions: tx, Rules: rs, Members: m, Ledger: l, Consent: consent,
		Webhooks: webhooks.NewService(db, acc.SecretBox(), netguard.Policy{}, clk.Now),
		Catalog:  cat, Settlement: set, Exchange: xch, Programme: prog, Abuse: ab,
		ClientRate: 1000, ClientBurst: 1000, LoginRate: 1000, LoginBurst: 1000}
	if tune != nil {
		tune(&deps)
	}
	srv := httptest.NewServer(New(deps).Handler())
	t.Cleanup(srv.Close)
	return &hubEnv{t: t, ctx: context.Background(), db: db, clock: clk, reg: reg, acc: acc, rules: rs, led: l, mem: m,
		cat: cat, set: set, xch: xch, abuse: ab, srv: srv}
}

var allScopes = []access.Scope{access.ScopeMembersRead, access.ScopeMembersWrite, access.ScopePointsEarn,
	access.ScopePointsBurn, access.ScopePointsReverse, access.ScopeCatalogManage, access.ScopeOrdersFulfil,
	access.ScopeExchange, access.ScopeSettlementRead}

// partner creates an active earn-and-burn partner (contract in force since
// contractFrom, 1 point per EUR) with a client holding every scope, and
// returns it with a bearer token.
func (e *hubEnv) partner(name string, contractFrom time.Time) (partners.Partner, string) {
	e.t.Helper()
	p, err := e.reg.CreatePartner(e.ctx, partners.NewPartner{Name: name, Sector: partners.SectorHotel, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.SetPartnerStatus(e.ctx, p.ID, partners.StatusActive); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.PublishContract(e.ctx, p.ID, partners.NewContract{EffectiveFrom: contractFrom, Earn: true, Burn: true,
		IssuePrice: decimal.RequireFromString("0.008"), RedemptionRate: decimal.RequireFromString("0.005"),
		Billing: partners.BillingPostpaid}, "staff:test"); err != nil {
		e.t.Fatal(err)
	}
	def := rules.RuleDefinition{Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit,
		Currency: "EUR", Rate: decimal.NewFromInt(1), PerMinor: 100}}}
	if _, err := e.rules.PublishRule(e.ctx, p.ID, def, e.clock.Now(), "staff:test"); err != nil {
		e.t.Fatal(err)
	}
	cs, err := e.acc.CreateClient(e.ctx, p.ID, access.NewClient{Name: "api", Scopes: allScopes})
	if err != nil {
		e.t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cs.Client.ClientID), url.QueryEscape(cs.Secret))
	res, err := http.DefaultClient.Do(req)
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

// raw sends body (a string as is, []byte as is, anything else as JSON) with
// a bearer token and a fresh Idempotency-Key, and returns the answer.
func (e *hubEnv) raw(method, path, token string, body any, header ...string) (int, []byte, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Idempotency-Key", fmt.Sprintf("k-%d", e.keys.Add(1)))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out, res.Header
}

// call is raw with a decoded JSON object answer.
func (e *hubEnv) call(method, path, token string, body any, header ...string) (int, map[string]any) {
	e.t.Helper()
	code, b, _ := e.raw(method, path, token, body, header...)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return code, out
}

func (e *hubEnv) must(want int, method, path, token string, body any, header ...string) map[string]any {
	e.t.Helper()
	code, out := e.call(method, path, token, body, header...)
	if code != want {
		e.t.Fatalf("%s %s: %d %v; want %d", method, path, code, out, want)
	}
	return out
}

// audit fails the test unless every ledger invariant holds.
func (e *hubEnv) audit() {
	e.t.Helper()
	rep, err := ledger.Audit(e.ctx, e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		e.t.Fatalf("ledger audit: %v %+v", err, rep)
	}
}

// count returns SELECT count(*) FROM table.
func (e *hubEnv) count(table string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Raw(`SELECT count(*) FROM ` + table).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func idStr(t *testing.T, v any) string {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return fmt.Sprint(int64(x))
	case string:
		return x
	}
	t.Fatalf("not an id: %#v", v)
	return ""
}

// listLen counts the items of a list answer ({"data": [...]} or
// {"items": [...]}); -1 when the answer has no list.
func listLen(body map[string]any) int {
	for _, k := range []string{"data", "items"} {
		if l, ok := body[k].([]any); ok {
			return len(l)
		}
	}
	return -1
}

// partnerRoutes lists "METHOD /path" of every route behind partner
// authentication: /v1/... except the admin and member APIs.
func partnerRoutes(t *testing.T) []string {
	t.Helper()
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var out []string
	for _, r := range s.engine().Routes() {
		p := r.Path
		if !strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v1/admin/") || p == "/v1/admin" ||
			p == "/v1/me" || strings.HasPrefix(p, "/v1/me/") {
			continue
		}
		out = append(out, r.Method+" "+p)
	}
	sort.Strings(out)
	return out
}

// objectCase probes one object-bearing route: partner B calls it on partner
// A's object (own) and on one that does not exist (missing).
type objectCase struct {
	own, missing string // request paths (with query)
	body         func(own bool) any
}

// TestTenantIsolationOnEveryPartnerRoute walks the route table: every
// partner route is either object-bearing (partner B must get exactly the
// status and problem code it gets for an object that does not exist, and
// nothing changes), a list (B's list holds none of A's objects), or acts
// only on the caller's own data (with the reason written down). A new
// partner route that is in none of the three tables fails the test.
func TestTenantIsolationOnEveryPartnerRoute(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	now := e.clock.Now()
	lastMonth := time.Date(now.Year(), now.Month()-1, 10, 12, 0, 0, 0, time.UTC)
	month := lastMonth.Format("2006-01")
	a, aTok := e.partner("Harbour Hotels", lastMonth.AddDate(0, 0, -5))
	_, bTok := e.partner("Rival Hotels", lastMonth.AddDate(0, 0, -5))

	// Partner A's objects, made through the API as A would.
	member := e.must(201, "POST", "/v1/members", aTok, map[string]any{
		"identifier": map[string]string{"type": "partner_ref", "value": "HH-778812"}, "profile": map[string]string{"given_name": "Ana"}})
	mid := idStr(t, member["id"])
	mID := int64(member["id"].(float64))
	earn := e.must(201, "POST", "/v1/earn", aTok, map[string]any{"member_id": mID,
		"amount": map[string]any{"minor": 5000000, "currency": "EUR"}, "external_ref": "folio-1"})
	txID := idStr(t, earn["id"])
	// A's fraud rules hold A's next earn of the member: A has a flag.
	if _, err := e.abuse.SetRules(e.ctx, a.ID, abuse.Rules{MemberEarnsPerHour: 1}, "staff:test"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"folio-2", "folio-3"} {
		e.must(201, "POST", "/v1/earn", aTok, map[string]any{"member_id": mID,
			"amount": map[string]any{"minor": 1000, "currency": "EUR"}, "external_ref": ref})
	}
	if code, body := e.call("GET", "/v1/flags", aTok, nil); code != 200 || listLen(body) != 1 {
		t.Fatalf("partner A's flags %d %v; want its one held earn", code, body)
	}
	rc := e.must(201, "POST", "/v1/me/redemption-codes", signedInToken(t, e.mem, e.acc, mID), nil)
	burn := e.must(201, "POST", "/v1/burns", aTok, map[string]any{"member_id": mID, "points": 100,
		"redemption_code": rc["code"], "capture": false})
	burnID := idStr(t, burn["id"])
	hook := e.must(201, "POST", "/v1/webhooks", aTok, map[string]any{"url": "https://a.example/hooks", "events": []string{"transaction.*"}})
	hookID := idStr(t, hook["id"])
	reward := e.must(201, "POST", "/v1/catalog/rewards", aTok, map[string]any{"title": "Free night", "category": "hotel_night",
		"price_points": 1000, "value": map[string]any{"minor": 9000, "currency": "EUR"}, "fulfilment": "async"})
	rewardID := idStr(t, reward["id"])
	rid := int64(reward["id"].(float64))
	visible := catalog.VisibilityVisible
	if _, err := e.cat.Moderate(e.ctx, "ops@test", rid, catalog.Moderation{Visibility: &visible}); err != nil {
		t.Fatal(err)
	}
	order, err := e.cat.PlaceOrder(e.ctx, mID, "order-1", catalog.OrderInput{RewardID: rid})
	if err != nil {
		t.Fatalf("order: %v", err)
	}
	orderID := fmt.Sprint(order.ID)

	// A statement (last month, sent) and a reconciliation of it.
	lastLedger := ledger.NewService(e.db, func() time.Time { return lastMonth })
	if _, err := lastLedger.Earn(e.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "t", Key: "old"}, MemberID: mID,
		PartnerID: a.ID, Points: 700, OccurredAt: lastMonth, ExternalRef: "R-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.set.Close(e.ctx, month, "staff:test", nil); err != nil {
		t.Fatalf("close %s: %v", month, err)
	}
	sts, err := e.set.Statements(e.ctx, settlement.StatementFilter{PartnerID: a.ID, Period: month})
	if err != nil || len(sts) != 1 {
		t.Fatalf("statements of A: %v %v", sts, err)
	}
	billingSetup(t, e.set, a.ID)
	if _, err := e.set.Approve(e.ctx, sts[0].ID, "staff:second"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.set.Send(e.ctx, sts[0].ID, "staff:second"); err != nil {
		t.Fatal(err)
	}
	stID := fmt.Sprint(sts[0].ID)
	st, recBody, _ := e.raw("POST", "/v1/statements/"+month+"/reconciliation", aTok, "external_ref,type,points\nR-1,earn,700\n", "Content-Type", "text/csv")
	if st != 202 {
		t.Fatalf("reconciliation upload: %d %s", st, recBody)
	}
	var rec struct{ ID int64 }
	_ = json.Unmarshal(recBody, &rec)
	recID := fmt.Sprint(rec.ID)

	// Exchange: A's programme, an inbound credit and an outbound one.
	sim := partnersim.New(partnersim.Config{APIKey: "k"})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	prog, err := e.xch.CreateProgramme(e.ctx, exchange.NewProgramme{PartnerID: a.ID, Code: "harbourpts", Name: "Harbour", Unit: "pts",
		Out: &exchange.Ratio{From: 1000, To: 700}, In: &exchange.Ratio{From: 1000, To: 800}, Increment: 1000, MaxPoints: 90000,
		EndpointURL: simSrv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	inbound := e.must(201, "POST", "/v1/exchanges", aTok, map[string]any{"programme": "harbourpts", "member_id": mID,
		"units": 2000, "partner_transaction_id": "H-1"})
	xID := idStr(t, inbound["id"])
	if _, err := e.xch.Link(e.ctx, mID, prog.ID, "FF1"); err != nil {
		t.Fatal(err)
	}
	q, err := e.xch.Quote(e.ctx, mID, prog.ID, 2000)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.xch.Confirm(e.ctx, mID, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.xch.Deliver(e.ctx, out.ID); err != nil {
		t.Fatal(err)
	}
	pub := out.PublicID
	ghost := "x" + pub[1:]
	if ghost == pub {
		ghost = "y" + pub[1:]
	}

	const none = "987654321"
	body := func(v any) func(bool) any { return func(bool) any { return v } }
	objects := map[string]objectCase{
		"GET /v1/members/:id":                 {own: "/v1/members/" + mid, missing: "/v1/members/" + none},
		"GET /v1/members":                     {own: "/v1/members?identifier=partner_ref:HH-778812", missing: "/v1/members?identifier=partner_ref:HH-000000"},
		"GET /v1/burns/:id":                   {own: "/v1/burns/" + burnID, missing: "/v1/burns/" + none},
		"POST /v1/burns/:id/capture":          {own: "/v1/burns/" + burnID + "/capture", missing: "/v1/burns/" + none + "/capture", body: body(map[string]any{"points": 10})},
		"POST /v1/burns/:id/void":             {own: "/v1/burns/" + burnID + "/void", missing: "/v1/burns/" + none + "/void"},
		"GET /v1/transactions/:id":            {own: "/v1/transactions/" + txID, missing: "/v1/transactions/" + none},
		"POST /v1/transactions/:id/reversals": {own: "/v1/transactions/" + txID + "/reversals", missing: "/v1/transactions/" + none + "/reversals", body: body(map[string]any{"points": 5, "reason": "x"})},
		"DELETE /v1/webhooks/:id":             {own: "/v1/webhooks/" + hookID, missing: "/v1/webhooks/" + none},
		"POST /v1/webhooks/:id/rotate-secret": {own: "/v1/webhooks/" + hookID + "/rotate-secret", missing: "/v1/webhooks/" + none + "/rotate-secret"},
		"GET /v1/catalog/rewards/:id":         {own: "/v1/catalog/rewards/" + rewardID, missing: "/v1/catalog/rewards/" + none},
		"PUT /v1/catalog/rewards/:id": {own: "/v1/catalog/rewards/" + rewardID, missing: "/v1/catalog/rewards/" + none, body: body(map[string]any{"title": "Stolen", "category": "hotel_night",
			"price_points": 1, "value": map[string]any{"minor": 1, "currency": "EUR"}, "fulfilment": "async"})},
		"POST /v1/catalog/rewards/:id/vouchers": {own: "/v1/catalog/rewards/" + rewardID + "/vouchers", missing: "/v1/catalog/rewards/" + none + "/vouchers", body: body(map[string]any{"codes": []string{"EVIL-1"}})},
		"GET /v1/orders/:id":                    {own: "/v1/orders/" + orderID, missing: "/v1/orders/" + none},
		"POST /v1/orders/:id/fulfil":            {own: "/v1/orders/" + orderID + "/fulfil", missing: "/v1/orders/" + none + "/fulfil", body: body(map[string]any{"reference": "R"})},
		"POST /v1/orders/:id/reject":            {own: "/v1/orders/" + orderID + "/reject", missing: "/v1/orders/" + none + "/reject", body: body(map[string]any{"reason": "no"})},
		"GET /v1/statements/:id":                {own: "/v1/statements/" + stID, missing: "/v1/statements/" + none},
		"GET /v1/statements/:id/lines":          {own: "/v1/statements/" + stID + "/lines", missing: "/v1/statements/" + none + "/lines"},
		"GET /v1/statements/:id/invoice":        {own: "/v1/statements/" + stID + "/invoice", missing: "/v1/statements/" + none + "/invoice"},
		"GET /v1/reconciliations/:id":           {own: "/v1/reconciliations/" + recID, missing: "/v1/reconciliations/" + none},
		"GET /v1/exchanges/:id":                 {own: "/v1/exchanges/" + xID, missing: "/v1/exchanges/" + none},
		// The object is named in the body: B cannot credit members through A's programme.
		"POST /v1/exchanges": {own: "/v1/exchanges", missing: "/v1/exchanges", body: func(own bool) any {
			code := "nosuchprogramme"
			if own {
				code = "harbourpts"
			}
			return map[string]any{"programme": code, "member_id": mID, "units": 2000, "partner_transaction_id": "B-1"}
		}},
		"POST /v1/outbound-exchanges/:public_id/status": {own: "/v1/outbound-exchanges/" + pub + "/status", missing: "/v1/outbound-exchanges/" + ghost + "/status",
			body: body(map[string]any{"status": "failed", "reason": "nope"})},
		"POST /v1/outbound-exchanges/:public_id/reversal": {own: "/v1/outbound-exchanges/" + pub + "/reversal", missing: "/v1/outbound-exchanges/" + ghost + "/reversal",
			body: body(map[string]any{"reason": "steal"})},
	}
	lists := map[string]string{
		"GET /v1/transactions":       "/v1/transactions?member_id=" + mid,
		"GET /v1/webhooks":           "/v1/webhooks",
		"GET /v1/webhook-deliveries": "/v1/webhook-deliveries",
		"GET /v1/catalog/rewards":    "/v1/catalog/rewards",
		"GET /v1/orders":             "/v1/orders",
		"GET /v1/statements":         "/v1/statements",
		"GET /v1/flags":              "/v1/flags",
	}
	own := map[string]string{
		"POST /v1/members":                       "enrols (or finds) by an identifier the caller supplies; answers with what the caller may see",
		"POST /v1/earn/quote":                    "member ids are the coalition's; a quote uses the caller's own rules",
		"POST /v1/earn":                          "credits at the caller; member ids are shared by design (any member may earn anywhere)",
		"POST /v1/earn/batch":                    "as POST /v1/earn",
		"POST /v1/burns":                         "needs the member's own redemption code; debits at the caller",
		"POST /v1/catalog/rewards":               "creates a reward of the caller",
		"POST /v1/webhooks":                      "creates an endpoint of the caller",
		"POST /v1/statements/:id/reconciliation": "{id} is a period (YYYY-MM); the upload is the caller's own",
	}

	// The tables cover the route table exactly.
	routes := partnerRoutes(t)
	covered := map[string]bool{}
	for k := range objects {
		covered[k] = true
	}
	for k := range lists {
		covered[k] = true
	}
	for k := range own {
		covered[k] = true
	}
	for _, r := range routes {
		if !covered[r] {
			t.Errorf("partner route %s has no tenant-isolation case: add it to objects, lists or own in %s", r, "web/isolation_test.go")
		}
		delete(covered, r)
	}
	for k := range covered {
		t.Errorf("isolation case %s matches no route (renamed or removed?)", k)
	}

	// What A sees before B tries anything.
	snapshot := func() string {
		var b strings.Builder
		for _, p := range []string{"/v1/burns/" + burnID, "/v1/transactions/" + txID, "/v1/webhooks", "/v1/catalog/rewards/" + rewardID,
			"/v1/orders/" + orderID, "/v1/exchanges/" + xID, "/v1/statements/" + stID, "/v1/reconciliations/" + recID} {
			code, body, _ := e.raw("GET", p, aTok, nil)
			fmt.Fprintf(&b, "%s %d %s\n", p, code, body)
		}
		fmt.Fprintf(&b, "ledger_transactions %d, vouchers %d\n", e.count("ledger_transactions"), e.count("catalog_vouchers"))
		return b.String()
	}
	before := snapshot()
	balance, _ := e.led.Balance(e.ctx, mID)

	names := make([]string, 0, len(objects))
	for k := range objects {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		c := objects[name]
		method := strings.Fields(name)[0]
		var ownBody, missingBody any
		if c.body != nil {
			ownBody, missingBody = c.body(true), c.body(false)
		}
		gotCode, got := e.call(method, c.own, bTok, ownBody)
		wantCode, want := e.call(method, c.missing, bTok, missingBody)
		if gotCode != wantCode || got["code"] != want["code"] {
			t.Errorf("%s: partner B on A's object gets %d %v; on a missing one %d %v; want the same", name, gotCode, got["code"], wantCode, want["code"])
		}
		if gotCode < 400 {
			t.Errorf("%s: partner B on A's object gets %d; want a refusal", name, gotCode)
		}
	}
	for name, path := range lists {
		code, body := e.call("GET", path, bTok, nil)
		if code != 200 || listLen(body) != 0 {
			t.Errorf("%s: partner B's list %d %v; want 200 and none of A's objects", name, code, body)
		}
		if code, body := e.call("GET", path, aTok, nil); code != 200 || listLen(body) < 0 {
			t.Errorf("%s: partner A's list %d %v; want 200 with a list", name, code, body)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("partner B's attempts changed A's objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if b, _ := e.led.Balance(e.ctx, mID); b != balance {
		t.Errorf("member balance moved from %+v to %+v", balance, b)
	}
	if sim.Balance("FF1") != 1400 {
		t.Errorf("partner programme credited %d units; want only the member's 1400", sim.Balance("FF1"))
	}
	e.audit()
}
