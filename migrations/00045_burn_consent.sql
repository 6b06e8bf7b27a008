-- +goose Up
-- A burn needs the member's consent: a one-time redemption code from the
-- portal (6 digits, 5 minutes, single use) or a PIN. Failed attempts are
-- counted per member and lock consent checks for a while.
CREATE TABLE member_redemption_codes (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id          bigint      NOT NULL REFERENCES members (id),
    code_hash          bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL CHECK (expires_at > created_at),
    used_at            timestamptz,
    used_by_partner_id bigint,
    revoked_at         timestamptz,
    CHECK ((used_at IS NULL) = (used_by_partner_id IS NULL))
);
-- Verification looks up the member's live codes only.
CREATE INDEX member_redemption_codes_live ON member_redemption_codes (member_id)
    WHERE used_at IS NULL AND revoked_at IS NULL;

CREATE TABLE member_pins (
    member_id   bigint      PRIMARY KEY REFERENCES members (id),
    pin_hash    text        NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE member_consent_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   bigint      NOT NULL REFERENCES members (id),
    partner_id  bigint,
    failed_at   timestamptz NOT NULL
);
-- The lockout counts a member's recent failures.
CREATE INDEX member_consent_failures_recent ON member_consent_failures (member_id, failed_at);

-- +goose Down
DROP TABLE member_consent_failures;
DROP TABLE member_pins;
DROP TABLE member_redemption_codes;
