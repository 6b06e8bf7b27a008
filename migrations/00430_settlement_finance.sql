-- +goose Up
-- The operator's result and outstanding-liability roll-forward of a closed
-- period (settlement/result.go), computed from the period's closed data (its
-- statements, its report, the transactions it settled) the first time it is
-- asked for and kept as canonical JSON with its SHA-256. Computing it again
-- gives the same bytes; it is written once, never updated.
CREATE TABLE settlement_period_results (
    period_id  bigint      PRIMARY KEY REFERENCES settlement_periods (id),
    document   json        NOT NULL,
    sha256     bytea       NOT NULL CHECK (length(sha256) = 32),
    created_at timestamptz NOT NULL
);

-- The chart of accounts of the general-ledger export: the account number
-- (and name) each posting kind is booked to. Kinds without a row use the
-- defaults in settlement/journal.go.
CREATE TABLE settlement_accounts (
    posting_kind text        PRIMARY KEY CHECK (posting_kind ~ '^[a-z_]{1,40}$'),
    number       text        NOT NULL CHECK (number ~ '^[0-9]{1,9}$'),
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    updated_at   timestamptz NOT NULL,
    updated_by   text        NOT NULL CHECK (length(updated_by) BETWEEN 1 AND 200)
);

-- +goose Down
DROP TABLE settlement_accounts;
DROP TABLE settlement_period_results;
