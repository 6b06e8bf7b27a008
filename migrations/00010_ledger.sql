-- +goose Up
-- The points ledger (package ledger). See ledger/doc.go for the model.

-- Accounts are created lazily, one per (kind, owner). Only member accounts keep
-- a running balance and held total, updated under the member row's lock (the
-- lock that serialises a member's spending). Partner and operator accounts are
-- never updated per posting: their balances are sums over ledger_entries, so no
-- hot row funnels a partner's earns.
CREATE TABLE ledger_accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('member', 'partner_issued', 'partner_redeemed',
                   'partner_exchange_in', 'partner_exchange_out', 'operator_breakage',
                   'operator_promotions', 'operator_adjustments', 'operator_fees')),
    owner_id   bigint      NOT NULL CHECK (owner_id >= 0),
    balance    bigint      NOT NULL DEFAULT 0,
    held       bigint      NOT NULL DEFAULT 0 CHECK (held >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The lookup key of lazy creation; also the index for "the account of member X".
    CONSTRAINT ledger_accounts_kind_owner UNIQUE (kind, owner_id),
    CONSTRAINT ledger_accounts_operator_owner CHECK ((kind LIKE 'operator\_%') = (owner_id = 0)),
    CONSTRAINT ledger_accounts_derived_balance CHECK (kind = 'member' OR (balance = 0 AND held = 0)),
    -- Holds reserve points the member has; a negative balance (clawback debt) has no holds.
    CONSTRAINT ledger_accounts_held_covered CHECK (held <= greatest(balance, 0))
);

-- The per-scope idempotency record: written first in the operation's database
-- transaction (INSERT ... ON CONFLICT DO NOTHING makes a concurrent duplicate
-- wait for the winner), completed with the result in the same transaction.
CREATE TABLE ledger_idempotency (
    scope          text        NOT NULL CHECK (scope <> ''),
    key            text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    operation      text        NOT NULL CHECK (operation <> ''),
    request_hash   bytea       NOT NULL CHECK (length(request_hash) > 0),
    -- json, not jsonb: a replay returns the first answer byte for byte.
    result         json,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE ledger_holds (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id             bigint      NOT NULL REFERENCES ledger_accounts (id),
    member_id              bigint      NOT NULL CHECK (member_id > 0),
    partner_id             bigint      NOT NULL CHECK (partner_id > 0),
    points                 bigint      NOT NULL CHECK (points > 0),
    captured               bigint      NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= points),
    status                 text        NOT NULL CHECK (status IN ('active', 'captured', 'voided', 'expired')),
    purpose                text        NOT NULL CHECK (purpose IN ('pos', 'order', 'exchange')),
    destination            text        NOT NULL CHECK (destination IN ('partner_redeemed', 'partner_exchange_out')),
    expires_at             timestamptz NOT NULL,
    created_at             timestamptz NOT NULL,
    closed_at              timestamptz,
    capture_transaction_id bigint,
    external_ref           text        NOT NULL DEFAULT '' CHECK (length(external_ref) <= 200),
    details                json,
    idempotency_scope      text        NOT NULL,
    idempotency_key        text        NOT NULL,
    CONSTRAINT ledger_holds_idempotency UNIQUE (idempotency_scope, idempotency_key),
    CONSTRAINT ledger_holds_closed CHECK ((status = 'active') = (closed_at IS NULL)),
    CONSTRAINT ledger_holds_capture CHECK ((status = 'captured') = (capture_transaction_id IS NOT NULL)),
    CONSTRAINT ledger_holds_captured_only CHECK (status = 'captured' OR captured = 0),
    CONSTRAINT ledger_holds_captured_positive CHECK (status <> 'captured' OR captured > 0)
);
-- Summing a member's active holds (audit, merge) touches only active rows.
CREATE INDEX ledger_holds_active_account ON ledger_holds (account_id) WHERE status = 'active';
-- The hold-expiry job scans active holds by expiry; closed holds are history.
CREATE INDEX ledger_holds_active_expiry ON ledger_holds (expires_at) WHERE status = 'active';

CREATE TABLE ledger_transactions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type              text        NOT NULL CHECK (type IN ('earn', 'burn', 'capture', 'reversal', 'transfer',
                          'adjustment', 'expiry', 'merge', 'forfeit')),
    member_id         bigint      NOT NULL CHECK (member_id > 0),
    counter_member_id bigint      CHECK (counter_member_id > 0 AND counter_member_id <> member_id),
    partner_id        bigint      CHECK (partner_id > 0),
    points            bigint      NOT NULL,
    occurred_at       timestamptz NOT NULL,
    posted_at         timestamptz NOT NULL,
    external_ref      text        NOT NULL DEFAULT '' CHECK (length(external_ref) <= 200),
    reverses_id       bigint      REFERENCES ledger_transactions (id),
    hold_id           bigint      REFERENCES ledger_holds (id),
    reason            text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    actor             text        NOT NULL DEFAULT '' CHECK (length(actor) <= 200),
    -- json, not jsonb: the rule, rates and prices that applied, stored verbatim.
    details           json,
    balance_after     bigint      NOT NULL,
    idempotency_scope text,
    idempotency_key   text,
    -- A key is applied at most once, whatever happens to ledger_idempotency.
    CONSTRAINT ledger_transactions_idempotency UNIQUE (idempotency_scope, idempotency_key),
    CONSTRAINT ledger_transactions_idem_pair CHECK ((idempotency_scope IS NULL) = (idempotency_key IS NULL)),
    CONSTRAINT ledger_transactions_points CHECK (points > 0 OR (type = 'adjustment' AND points <> 0)),
    CONSTRAINT ledger_transactions_reversal CHECK ((type = 'reversal') = (reverses_id IS NOT NULL)),
    CONSTRAINT ledger_transactions_capture CHECK ((type = 'capture') = (hold_id IS NOT NULL)),
    CONSTRAINT ledger_transactions_counter CHECK ((type IN ('transfer', 'merge')) = (counter_member_id IS NOT NULL)),
    CONSTRAINT ledger_transactions_reason CHECK (type NOT IN ('adjustment', 'forfeit') OR reason <> ''),
    CONSTRAINT ledger_transactions_partner CHECK (type NOT IN ('burn', 'capture') OR partner_id IS NOT NULL)
);
ALTER TABLE ledger_holds ADD CONSTRAINT ledger_holds_capture_tx
    FOREIGN KEY (capture_transaction_id) REFERENCES ledger_transactions (id);
