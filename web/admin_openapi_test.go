package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/apitest"
	"github.com/coalitionhub/hub/partners"
)

// contractEnv is an authEnv whose client checks every response against the
// OpenAPI document: a status, content type or body the document does not
// describe fails the test.
type contractEnv struct {
	*authEnv
	client *http.Client
}

func newContractEnv(t *testing.T, tune func(*Deps)) *contractEnv {
	t.Helper()
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatalf("merge the OpenAPI fragments: %v", err)
	}
	v, err := apitest.New(spec)
	if err != nil {
		t.Fatalf("OpenAPI validator: %v", err)
	}
	return &contractEnv{authEnv: newAuthEnv(t, tune), client: &http.Client{Transport: &apitest.Transport{T: t, V: v}}}
}

// send calls the hub with a bearer token (if any) and a body: a string is
// sent as is (to send malformed JSON), anything else as JSON.
func (e *contractEnv) send(method, path, token string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		r = bytes.NewReader(apitest.MustJSON(e.t, b))
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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

// expect sends a request and fails unless it answers want (and, for a
// problem, the problem code, when code is not empty). It returns the body.
func (e *contractEnv) expect(want int, code, method, path, token string, body any) map[string]any {
	e.t.Helper()
	got, out, _ := e.send(method, path, token, body)
	if got != want || (code != "" && out["code"] != code) {
		e.t.Fatalf("%s %s: %d %v; want %d %s", method, path, got, out, want, code)
	}
	return out
}

// login creates (if needed) a staff account and signs it in through the
// validated client.
func (e *contractEnv) login(email string, role access.Role) string {
	e.t.Helper()
	if _, err := e.acc.EnsureStaff(context.Background(), email, "correct horse battery", role); err != nil {
		e.t.Fatal(err)
	}
	code, body, h := e.send(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": email, "password": "correct horse battery"})
	if code != 200 || body["role"] != string(role) || body["token_type"] != "Bearer" || h.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("login %s: %d %v (Cache-Control %q); want 200 with role %s and no-store", email, code, body, h.Get("Cache-Control"), role)
	}
	return body["access_token"].(string)
}

func ed25519PEM(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func idOf(t *testing.T, body map[string]any) string {
	t.Helper()
	id, ok := body["id"].(float64)
	if !ok {
		t.Fatalf("no numeric id in %v", body)
	}
	return itoa(int64(id))
}

func items(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	raw, ok := body["data"].([]any)
	if !ok {
		t.Fatalf("no data array in %v", body)
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

// The whole admin API, driven like the console would, with every answer
// (successes and problems) validated against the OpenAPI document.
func TestAdminAPIMatchesOpenAPI(t *testing.T) {
	t.Parallel()
	e := newContractEnv(t, nil)
	admin := e.login("root@hub.test", access.RoleAdmin)
	finance := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)
	const get, post, put = http.MethodGet, http.MethodPost, http.MethodPut

	// Authentication and request decoding.
	code, body, h := e.send(get, "/v1/admin/partners", "", nil)
	if code != 401 || body["code"] != "unauthorized" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("no token: %d %v %q; want 401 unauthorized with a Bearer challenge", code, body, h.Get("WWW-Authenticate"))
	}
	e.expect(401, "invalid_token", get, "/v1/admin/partners", "not-a-token", nil)
	e.expect(401, "invalid_credentials", post, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "wrong password!"})
	e.expect(400, "invalid_request", post, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "x", "otp": "1"})
	e.expect(400, "invalid_request", post, "/v1/admin/partners", admin, `{"name": "Sky Air",`)

	// Partners.
	sky := e.expect(201, "", post, "/v1/admin/partners", admin, map[string]any{
		"name": "Sky Air", "sector": "airline", "settlement_currency": "EUR", "time_zone": "Europe/Berlin"})
	if sky["status"] != "onboarding" || sky["sector"] != "airline" {
		t.Fatalf("new partner: %v; want an onboarding airline", sky)
	}
	pid := idOf(t, sky)
	pp := "/v1/admin/partners/" + pid
	inn := e.expect(201, "", post, "/v1/admin/partners", admin, map[string]any{
		"name": "Harbour Inn", "sector": "hotel", "settlement_currency": "EUR", "time_zone": "Europe/Lisbon"})
	e.expect(403, "forbidden", post, "/v1/admin/partners", support, map[string]any{
		"name": "Nope", "sector": "bank", "settlement_currency": "EUR", "time_zone": "UTC"})
	body = e.expect(400, "invalid_request", post, "/v1/admin/partners", admin, map[string]any{
		"name": "", "sector": "casino", "settlement_currency": "euro", "time_zone": "Mars/Olympus"})
	if errs := jsonNumAny(body["errors"]); !strings.Contains(errs, `"sector"`) || !strings.Contains(errs, `"time_zone"`) {
		t.Fatalf("bad partner: errors %s; want sector and time_zone named", errs)
	}
	e.expect(409, "partner_exists", post, "/v1/admin/partners", admin, map[string]any{
		"name": "SKY AIR", "sector": "airline", "settlement_currency": "EUR", "time_zone": "UTC"})

	page := e.expect(200, "", get, "/v1/admin/partners?limit=1", support, nil)
	if len(items(t, page)) != 1 || page["next_cursor"] == "" {
		t.Fatalf("first page of one: %v; want one partner and a next_cursor", page)
	}
	page = e.expect(200, "", get, "/v1/admin/partners?limit=1&cursor="+page["next_cursor"].(string), support, nil)
	if got := items(t, page); len(got) != 1 || got[0]["name"] != "Harbour Inn" {
		t.Fatalf("second page: %v; want Harbour Inn", page)
	}
	e.expect(400, "invalid_request", get, "/v1/admin/partners?limit=201", support, nil)
	e.expect(400, "invalid_request", get, "/v1/admin/partners?cursor=%21%21", support, nil)

	if got := e.expect(200, "", get, pp, support, nil); got["name"] != "Sky Air" {
		t.Fatalf("get partner: %v", got)
	}
	e.expect(404, "partner_not_found", get, "/v1/admin/partners/99999", support, nil)
	e.expect(404, "not_found", get, "/v1/admin/partners/sky", support, nil)

	if got := e.expect(200, "", post, pp+"/status", admin, map[string]any{"status": "active"}); got["status"] != "active" {
		t.Fatalf("activate: %v; want status active", got)
	}
	e.expect(400, "invalid_request", post, pp+"/status", admin, map[string]any{"status": "paused"})
	e.expect(403, "forbidden", post, pp+"/status", finance, map[string]any{"status": "suspended"})
	e.expect(404, "partner_not_found", post, "/v1/admin/partners/99999/status", admin, map[string]any{"status": "active"})
	innPath := "/v1/admin/partners/" + idOf(t, inn)
	e.expect(200, "", post, innPath+"/status", admin, map[string]any{"status": "terminated"})
	e.expect(400, "invalid_request", post, innPath+"/status", admin, map[string]any{"status": "active"})

	// Outlets.
	o := e.expect(201, "", post, pp+"/outlets", admin, map[string]any{
		"code": "FRA-T1", "name": "Frankfurt T1", "address": "Terminal 1, 60547 Frankfurt", "time_zone": "Europe/Berlin"})
	if o["time_zone"] != "Europe/Berlin" || o["status"] != "active" {
		t.Fatalf("outlet: %v", o)
	}
	if o = e.expect(201, "", post, pp+"/outlets", admin, map[string]any{"code": "MUC", "name": "Munich"}); o["address"] != "" {
		t.Fatalf("outlet without address: %v; want address \"\"", o)
	} else if _, has := o["time_zone"]; has {
		t.Fatalf("outlet without time zone: %v; want time_zone absent", o)
	}
	e.expect(409, "outlet_exists", post, pp+"/outlets", admin, map[string]any{"code": "MUC", "name": "Munich again"})
	e.expect(400, "invalid_request", post, pp+"/outlets", admin, map[string]any{"code": "a b", "name": "x"})
	e.expect(404, "partner_not_found", post, "/v1/admin/partners/99999/outlets", admin, map[string]any{"code": "X", "name": "x"})
	e.expect(403, "forbidden", post, pp+"/outlets", support, map[string]any{"code": "Y", "name": "y"})
	if got := items(t, e.expect(200, "", get, pp+"/outlets", support, nil)); len(got) != 2 {
		t.Fatalf("outlets: %v; want 2", got)
	}
	e.expect(404, "partner_not_found", get, "/v1/admin/partners/99999/outlets", support, nil)

	// Contracts: a prepaid version in force now, a postpaid one from tomorrow.
	now := time.Now().UTC()
	v1 := e.expect(201, "", post, pp+"/contracts", finance, map[string]any{
		"effective_from": now.Add(-time.Hour).Format(time.RFC3339), "roles": []string{"earn", "burn"},
		"issue_price": "0.0075", "redemption_rate": "0.005", "billing": "prepaid", "prepaid_alert_threshold": 10000,
		"pending_days": 30, "cap_per_transaction": 50000, "breakage_share": "0.25", "notes": "launch terms"})
	if v1["version"] != float64(1) || v1["issue_price"] != "0.0075" || v1["currency"] != "EUR" ||
		v1["created_by"] != "staff:money@hub.test" || v1["operator_fee_rate"] != "0" {
		t.Fatalf("contract v1: %v", v1)
	}
	v2 := e.expect(201, "", post, pp+"/contracts", admin, map[string]any{
		"effective_from": now.Add(24 * time.Hour).Format(time.RFC3339), "roles": []string{"burn"},
		"issue_price": 0, "redemption_rate": 0.006, "billing": "postpaid", "operator_fee_rate": nil})
	if v2["version"] != float64(2) || v2["redemption_rate"] != "0.006" || jsonNumAny(v2["roles"]) != `["burn"]` {
		t.Fatalf("contract v2: %v", v2)
	}
	body = e.expect(400, "invalid_request", post, pp+"/contracts", finance, map[string]any{
		"effective_from": now.Add(48 * time.Hour).Format(time.RFC3339), "roles": []string{"earn", "fly"}, "billing": "postpaid"})
	if errs := jsonNumAny(body["errors"]); !strings.Contains(errs, "issue_price") || !strings.Contains(errs, "roles[1]") {
		t.Fatalf("bad contract: errors %s; want issue_price and roles[1] named", errs)
	}
	e.expect(403, "forbidden", post, pp+"/contracts", support, map[string]any{})
	e.expect(404, "partner_not_found", post, "/v1/admin/partners/99999/contracts", finance, map[string]any{
		"effective_from": now.Format(time.RFC3339), "roles": []string{"earn"}, "issue_price": "0.01",
		"redemption_rate": "0", "billing": "postpaid"})
	if got := items(t, e.expect(200, "", get, pp+"/contracts", support, nil)); len(got) != 2 || got[0]["version"] != float64(1) {
		t.Fatalf("contracts: %v; want versions 1 and 2, oldest first", got)
	}
	if got := e.expect(200, "", get, pp+"/contract", support, nil); got["version"] != float64(1) {
		t.Fatalf("contract now: %v; want version 1", got)
	}
	if got := e.expect(200, "", get, pp+"/contract?at="+now.Add(72*time.Hour).Format(time.RFC3339), support, nil); got["version"] != float64(2) {
		t.Fatalf("contract in three days: %v; want version 2", got)
	}
	e.expect(404, "no_contract", get, pp+"/contract?at="+now.Add(-48*time.Hour).Format(time.RFC3339), support, nil)
	e.expect(400, "invalid_request", get, pp+"/contract?at=yesterday", support, nil)

	// Prepaid balance.
	if got := e.expect(200, "", get, pp+"/prepaid", support, nil); jsonNumAny(got["balance"]) != `{"currency":"EUR","minor":0}` {
		t.Fatalf("opening prepaid balance: %v; want 0 EUR", got)
	}
	topUp := map[string]any{"amount": map[string]any{"minor": 500000, "currency": "EUR"}, "ref": "SEPA-1"}
	if got := e.expect(201, "", post, pp+"/prepaid/top-ups", finance, topUp); jsonNumAny(got["balance"]) != `{"currency":"EUR","minor":500000}` {
		t.Fatalf("top-up: %v; want 500000 EUR", got)
	}
	e.expect(409, "duplicate_ref", post, pp+"/prepaid/top-ups", finance, topUp)
	e.expect(400, "invalid_request", post, pp+"/prepaid/top-ups", finance,
		map[string]any{"amount": map[string]any{"minor": 100, "currency": "USD"}, "ref": "SEPA-2"})
	e.expect(400, "invalid_request", post, pp+"/prepaid/top-ups", finance,
		map[string]any{"amount": map[string]any{"minor": -5, "currency": "EUR"}, "ref": ""})
	e.expect(403, "forbidden", post, pp+"/prepaid/top-ups", support, topUp)
	e.expect(409, "not_prepaid", get, innPath+"/prepaid", support, nil)
	e.expect(409, "not_prepaid", post, innPath+"/prepaid/top-ups", finance, topUp)
	if got := e.expect(200, "", get, pp+"/prepaid", support, nil); jsonNumAny(got["balance"]) != `{"currency":"EUR","minor":500000}` {
		t.Fatalf("prepaid balance: %v; want 500000 EUR", got)
	}

	// API clients.
	code, pos, h := e.send(post, pp+"/clients", admin, map[string]any{"name": "pos", "scopes": []string{"points:earn", "members:read"}})
	if code != 201 || !strings.HasPrefix(pos["client_secret"].(string), "cs_") || pos["has_secret"] != true || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("create client: %d %v (Cache-Control %q); want 201 with a secret, no-store", code, pos, h.Get("Cache-Control"))
	}
	keyOnly := e.expect(201, "", post, pp+"/clients", admin, map[string]any{
		"name": "booking engine", "scopes": []string{"points:burn"}, "public_key": ed25519PEM(t), "no_secret": true})
	if _, has := keyOnly["client_secret"]; has || keyOnly["has_secret"] != false || keyOnly["public_key_alg"] != "EdDSA" {
		t.Fatalf("key-only client: %v; want no secret and public_key_alg EdDSA", keyOnly)
	}
	e.expect(400, "invalid_request", post, pp+"/clients", admin, map[string]any{"name": "x", "scopes": []string{}, "no_secret": true})
	e.expect(403, "forbidden", post, pp+"/clients", finance, map[string]any{"name": "x", "scopes": []string{"points:earn"}})
	e.expect(404, "partner_not_found", post, "/v1/admin/partners/99999/clients", admin, map[string]any{"name": "x", "scopes": []string{"points:earn"}})
	list := items(t, e.expect(200, "", get, pp+"/clients", support, nil))
	if len(list) != 2 {
		t.Fatalf("clients: %v; want 2", list)
	}
	for _, c := range list {
		if _, has := c["client_secret"]; has {
			t.Fatalf("listed client shows its secret: %v", c)
		}
	}
	cp := "/v1/admin/clients/" + pos["client_id"].(string)
	code, rot, h := e.send(post, cp+"/secret", admin, nil)
	if code != 200 || rot["client_secret"] == pos["client_secret"] || rot["secret_rotated_at"] == nil ||
		rot["previous_secret_valid_until"] == nil || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate secret: %d %v; want a new secret with the previous one's grace", code, rot)
	}
	if got := e.expect(200, "", put, cp+"/public-key", admin, map[string]any{"public_key": ed25519PEM(t)}); got["public_key_alg"] != "EdDSA" {
		t.Fatalf("set public key: %v; want EdDSA", got)
	}
	e.expect(400, "invalid_request", put, cp+"/public-key", admin, map[string]any{"public_key": "ssh-ed25519 AAAA"})
	e.expect(403, "forbidden", post, cp+"/revoke", finance, nil)
	if got := e.expect(200, "", post, cp+"/revoke", admin, nil); got["status"] != "revoked" || got["revoked_at"] == nil {
		t.Fatalf("revoke: %v; want revoked with revoked_at", got)
	}
	e.expect(200, "", post, cp+"/revoke", admin, nil)
	e.expect(409, "client_revoked", post, cp+"/secret", admin, nil)
	e.expect(409, "client_revoked", put, cp+"/public-key", admin, map[string]any{"public_key": ed25519PEM(t)})
	e.expect(404, "client_not_found", post, "/v1/admin/clients/cl_nope/secret", admin, nil)
	e.expect(404, "client_not_found", post, "/v1/admin/clients/cl_nope/revoke", admin, nil)
	e.expect(404, "client_not_found", put, "/v1/admin/clients/cl_nope/public-key", admin, map[string]any{"public_key": ed25519PEM(t)})

	// Signing keys.
	keys := items(t, e.expect(200, "", get, "/v1/admin/signing-keys", admin, nil))
	if len(keys) != 1 || keys[0]["active"] != true {
		t.Fatalf("signing keys: %v; want one active key", keys)
	}
	e.expect(403, "forbidden", get, "/v1/admin/signing-keys", finance, nil)
	e.expect(403, "forbidden", post, "/v1/admin/signing-keys/rotate", support, nil)
	fresh := e.expect(201, "", post, "/v1/admin/signing-keys/rotate", admin, nil)
	if fresh["active"] != true || fresh["kid"] == keys[0]["kid"] {
		t.Fatalf("rotated key: %v; want a new active key", fresh)
	}
	keys = items(t, e.expect(200, "", get, "/v1/admin/signing-keys", admin, nil))
	active, retired := 0, 0
	for _, k := range keys {
		switch {
		case k["active"] == true && k["retired_at"] == nil:
			active++
		case k["active"] == false && k["retired_at"] != nil && k["verify_until"] != nil:
			retired++
		}
	}
	if len(keys) != 2 || active != 1 || retired != 1 {
		t.Fatalf("signing keys after rotation: %v; want one active key and the old one retired but verifiable", keys)
	}

	// Staff.
	st := e.expect(201, "", post, "/v1/admin/staff", admin, map[string]any{"email": "New@Hub.test", "password": "a long passphrase", "role": "support"})
	if st["email"] != "new@hub.test" || st["status"] != "active" {
		t.Fatalf("create staff: %v; want new@hub.test active", st)
	} else if _, has := st["last_login_at"]; has {
		t.Fatalf("create staff: %v; want no last_login_at before the first sign-in", st)
	}
	e.expect(409, "staff_exists", post, "/v1/admin/staff", admin, map[string]any{"email": "new@hub.test", "password": "another long one", "role": "finance"})
	body = e.expect(400, "invalid_request", post, "/v1/admin/staff", admin, map[string]any{"email": "not an email", "password": "short", "role": "boss"})
	if errs := jsonNumAny(body["errors"]); !strings.Contains(errs, `"password"`) || !strings.Contains(errs, `"role"`) {
		t.Fatalf("bad staff: errors %s; want password and role named", errs)
	}
	e.expect(403, "forbidden", post, "/v1/admin/staff", finance, map[string]any{"email": "x@hub.test", "password": "a long passphrase", "role": "admin"})
	code, body, _ = e.send(post, "/v1/admin/login", "", map[string]any{"email": "new@hub.test", "password": "a long passphrase"})
	if code != 200 {
		t.Fatalf("new staff login: %d %v", code, body)
	}
	newTok := body["access_token"].(string)
	var listed map[string]any
	for _, s := range items(t, e.expect(200, "", get, "/v1/admin/staff", admin, nil)) {
		if s["email"] == "new@hub.test" {
			listed = s
		}
	}
	if listed == nil || listed["last_login_at"] == nil {
		t.Fatalf("staff list: %v; want new@hub.test with last_login_at", listed)
	}
	e.expect(403, "forbidden", get, "/v1/admin/staff", finance, nil)
	e.expect(400, "invalid_request", get, "/v1/admin/staff?limit=0", admin, nil)
	sp := "/v1/admin/staff/" + idOf(t, st) + "/status"
	if got := e.expect(200, "", post, sp, admin, map[string]any{"status": "disabled"}); got["status"] != "disabled" {
		t.Fatalf("disable staff: %v", got)
	}
	e.expect(401, "invalid_token", get, "/v1/admin/partners", newTok, nil)
	e.expect(400, "invalid_request", post, sp, admin, map[string]any{"status": "gone"})
	e.expect(404, "staff_not_found", post, "/v1/admin/staff/99999/status", admin, map[string]any{"status": "active"})
	e.expect(403, "forbidden", post, sp, support, map[string]any{"status": "active"})
}

