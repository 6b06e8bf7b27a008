package web

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/partners"
)

const testIssuer = "https://hub.test"

// authEnv is a hub HTTP server on a fresh database, plus test-only routes
// behind partnerAuth: /t/any (no scope) and /t/earn (points:earn).
type authEnv struct {
	t     *testing.T
	srv   *httptest.Server
	svc   *partners.Service
	acc   *access.Service
	db    *gorm.DB
	clock *clock.Manual
}

func newAuthEnv(t *testing.T, tune func(*Deps)) *authEnv {
	t.Helper()
	db := testdb.New(t)
	clk := clock.New(time.Now().UTC().Truncate(time.Second))
	svc := partners.NewService(db, clk.Now)
	acc, err := access.NewService(db, svc, access.Options{Issuer: testIssuer, SecretsKey: make([]byte, 32), Now: clk.Now, PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Partners: svc, Access: acc, ClientRate: 1000, ClientBurst: 1000, LoginRate: 1000, LoginBurst: 1000}
	if tune != nil {
		tune(&deps)
	}
	s := New(deps)
	probe := gin.New()
	ok := func(c *gin.Context) {
		p, _ := partnerPrincipal(c)
		c.JSON(http.StatusOK, gin.H{"partner_id": p.PartnerID, "client_id": p.ClientID})
	}
	probe.GET("/t/any", s.partnerAuth(), ok)
	probe.GET("/t/earn", s.partnerAuth(), s.requireScope(access.ScopePointsEarn), ok)
	probe.GET("/t/staff", s.staffAuth(), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	mux := http.NewServeMux()
	mux.Handle("/t/", probe)
	mux.Handle("/", s.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &authEnv{t: t, srv: srv, svc: svc, acc: acc, db: db, clock: clk}
}

// partnerClient creates a live partner and a secret client with scopes.
func (e *authEnv) partnerClient(name string, scopes ...access.Scope) (partners.Partner, access.ClientSecret) {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.svc.CreatePartner(ctx, partners.NewPartner{Name: name, Sector: partners.SectorAirline, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
	if err != nil {
		e.t.Fatal(err)
	}
	cs, err := e.acc.CreateClient(ctx, p.ID, access.NewClient{Name: "pos", Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	return p, cs
}

func (e *authEnv) basicToken(clientID, secret, scope string) (int, map[string]any, http.Header) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return e.do(req)
}

func (e *authEnv) postForm(form url.Values) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

func (e *authEnv) do(req *http.Request) (int, map[string]any, http.Header) {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body, res.Header
}

// call sends a request with a bearer token (and optional JSON body).
func (e *authEnv) call(method, path, token string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.do(req)
}

// hubKey recovers the hub's active signing key from the database, opening
// the sealed seed with the test secrets key (32 zero bytes, kid as AAD) —
// so tests can forge tokens that differ from a valid one in one claim only.
func (e *authEnv) hubKey() (string, ed25519.PrivateKey) {
	e.t.Helper()
	if _, err := e.acc.SigningKeys(context.Background()); err != nil { // bootstraps the first key
		e.t.Fatal(err)
	}
	var row struct {
		Kid           string
		SealedPrivate []byte
	}
	if err := e.db.Raw(`SELECT kid, sealed_private FROM signing_keys WHERE retired_at IS NULL`).Scan(&row).Error; err != nil {
		e.t.Fatal(err)
	}
	block, _ := aes.NewCipher(make([]byte, 32))
	gcm, _ := cipher.NewGCM(block)
	seed, err := gcm.Open(nil, row.SealedPrivate[:12], row.SealedPrivate[12:], []byte(row.Kid))
	if err != nil {
		e.t.Fatalf("open sealed signing key: %v", err)
	}
	return row.Kid, ed25519.NewKeyFromSeed(seed)
}

func claimsFor(p partners.Partner, cs access.ClientSecret, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": testIssuer, "aud": access.AudiencePartner, "sub": cs.Client.ClientID,
		"partner_id": p.ID, "scope": "points:earn", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(15 * time.Minute).Unix(), "jti": "j-" + rand.Text()}
}

func signEdDSA(t *testing.T, kid string, key ed25519.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClientCredentialsWithBasicSecret(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	p, cs := e.partnerClient("Airline", access.ScopePointsEarn, access.ScopePointsBurn)

	// A real OAuth client library against the endpoint.
	cfg := clientcredentials.Config{ClientID: cs.Client.ClientID, ClientSecret: cs.Secret,
		TokenURL: e.srv.URL + "/oauth/token", Scopes: []string{"points:earn"}, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatalf("client credentials grant: %v", err)
	}
	if tok.TokenType != "Bearer" || time.Until(tok.Expiry) > 15*time.Minute+5*time.Second || time.Until(tok.Expiry) < 14*time.Minute {
		t.Fatalf("token type %q expiry in %s; want Bearer, ~15m", tok.TokenType, time.Until(tok.Expiry))
	}

	// Verify it as an outsider would: with the JWKS, pinning EdDSA.
	code, jwks, _ := e.call(http.MethodGet, "/.well-known/jwks.json", "", nil)
	keys, _ := jwks["keys"].([]any)
	if code != 200 || len(keys) != 1 {
		t.Fatalf("JWKS: %d %v; want 200 with one key", code, jwks)
	}
	jwk := keys[0].(map[string]any)
	if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" || jwk["alg"] != "EdDSA" || jwk["use"] != "sig" || jwk["d"] != nil {
		t.Fatalf("JWK = %v; want a public OKP Ed25519 EdDSA signing key", jwk)
	}
	x, _ := base64.RawURLEncoding.DecodeString(jwk["x"].(string))
	var claims jwt.MapClaims
	parsed, err := jwt.ParseWithClaims(tok.AccessToken, &claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != jwk["kid"] {
			return nil, jwt.ErrTokenUnverifiable
		}
		return ed25519.PublicKey(x), nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(testIssuer), jwt.WithAudience("coalition-hub"), jwt.WithExpirationRequired())
	if err != nil || !parsed.Valid {
		t.Fatalf("token does not verify with the JWKS: %v", err)
	}
	if claims["sub"] != cs.Client.ClientID || claims["partner_id"] != float64(p.ID) || claims["scope"] != "points:earn" ||
		claims["jti"] == nil || claims["iat"] == nil || claims["nbf"] == nil {
		t.Fatalf("claims = %v; want sub, partner_id, scope points:earn, jti, iat, nbf", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 900 {
		t.Fatalf("exp - iat = %v; want 900 s", exp-iat)
	}

	code, body, _ := e.call(http.MethodGet, "/t/earn", tok.AccessToken, nil)
	if code != 200 || body["client_id"] != cs.Client.ClientID {
		t.Fatalf("scoped call: %d %v; want 200 for the client", code, body)
	}
	// A token narrowed to points:earn cannot burn, even though the client may.
	code, body, hdr := e.basicToken(cs.Client.ClientID, cs.Secret, "")
	if code != 200 || body["scope"] != "points:earn points:burn" {
		t.Fatalf("token without scope: %d %v; want all client scopes", code, body)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("token response Cache-Control = %q; want no-store", hdr.Get("Cache-Control"))
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	_, cs := e.partnerClient("Hotel", access.ScopePointsEarn)
	id := cs.Client.ClientID

	code, body, hdr := e.basicToken(id, cs.Secret+"x", "")
	if code != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong secret: %d %v %q; want 401 invalid_client with a Basic challenge", code, body, hdr.Get("WWW-Authenticate"))
	}
	if code, body, _ = e.basicToken("cl_unknownunknownunknown", cs.Secret, ""); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v; want 401 invalid_client", code, body)
	}
	if code, body, _ = e.basicToken(id, cs.Secret, "points:burn"); code != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("scope not granted: %d %v; want 400 invalid_scope", code, body)
	}
	if code, body, _ = e.basicToken(id, cs.Secret, "root"); code != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("unknown scope: %d %v; want 400 invalid_scope", code, body)
	}
	if code, body, _ = e.postForm(url.Values{"grant_type": {"password"}}); code != 400 || body["error"] != "unsupported_grant_type" {
		t.Fatalf("password grant: %d %v; want 400 unsupported_grant_type", code, body)
	}
	if code, body, _ = e.postForm(url.Values{"grant_type": {"client_credentials"}}); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("no client authentication: %d %v; want 401 invalid_client", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(id, cs.Secret)
	if code, body, _ = e.do(req); code != 400 || body["error"] != "invalid_request" {
		t.Fatalf("JSON body: %d %v; want 400 invalid_request", code, body)
	}
}

func assertion(t *testing.T, method jwt.SigningMethod, key any, clientID, aud string, now time.Time, jti string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, jwt.MapClaims{"iss": clientID, "sub": clientID, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": jti}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClientCredentialsWithPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	ctx := context.Background()
	p, _ := e.partnerClient("Bank", access.ScopeMembersRead)

	// Ed25519 key registered as a JWK, on a client without a secret.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwk := `{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	edc, err := e.acc.CreateClient(ctx, p.ID, access.NewClient{Name: "card processor", Scopes: []access.Scope{access.ScopePointsEarn}, PublicKey: jwk, NoSecret: true})
	if err != nil || edc.Secret != "" || edc.Client.PublicKeyAlg != "EdDSA" {
		t.Fatalf("key-only client: %+v %v; want EdDSA and no secret", edc, err)
	}
	id := edc.Client.ClientID
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {a}}
	}
	a := assertion(t, jwt.SigningMethodEdDSA, priv, id, e.acc.TokenURL(), e.clock.Now(), "a-1")
	code, body, _ := e.postForm(form(a))
	if code != 200 || body["access_token"] == nil {
		t.Fatalf("private_key_jwt: %d %v; want 200 with a token", code, body)
	}
	// Replaying the same assertion (same jti) is refused.
	if code, body, _ = e.postForm(form(a)); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("replayed assertion: %d %v; want 401 invalid_client", code, body)
	}
	// A fresh jti works again; a wrong audience, another key, or HS256 does not.
	if code, _, _ = e.postForm(form(assertion(t, jwt.SigningMethodEdDSA, priv, id, e.acc.TokenURL(), e.clock.Now(), "a-2"))); code != 200 {
		t.Fatalf("fresh assertion: %d; want 200", code)
	}
	if code, _, _ = e.postForm(form(assertion(t, jwt.SigningMethodEdDSA, priv, id, "https://evil.test", e.clock.Now(), "a-3"))); code != 401 {
		t.Fatalf("assertion for another audience: %d; want 401", code)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if code, _, _ = e.postForm(form(assertion(t, jwt.SigningMethodEdDSA, other, id, e.acc.TokenURL(), e.clock.Now(), "a-4"))); code != 401 {
		t.Fatalf("assertion signed by another key: %d; want 401", code)
	}
	if code, _, _ = e.postForm(form(assertion(t, jwt.SigningMethodHS256, []byte(pub), id, e.acc.TokenURL(), e.clock.Now(), "a-5"))); code != 401 {
		t.Fatalf("HS256 assertion keyed with the public key: %d; want 401", code)
	}

	// P-256 key registered as PEM through the admin API (ES256).
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	_, sc := e.partnerClient("Retailer", access.ScopePointsEarn)
	admin := e.staffToken("root@hub.test", access.RoleAdmin)
	code, body, _ = e.call(http.MethodPut, "/v1/admin/clients/"+sc.Client.ClientID+"/public-key", admin, map[string]any{"public_key": pemKey})
	if code != 200 || body["public_key_alg"] != "ES256" {
		t.Fatalf("register P-256 key: %d %v; want 200 ES256", code, body)
	}
	if code, body, _ = e.postForm(form(assertion(t, jwt.SigningMethodES256, ek, sc.Client.ClientID, testIssuer, e.clock.Now(), "b-1"))); code != 200 {
		t.Fatalf("ES256 assertion: %d %v; want 200", code, body)
	}
}

// staffToken creates a staff account and logs it in through the API.
func (e *authEnv) staffToken(email string, role access.Role) string {
	e.t.Helper()
	if _, err := e.acc.EnsureStaff(context.Background(), email, "correct horse battery", role); err != nil {
		e.t.Fatal(err)
	}
	code, body, _ := e.call(http.MethodPost, "/v1/admin/login", "", map[string]any{"email": email, "password": "correct horse battery"})
	if code != 200 {
		e.t.Fatalf("login %s: %d %v", email, code, body)
	}
	return body["access_token"].(string)
}

func TestTokenAttacksAreRefused(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	p, cs := e.partnerClient("Cinema", access.ScopePointsEarn)
	kid, key := e.hubKey()
	now := e.clock.Now()
	valid := signEdDSA(t, kid, key, claimsFor(p, cs, now))
	if code, _, _ := e.call(http.MethodGet, "/t/earn", valid, nil); code != 200 {
		t.Fatalf("control: a correctly forged-in-test token gets %d; want 200", code)
	}
	with := func(k string, v any) jwt.MapClaims {
		c := claimsFor(p, cs, now)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	pubDER := key.Public().(ed25519.PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsFor(p, cs, now))
	hs.Header["kid"] = kid
	hsToken, _ := hs.SignedString([]byte(pubDER))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claimsFor(p, cs, now))
	none.Header["kid"] = kid
	noneToken, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"partner_id":`), []byte(`"partner_id":9`), 1)) + "." + parts[2]
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)

	attacks := []struct {
		name  string
		token string
	}{
		{"alg none", noneToken},
		{"HS256 keyed with the public key", hsToken},
		{"expired", signEdDSA(t, kid, key, with("exp", now.Add(-2*time.Minute).Unix()))},
		{"no exp", signEdDSA(t, kid, key, with("exp", nil))},
		{"not yet valid", signEdDSA(t, kid, key, with("nbf", now.Add(10*time.Minute).Unix()))},
		{"wrong issuer", signEdDSA(t, kid, key, with("iss", "https://evil.test"))},
		{"wrong audience", signEdDSA(t, kid, key, with("aud", "coalition-hub-admin"))},
		{"unknown kid", signEdDSA(t, "unknownkid123", strangerKey, claimsFor(p, cs, now))},
		{"known kid, other key", signEdDSA(t, kid, strangerKey, claimsFor(p, cs, now))},
		{"tampered payload", tampered},
		{"another partner's id", signEdDSA(t, kid, key, with("partner_id", p.ID+1))},
		{"garbage", "not.a.token"},
	}
	for _, a := range attacks {
		code, body, hdr := e.call(http.MethodGet, "/t/any", a.token, nil)
		if code != 401 || body["code"] != "invalid_token" || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %v %q; want 401 invalid_token with a Bearer challenge", a.name, code, body["code"], hdr.Get("WWW-Authenticate"))
		}
	}
	if code, body, hdr := e.call(http.MethodGet, "/t/any", "", nil); code != 401 || body["code"] != "unauthorized" || hdr.Get("WWW-Authenticate") != `Bearer realm="coalition-hub"` {
		t.Errorf("no token: %d %v %q; want 401 with a bare Bearer challenge", code, body, hdr.Get("WWW-Authenticate"))
	}

	// Missing scope: 403 insufficient_scope.
	_, reader := e.partnerClient("Reader", access.ScopeMembersRead)
	_, tb, _ := e.basicToken(reader.Client.ClientID, reader.Secret, "")
	code, body, hdr := e.call(http.MethodGet, "/t/earn", tb["access_token"].(string), nil)
	if code != 403 || body["code"] != "insufficient_scope" || !strings.Contains(hdr.Get("WWW-Authenticate"), `scope="points:earn"`) {
		t.Errorf("missing scope: %d %v %q; want 403 insufficient_scope naming points:earn", code, body, hdr.Get("WWW-Authenticate"))
	}

	// Staff tokens do not open the partner API, nor partner tokens the admin API.
	staff := e.staffToken("ops@hub.test", access.RoleAdmin)
	if code, _, _ := e.call(http.MethodGet, "/t/any", staff, nil); code != 401 {
		t.Errorf("staff token on the partner API: %d; want 401", code)
	}
	if code, _, _ := e.call(http.MethodGet, "/v1/admin/partners", valid, nil); code != 401 {
		t.Errorf("partner token on the admin API: %d; want 401", code)
	}

	// Expiry by the clock: the valid token dies after 15 minutes (plus leeway).
	e.clock.Add(16 * time.Minute)
	if code, _, _ := e.call(http.MethodGet, "/t/any", valid, nil); code != 401 {
		t.Errorf("token after its exp: %d; want 401", code)
	}
}

func TestRevokedClientIsRefused(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	_, cs := e.partnerClient("Telecom", access.ScopePointsEarn)
	_, tb, _ := e.basicToken(cs.Client.ClientID, cs.Secret, "")
	tok := tb["access_token"].(string)
	if code, _, _ := e.call(http.MethodGet, "/t/earn", tok, nil); code != 200 {
		t.Fatalf("before revocation: %d; want 200", code)
	}
	admin := e.staffToken("root@hub.test", access.RoleAdmin)
	code, body, _ := e.call(http.MethodPost, "/v1/admin/clients/"+cs.Client.ClientID+"/revoke", admin, nil)
	if code != 200 || body["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", code, body)
	}
	if code, _, _ := e.call(http.MethodGet, "/t/earn", tok, nil); code != 401 {
		t.Fatalf("unexpired token of a revoked client: %d; want 401", code)
	}
	if code, body, _ := e.basicToken(cs.Client.ClientID, cs.Secret, ""); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("new token for a revoked client: %d %v; want 401 invalid_client", code, body)
	}
	// Suspending a partner stops its clients' tokens too.
	p2, cs2 := e.partnerClient("Fuel", access.ScopePointsEarn)
	_, tb2, _ := e.basicToken(cs2.Client.ClientID, cs2.Secret, "")
	code, _, _ = e.call(http.MethodPost, "/v1/admin/partners/"+itoa(p2.ID)+"/status", admin, map[string]any{"status": "suspended"})
	if code != 200 {
		t.Fatalf("suspend partner: %d", code)
	}
	if code, _, _ := e.call(http.MethodGet, "/t/earn", tb2["access_token"].(string), nil); code != 401 {
		t.Fatalf("token of a suspended partner: %d; want 401", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	_, cs := e.partnerClient("Hotel chain", access.ScopePointsEarn)
	_, tb, _ := e.basicToken(cs.Client.ClientID, cs.Secret, "")
	oldTok := tb["access_token"].(string)
	oldKID := kidOf(t, oldTok)

	admin := e.staffToken("root@hub.test", access.RoleAdmin)
	code, body, _ := e.call(http.MethodPost, "/v1/admin/signing-keys/rotate", admin, nil)
	if code != 201 || body["kid"] == oldKID || body["active"] != true {
		t.Fatalf("rotate: %d %v; want 201 with a new active kid", code, body)
	}
	newKID := body["kid"].(string)

	if code, _, _ := e.call(http.MethodGet, "/t/earn", oldTok, nil); code != 200 {
		t.Fatalf("token signed by the retired key: %d; want 200 during the overlap", code)
	}
	_, tb, _ = e.basicToken(cs.Client.ClientID, cs.Secret, "")
	if got := kidOf(t, tb["access_token"].(string)); got != newKID {
		t.Fatalf("new token kid = %s; want the new key %s", got, newKID)
	}
	_, jwks, _ := e.call(http.MethodGet, "/.well-known/jwks.json", "", nil)
	if kids := jwksKIDs(jwks); len(kids) != 2 || !kids[oldKID] || !kids[newKID] {
		t.Fatalf("JWKS kids = %v; want old and new", kids)
	}
	// After the overlap (8h staff token lifetime + refresh + leeway) the old
	// key leaves the JWKS and stops verifying.
	e.clock.Add(9 * time.Hour)
	_, jwks, _ = e.call(http.MethodGet, "/.well-known/jwks.json", "", nil)
	if kids := jwksKIDs(jwks); len(kids) != 1 || !kids[newKID] {
		t.Fatalf("JWKS kids after the overlap = %v; want only %s", kids, newKID)
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Header["kid"].(string)
}

func jwksKIDs(jwks map[string]any) map[string]bool {
	out := map[string]bool{}
	keys, _ := jwks["keys"].([]any)
	for _, k := range keys {
		out[k.(map[string]any)["kid"].(string)] = true
	}
	return out
}

func TestClientSecretRotation(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	_, cs := e.partnerClient("Restaurant", access.ScopePointsEarn)
	admin := e.staffToken("root@hub.test", access.RoleAdmin)
	code, body, hdr := e.call(http.MethodPost, "/v1/admin/clients/"+cs.Client.ClientID+"/secret", admin, nil)
	newSecret, _ := body["client_secret"].(string)
	if code != 200 || newSecret == "" || newSecret == cs.Secret || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate secret: %d %v; want 200 with a new secret, no-store", code, body)
	}
	if code, _, _ := e.basicToken(cs.Client.ClientID, newSecret, ""); code != 200 {
		t.Fatalf("new secret: %d; want 200", code)
	}
	if code, _, _ := e.basicToken(cs.Client.ClientID, cs.Secret, ""); code != 200 {
		t.Fatalf("old secret within the grace period: %d; want 200", code)
	}
	e.clock.Add(time.Hour + time.Second)
	if code, _, _ := e.basicToken(cs.Client.ClientID, cs.Secret, ""); code != 401 {
		t.Fatalf("old secret after the grace period: %d; want 401", code)
	}
	if code, _, _ := e.basicToken(cs.Client.ClientID, newSecret, ""); code != 200 {
		t.Fatalf("new secret after the grace period: %d; want 200", code)
	}
	// The secret is never shown again.
	_, list, _ := e.call(http.MethodGet, "/v1/admin/partners/"+itoa(cs.Client.PartnerID)+"/clients", admin, nil)
	if strings.Contains(jsonNumAny(list), "cs_") {
		t.Fatalf("client list leaks a secret: %v", list)
	}
}

func jsonNumAny(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestPartnerRateLimit(t *testing.T) {
	t.Parallel()
	// One token per 1,000 s: the bucket does not refill during the test,
	// however slow the machine.
	e := newAuthEnv(t, func(d *Deps) { d.ClientRate, d.ClientBurst = 0.001, 3 })
	_, cs := e.partnerClient("Shop", access.ScopePointsEarn)
	_, other := e.partnerClient("Other shop", access.ScopePointsEarn)
	_, tb, _ := e.basicToken(cs.Client.ClientID, cs.Secret, "") // takes one token of the bucket
	tok := tb["access_token"].(string)
	for i := range 2 {
		if code, _, _ := e.call(http.MethodGet, "/t/any", tok, nil); code != 200 {
			t.Fatalf("request %d within the burst: %d; want 200", i, code)
		}
	}
	code, body, hdr := e.call(http.MethodGet, "/t/any", tok, nil)
	if code != 429 || body["code"] != "rate_limited" || hdr.Get("Retry-After") == "" || hdr.Get("Retry-After") == "0" {
		t.Fatalf("over the limit: %d %v Retry-After %q; want 429 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	// Another client has its own bucket.
	if code, _, _ := e.basicToken(other.Client.ClientID, other.Secret, ""); code != 200 {
		t.Fatalf("another client: %d; want 200", code)
	}
}