-- A member's history (List by member, transfer limits) newest first by keyset on id.
CREATE INDEX ledger_transactions_member ON ledger_transactions (member_id, id);
-- Transfers and merges appear in the other member's history too.
CREATE INDEX ledger_transactions_counter ON ledger_transactions (counter_member_id, id) WHERE counter_member_id IS NOT NULL;
-- Partner-isolated listing and settlement by partner.
CREATE INDEX ledger_transactions_partner ON ledger_transactions (partner_id, id) WHERE partner_id IS NOT NULL;
-- "How much of this transaction was reversed already" and the reversal chain.
CREATE INDEX ledger_transactions_reverses ON ledger_transactions (reverses_id) WHERE reverses_id IS NOT NULL;
-- Months are scanned by posted_at (settlement, liability reports). Rows are
-- appended in posted_at order, so a BRIN index (a few pages for millions of
-- rows) prunes a month's scan without the write cost of a B-tree.
CREATE INDEX ledger_transactions_posted_brin ON ledger_transactions USING brin (posted_at);

-- Entries are append-only; the amounts of one transaction sum to zero
-- (checked at commit by ledger_check_transaction below).
CREATE TABLE ledger_entries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id bigint      NOT NULL REFERENCES ledger_transactions (id),
    account_id     bigint      NOT NULL REFERENCES ledger_accounts (id),
    amount         bigint      NOT NULL CHECK (amount <> 0),
    posted_at      timestamptz NOT NULL
);
-- Loading a transaction's legs; the commit-time balance check.
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
-- Derived balances of partner/operator accounts and per-account statements for
-- a period: (account, time) range scans.
CREATE INDEX ledger_entries_account_posted ON ledger_entries (account_id, posted_at);
-- Month scans over all accounts (see the BRIN on transactions for why BRIN).
CREATE INDEX ledger_entries_posted_brin ON ledger_entries USING brin (posted_at);

CREATE TABLE ledger_lots (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id        bigint      NOT NULL REFERENCES ledger_accounts (id),
    transaction_id    bigint      NOT NULL REFERENCES ledger_transactions (id),
    origin_lot_id     bigint      REFERENCES ledger_lots (id),
    issuer_partner_id bigint      CHECK (issuer_partner_id > 0),
    amount            bigint      NOT NULL CHECK (amount > 0),
    remaining         bigint      NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    earned_at         timestamptz NOT NULL,
    available_at      timestamptz NOT NULL,
    expires_at        timestamptz
);
-- Burn order of one member's live lots: earliest expiry (NULLs last), then
-- oldest. Partial: spent lots (most of history) are not in it.
CREATE INDEX ledger_lots_spend ON ledger_lots (account_id, expires_at, earned_at, id) WHERE remaining > 0;
-- The expiry job: live lots by expiry.
CREATE INDEX ledger_lots_expiry ON ledger_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
-- Reversals find the lots an earn created (and those a burn reversal recreated).
CREATE INDEX ledger_lots_transaction ON ledger_lots (transaction_id);

-- Which transaction took how many points out of which lot: the attribution of
-- redemptions and expiry to the issuing partner. Append-only.
CREATE TABLE ledger_lot_consumptions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id            bigint      NOT NULL REFERENCES ledger_lots (id),
    transaction_id    bigint      NOT NULL REFERENCES ledger_transactions (id),
    issuer_partner_id bigint      CHECK (issuer_partner_id > 0),
    points            bigint      NOT NULL CHECK (points > 0),
    posted_at         timestamptz NOT NULL,
    CONSTRAINT ledger_lot_consumptions_once UNIQUE (transaction_id, lot_id)
);
-- (transaction_id, lot_id) above serves loading a transaction's consumptions.
-- The audit and reversals sum consumptions per lot.
CREATE INDEX ledger_lot_consumptions_lot ON ledger_lot_consumptions (lot_id);
-- Settlement's liability matrix scans a month of consumptions.
CREATE INDEX ledger_lot_consumptions_posted_brin ON ledger_lot_consumptions USING brin (posted_at);

-- +goose StatementBegin
-- At commit, every transaction inserted must have at least two entries summing
-- to zero. Deferred so the entries may be inserted after the transaction row.
CREATE FUNCTION ledger_check_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    total numeric;
BEGIN
    SELECT count(*), coalesce(sum(amount), 0) INTO n, total
      FROM ledger_entries WHERE transaction_id = NEW.id;
    IF n < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% entries, sum %)', NEW.id, n, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction();

-- +goose StatementBegin
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: post a reversing transaction instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_lot_consumptions_append_only BEFORE UPDATE OR DELETE ON ledger_lot_consumptions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- +goose Down
DROP TABLE ledger_lot_consumptions;
DROP TABLE ledger_lots;
DROP TABLE ledger_entries;
ALTER TABLE ledger_holds DROP CONSTRAINT ledger_holds_capture_tx;
DROP TABLE ledger_transactions;
DROP TABLE ledger_holds;
DROP TABLE ledger_idempotency;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_append_only();
DROP FUNCTION ledger_check_transaction();
