package access

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// SecretBox seals secrets at rest with AES-256-GCM under the hub's secrets
// key (HUB_SECRETS_KEY). A sealed value is nonce || ciphertext || tag.
type SecretBox struct{ aead cipher.AEAD }

// NewSecretBox builds a box from a 32-byte key.
func NewSecretBox(key []byte) (*SecretBox, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("access: secrets key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &SecretBox{aead: aead}, nil
}

// Seal encrypts plain.
func (b *SecretBox) Seal(plain []byte) ([]byte, error) { return b.seal(plain, nil) }

// Open decrypts what Seal produced; it fails when the value was tampered with
// or sealed under another key.
func (b *SecretBox) Open(sealed []byte) ([]byte, error) { return b.open(sealed, nil) }

// seal binds the ciphertext to ad (e.g. a key id), so a sealed value copied
// onto another row does not open.
func (b *SecretBox) seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, plain, ad), nil
}

func (b *SecretBox) open(sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errors.New("sealed value does not open under the secrets key")
	}
	return plain, nil
}

// ParseSecretsKey decodes a base64 (standard or URL alphabet) 32-byte key.
func ParseSecretsKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("secrets key must decode to 32 bytes, got %d", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("secrets key must be base64 of 32 bytes")
}

// LoadOrCreateSecretsKey reads the base64 secrets key kept in path, creating
// the file (mode 0600, directory 0700) with a fresh random key when it does
// not exist. It is for local development when HUB_SECRETS_KEY is unset; the
// caller logs that it created one (never the key). Several processes (or
// serve and worker in one `hub all`) racing to create it agree on one file:
// the key is written to a temporary file first and linked into place, which
// fails if another got there first, so nobody ever reads a half-written key.
func LoadOrCreateSecretsKey(path string) (key []byte, created bool, err error) {
	if b, err := os.ReadFile(path); err == nil {
		k, err := ParseSecretsKey(string(b))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, false, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".key-*") // mode 0600
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadOrCreateSecretsKey(path)
	} else if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// --- signing keys -----------------------------------------------------------

// keyRefreshMinInterval rate-limits database reloads triggered by tokens with
// an unknown kid, so garbage kids cannot turn into a query per request.
const keyRefreshMinInterval = 2 * time.Second

type verifyKey struct {
	pub         ed25519.PublicKey
	verifyUntil *time.Time // nil: the active key
}

// keyring caches the verifiable public keys and the active private key.
type keyring struct {
	mu          sync.RWMutex
	byKID       map[string]verifyKey
	signerKID   string
	signer      ed25519.PrivateKey
	loadedAt    time.Time // last full reload
	lastRefresh time.Time // last reload caused by an unknown kid
}

// loadKeys reloads every key still verifiable at now from the database.
func (s *Service) loadKeys(ctx context.Context) error {
	now := s.now()
	rows, err := selectLiveKeys(s.db.WithContext(ctx), now)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	byKID := make(map[string]verifyKey, len(rows))
	var signerKID string
	var signer ed25519.PrivateKey
	for _, r := range rows {
		byKID[r.KID] = verifyKey{pub: ed25519.PublicKey(r.PublicKey), verifyUntil: r.VerifyUntil}
		if r.RetiredAt == nil {
			seed, err := s.box.open(r.SealedPrivate, []byte(r.KID))
			if err != nil {
				return fmt.Errorf("signing key %s: %w (is HUB_SECRETS_KEY the one it was sealed with?)", r.KID, err)
			}
			if len(seed) != ed25519.SeedSize {
				return fmt.Errorf("signing key %s: bad seed length", r.KID)
			}
			signerKID, signer = r.KID, ed25519.NewKeyFromSeed(seed)
		}
	}
	s.keys.mu.Lock()
	s.keys.byKID, s.keys.signerKID, s.keys.signer, s.keys.loadedAt = byKID, signerKID, signer, now
	s.keys.mu.Unlock()
	return nil
}

