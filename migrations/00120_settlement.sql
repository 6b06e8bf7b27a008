-- +goose Up
-- Settlement periods, statements, adjustments and reconciliation (package
-- settlement). See settlement/doc.go for the model. Ledger rows are never
-- updated: the period of each ledger transaction is recorded here, at close.

CREATE TABLE settlement_periods (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    month         date        NOT NULL UNIQUE CHECK (extract(day FROM month) = 1),
    time_zone     text        NOT NULL CHECK (time_zone <> ''),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closing', 'closed')),
    closing_since timestamptz,
    closed_at     timestamptz,
    closed_by     text        NOT NULL DEFAULT '' CHECK (length(closed_by) <= 200),
    -- The period report (liability matrix, outstanding liability), canonical
    -- JSON kept byte for byte, and its SHA-256.
    report        json,
    report_sha256 bytea,
    created_at    timestamptz NOT NULL,
    CHECK (ends_at > starts_at),
    CHECK ((status = 'open') = (closing_since IS NULL)),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK ((status = 'closed') = (report IS NOT NULL)),
    CHECK ((status = 'closed') = (report_sha256 IS NOT NULL)),
    CHECK (report_sha256 IS NULL OR length(report_sha256) = 32),
    EXCLUDE USING gist (tstzrange(starts_at, ends_at) WITH &&)
);

-- Exchange rates of a period, stored as data with where they came from:
-- 1 from_currency = rate to_currency.
CREATE TABLE settlement_exchange_rates (
    period_id     bigint        NOT NULL REFERENCES settlement_periods (id),
    from_currency text          NOT NULL CHECK (from_currency ~ '^[A-Z]{3}$'),
    to_currency   text          NOT NULL CHECK (to_currency ~ '^[A-Z]{3}$'),
    rate          numeric(24,12) NOT NULL CHECK (rate > 0),
    source        text          NOT NULL CHECK (length(btrim(source)) BETWEEN 1 AND 200),
    created_at    timestamptz   NOT NULL,
    created_by    text          NOT NULL CHECK (created_by <> ''),
    PRIMARY KEY (period_id, from_currency, to_currency),
    CHECK (from_currency <> to_currency)
);

-- The period each ledger transaction is settled in, filled set-based at close:
-- every transaction posted before the period's end and not settled before.
-- The primary key settles a transaction exactly once.
CREATE TABLE settlement_period_transactions (
    transaction_id bigint NOT NULL PRIMARY KEY REFERENCES ledger_transactions (id),
    period_id      bigint NOT NULL REFERENCES settlement_periods (id)
);
CREATE INDEX settlement_period_transactions_period ON settlement_period_transactions (period_id, transaction_id);

CREATE TABLE settlement_statements (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period_id   bigint      NOT NULL REFERENCES settlement_periods (id),
    partner_id  bigint      NOT NULL,
    currency    text        NOT NULL,
    net_minor   bigint      NOT NULL,
    -- The canonical statement document, byte for byte, and its SHA-256.
    document    json        NOT NULL,
    sha256      bytea       NOT NULL CHECK (length(sha256) = 32),
    status      text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'approved', 'sent', 'paid')),
    created_at  timestamptz NOT NULL,
    approved_at timestamptz,
    approved_by text        CHECK (approved_by <> ''),
    sent_at     timestamptz,
    paid_at     timestamptz,
    payment_ref text        CHECK (length(btrim(payment_ref)) BETWEEN 1 AND 200),
    UNIQUE (period_id, partner_id),
    FOREIGN KEY (partner_id, currency) REFERENCES partners (id, settlement_currency),
    CHECK ((status IN ('approved', 'sent', 'paid')) = (approved_at IS NOT NULL AND approved_by IS NOT NULL)),
    CHECK ((status IN ('sent', 'paid')) = (sent_at IS NOT NULL)),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL AND payment_ref IS NOT NULL))
);
CREATE INDEX settlement_statements_partner ON settlement_statements (partner_id, id);

-- The lines of a statement (also inside its document): what adjustments point at.
CREATE TABLE settlement_statement_lines (
    statement_id     bigint      NOT NULL REFERENCES settlement_statements (id),
    line_no          integer     NOT NULL CHECK (line_no >= 1),
    kind             text        NOT NULL CHECK (kind IN ('issued', 'redeemed', 'operator_fee', 'exchange_in',
                         'exchange_out', 'breakage', 'prepaid_draw_down', 'prepaid_top_up', 'adjustment')),
    points           bigint      NOT NULL,
    amount_minor     bigint      NOT NULL,
    late             boolean     NOT NULL DEFAULT false,
    transaction_id   bigint      REFERENCES ledger_transactions (id),
    occurred_at      timestamptz,
    PRIMARY KEY (statement_id, line_no),
    CHECK (NOT late OR (transaction_id IS NOT NULL AND occurred_at IS NOT NULL))
);

