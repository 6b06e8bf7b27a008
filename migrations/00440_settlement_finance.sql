-- +goose Up
-- Settlement for the operator's finance team (package settlement; see
-- settlement/doc.go and docs/settlement.md): who moved each statement and
-- when (four eyes on approval), payments and nettings against statements,
-- invoices and credit notes numbered without gaps per legal entity and year,
-- and the configuration they read (legal entities, partners' billing
-- details, tax rates per country, single-approver limits).

-- Every transition of a statement: created (by the close), approved, sent,
-- paid (its balance reached zero). The approver must be neither the period's
-- closer nor the actor of the statement's last transition.
CREATE TABLE settlement_statement_transitions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    statement_id bigint      NOT NULL REFERENCES settlement_statements (id),
    action       text        NOT NULL CHECK (action IN ('created', 'approved', 'sent', 'paid')),
    from_status  text        CHECK (from_status IN ('draft', 'approved', 'sent')),
    to_status    text        NOT NULL CHECK (to_status IN ('draft', 'approved', 'sent', 'paid')),
    actor        text        NOT NULL CHECK (length(btrim(actor)) BETWEEN 1 AND 200),
    at           timestamptz NOT NULL,
    note         text        NOT NULL DEFAULT '' CHECK (length(note) <= 500)
);
CREATE INDEX settlement_statement_transitions_statement ON settlement_statement_transitions (statement_id, id);

-- The statements closed before transitions were recorded: their creation and
-- the steps their columns remember.
INSERT INTO settlement_statement_transitions (statement_id, action, from_status, to_status, actor, at)
SELECT s.id, 'created', NULL, 'draft', CASE WHEN p.closed_by = '' THEN 'system' ELSE p.closed_by END, s.created_at
  FROM settlement_statements s JOIN settlement_periods p ON p.id = s.period_id;
INSERT INTO settlement_statement_transitions (statement_id, action, from_status, to_status, actor, at)
SELECT id, 'approved', 'draft', 'approved', approved_by, approved_at FROM settlement_statements WHERE approved_at IS NOT NULL;
INSERT INTO settlement_statement_transitions (statement_id, action, from_status, to_status, actor, at)
SELECT id, 'sent', 'approved', 'sent', 'system', sent_at FROM settlement_statements WHERE sent_at IS NOT NULL;
INSERT INTO settlement_statement_transitions (statement_id, action, from_status, to_status, actor, at, note)
SELECT id, 'paid', 'sent', 'paid', 'system', paid_at, payment_ref FROM settlement_statements WHERE paid_at IS NOT NULL;

