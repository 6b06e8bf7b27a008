package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// maxAssertionLifetime bounds exp - now of a client assertion: the jti replay
// table must keep each jti until its assertion expires.
const maxAssertionLifetime = 10 * time.Minute

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// --- client status cache ----------------------------------------------------

// clientCache remembers, for ClientCacheTTL, whether an API client may still
// act (client active and partner live) and with which scopes, so verifying a
// partner token costs no query per request while a revocation still bites
// within the TTL. (Staff and member tokens are checked against their session
// on every request instead: people sign out, and that must bite at once.)
type clientCache struct {
	mu sync.Mutex
	m  map[string]cachedSubject
}

type cachedSubject struct {
	ok        bool
	partnerID int64
	scopes    []Scope
	at        time.Time
}

func (c *clientCache) init() { c.m = map[string]cachedSubject{} }

func (c *clientCache) get(key string, now time.Time, ttl time.Duration) (cachedSubject, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok || now.Sub(v.at) >= ttl || now.Before(v.at) {
		return cachedSubject{}, false
	}
	return v, true
}

func (c *clientCache) put(key string, v cachedSubject) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 { // bound memory; entries are cheap to refetch
		clear(c.m)
	}
	c.m[key] = v
}

func (c *clientCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

func (c *clientCache) forgetPartner(partnerID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		if v.partnerID == partnerID {
			delete(c.m, k)
		}
	}
}

// --- client management ------------------------------------------------------

func validateScopes(field string, scopes []Scope, ve *validation.Error) {
	if len(scopes) == 0 {
		ve.Add(field, "must name at least one scope")
	}
	for i, s := range scopes {
		if !ValidScope(s) {
			ve.Add(fmt.Sprintf("%s[%d]", field, i), "unknown scope "+strconv.Quote(string(s)))
		}
	}
}

// CreateClient registers an API client for a partner. Unless NoSecret, it
// issues a secret, returned here once and stored only as a SHA-256 hash.
func (s *Service) CreateClient(ctx context.Context, partnerID int64, in NewClient) (ClientSecret, error) {
	in.Name = strings.TrimSpace(in.Name)
	var ve validation.Error
	ve.Check(len(in.Name) >= 1 && len(in.Name) <= 200, "name", "must be 1 to 200 characters")
	validateScopes("scopes", in.Scopes, &ve)
	var pemKey, alg *string
	if in.PublicKey != "" {
		p, a, err := ParsePublicKey(in.PublicKey)
		if err != nil {
			ve.Add("public_key", err.Error())
		} else {
			pemKey, alg = &p, &a
		}
	} else if in.NoSecret {
		ve.Add("public_key", "is required for a client without a secret")
	}
	if err := ve.Err(); err != nil {
		return ClientSecret{}, err
	}
	clientID := "cl_" + randomHex(12)
	var secret string
	var hash []byte
	if !in.NoSecret {
		secret = "cs_" + randomToken(32)
		hash = hashSecret(secret)
	}
	var out ClientSecret
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := insertClient(tx, clientID, partnerID, in.Name, hash, slices.Compact(in.Scopes), pemKey, alg, s.now()); err != nil {
			return err
		}
		r, err := selectClient(tx, clientID, false)
		out = ClientSecret{Client: r.client(), Secret: secret}
		return err
	})
	if err != nil {
		return ClientSecret{}, fmt.Errorf("create client for partner %d: %w", partnerID, err)
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Client returns one client or ErrClientNotFound.
func (s *Service) Client(ctx context.Context, clientID string) (Client, error) {
	r, err := selectClient(s.db.WithContext(ctx), clientID, false)
	if err != nil {
		return Client{}, err
	}
	return r.client(), nil
}

// Clients lists a partner's clients by id.
func (s *Service) Clients(ctx context.Context, partnerID int64, page partners.Page) ([]Client, error) {
	if _, err := s.registry.Partner(ctx, partnerID); err != nil {
		return nil, fmt.Errorf("clients of partner %d: %w", partnerID, err)
	}
	rows, err := selectClients(s.db.WithContext(ctx), partnerID, page)
	if err != nil {
		return nil, fmt.Errorf("clients of partner %d: %w", partnerID, err)
	}
	out := make([]Client, len(rows))
	for i, r := range rows {
		out[i] = r.client()
	}
	return out, nil
}

// RotateClientSecret issues a new secret, returned once. The previous secret
// keeps working for SecretGrace (so the partner can roll the new one out),
// then stops; a second rotation ends the first one's grace at once.
func (s *Service) RotateClientSecret(ctx context.Context, clientID string) (ClientSecret, error) {
	secret := "cs_" + randomToken(32)
	var out ClientSecret
	err := s.tx(ctx, func(tx *gorm.DB) error {
		r, err := selectClient(tx, clientID, true)
		if err != nil {
			return err
		}
		if r.Status != "active" {
			return ErrClientRevoked
		}
		now := s.now()
		var prev []byte
		var until *time.Time
		if r.SecretHash != nil {
			t := now.Add(s.opts.SecretGrace)
			prev, until = r.SecretHash, &t
		}
		if err := updateClientSecret(tx, clientID, hashSecret(secret), prev, until, now); err != nil {
			return err
		}
		r, err = selectClient(tx, clientID, false)
		out = ClientSecret{Client: r.client(), Secret: secret}
		return err
	})
	if err != nil {
		return ClientSecret{}, fmt.Errorf("rotate secret of client %s: %w", clientID, err)
	}
	return out, nil
}

// RevokeClient revokes a client for good: it can get no new token, and its
// unexpired tokens are refused (at once in this process, within
// ClientCacheTTL in others). Revoking twice is a no-op.
func (s *Service) RevokeClient(ctx context.Context, clientID string) (Client, error) {
	var out Client
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := revokeClient(tx, clientID, s.now()); err != nil {
			return err
		}
		r, err := selectClient(tx, clientID, false)
		out = r.client()
		return err
	})
	s.clients.forget(clientID)
	if err != nil {
		return Client{}, fmt.Errorf("revoke client %s: %w", clientID, err)
	}
	return out, nil
}

