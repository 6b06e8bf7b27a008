package access

import "errors"

// API client and token errors. Authentication failures deliberately share
// few distinct errors so that a caller cannot probe which part was wrong.
var (
	ErrClientNotFound = errors.New("api client not found")
	// ErrClientRevoked: the operation needs an active client.
	ErrClientRevoked = errors.New("api client is revoked")
	// ErrInvalidClient: unknown client, wrong secret, bad or replayed assertion,
	// or a client that is revoked or whose partner is not live.
	ErrInvalidClient = errors.New("invalid client")
	// ErrInvalidScope: a requested scope is unknown or not granted to the client.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInvalidToken: the access token is malformed, badly signed, expired,
	// for another issuer or audience, signed by an unknown key, or its client
	// was revoked.
	ErrInvalidToken = errors.New("invalid token")
	// ErrAssertionReplayed: a private_key_jwt assertion's jti was already used.
	ErrAssertionReplayed = errors.New("client assertion replayed")
)

// Staff errors.
var (
	ErrStaffNotFound = errors.New("staff user not found")
	ErrStaffExists   = errors.New("a staff user with this email already exists")
	// ErrInvalidCredentials: unknown email, wrong password or disabled account.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrLoginLocked: too many failed logins; try again later.
	ErrLoginLocked = errors.New("too many failed logins")
)
