package access

import (
	"slices"
	"strings"
	"time"
)

// Scope limits what an API client may do.
type Scope string

const (
	ScopeMembersRead    Scope = "members:read"
	ScopeMembersWrite   Scope = "members:write"
	ScopePointsEarn     Scope = "points:earn"
	ScopePointsBurn     Scope = "points:burn"
	ScopePointsReverse  Scope = "points:reverse"
	ScopeCatalogManage  Scope = "catalog:manage"
	ScopeOrdersFulfil   Scope = "orders:fulfil"
	ScopeExchange       Scope = "exchange"
	ScopeSettlementRead Scope = "settlement:read"
)

// Scopes lists every scope a client may hold.
var Scopes = []Scope{ScopeMembersRead, ScopeMembersWrite, ScopePointsEarn, ScopePointsBurn,
	ScopePointsReverse, ScopeCatalogManage, ScopeOrdersFulfil, ScopeExchange, ScopeSettlementRead}

// ValidScope reports whether s is a known scope.
func ValidScope(s Scope) bool { return slices.Contains(Scopes, s) }

// ParseScopes splits an OAuth scope string (space separated), dropping
// duplicates. It does not validate.
func ParseScopes(s string) []Scope {
	var out []Scope
	for _, f := range strings.Fields(s) {
		if !slices.Contains(out, Scope(f)) {
			out = append(out, Scope(f))
		}
	}
	return out
}

// JoinScopes renders scopes as an OAuth scope string.
func JoinScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// Client is an OAuth 2.0 client of a partner. The secret itself is never
// stored or returned after creation/rotation.
type Client struct {
	ID                int64
	ClientID          string // public identifier, cl_...
	PartnerID         int64
	Name              string
	Scopes            []Scope
	Status            string // active | revoked
	HasSecret         bool
	PublicKeyAlg      string // EdDSA | ES256 | "" (no private_key_jwt)
	CreatedAt         time.Time
	SecretRotatedAt   *time.Time
	PreviousValidTill *time.Time // the previous secret still works until then
	RevokedAt         *time.Time
}

// NewClient is the input of CreateClient. PublicKey (JWK JSON or PKIX PEM of
// an Ed25519 or P-256 key) is optional; without it the client uses its secret.
type NewClient struct {
	Name      string
	Scopes    []Scope
	PublicKey string
	NoSecret  bool // key-only client: no secret is issued
}

// ClientSecret is a newly issued secret: shown once, never retrievable again.
type ClientSecret struct {
	Client Client
	Secret string // empty for key-only clients
}

// Principal is the authenticated caller of a partner API request.
type Principal struct {
	PartnerID int64
	ClientID  string
	Scopes    []Scope
	TokenID   string
	ExpiresAt time.Time
}

// Has reports whether the principal holds scope.
func (p Principal) Has(scope Scope) bool { return slices.Contains(p.Scopes, scope) }

// Token is an issued access token.
type Token struct {
	AccessToken string
	ExpiresIn   time.Duration
	Scopes      []Scope
	KeyID       string
}

// Role is an operator staff role.
type Role string

const (
	RoleAdmin   Role = "admin"   // everything, including clients, keys and staff
	RoleFinance Role = "finance" // read everything; manage contracts and prepaid balances
	RoleSupport Role = "support" // read-only
)

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return r == RoleAdmin || r == RoleFinance || r == RoleSupport }

// Staff is an operator staff account.
type Staff struct {
	ID          int64
	Email       string
	Role        Role
	Status      string // active | disabled
	CreatedAt   time.Time
	LastLoginAt *time.Time
}

// StaffPrincipal is the authenticated caller of an admin API request.
type StaffPrincipal struct {
	StaffID   int64
	Email     string
	Role      Role
	TokenID   string
	SessionID string // the staff session the token names (sid)
}

// Actor names the staff member for audit columns such as created_by.
func (p StaffPrincipal) Actor() string { return "staff:" + p.Email }

// SigningKey describes one of the hub's token signing keys (public part only).
type SigningKey struct {
	KID         string
	Alg         string
	PublicKey   []byte // Ed25519, 32 bytes
	CreatedAt   time.Time
	RetiredAt   *time.Time
	VerifyUntil *time.Time
}

// Active reports whether the key signs new tokens.
func (k SigningKey) Active() bool { return k.RetiredAt == nil }
