-- +goose Up
-- PostgreSQL compiles a table's CHECK constraints afresh for every
-- statement that writes the table (ExecConstraints parses each constraint's
-- stored node tree and plans it, once per statement and table), and a single
-- earn writes seven tables in two statements carrying ~45 constraints: in the
-- bench that was about a seventh of the machine's CPU per earn (dropping them
-- all, as an experiment: 1,409 -> 1,205 us of machine per earn). A domain's
-- constraints are compiled once per connection (the type cache) and only
-- instantiated per statement, so every single-column check of the posting
-- path moves onto a domain here: the same rule, the same refusal
-- (check_violation, 23514), now named after the domain. The rules that relate
-- a transaction's columns move into its statement trigger (below); the other
-- checks that relate two columns (accounts, lots, holds, qualifying credits)
-- stay table constraints.
--
-- Changing a column to a domain with constraints rewrites its table (and
-- rebuilds its indexes) under an ACCESS EXCLUSIVE lock: on a large ledger
-- this migration wants a maintenance window.
CREATE DOMAIN hub_positive_id AS bigint CONSTRAINT hub_positive_id_check CHECK (VALUE > 0);
CREATE DOMAIN hub_positive_points AS bigint CONSTRAINT hub_positive_points_check CHECK (VALUE > 0);
CREATE DOMAIN hub_nonnegative_points AS bigint CONSTRAINT hub_nonnegative_points_check CHECK (VALUE >= 0);
CREATE DOMAIN hub_short_text AS text CONSTRAINT hub_short_text_check CHECK (length(VALUE) <= 200);
CREATE DOMAIN hub_long_text AS text CONSTRAINT hub_long_text_check CHECK (length(VALUE) <= 500);
CREATE DOMAIN hub_name AS text CONSTRAINT hub_name_check CHECK (VALUE <> '');
CREATE DOMAIN ledger_transaction_type AS text CONSTRAINT ledger_transaction_type_check CHECK (VALUE IN
    ('earn', 'burn', 'capture', 'reversal', 'transfer', 'adjustment', 'expiry', 'merge', 'forfeit'));
CREATE DOMAIN ledger_account_kind AS text CONSTRAINT ledger_account_kind_check CHECK (VALUE IN
    ('member', 'partner_issued', 'partner_redeemed', 'partner_exchange_in', 'partner_exchange_out',
     'operator_breakage', 'operator_promotions', 'operator_adjustments', 'operator_fees'));
CREATE DOMAIN ledger_owner_id AS bigint CONSTRAINT ledger_owner_id_check CHECK (VALUE >= 0);
CREATE DOMAIN ledger_entry_amount AS bigint CONSTRAINT ledger_entry_amount_check CHECK (VALUE <> 0);
CREATE DOMAIN ledger_idempotency_key AS text CONSTRAINT ledger_idempotency_key_check CHECK (length(VALUE) BETWEEN 1 AND 200);
CREATE DOMAIN ledger_request_hash AS bytea CONSTRAINT ledger_request_hash_check CHECK (length(VALUE) > 0);
CREATE DOMAIN ledger_hold_status AS text CONSTRAINT ledger_hold_status_check CHECK (VALUE IN ('active', 'captured', 'voided', 'expired'));
CREATE DOMAIN ledger_hold_purpose AS text CONSTRAINT ledger_hold_purpose_check CHECK (VALUE IN ('pos', 'order', 'exchange'));
CREATE DOMAIN ledger_hold_destination AS text CONSTRAINT ledger_hold_destination_check CHECK (VALUE IN ('partner_redeemed', 'partner_exchange_out'));
CREATE DOMAIN programme_month AS date CONSTRAINT programme_month_check CHECK (EXTRACT(day FROM VALUE) = 1);
CREATE DOMAIN programme_window_lane AS smallint CONSTRAINT programme_window_lane_check CHECK (VALUE IN (0, 1));

-- ledger_accounts_keep_key names kind and owner_id: it is dropped for the
-- change and created again as migration 00220 made it.
DROP TRIGGER ledger_accounts_keep_key ON ledger_accounts;
ALTER TABLE ledger_accounts
    DROP CONSTRAINT ledger_accounts_held_check,
    DROP CONSTRAINT ledger_accounts_kind_check,
    DROP CONSTRAINT ledger_accounts_owner_id_check,
    ALTER COLUMN held TYPE hub_nonnegative_points,
    ALTER COLUMN kind TYPE ledger_account_kind,
    ALTER COLUMN owner_id TYPE ledger_owner_id;
