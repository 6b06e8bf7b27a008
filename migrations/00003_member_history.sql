-- +goose Up
-- Append-only history of the member base: consent changes, merges and the
-- register of data-subject requests. Rows are never updated.

-- Every grant or withdrawal of consent, with where it came from: marketing is
-- allowed only with a recorded grant, and the register proves it.
CREATE TABLE consent_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   bigint      NOT NULL REFERENCES members (id),
    purpose     text        NOT NULL CHECK (purpose IN ('marketing')),
    granted     boolean     NOT NULL,
    -- Channel that captured it: "enrolment", "portal", "partner:42", ...
    source      text        NOT NULL CHECK (char_length(source) BETWEEN 1 AND 100),
    actor       text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    recorded_at timestamptz NOT NULL
);
-- A member's consent history, newest last.
CREATE INDEX consent_events_member ON consent_events (member_id, id);

-- A duplicate is merged into a survivor at most once (the UNIQUE makes the
-- merge idempotent at the database level too).
CREATE TABLE member_merges (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    survivor_id           bigint      NOT NULL REFERENCES members (id),
    duplicate_id          bigint      NOT NULL UNIQUE REFERENCES members (id),
    -- The ledger "merge" transaction that moved balance and lots; no FK
    -- because the ledger's tables are migrated after these.
    ledger_transaction_id bigint,
    identifiers_moved     integer     NOT NULL CHECK (identifiers_moved >= 0),
    actor                 text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    reason                text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    merged_at             timestamptz NOT NULL,
    CHECK (survivor_id <> duplicate_id)
);
-- Merges into a survivor (export lists them).
CREATE INDEX member_merges_survivor ON member_merges (survivor_id);

-- The register of data-subject requests. Both kinds are carried out at once
-- today, so completed_at is set on insert; the column exists so that a request
-- taken now and done later (within the 30-day limit) fits the same register.
CREATE TABLE data_subject_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id    bigint      NOT NULL REFERENCES members (id),
    kind         text        NOT NULL CHECK (kind IN ('export', 'erasure')),
    actor        text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    requested_at timestamptz NOT NULL,
    completed_at timestamptz,
    CHECK (completed_at IS NULL OR completed_at >= requested_at)
);
-- A member's requests (export lists them; erasure checks for an earlier one).
CREATE INDEX data_subject_requests_member ON data_subject_requests (member_id, id);
-- Erasure happens once per member.
CREATE UNIQUE INDEX data_subject_requests_one_erasure ON data_subject_requests (member_id) WHERE kind = 'erasure';

-- +goose Down
DROP TABLE data_subject_requests;
DROP TABLE member_merges;
DROP TABLE consent_events;