// SetClientPublicKey registers (or replaces) the public key a client signs
// its private_key_jwt assertions with: a JWK (JSON) or PKIX PEM of an Ed25519
// or P-256 key.
func (s *Service) SetClientPublicKey(ctx context.Context, clientID, key string) (Client, error) {
	pemKey, alg, err := ParsePublicKey(key)
	if err != nil {
		return Client{}, validation.New("public_key", err.Error())
	}
	var out Client
	err = s.tx(ctx, func(tx *gorm.DB) error {
		r, err := selectClient(tx, clientID, true)
		if err != nil {
			return err
		}
		if r.Status != "active" {
			return ErrClientRevoked
		}
		if err := updateClientPublicKey(tx, clientID, pemKey, alg); err != nil {
			return err
		}
		r, err = selectClient(tx, clientID, false)
		out = r.client()
		return err
	})
	if err != nil {
		return Client{}, fmt.Errorf("set public key of client %s: %w", clientID, err)
	}
	return out, nil
}

// ParsePublicKey accepts a JWK (kty OKP/Ed25519 or EC/P-256) or a PKIX PEM
// public key and returns it as PKIX PEM with the JWS algorithm it pins
// (EdDSA or ES256). Other key types are refused.
func ParsePublicKey(s string) (pemKey, alg string, err error) {
	s = strings.TrimSpace(s)
	var pub any
	switch {
	case strings.HasPrefix(s, "{"):
		pub, err = parseJWK([]byte(s))
	case strings.HasPrefix(s, "-----BEGIN"):
		block, _ := pem.Decode([]byte(s))
		if block == nil || block.Type != "PUBLIC KEY" {
			return "", "", errors.New("must be a PEM block of type PUBLIC KEY")
		}
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	default:
		return "", "", errors.New("must be a JWK (JSON) or a PEM public key")
	}
	if err != nil {
		return "", "", fmt.Errorf("unreadable key: %v", err)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		alg = "EdDSA"
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", "", errors.New("only the P-256 curve is accepted for EC keys")
		}
		alg = "ES256"
	default:
		return "", "", errors.New("must be an Ed25519 or P-256 key")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), alg, nil
}