CREATE TRIGGER ledger_accounts_keep_key BEFORE UPDATE OF id, kind, owner_id ON ledger_accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.kind IS DISTINCT FROM NEW.kind
                       OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION ledger_keep_referenced();

ALTER TABLE ledger_idempotency
    DROP CONSTRAINT ledger_idempotency_key_check,
    DROP CONSTRAINT ledger_idempotency_operation_check,
    DROP CONSTRAINT ledger_idempotency_request_hash_check,
    DROP CONSTRAINT ledger_idempotency_scope_check,
    ALTER COLUMN key TYPE ledger_idempotency_key,
    ALTER COLUMN operation TYPE hub_name,
    ALTER COLUMN request_hash TYPE ledger_request_hash,
    ALTER COLUMN scope TYPE hub_name;

ALTER TABLE ledger_transactions
    DROP CONSTRAINT ledger_transactions_actor_check,
    DROP CONSTRAINT ledger_transactions_external_ref_check,
    DROP CONSTRAINT ledger_transactions_member_id_check,
    DROP CONSTRAINT ledger_transactions_partner_id_check,
    DROP CONSTRAINT ledger_transactions_reason_check,
    DROP CONSTRAINT ledger_transactions_type_check,
    ALTER COLUMN actor TYPE hub_short_text,
    ALTER COLUMN external_ref TYPE hub_short_text,
    ALTER COLUMN member_id TYPE hub_positive_id,
    ALTER COLUMN partner_id TYPE hub_positive_id,
    ALTER COLUMN reason TYPE hub_long_text,
    ALTER COLUMN type TYPE ledger_transaction_type;

ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_amount_check,
    ALTER COLUMN amount TYPE ledger_entry_amount;

ALTER TABLE ledger_lots
    DROP CONSTRAINT ledger_lots_amount_check,
    DROP CONSTRAINT ledger_lots_issuer_partner_id_check,
    ALTER COLUMN amount TYPE hub_positive_points,
    ALTER COLUMN issuer_partner_id TYPE hub_positive_id;

ALTER TABLE ledger_lot_consumptions
    DROP CONSTRAINT ledger_lot_consumptions_issuer_partner_id_check,
    DROP CONSTRAINT ledger_lot_consumptions_points_check,
    ALTER COLUMN issuer_partner_id TYPE hub_positive_id,
    ALTER COLUMN points TYPE hub_positive_points;

ALTER TABLE ledger_holds
    DROP CONSTRAINT ledger_holds_destination_check,
    DROP CONSTRAINT ledger_holds_external_ref_check,
    DROP CONSTRAINT ledger_holds_member_id_check,
    DROP CONSTRAINT ledger_holds_partner_id_check,
    DROP CONSTRAINT ledger_holds_points_check,
    DROP CONSTRAINT ledger_holds_purpose_check,
    DROP CONSTRAINT ledger_holds_status_check,
    ALTER COLUMN destination TYPE ledger_hold_destination,
    ALTER COLUMN external_ref TYPE hub_short_text,
    ALTER COLUMN member_id TYPE hub_positive_id,
    ALTER COLUMN partner_id TYPE hub_positive_id,
    ALTER COLUMN points TYPE hub_positive_points,
    ALTER COLUMN purpose TYPE ledger_hold_purpose,
    ALTER COLUMN status TYPE ledger_hold_status;

ALTER TABLE programme_qualifying_credits
    DROP CONSTRAINT programme_qualifying_credits_partner_id_check,
    ALTER COLUMN partner_id TYPE hub_positive_id;

ALTER TABLE programme_member_windows
    DROP CONSTRAINT programme_member_windows_lane_check,
    DROP CONSTRAINT programme_member_windows_month_check,
    DROP CONSTRAINT programme_member_windows_partner_id_check,
    ALTER COLUMN lane TYPE programme_window_lane,
    ALTER COLUMN month TYPE programme_month,
    ALTER COLUMN partner_id TYPE hub_positive_id;

