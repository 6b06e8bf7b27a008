-- +goose Up
-- Portal sign-in: a member's password (bcrypt) and failed attempts for lockout.
CREATE TABLE member_credentials (
    member_id      bigint      PRIMARY KEY REFERENCES members (id),
    password_hash  text        NOT NULL,
    updated_at     timestamptz NOT NULL,
    failed_logins  integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   timestamptz
);

-- +goose Down
DROP TABLE member_credentials;