func parseJWK(b []byte) (any, error) {
	var j struct{ Kty, Crv, X, Y, D string }
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.D != "" {
		return nil, errors.New("this is a private key: register the public key only")
	}
	x, err := base64.RawURLEncoding.DecodeString(j.X)
	if err != nil {
		return nil, errors.New("x is not base64url")
	}
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("x must be 32 bytes")
		}
		return ed25519.PublicKey(x), nil
	case j.Kty == "EC" && j.Crv == "P-256":
		y, err := base64.RawURLEncoding.DecodeString(j.Y)
		if err != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("x and y must be 32-byte base64url values")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	}
	return nil, errors.New("kty/crv must be OKP/Ed25519 or EC/P-256")
}

func publicKeyFromPEM(s string) (any, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("stored key is not PEM")
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// --- client authentication and tokens ---------------------------------------

// readClient reads a client with its partner's status, which the registry
// owns. Errors: ErrClientNotFound.
func (s *Service) readClient(ctx context.Context, clientID string) (clientRow, error) {
	r, err := selectClient(s.db.WithContext(ctx), clientID, false)
	if err != nil {
		return r, err
	}
	p, err := s.registry.Partner(ctx, r.PartnerID)
	if err != nil {
		return r, fmt.Errorf("client %s: %w", clientID, err)
	}
	r.PartnerStatus = string(p.Status)
	return r, nil
}

// usable reports whether the client may authenticate now.
func (r clientRow) usable() bool {
	return r.Status == "active" && partners.Status(r.PartnerStatus).Live()
}

// AuthenticateSecret checks a client_id and secret (client_secret_basic).
// The previous secret is accepted until its grace period ends. Every failure
// is ErrInvalidClient (with the reason in the wrapped text, for logs).
func (s *Service) AuthenticateSecret(ctx context.Context, clientID, secret string) (Client, error) {
	r, err := s.readClient(ctx, clientID)
	if errors.Is(err, ErrClientNotFound) {
		return Client{}, fmt.Errorf("%w: unknown client", ErrInvalidClient)
	}
	if err != nil {
		return Client{}, err
	}
	given := hashSecret(secret)
	ok := r.SecretHash != nil && subtle.ConstantTimeCompare(given, r.SecretHash) == 1
	if !ok && r.PreviousSecretHash != nil && r.PreviousValidUntil != nil && s.now().Before(*r.PreviousValidUntil) {
		ok = subtle.ConstantTimeCompare(given, r.PreviousSecretHash) == 1
	}
	switch {
	case !ok:
		return Client{}, fmt.Errorf("%w: wrong secret for %s", ErrInvalidClient, clientID)
	case !r.usable():
		return Client{}, fmt.Errorf("%w: client %s is %s, partner %s", ErrInvalidClient, clientID, r.Status, r.PartnerStatus)
	}
	return r.client(), nil
}

// AuthenticateAssertion checks a private_key_jwt client assertion (RFC 7523):
// signed with the client's registered key and algorithm (no other algorithm
// is accepted), iss = sub = client_id, aud = the hub's issuer or its token
// endpoint URL, exp required and at most 10 minutes ahead, and a jti never
// seen before (a replay is ErrInvalidClient wrapping ErrAssertionReplayed).
// clientID may be empty, then the assertion's sub names the client.
func (s *Service) AuthenticateAssertion(ctx context.Context, clientID, assertion, tokenURL string) (Client, error) {
	if clientID == "" {
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(assertion, &c); err != nil {
			return Client{}, fmt.Errorf("%w: unreadable assertion", ErrInvalidClient)
		}
		clientID = c.Subject
	}
	r, err := s.readClient(ctx, clientID)
	if errors.Is(err, ErrClientNotFound) {
		return Client{}, fmt.Errorf("%w: unknown client", ErrInvalidClient)
	}
	if err != nil {
		return Client{}, err
	}
	if r.PublicKeyPem == nil || r.PublicKeyAlg == nil {
		return Client{}, fmt.Errorf("%w: client %s has no registered public key", ErrInvalidClient, clientID)
	}
	pub, err := publicKeyFromPEM(*r.PublicKeyPem)
	if err != nil {
		return Client{}, err
	}
	now := s.now()
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(assertion, &claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{*r.PublicKeyAlg}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(s.opts.Leeway), jwt.WithTimeFunc(s.now), jwt.WithIssuer(clientID), jwt.WithSubject(clientID))
	if err != nil {
		return Client{}, fmt.Errorf("%w: assertion: %v", ErrInvalidClient, err)
	}
	audOK := false
	for _, a := range claims.Audience {
		if a == s.opts.Issuer || a == tokenURL {
			audOK = true
		}
	}
	switch {
	case !audOK:
		return Client{}, fmt.Errorf("%w: assertion audience must be %s", ErrInvalidClient, tokenURL)
	case claims.ID == "":
		return Client{}, fmt.Errorf("%w: assertion has no jti", ErrInvalidClient)
	case claims.ExpiresAt.Sub(now) > maxAssertionLifetime:
		return Client{}, fmt.Errorf("%w: assertion expires more than %s ahead", ErrInvalidClient, maxAssertionLifetime)
	case !r.usable():
		return Client{}, fmt.Errorf("%w: client %s is %s, partner %s", ErrInvalidClient, clientID, r.Status, r.PartnerStatus)
	}
	fresh, err := recordAssertionJTI(s.db.WithContext(ctx), clientID, claims.ID, claims.ExpiresAt.Add(s.opts.Leeway), now)
	if err != nil {
		return Client{}, err
	}
	if !fresh {
		return Client{}, fmt.Errorf("%w: %w (jti %q)", ErrInvalidClient, ErrAssertionReplayed, claims.ID)
	}
	return r.client(), nil
}

// tokenClaims are the claims of every token the hub signs.
type tokenClaims struct {
	jwt.RegisteredClaims
	PartnerID int64  `json:"partner_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Role      string `json:"role,omitempty"`
	// SessionID (sid) names the server-side session of a staff or member
	// token; the token is honoured only while that session is open.
	SessionID string `json:"sid,omitempty"`
}

func (s *Service) sign(ctx context.Context, c tokenClaims) (string, string, error) {
	kid, priv, err := s.signingKey(ctx)
	if err != nil {
		return "", "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	signed, err := t.SignedString(priv)
	return signed, kid, err
}

// IssueToken signs an access token for an authenticated client. scope is the
// requested space-separated subset of the client's scopes (empty: all of
// them); anything else is ErrInvalidScope. The token carries iss, aud
// (AudiencePartner), sub (client_id), partner_id, scope, iat, nbf, exp
// (AccessTokenTTL) and a unique jti, and names its signing key in kid.
func (s *Service) IssueToken(ctx context.Context, c Client, scope string) (Token, error) {
	scopes := c.Scopes
	if strings.TrimSpace(scope) != "" {
		scopes = ParseScopes(scope)
		for _, sc := range scopes {
			if !slices.Contains(c.Scopes, sc) {
				return Token{}, fmt.Errorf("%w: %q is not granted to client %s", ErrInvalidScope, sc, c.ClientID)
			}
		}
	}
	now := s.now()
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.opts.Issuer, Subject: c.ClientID, Audience: jwt.ClaimStrings{AudiencePartner},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.opts.AccessTokenTTL)), ID: randomToken(16),
		},
		PartnerID: c.PartnerID, Scope: JoinScopes(scopes),
	}
	signed, kid, err := s.sign(ctx, claims)
	if err != nil {
		return Token{}, fmt.Errorf("issue token for client %s: %w", c.ClientID, err)
	}
	return Token{AccessToken: signed, ExpiresIn: s.opts.AccessTokenTTL, Scopes: scopes, KeyID: kid}, nil
}

// parse verifies a hub-signed token: algorithm pinned to EdDSA, kid required
// and known (retired keys only until their verify_until), exp required, iss
// and aud checked, nbf and iat honoured with Leeway.
//
// A partner sends the same token on every request for its lifetime, and the
// signature check (Ed25519) was a tenth of an earn's CPU. A token whose
// signature verified is remembered (tokenCache): a signature over the same
// bytes stays valid, so a repeat checks everything else again — the key
// still usable, the time claims, issuer and audience — without the curve
// arithmetic.
func (s *Service) parse(ctx context.Context, raw, audience string) (tokenClaims, error) {
	if v, ok := s.tokens.get(audience, raw); ok {
		if _, err := s.verificationKey(ctx, v.kid); err != nil {
			return tokenClaims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
		if err := s.validator(audience).Validate(v.claims); err != nil {
			return tokenClaims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
		return v.claims, nil
	}
	var claims tokenClaims
	var kid string
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return s.verificationKey(ctx, kid)
	}, s.parserOptions(audience)...)
	if err != nil {
		return tokenClaims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if claims.ID == "" || claims.Subject == "" {
		return tokenClaims{}, fmt.Errorf("%w: jti and sub are required", ErrInvalidToken)
	}
	s.tokens.put(audience, raw, verifiedToken{kid: kid, claims: claims})
	return claims, nil
}

func (s *Service) parserOptions(audience string) []jwt.ParserOption {
	return []jwt.ParserOption{jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(s.opts.Issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(s.opts.Leeway), jwt.WithTimeFunc(s.now)}
}

// validator checks the claims of a remembered token as parse would.
func (s *Service) validator(audience string) *jwt.Validator {
	return jwt.NewValidator(jwt.WithIssuer(s.opts.Issuer), jwt.WithAudience(audience), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(s.opts.Leeway), jwt.WithTimeFunc(s.now))
}

// tokenCache remembers tokens whose signature verified, by audience and the
// token's exact bytes. Bounded: it is emptied when full.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	kid    string
	claims tokenClaims
}

const tokenCacheSize = 20000

func (c *tokenCache) get(audience, raw string) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[audience+" "+raw]
	return v, ok
}

func (c *tokenCache) put(audience, raw string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheSize {
		c.m = make(map[string]verifiedToken)
	}
	c.m[audience+" "+raw] = v
}

// VerifyAccessToken checks a partner access token and returns its principal.
// Any defect, or a client that has since been revoked (or whose partner is
// no longer live), is ErrInvalidToken. Scopes are the token's scopes still
// granted to the client, so a scope withdrawn from a client stops working
// within ClientCacheTTL.
func (s *Service) VerifyAccessToken(ctx context.Context, raw string) (Principal, error) {
	claims, err := s.parse(ctx, raw, AudiencePartner)
	if err != nil {
		return Principal{}, err
	}
	if claims.PartnerID <= 0 {
		return Principal{}, fmt.Errorf("%w: partner_id is required", ErrInvalidToken)
	}
	sub, err := s.clientStatus(ctx, claims.Subject)
	if err != nil {
		return Principal{}, err
	}
	if !sub.ok || sub.partnerID != claims.PartnerID {
		return Principal{}, fmt.Errorf("%w: client %s is revoked or its partner is not live", ErrInvalidToken, claims.Subject)
	}
	var scopes []Scope
	for _, sc := range ParseScopes(claims.Scope) {
		if slices.Contains(sub.scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return Principal{PartnerID: claims.PartnerID, ClientID: claims.Subject, Scopes: scopes,
		TokenID: claims.ID, ExpiresAt: claims.ExpiresAt.Time}, nil
}

func (s *Service) clientStatus(ctx context.Context, clientID string) (cachedSubject, error) {
	now := s.now()
	if v, ok := s.clients.get(clientID, now, s.opts.ClientCacheTTL); ok {
		return v, nil
	}
	r, err := s.readClient(ctx, clientID)
	if errors.Is(err, ErrClientNotFound) {
		return cachedSubject{at: now}, nil
	}
	if err != nil {
		return cachedSubject{}, err
	}
	v := cachedSubject{ok: r.usable(), partnerID: r.PartnerID, scopes: ParseScopes(r.Scopes), at: now}
	s.clients.put(clientID, v)
	return v, nil
}

// --- staff ------------------------------------------------------------------

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func validateStaff(email, password string, role Role) error {
	var ve validation.Error
	a, err := mail.ParseAddress(email)
	ve.Check(err == nil && a.Address == email && len(email) <= 254, "email", "must be a plain email address")
	ve.Check(len(password) >= 12 && len(password) <= 72, "password", "must be 12 to 72 characters")
	ve.Check(ValidRole(role), "role", "must be admin, finance or support")
	return ve.Err()
}

// CreateStaff adds an operator staff account (ErrStaffExists for a taken
// email). Passwords are stored as bcrypt hashes.
func (s *Service) CreateStaff(ctx context.Context, email, password string, role Role) (Staff, error) {
	email = normEmail(email)
	if err := validateStaff(email, password, role); err != nil {
		return Staff{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.opts.PasswordCost)
	if err != nil {
		return Staff{}, err
	}
	r, err := insertStaff(s.db.WithContext(ctx), email, string(hash), role, s.now())
	if err != nil {
		return Staff{}, fmt.Errorf("create staff %s: %w", email, err)
	}
	return r.staff(), nil
}

// EnsureStaff creates the staff account unless one with this email exists,
// in which case it is returned unchanged (its password and role are not
// touched). The seed calls it to create the first admin; it is idempotent.
func (s *Service) EnsureStaff(ctx context.Context, email, password string, role Role) (Staff, error) {
	st, err := s.CreateStaff(ctx, email, password, role)
	if errors.Is(err, ErrStaffExists) {
		r, found, err := selectStaffByEmail(s.db.WithContext(ctx), normEmail(email), false)
		if err != nil || !found {
			return Staff{}, fmt.Errorf("ensure staff %s: %w", email, errors.Join(err, ErrStaffNotFound))
		}
		return r.staff(), nil
	}
	return st, err
}

// StaffMembers lists staff accounts by id.
func (s *Service) StaffMembers(ctx context.Context, page partners.Page) ([]Staff, error) {
	rows, err := selectStaff(s.db.WithContext(ctx), page)
	if err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	out := make([]Staff, len(rows))
	for i, r := range rows {
		out[i] = r.staff()
	}
	return out, nil
}

// SetStaffStatus enables or disables a staff account. Disabling ends every
// session of the account in the same transaction, so its tokens are refused
// at once in every process; enabling it again revives none of them.
// Disabling the last active admin is refused (ErrLastAdmin blamed on
// "status"); the active admins are locked while counting, as in
// SetStaffRole. Errors: ErrStaffNotFound, ErrLastAdmin, *validation.Error.
func (s *Service) SetStaffStatus(ctx context.Context, id int64, status string) (Staff, error) {
	if status != "active" && status != "disabled" {
		return Staff{}, validation.New("status", "must be active or disabled")
	}
	var out Staff
	err := s.tx(ctx, func(tx *gorm.DB) error {
		admins, err := lockActiveAdmins(tx)
		if err != nil {
			return err
		}
		r, err := selectStaffByID(tx, id)
		if err != nil {
			return err
		}
		if status == "disabled" && r.Role == string(RoleAdmin) && r.Status == "active" && len(admins) <= 1 {
			return validation.Blame("status", "cannot be disabled: this is the last active admin", ErrLastAdmin)
		}
		if err := updateStaffStatus(tx, id, status); err != nil {
			return err
		}
		r.Status = status
		out = r.staff()
		if status == "disabled" {
			return endStaffSessions(tx, id, EndStaffDisabled, s.now())
		}
		return nil
	})
	if err != nil {
		return Staff{}, fmt.Errorf("set status of staff %d: %w", id, err)
	}
	return out, nil
}

// StaffLogin checks email and password, starts a staff session and signs
// a staff token naming it (audience AudienceStaff, role and sid claims,
// StaffTokenTTL). Unknown email, wrong password and disabled accounts are all
// ErrInvalidCredentials. Every attempt counts against the account's sign-in
// throttle (Options.LoginThrottle, shared by every process) before the
// password is checked, and a successful one is given back; past the budget
// the answer is ErrLoginLocked wrapping a *throttle.LimitedError that says
// how long to wait, even for the right password. Unknown emails are
// throttled alike, so the answers reveal no account.
func (s *Service) StaffLogin(ctx context.Context, email, password string, info SessionInfo) (Token, Staff, error) {
	email = normEmail(email)
	tok, st, err := s.staffLogin(ctx, email, password, info)
	if err != nil {
		return Token{}, Staff{}, fmt.Errorf("staff login %s: %w", email, err)
	}
	return tok, st, nil
}

func (s *Service) staffLogin(ctx context.Context, email, password string, info SessionInfo) (Token, Staff, error) {
	if err := s.logins.Take(ctx, email); err != nil {
		var lim *throttle.LimitedError
		if errors.As(err, &lim) {
			return Token{}, Staff{}, fmt.Errorf("%w (%w)", ErrLoginLocked, lim)
		}
		return Token{}, Staff{}, err
	}
	r, found, err := selectStaffByEmail(s.db.WithContext(ctx), email, false)
	if err != nil {
		return Token{}, Staff{}, err
	}
	if !found {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return Token{}, Staff{}, ErrInvalidCredentials
	}
	if bcrypt.CompareHashAndPassword([]byte(r.PasswordHash), []byte(password)) != nil || r.Status != "active" {
		return Token{}, Staff{}, ErrInvalidCredentials
	}
	var sess staffSessionRow
	err = s.tx(ctx, func(tx *gorm.DB) error {
		now := s.now()
		if err := updateStaffLastLogin(tx, r.ID, now); err != nil {
			return err
		}
		r.LastLoginAt = &now
		sess, err = startStaffSession(tx, r.ID, now.Add(s.opts.StaffTokenTTL), info, now)
		return err
	})
	if err != nil {
		return Token{}, Staff{}, err
	}
	if err := s.logins.Refund(ctx, email); err != nil {
		return Token{}, Staff{}, err
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.opts.Issuer, Subject: "staff:" + strconv.FormatInt(r.ID, 10), Audience: jwt.ClaimStrings{AudienceStaff},
			IssuedAt: jwt.NewNumericDate(sess.CreatedAt), NotBefore: jwt.NewNumericDate(sess.CreatedAt),
			ExpiresAt: jwt.NewNumericDate(sess.ExpiresAt), ID: randomToken(16),
		},
		Role: r.Role, SessionID: sess.ID,
	}
	signed, kid, err := s.sign(ctx, claims)
	if err != nil {
		return Token{}, Staff{}, err
	}
	return Token{AccessToken: signed, ExpiresIn: s.opts.StaffTokenTTL, KeyID: kid}, r.staff(), nil
}

// VerifyStaffToken checks a staff token (audience AudienceStaff) and its
// session, and returns its principal with the account's current role. The
// session and the account are read on every call (one primary-key lookup
// joined to the account), so a sign-out or a disabled account is refused at
// once in every process. Any refusal is ErrInvalidToken.
func (s *Service) VerifyStaffToken(ctx context.Context, raw string) (StaffPrincipal, error) {
	claims, err := s.parse(ctx, raw, AudienceStaff)
	if err != nil {
		return StaffPrincipal{}, err
	}
	idText, ok := strings.CutPrefix(claims.Subject, "staff:")
	id, perr := strconv.ParseInt(idText, 10, 64)
	if !ok || perr != nil {
		return StaffPrincipal{}, fmt.Errorf("%w: bad staff subject", ErrInvalidToken)
	}
	if claims.SessionID == "" {
		return StaffPrincipal{}, fmt.Errorf("%w: no session", ErrInvalidToken)
	}
	r, err := s.staffSession(ctx, id, claims.SessionID)
	if err != nil {
		return StaffPrincipal{}, err
	}
	return StaffPrincipal{StaffID: id, Email: r.Email, Role: Role(r.Role), TokenID: claims.ID, SessionID: claims.SessionID}, nil
}
