-- +goose Up
-- API clients (OAuth 2.0 client credentials), the hub's token signing keys,
-- replay protection for client assertions, and operator staff accounts.

CREATE TABLE api_clients (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id             text        NOT NULL UNIQUE CHECK (client_id ~ '^cl_[a-z0-9]{20,40}$'),
    partner_id            bigint      NOT NULL REFERENCES partners (id),
    name                  text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    -- SHA-256 of a 256-bit random secret (see partners/doc.go for why not bcrypt).
    secret_hash           bytea       CHECK (octet_length(secret_hash) = 32),
    previous_secret_hash  bytea       CHECK (octet_length(previous_secret_hash) = 32),
    previous_valid_until  timestamptz,
    scopes                text[]      NOT NULL CHECK (cardinality(scopes) >= 1),
    status                text        NOT NULL DEFAULT 'active' CHECK (status IN ('active','revoked')),
    -- Public key for private_key_jwt, as PKIX PEM, with the algorithm it pins.
    public_key_pem        text,
    public_key_alg        text        CHECK (public_key_alg IN ('EdDSA','ES256')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at     timestamptz,
    revoked_at            timestamptz,
    CHECK (scopes <@ ARRAY['members:read','members:write','points:earn','points:burn','points:reverse',
                           'catalog:manage','orders:fulfil','exchange','settlement:read']::text[]),
    CHECK ((public_key_pem IS NULL) = (public_key_alg IS NULL)),
    CHECK ((previous_secret_hash IS NULL) = (previous_valid_until IS NULL)),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    -- A client must have some way to authenticate.
    CHECK (secret_hash IS NOT NULL OR public_key_pem IS NOT NULL)
);
CREATE INDEX api_clients_partner ON api_clients (partner_id, id);

-- jti of every accepted client assertion until it expires: a replay is refused.
CREATE TABLE client_assertion_jtis (
    client_id   text        NOT NULL REFERENCES api_clients (client_id),
    jti         text        NOT NULL CHECK (length(jti) BETWEEN 1 AND 200),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);

-- Ed25519 keys the hub signs access tokens with. Private keys are sealed with
-- AES-256-GCM under HUB_SECRETS_KEY. Exactly one key signs (retired_at IS
-- NULL); a retired key stays published and verifiable until verify_until.
CREATE TABLE signing_keys (
    kid             text        PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{8,64}$'),
    alg             text        NOT NULL DEFAULT 'EdDSA' CHECK (alg = 'EdDSA'),
    public_key      bytea       NOT NULL CHECK (octet_length(public_key) = 32),
    sealed_private  bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz,
    verify_until    timestamptz,
    CHECK ((retired_at IS NULL) = (verify_until IS NULL)),
    CHECK (verify_until IS NULL OR verify_until >= retired_at)
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE staff_users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text        NOT NULL CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$'),
    password_hash   text        NOT NULL CHECK (password_hash LIKE '$2%'),
    role            text        NOT NULL CHECK (role IN ('admin','finance','support')),
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active','disabled')),
    failed_logins   integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz,
    UNIQUE (email)
);

-- +goose Down
DROP TABLE staff_users;
DROP TABLE signing_keys;
DROP TABLE client_assertion_jtis;
DROP TABLE api_clients;