-- The rules that relate a transaction's columns (type, points, reason, the
-- references a type requires) were eight more table constraints. Transactions
-- are append-only and every INSERT statement on them fires the statement-level
-- trigger of migration 00240, whose PL/pgSQL plans are kept per connection:
-- the rules now run there, over the statement's transition table, for every
-- row (not only those checked_in_statement), and refuse a row as the
-- constraint did (check_violation, the constraint's old name).
ALTER TABLE ledger_transactions
    DROP CONSTRAINT ledger_transactions_capture,
    DROP CONSTRAINT ledger_transactions_check,
    DROP CONSTRAINT ledger_transactions_counter,
    DROP CONSTRAINT ledger_transactions_idem_pair,
    DROP CONSTRAINT ledger_transactions_partner,
    DROP CONSTRAINT ledger_transactions_points,
    DROP CONSTRAINT ledger_transactions_reason,
    DROP CONSTRAINT ledger_transactions_reversal;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    -- One query per statement: the first row rule each transaction the
    -- statement inserted breaks (by name; a rule holds unless it is false,
    -- NULL passes as in a CHECK constraint), and ledger_check_transaction's
    -- balance and account checks for the transactions that asked for them
    -- (checked_in_statement). LATERAL keeps those primary-key and index
    -- probes per transaction (the transition table has no statistics, and as
    -- joins the planner may hash whole tables).
    SELECT r.id, r.rule, c.n, c.total, c.lost_entries, c.lost_lots INTO bad
      FROM (SELECT t.id, t.checked_in_statement, CASE
                WHEN (t.points > 0 OR (t.type = 'adjustment' AND t.points <> 0)) IS FALSE
                    THEN 'ledger_transactions_points'
                WHEN ((t.type = 'reversal') = (t.reverses_id IS NOT NULL)) IS FALSE
                    THEN 'ledger_transactions_reversal'
                WHEN ((t.type = 'capture') = (t.hold_id IS NOT NULL)) IS FALSE
                    THEN 'ledger_transactions_capture'
                WHEN ((t.type IN ('transfer', 'merge')) = (t.counter_member_id IS NOT NULL)) IS FALSE
                    THEN 'ledger_transactions_counter'
                WHEN (t.counter_member_id > 0 AND t.counter_member_id <> t.member_id) IS FALSE
                    THEN 'ledger_transactions_check'
                WHEN (t.type NOT IN ('adjustment', 'forfeit') OR t.reason <> '') IS FALSE
                    THEN 'ledger_transactions_reason'
                WHEN (t.type NOT IN ('burn', 'capture') OR t.partner_id IS NOT NULL) IS FALSE
                    THEN 'ledger_transactions_partner'
                WHEN ((t.idempotency_scope IS NULL) = (t.idempotency_key IS NULL)) IS FALSE
                    THEN 'ledger_transactions_idem_pair'
              END AS rule
              FROM new_transactions t) r
      CROSS JOIN LATERAL (
          SELECT count(*) AS n, coalesce(sum(e.amount), 0) AS total,
                 count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id)) AS lost_entries,
                 (SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = l.account_id))
                    FROM ledger_lots l WHERE l.transaction_id = r.id AND r.checked_in_statement) AS lost_lots
            FROM ledger_entries e
           WHERE e.transaction_id = r.id AND r.checked_in_statement) c
     WHERE r.rule IS NOT NULL
        OR (r.checked_in_statement AND (c.n < 2 OR c.total <> 0 OR c.lost_entries <> 0 OR c.lost_lots <> 0))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF bad.rule IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % violates check constraint "%"', bad.id, bad.rule
            USING ERRCODE = 'check_violation', TABLE = 'ledger_transactions', CONSTRAINT = bad.rule;
    END IF;
    IF bad.n < 2 OR bad.total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% entries, sum %)', bad.id, bad.n, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'ledger transaction % names an account that does not exist (% entries, % lots)',
        bad.id, bad.lost_entries, bad.lost_lots
        USING ERRCODE = 'foreign_key_violation';
END $$;
-- +goose StatementEnd

-- The sign rule of qualifying credits, written with LEAST and GREATEST: the
-- same rule in half the expression PostgreSQL compiles per statement.
ALTER TABLE programme_qualifying_credits
    DROP CONSTRAINT programme_qualifying_credits_sign,
    ADD CONSTRAINT programme_qualifying_credits_sign CHECK (CASE WHEN reverses_id IS NULL
        THEN least(qualifying_points, spend_minor, nights, stays, flights) >= 0
        ELSE greatest(qualifying_points, spend_minor, nights, stays, flights) <= 0 END);

