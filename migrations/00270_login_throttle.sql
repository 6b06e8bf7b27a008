-- +goose Up
-- The sign-in throttle (internal/throttle): one row per throttled account (a
-- staff email, a member id, or an email that names no member), keyed by the
-- SHA-256 in hex of its namespace and name so no address sits in the table,
-- with the account's theoretical arrival time (GCRA): a sign-in is allowed
-- while tat - now stays within the burst. A row whose tat has passed
-- says nothing a missing row would not; the throttle:cleanup task deletes them.
CREATE TABLE login_throttle (
    key  text        PRIMARY KEY CHECK (key ~ '^[0-9a-f]{64}$'),
    tat  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE login_throttle;
