// Package partners owns the coalition's partners and everything that binds
// them to the hub: the registry (sector, status, settlement currency, time
// zone, outlets), versioned contracts, prepaid balances, OAuth API clients,
// the hub's token signing keys, and the operator's staff accounts. (Earn
// rules, promotions and webhooks live here too, in their own files.)
//
// Invariants:
//
//   - Contracts are immutable versions numbered 1, 2, ... per partner. A
//     change is a new version whose effective_from is after every existing
//     one and, for any version but the first, not in the past; the contract
//     in force at t is the latest with effective_from <= t (ContractAt).
//     Contract money is in the partner's settlement currency, which the
//     database enforces with a composite foreign key.
//   - Prepaid balance = sum of prepaid_movements (top-ups positive, draw-downs
//     negative). prepaid_accounts.balance_minor is that sum maintained in the
//     same transaction as each movement, with CHECK (balance_minor >= 0).
//     DrawDown runs one conditional UPDATE ... WHERE balance_minor - x >= 0,
//     which takes the account's row lock: concurrent draw-downs of one
//     partner serialise on that row and none overdraws. This is a hot row by
//     design, acceptable for prepaid partners only (postpaid partners, the
//     common case, never touch it): prepaid is a product for small partners,
//     and refusing an earn when the money runs out needs a single, current
//     balance. A movement's ref is unique per partner and kind, so a retried
//     top-up or draw-down never counts twice.
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
package partners
