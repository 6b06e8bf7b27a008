-- +goose Up
-- Staff sessions (partners): every staff token (console cookie, admin API
-- token) names one row by its sid claim, and a request is served only while
-- that row is neither ended nor expired and the account is active. Sign-out
-- and disabling the account end rows. Expired and ended rows are deleted a day
-- later (partners:prune_staff_sessions).
CREATE TABLE staff_sessions (
    id            text        PRIMARY KEY CHECK (length(id) BETWEEN 16 AND 64),
    staff_id      bigint      NOT NULL REFERENCES staff_users (id),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL CHECK (expires_at > created_at),
    ended_at      timestamptz,
    end_reason    text        CHECK (length(end_reason) <= 40),
    user_agent    text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 256),
    ip            text        NOT NULL DEFAULT '' CHECK (length(ip) <= 45),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- The per-account sign-in throttle (login_throttle) replaces the lockout columns.
ALTER TABLE staff_users DROP COLUMN failed_logins, DROP COLUMN locked_until;

-- +goose Down
ALTER TABLE staff_users ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN locked_until timestamptz;
DROP TABLE staff_sessions;