// signingKey returns the active key, reloading it every KeyRefresh (so a
// rotation made by another process takes over) and creating the first key
// when the database has none.
func (s *Service) signingKey(ctx context.Context) (string, ed25519.PrivateKey, error) {
	s.keys.mu.RLock()
	kid, priv, loadedAt := s.keys.signerKID, s.keys.signer, s.keys.loadedAt
	s.keys.mu.RUnlock()
	if priv != nil && s.now().Sub(loadedAt) < s.opts.KeyRefresh {
		return kid, priv, nil
	}
	if err := s.loadKeys(ctx); err != nil {
		return "", nil, err
	}
	s.keys.mu.RLock()
	kid, priv = s.keys.signerKID, s.keys.signer
	s.keys.mu.RUnlock()
	if priv != nil {
		return kid, priv, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tx(ctx, func(tx *gorm.DB) error { return s.createSigningKey(tx, false) }); err != nil {
		return "", nil, err
	}
	if err := s.loadKeys(ctx); err != nil {
		return "", nil, err
	}
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	if s.keys.signer == nil {
		return "", nil, errors.New("no active signing key after bootstrap")
	}
	return s.keys.signerKID, s.keys.signer, nil
}

// signingLock serialises key creation and rotation across processes.
const signingLock = 727275020

// createSigningKey adds a new active key. With rotate, the current active key
// retires but stays verifiable until every token it may have signed has
// expired: the longest token lifetime, plus the KeyRefresh during which other
// processes may still sign with it, plus leeway. Without rotate it does
// nothing when an active key exists (another process bootstrapped first).
func (s *Service) createSigningKey(tx *gorm.DB, rotate bool) error {
	if err := lockSigningKeys(tx); err != nil {
		return err
	}
	now := s.now()
	if rotate {
		ttl := max(s.opts.AccessTokenTTL, s.opts.StaffTokenTTL)
		until := now.Add(ttl + s.opts.KeyRefresh + s.opts.Leeway)
		if err := retireSigningKey(tx, now, until); err != nil {
			return err
		}
	} else {
		n, err := countActiveKeys(tx)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	kid := randomToken(16)
	sealed, err := s.box.seal(priv.Seed(), []byte(kid))
	if err != nil {
		return err
	}
	return insertSigningKey(tx, kid, pub, sealed, now)
}

// RotateSigningKey makes a fresh key the one that signs. The previous key
// stays published in the JWKS and verifiable until its tokens have expired,
// so two keys are live during the overlap. It returns the new key.
func (s *Service) RotateSigningKey(ctx context.Context) (SigningKey, error) {
	if err := s.tx(ctx, func(tx *gorm.DB) error { return s.createSigningKey(tx, true) }); err != nil {
		return SigningKey{}, fmt.Errorf("rotate signing key: %w", err)
	}
	if err := s.loadKeys(ctx); err != nil {
		return SigningKey{}, err
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		return SigningKey{}, err
	}
	for _, k := range keys {
		if k.Active() {
			return k, nil
		}
	}
	return SigningKey{}, errors.New("rotate signing key: no active key after rotation")
}

// SigningKeys lists the keys that are published: the active one and retired
// ones still verifiable, newest first. It creates the first key when there
// is none, so the JWKS is never empty.
func (s *Service) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	if _, _, err := s.signingKey(ctx); err != nil {
		return nil, err
	}
	rows, err := selectLiveKeys(s.db.WithContext(ctx), s.now())
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	out := make([]SigningKey, len(rows))
	for i, r := range rows {
		out[i] = r.key()
	}
	return out, nil
}

// JWK is a public key in RFC 7517 form (OKP / Ed25519).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the published keys as a JWK set body ({"keys": [...]}).
func (s *Service) JWKS(ctx context.Context) ([]JWK, error) {
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]JWK, len(keys))
	for i, k := range keys {
		out[i] = JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.PublicKey),
			Kid: k.KID, Alg: "EdDSA", Use: "sig"}
	}
	return out, nil
}

// verificationKey finds the public key for kid, reloading from the database
// (at most every keyRefreshMinInterval) when the kid is unknown here: a key
// another process created. A retired key past its verify_until is refused.
func (s *Service) verificationKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	now := s.now()
	s.keys.mu.RLock()
	k, ok := s.keys.byKID[kid]
	last := s.keys.lastRefresh
	s.keys.mu.RUnlock()
	if !ok && now.Sub(last) >= keyRefreshMinInterval {
		s.keys.mu.Lock()
		s.keys.lastRefresh = now
		s.keys.mu.Unlock()
		if err := s.loadKeys(ctx); err != nil {
			return nil, err
		}
		s.keys.mu.RLock()
		k, ok = s.keys.byKID[kid]
		s.keys.mu.RUnlock()
	}
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	if k.verifyUntil != nil && !now.Before(*k.verifyUntil) {
		return nil, fmt.Errorf("kid %q is retired", kid)
	}
	return k.pub, nil
}