-- Money corrections (accepted reconciliation lines, disputed statement lines).
-- period_id is NULL until the next period closes and takes it as a line.
CREATE TABLE settlement_adjustments (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id            bigint      NOT NULL REFERENCES partners (id),
    amount_minor          bigint      NOT NULL CHECK (amount_minor <> 0),
    currency              text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason                text        NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    corrects_statement_id bigint,
    corrects_line_no      integer,
    reconciliation_line_id bigint,
    period_id             bigint      REFERENCES settlement_periods (id),
    created_at            timestamptz NOT NULL,
    created_by            text        NOT NULL CHECK (created_by <> ''),
    FOREIGN KEY (corrects_statement_id, corrects_line_no) REFERENCES settlement_statement_lines (statement_id, line_no),
    CHECK ((corrects_statement_id IS NULL) = (corrects_line_no IS NULL))
);
CREATE INDEX settlement_adjustments_pending ON settlement_adjustments (created_at) WHERE period_id IS NULL;

-- A partner's uploaded transaction log for a period.
CREATE TABLE settlement_reconciliations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period_id       bigint      NOT NULL REFERENCES settlement_periods (id),
    partner_id      bigint      NOT NULL REFERENCES partners (id),
    status          text        NOT NULL CHECK (status IN ('received', 'matched')),
    lines           bigint      NOT NULL CHECK (lines >= 0),
    malformed       bigint      NOT NULL CHECK (malformed >= 0 AND malformed <= lines),
    matched         bigint      NOT NULL DEFAULT 0 CHECK (matched >= 0),
    missing_in_hub  bigint      NOT NULL DEFAULT 0 CHECK (missing_in_hub >= 0),
    missing_in_file bigint      NOT NULL DEFAULT 0 CHECK (missing_in_file >= 0),
    mismatched      bigint      NOT NULL DEFAULT 0 CHECK (mismatched >= 0),
    created_at      timestamptz NOT NULL,
    matched_at      timestamptz,
    CHECK ((status = 'matched') = (matched_at IS NOT NULL))
);
CREATE INDEX settlement_reconciliations_partner ON settlement_reconciliations (partner_id, id);

-- The well-formed lines of the file, as uploaded.
CREATE TABLE settlement_reconciliation_rows (
    reconciliation_id bigint NOT NULL REFERENCES settlement_reconciliations (id),
    line_no           bigint NOT NULL CHECK (line_no >= 1),
    external_ref      text   NOT NULL CHECK (length(external_ref) BETWEEN 1 AND 200),
    kind              text   NOT NULL CHECK (kind IN ('earn', 'burn')),
    points            bigint NOT NULL,
    PRIMARY KEY (reconciliation_id, line_no)
);

-- Malformed lines of the file, by line number.
CREATE TABLE settlement_reconciliation_errors (
    reconciliation_id bigint NOT NULL REFERENCES settlement_reconciliations (id),
    line_no           bigint NOT NULL CHECK (line_no >= 1),
    message           text   NOT NULL CHECK (message <> ''),
    PRIMARY KEY (reconciliation_id, line_no)
);

-- The outcome of matching, one row per (external_ref, kind), and how finance resolved it.
CREATE TABLE settlement_reconciliation_lines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reconciliation_id bigint      NOT NULL REFERENCES settlement_reconciliations (id),
    outcome           text        NOT NULL CHECK (outcome IN ('matched', 'missing_in_hub', 'missing_in_file', 'amount_mismatch')),
    external_ref      text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('earn', 'burn')),
    file_points       bigint,
    hub_points        bigint,
    file_line_no      bigint,
    resolution        text        CHECK (resolution IN ('accepted', 'disputed')),
    note              text        NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    resolved_by       text,
    resolved_at       timestamptz,
    adjustment_id     bigint      REFERENCES settlement_adjustments (id),
    UNIQUE (reconciliation_id, kind, external_ref),
    CHECK ((outcome = 'missing_in_hub') = (hub_points IS NULL)),
    CHECK ((outcome = 'missing_in_file') = (file_points IS NULL)),
    CHECK (outcome <> 'matched' OR file_points = hub_points),
    CHECK (outcome <> 'amount_mismatch' OR file_points <> hub_points),
    CHECK (resolution IS NULL OR outcome <> 'matched'),
    CHECK ((resolution IS NULL) = (resolved_at IS NULL)),
    CHECK ((resolution IS NULL) = (resolved_by IS NULL)),
    CHECK (resolution <> 'disputed' OR note <> ''),
    CHECK (adjustment_id IS NULL OR resolution = 'accepted')
);
CREATE INDEX settlement_reconciliation_lines_open ON settlement_reconciliation_lines (reconciliation_id, id) WHERE outcome <> 'matched';
ALTER TABLE settlement_adjustments ADD CONSTRAINT settlement_adjustments_recon_line
    FOREIGN KEY (reconciliation_line_id) REFERENCES settlement_reconciliation_lines (id);

-- +goose Down
ALTER TABLE settlement_adjustments DROP CONSTRAINT settlement_adjustments_recon_line;
DROP TABLE settlement_reconciliation_lines;
DROP TABLE settlement_reconciliation_errors;
DROP TABLE settlement_reconciliation_rows;
DROP TABLE settlement_reconciliations;
DROP TABLE settlement_adjustments;
DROP TABLE settlement_statement_lines;
DROP TABLE settlement_statements;
DROP TABLE settlement_period_transactions;
DROP TABLE settlement_exchange_rates;
DROP TABLE settlement_periods;