// Login refusals that need their own server: the lockout after failures, the
// per-IP rate limit and the body size limit, each validated against the
// document (429 with Retry-After, 413).
func TestAdminLoginLimitsMatchOpenAPI(t *testing.T) {
	t.Parallel()
	t.Run("lockout", func(t *testing.T) {
		t.Parallel()
		e := newContractEnv(t, nil)
		e.login("root@hub.test", access.RoleAdmin)
		for range 5 {
			e.expect(401, "invalid_credentials", http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "wrong password!"})
		}
		code, body, h := e.send(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "correct horse battery"})
		if code != 429 || body["code"] != "login_locked" || h.Get("Retry-After") == "" {
			t.Fatalf("locked login: %d %v (Retry-After %q); want 429 login_locked with Retry-After", code, body, h.Get("Retry-After"))
		}
	})
	t.Run("rate and size", func(t *testing.T) {
		t.Parallel()
		e := newContractEnv(t, func(d *Deps) { d.LoginRate, d.LoginBurst, d.MaxBody = 0.001, 1, 512 })
		e.expect(413, "body_too_large", http.MethodPost, "/v1/admin/login", "",
			map[string]any{"email": "root@hub.test", "password": strings.Repeat("x", 600)})
		e.login("root@hub.test", access.RoleAdmin)
		code, body, h := e.send(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": "root@hub.test", "password": "correct horse battery"})
		if code != 429 || body["code"] != "rate_limited" || h.Get("Retry-After") == "" {
			t.Fatalf("second login: %d %v (Retry-After %q); want 429 rate_limited with Retry-After", code, body, h.Get("Retry-After"))
		}
	})
}

// The enums of the admin document follow the domain: a sector or role added
// in partners without its document change fails here instead of failing the
// first response that carries it.
func TestAdminOpenAPIEnumsMatchDomain(t *testing.T) {
	t.Parallel()
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	sectors := make([]string, len(partners.Sectors))
	for i, s := range partners.Sectors {
		sectors[i] = string(s)
	}
	roles := []string{string(access.RoleAdmin), string(access.RoleFinance), string(access.RoleSupport)}
	for name, want := range map[string][]string{"AdminSector": sectors, "AdminRole": roles} {
		got := doc.Components.Schemas[name].Enum
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("components.schemas.%s enum = %v; want %v (web/openapi/admin.yaml)", name, got, want)
		}
	}
}
