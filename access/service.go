package access

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/partners"
)

// Audience values of the tokens the hub issues.
const (
	AudiencePartner = "coalition-hub"       // partner API access tokens
	AudienceStaff   = "coalition-hub-admin" // operator console / admin API tokens
)

// Options configure a Service. Zero durations take the documented defaults.
type Options struct {
	Issuer     string           // iss of every token: the hub's public URL
	SecretsKey []byte           // 32 bytes (AES-256) sealing the signing keys' private halves
	Now        func() time.Time // the clock; time.Now when nil

	AccessTokenTTL time.Duration // partner access tokens; default 15m
	StaffTokenTTL  time.Duration // staff tokens; default 8h
	// ClientCacheTTL bounds how long a revoked client's (or suspended
	// partner's) unexpired token keeps working in another process; default 5s.
	// The process that revokes forgets the client at once.
	ClientCacheTTL time.Duration
	// SecretGrace is how long the previous client secret keeps working after
	// a rotation; default 1h.
	SecretGrace time.Duration
	Leeway      time.Duration // clock skew tolerated on exp/nbf/iat; default 30s
	// KeyRefresh is how often a process reloads the active signing key from
	// the database (so a rotation in another process takes over); default 1m.
	KeyRefresh time.Duration
	// LoginThrottle limits staff sign-in attempts per account, across every
	// process (internal/throttle); default throttle.DefaultPolicy.
	LoginThrottle throttle.Policy
	// PasswordCost is the bcrypt cost of new staff passwords and of the dummy
	// hash an unknown email is compared with; default bcrypt.DefaultCost.
	// Tests lower it (bcrypt.MinCost): the race detector makes each
	// comparison at the default cost take seconds.
	PasswordCost int
}

// Service owns API clients, signing keys, tokens and staff accounts. It is
// safe for concurrent use.
type Service struct {
	db       *gorm.DB
	registry *partners.Service // whether a client's partner is live
	opts     Options
	now      func() time.Time
	box      *SecretBox

	keys      keyring
	clients   clientCache
	tokens    tokenCache
	logins    *throttle.Limiter // per-account staff sign-in throttle
	dummyHash func() []byte
	mu        sync.Mutex // guards bootstrap of the first signing key
}

// NewService builds the service on the partner registry, which tells it when
// a partner's status changes. It touches no table until used; the first
// token issued creates a signing key when the database has none.
func NewService(db *gorm.DB, registry *partners.Service, opts Options) (*Service, error) {
	if opts.Issuer == "" {
		return nil, errors.New("access: Options.Issuer is required")
	}
	box, err := NewSecretBox(opts.SecretsKey)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.AccessTokenTTL, 15*time.Minute)
	def(&opts.StaffTokenTTL, 8*time.Hour)
	def(&opts.ClientCacheTTL, 5*time.Second)
	def(&opts.SecretGrace, time.Hour)
	def(&opts.Leeway, 30*time.Second)
	def(&opts.KeyRefresh, time.Minute)
	if opts.PasswordCost == 0 {
		opts.PasswordCost = bcrypt.DefaultCost
	}
	s := &Service{db: db, registry: registry, opts: opts, now: opts.Now, box: box,
		logins: throttle.New(db, "staff", opts.LoginThrottle, opts.Now)}
	// What an unknown email's password is compared with, so a login for an
	// unknown account takes as long as one with a wrong password; made on
	// first use so that building a service costs nothing.
	s.dummyHash = sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), opts.PasswordCost)
		return h
	})
	s.clients.init()
	s.keys.byKID = map[string]verifyKey{}
	// Tokens of a partner that is no longer live stop working at once in
	// this process.
	registry.OnStatusChange(s.clients.forgetPartner)
	return s, nil
}

// SecretBox returns the AES-256-GCM box sealing secrets under HUB_SECRETS_KEY,
// for other components that store recoverable secrets (webhook secrets).
func (s *Service) SecretBox() *SecretBox { return s.box }

func (s *Service) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// Issuer is the iss of the hub's tokens (its public URL).
func (s *Service) Issuer() string { return s.opts.Issuer }

// TokenURL is the token endpoint, accepted as a client assertion's audience.
func (s *Service) TokenURL() string { return strings.TrimSuffix(s.opts.Issuer, "/") + "/oauth/token" }