-- +goose Down
ALTER TABLE programme_qualifying_credits
    DROP CONSTRAINT programme_qualifying_credits_sign,
    ADD CONSTRAINT programme_qualifying_credits_sign CHECK (
        (reverses_id IS NULL AND qualifying_points >= 0 AND spend_minor >= 0 AND nights >= 0 AND stays >= 0 AND flights >= 0)
        OR (reverses_id IS NOT NULL AND qualifying_points <= 0 AND spend_minor <= 0 AND nights <= 0 AND stays <= 0 AND flights <= 0));

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT t.id, c.n, c.total, c.lost_entries, c.lost_lots INTO bad
      FROM new_transactions t
      CROSS JOIN LATERAL (
          SELECT count(*) AS n, coalesce(sum(e.amount), 0) AS total,
                 count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id)) AS lost_entries,
                 (SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = l.account_id))
                    FROM ledger_lots l WHERE l.transaction_id = t.id) AS lost_lots
            FROM ledger_entries e
           WHERE e.transaction_id = t.id) c
     WHERE t.checked_in_statement
       AND (c.n < 2 OR c.total <> 0 OR c.lost_entries <> 0 OR c.lost_lots <> 0)
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF bad.n < 2 OR bad.total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% entries, sum %)', bad.id, bad.n, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'ledger transaction % names an account that does not exist (% entries, % lots)',
        bad.id, bad.lost_entries, bad.lost_lots
        USING ERRCODE = 'foreign_key_violation';
END $$;
-- +goose StatementEnd

ALTER TABLE ledger_transactions
    ADD CONSTRAINT ledger_transactions_capture CHECK ((type = 'capture') = (hold_id IS NOT NULL)),
    ADD CONSTRAINT ledger_transactions_check CHECK (counter_member_id > 0 AND counter_member_id <> member_id),
    ADD CONSTRAINT ledger_transactions_counter CHECK ((type IN ('transfer', 'merge')) = (counter_member_id IS NOT NULL)),
    ADD CONSTRAINT ledger_transactions_idem_pair CHECK ((idempotency_scope IS NULL) = (idempotency_key IS NULL)),
    ADD CONSTRAINT ledger_transactions_partner CHECK (type NOT IN ('burn', 'capture') OR partner_id IS NOT NULL),
    ADD CONSTRAINT ledger_transactions_points CHECK (points > 0 OR (type = 'adjustment' AND points <> 0)),
    ADD CONSTRAINT ledger_transactions_reason CHECK (type NOT IN ('adjustment', 'forfeit') OR reason <> ''),
    ADD CONSTRAINT ledger_transactions_reversal CHECK ((type = 'reversal') = (reverses_id IS NOT NULL));
ALTER TABLE programme_member_windows
    ALTER COLUMN lane TYPE smallint,
    ALTER COLUMN month TYPE date,
    ALTER COLUMN partner_id TYPE bigint,
    ADD CONSTRAINT programme_member_windows_lane_check CHECK (lane IN (0, 1)),
    ADD CONSTRAINT programme_member_windows_month_check CHECK (EXTRACT(day FROM month) = 1),
    ADD CONSTRAINT programme_member_windows_partner_id_check CHECK (partner_id > 0);

ALTER TABLE programme_qualifying_credits
    ALTER COLUMN partner_id TYPE bigint,
    ADD CONSTRAINT programme_qualifying_credits_partner_id_check CHECK (partner_id > 0);

ALTER TABLE ledger_holds
    ALTER COLUMN destination TYPE text,
    ALTER COLUMN external_ref TYPE text,
    ALTER COLUMN member_id TYPE bigint,
    ALTER COLUMN partner_id TYPE bigint,
    ALTER COLUMN points TYPE bigint,
    ALTER COLUMN purpose TYPE text,
    ALTER COLUMN status TYPE text,
    ADD CONSTRAINT ledger_holds_destination_check CHECK (destination IN ('partner_redeemed', 'partner_exchange_out')),
    ADD CONSTRAINT ledger_holds_external_ref_check CHECK (length(external_ref) <= 200),
    ADD CONSTRAINT ledger_holds_member_id_check CHECK (member_id > 0),
    ADD CONSTRAINT ledger_holds_partner_id_check CHECK (partner_id > 0),
    ADD CONSTRAINT ledger_holds_points_check CHECK (points > 0),
    ADD CONSTRAINT ledger_holds_purpose_check CHECK (purpose IN ('pos', 'order', 'exchange')),
    ADD CONSTRAINT ledger_holds_status_check CHECK (status IN ('active', 'captured', 'voided', 'expired'));

