-- +goose Up
-- Member sessions (members): every member token (portal cookie, app token)
-- names one row by its sid claim, and a request is served only while that row
-- is neither ended nor expired. Sign-out, a password change, suspension,
-- closure and merge end rows; erasure deletes them (user agent and address are
-- personal data). Expired and ended rows are deleted a day later
-- (members:prune_sessions).
CREATE TABLE member_sessions (
    id            text        PRIMARY KEY CHECK (length(id) BETWEEN 16 AND 64),
    member_id     bigint      NOT NULL REFERENCES members (id),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL CHECK (expires_at > created_at),
    ended_at      timestamptz,
    end_reason    text        CHECK (length(end_reason) <= 40),
    user_agent    text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 256),
    ip            text        NOT NULL DEFAULT '' CHECK (length(ip) <= 45),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX member_sessions_member ON member_sessions (member_id);

-- The per-account sign-in throttle (login_throttle) replaces the lockout columns.
ALTER TABLE member_credentials DROP COLUMN failed_logins, DROP COLUMN locked_until;

-- +goose Down
ALTER TABLE member_credentials ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN locked_until timestamptz;
DROP TABLE member_sessions;