-- A statement is paid when its balance is zero (payments and nettings), no
-- longer by a reference typed in: payment_ref stays for the statements paid
-- that way before.
-- +goose StatementBegin
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
              WHERE conrelid = 'settlement_statements'::regclass AND contype = 'c'
                AND pg_get_constraintdef(oid) LIKE '%payment_ref IS NOT NULL%' LOOP
        EXECUTE format('ALTER TABLE settlement_statements DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;
-- +goose StatementEnd
ALTER TABLE settlement_statements ADD CONSTRAINT settlement_statements_paid_at
    CHECK ((status = 'paid') = (paid_at IS NOT NULL));

-- One person may approve a statement whose net is below the limit of its
-- currency (absolute value); without a row every approval needs two people.
CREATE TABLE settlement_approval_limits (
    currency    text        PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    below_minor bigint      NOT NULL CHECK (below_minor > 0),
    updated_at  timestamptz NOT NULL,
    updated_by  text        NOT NULL CHECK (updated_by <> '')
);

-- The operator's legal entities that issue invoices and self-billed credit notes.
CREATE TABLE settlement_legal_entities (
    code       text        PRIMARY KEY CHECK (code ~ '^[A-Z0-9]{2,10}$'),
    name       text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    country    text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    vat_id     text        NOT NULL DEFAULT '' CHECK (length(vat_id) <= 40),
    address    text        NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    updated_at timestamptz NOT NULL,
    updated_by text        NOT NULL CHECK (updated_by <> '')
);

-- A partner's billing details: the buyer (or self-billed seller) on its
-- documents, the legal entity that bills it, and its payment terms.
CREATE TABLE settlement_partner_billing (
    partner_id        bigint      PRIMARY KEY REFERENCES partners (id),
    legal_entity      text        NOT NULL REFERENCES settlement_legal_entities (code),
    legal_name        text        NOT NULL CHECK (length(btrim(legal_name)) BETWEEN 1 AND 200),
    country           text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    vat_id            text        NOT NULL DEFAULT '' CHECK (length(vat_id) <= 40),
    address           text        NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    payment_terms_days integer    NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
    updated_at        timestamptz NOT NULL,
    updated_by        text        NOT NULL CHECK (updated_by <> '')
);

-- Tax on settlement documents by the partner's country: a rate, or reverse
-- charge (no tax charged; the buyer accounts for it).
CREATE TABLE settlement_tax_rates (
    country        text          PRIMARY KEY CHECK (country ~ '^[A-Z]{2}$'),
    rate           numeric(7,6)  NOT NULL CHECK (rate >= 0 AND rate < 1),
    reverse_charge boolean       NOT NULL,
    label          text          NOT NULL CHECK (length(btrim(label)) BETWEEN 1 AND 100),
    updated_at     timestamptz   NOT NULL,
    updated_by     text          NOT NULL CHECK (updated_by <> ''),
    CHECK (NOT reverse_charge OR rate = 0)
);

-- The gap-free number sequence of each legal entity and year: the row is
-- locked by the approval that takes the next number and released at its
-- commit or rollback, so numbers are consecutive and never reused.
CREATE TABLE settlement_invoice_counters (
    legal_entity text    NOT NULL REFERENCES settlement_legal_entities (code),
    year         integer NOT NULL CHECK (year BETWEEN 2000 AND 9999),
    last_no      bigint  NOT NULL CHECK (last_no >= 1),
    PRIMARY KEY (legal_entity, year)
);

-- Invoices (the partner owes) and credit notes (the operator owes,
-- self-billing; or a correction of an invoice), issued at approval. The
-- document is canonical JSON kept byte for byte: the PDF renders it.
CREATE TABLE settlement_invoices (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    statement_id        bigint      NOT NULL REFERENCES settlement_statements (id),
    kind                text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    legal_entity        text        NOT NULL,
    year                integer     NOT NULL,
    seq                 bigint      NOT NULL CHECK (seq >= 1),
    number              text        NOT NULL UNIQUE,
    currency            text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    net_minor           bigint      NOT NULL CHECK (net_minor >= 0),
    tax_minor           bigint      NOT NULL CHECK (tax_minor >= 0),
    total_minor         bigint      NOT NULL CHECK (total_minor = net_minor + tax_minor),
    issue_date          date        NOT NULL,
    due_date            date        NOT NULL CHECK (due_date >= issue_date),
    corrects_invoice_id bigint      REFERENCES settlement_invoices (id),
    document            json        NOT NULL,
    created_at          timestamptz NOT NULL,
    created_by          text        NOT NULL CHECK (created_by <> ''),
    UNIQUE (legal_entity, year, seq),
    FOREIGN KEY (legal_entity, year) REFERENCES settlement_invoice_counters (legal_entity, year)
);
-- One original document per statement; corrections reference it.
CREATE UNIQUE INDEX settlement_invoices_statement ON settlement_invoices (statement_id) WHERE corrects_invoice_id IS NULL;

-- A netting offsets what the operator owes a partner on one statement
-- against what the partner owes on another; the difference is the one net
-- payment (recorded in settlement_payments with the netting's id).
CREATE TABLE settlement_nettings (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id        bigint      NOT NULL REFERENCES partners (id),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    offset_minor      bigint      NOT NULL CHECK (offset_minor > 0),
    created_at        timestamptz NOT NULL,
    created_by        text        NOT NULL CHECK (created_by <> ''),
    idempotency_scope text        NOT NULL CHECK (length(idempotency_scope) BETWEEN 1 AND 100),
    idempotency_key   text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash      bytea       NOT NULL,
    UNIQUE (idempotency_scope, idempotency_key)
);

-- Money received or paid against a statement. amount_minor is what it takes
-- off the statement's open balance (negative: a refund of an over-payment);
-- kind netting is the offset of a netting, kind payment money that moved.
CREATE TABLE settlement_payments (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    statement_id      bigint      NOT NULL REFERENCES settlement_statements (id),
    kind              text        NOT NULL CHECK (kind IN ('payment', 'netting')),
    amount_minor      bigint      NOT NULL CHECK (amount_minor <> 0),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    value_date        date        NOT NULL,
    reference         text        NOT NULL CHECK (length(btrim(reference)) BETWEEN 1 AND 200),
    netting_id        bigint      REFERENCES settlement_nettings (id),
    created_at        timestamptz NOT NULL,
    created_by        text        NOT NULL CHECK (created_by <> ''),
    idempotency_scope text        CHECK (length(idempotency_scope) BETWEEN 1 AND 100),
    idempotency_key   text        CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash      bytea,
    CHECK ((kind = 'netting') <= (netting_id IS NOT NULL)),
    CHECK ((idempotency_key IS NULL) = (idempotency_scope IS NULL) AND (idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE INDEX settlement_payments_statement ON settlement_payments (statement_id, id);
CREATE UNIQUE INDEX settlement_payments_key ON settlement_payments (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- +goose Down
DROP TABLE settlement_payments;
DROP TABLE settlement_nettings;
DROP TABLE settlement_invoices;
DROP TABLE settlement_invoice_counters;
DROP TABLE settlement_tax_rates;
DROP TABLE settlement_partner_billing;
DROP TABLE settlement_legal_entities;
DROP TABLE settlement_approval_limits;
ALTER TABLE settlement_statements DROP CONSTRAINT settlement_statements_paid_at;
UPDATE settlement_statements SET payment_ref = 'balance zero' WHERE status = 'paid' AND payment_ref IS NULL;
ALTER TABLE settlement_statements ADD CHECK ((status = 'paid') = (paid_at IS NOT NULL AND payment_ref IS NOT NULL));
DROP TABLE settlement_statement_transitions;
