// Package access owns who may call the hub: the partners' API clients with
// their secrets, public keys and scopes, the hub's token signing keys, and the
// operator's staff accounts with their roles and sessions. It issues and
// verifies every token the hub accepts (partner access tokens from the OAuth
// client-credentials grant, staff tokens and member tokens).
//
// Invariants:
//
//   - API client secrets are 256-bit random values stored only as SHA-256
//     hashes and shown once. A slow hash (bcrypt) protects guessable,
//     human-chosen passwords; a 256-bit random secret cannot be guessed, so
//     SHA-256 is as safe and keeps /oauth/token cheap (bcrypt on every token
//     request would be a CPU denial-of-service lever). Staff passwords are
//     human-chosen and therefore bcrypt.
//   - After a secret rotation the previous secret works for SecretGrace
//     (default 1 hour), then never again.
//   - Tokens are signed with Ed25519 (EdDSA) keys stored in signing_keys so
//     every API process shares them; private halves are sealed with
//     AES-256-GCM under HUB_SECRETS_KEY, bound to their kid. Exactly one key
//     signs (a partial unique index). Rotation retires it but keeps it
//     published and verifiable for the longest token lifetime plus the key
//     refresh interval plus leeway, so two keys are live during the overlap.
//   - Verification pins EdDSA, requires kid, exp, iss and aud, honours nbf
//     and iat with a small leeway, and looks the kid up in a cache that is
//     reloaded from the database on an unknown kid at most every 2 seconds.
//   - A revoked client (or a partner no longer live) is refused even with an
//     unexpired token: client status is cached for ClientCacheTTL (default 5
//     seconds), and the revoking process forgets the client immediately.
//   - private_key_jwt assertions are single-use: their jti is kept until the
//     assertion expires (at most 10 minutes ahead) and a replay is refused.
//   - Staff sign-in is throttled per account across every process
//     (internal/throttle: 5 failures at once, then one every 3 minutes,
//     429 with Retry-After past that), unknown emails alike.
//   - A staff token names a staff_sessions row (sid) and is honoured only
//     while that row is open and the account active, checked on every
//     request: signing out or disabling the account bites at once in every
//     process.
package access