ALTER TABLE ledger_lot_consumptions
    ALTER COLUMN issuer_partner_id TYPE bigint,
    ALTER COLUMN points TYPE bigint,
    ADD CONSTRAINT ledger_lot_consumptions_issuer_partner_id_check CHECK (issuer_partner_id > 0),
    ADD CONSTRAINT ledger_lot_consumptions_points_check CHECK (points > 0);

ALTER TABLE ledger_lots
    ALTER COLUMN amount TYPE bigint,
    ALTER COLUMN issuer_partner_id TYPE bigint,
    ADD CONSTRAINT ledger_lots_amount_check CHECK (amount > 0),
    ADD CONSTRAINT ledger_lots_issuer_partner_id_check CHECK (issuer_partner_id > 0);

ALTER TABLE ledger_entries
    ALTER COLUMN amount TYPE bigint,
    ADD CONSTRAINT ledger_entries_amount_check CHECK (amount <> 0);

ALTER TABLE ledger_transactions
    ALTER COLUMN actor TYPE text,
    ALTER COLUMN external_ref TYPE text,
    ALTER COLUMN member_id TYPE bigint,
    ALTER COLUMN partner_id TYPE bigint,
    ALTER COLUMN reason TYPE text,
    ALTER COLUMN type TYPE text,
    ADD CONSTRAINT ledger_transactions_actor_check CHECK (length(actor) <= 200),
    ADD CONSTRAINT ledger_transactions_external_ref_check CHECK (length(external_ref) <= 200),
    ADD CONSTRAINT ledger_transactions_member_id_check CHECK (member_id > 0),
    ADD CONSTRAINT ledger_transactions_partner_id_check CHECK (partner_id > 0),
    ADD CONSTRAINT ledger_transactions_reason_check CHECK (length(reason) <= 500),
    ADD CONSTRAINT ledger_transactions_type_check CHECK (type IN
        ('earn', 'burn', 'capture', 'reversal', 'transfer', 'adjustment', 'expiry', 'merge', 'forfeit'));

ALTER TABLE ledger_idempotency
    ALTER COLUMN key TYPE text,
    ALTER COLUMN operation TYPE text,
    ALTER COLUMN request_hash TYPE bytea,
    ALTER COLUMN scope TYPE text,
    ADD CONSTRAINT ledger_idempotency_key_check CHECK (length(key) BETWEEN 1 AND 200),
    ADD CONSTRAINT ledger_idempotency_operation_check CHECK (operation <> ''),
    ADD CONSTRAINT ledger_idempotency_request_hash_check CHECK (length(request_hash) > 0),
    ADD CONSTRAINT ledger_idempotency_scope_check CHECK (scope <> '');

DROP TRIGGER ledger_accounts_keep_key ON ledger_accounts;
ALTER TABLE ledger_accounts
    ALTER COLUMN held TYPE bigint,
    ALTER COLUMN kind TYPE text,
    ALTER COLUMN owner_id TYPE bigint,
    ADD CONSTRAINT ledger_accounts_held_check CHECK (held >= 0),
    ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN
        ('member', 'partner_issued', 'partner_redeemed', 'partner_exchange_in', 'partner_exchange_out',
         'operator_breakage', 'operator_promotions', 'operator_adjustments', 'operator_fees')),
    ADD CONSTRAINT ledger_accounts_owner_id_check CHECK (owner_id >= 0);
CREATE TRIGGER ledger_accounts_keep_key BEFORE UPDATE OF id, kind, owner_id ON ledger_accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.kind IS DISTINCT FROM NEW.kind
                       OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION ledger_keep_referenced();

DROP DOMAIN programme_window_lane;
DROP DOMAIN programme_month;
DROP DOMAIN ledger_hold_destination;
DROP DOMAIN ledger_hold_purpose;
DROP DOMAIN ledger_hold_status;
DROP DOMAIN ledger_request_hash;
DROP DOMAIN ledger_idempotency_key;
DROP DOMAIN ledger_entry_amount;
DROP DOMAIN ledger_owner_id;
DROP DOMAIN ledger_account_kind;
DROP DOMAIN ledger_transaction_type;
DROP DOMAIN hub_name;
DROP DOMAIN hub_long_text;
DROP DOMAIN hub_short_text;
DROP DOMAIN hub_nonnegative_points;
DROP DOMAIN hub_positive_points;
DROP DOMAIN hub_positive_id;
