-- +goose Up
-- Redemptions the operator bears: a catalog reward owned by the operator is
-- captured into operator_redeemed (owner 0), not into a partner's
-- partner_redeemed, so no partner is reimbursed for it and the points leave
-- the outstanding liability like any other redemption. Such a hold and its
-- capture name no partner: ledger_holds.partner_id is NULL exactly for holds
-- into operator_redeemed, and a capture needs a partner only when its hold
-- has one (a burn always does).
ALTER DOMAIN ledger_account_kind DROP CONSTRAINT ledger_account_kind_check;
ALTER DOMAIN ledger_account_kind ADD CONSTRAINT ledger_account_kind_check CHECK (VALUE IN
    ('member', 'partner_issued', 'partner_redeemed', 'partner_exchange_in', 'partner_exchange_out',
     'operator_breakage', 'operator_promotions', 'operator_adjustments', 'operator_fees', 'operator_redeemed'));
ALTER DOMAIN ledger_hold_destination DROP CONSTRAINT ledger_hold_destination_check;
ALTER DOMAIN ledger_hold_destination ADD CONSTRAINT ledger_hold_destination_check CHECK (VALUE IN
    ('partner_redeemed', 'partner_exchange_out', 'operator_redeemed'));

ALTER TABLE ledger_holds ALTER COLUMN partner_id DROP NOT NULL;
ALTER TABLE ledger_holds ADD CONSTRAINT ledger_holds_operator_partner
    CHECK ((destination = 'operator_redeemed') = (partner_id IS NULL)) NOT VALID;
ALTER TABLE ledger_holds VALIDATE CONSTRAINT ledger_holds_operator_partner;

-- The statement rule of 00250 with ledger_transactions_partner narrowed to burns.
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
                WHEN (t.type <> 'burn' OR t.partner_id IS NOT NULL) IS FALSE
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

-- +goose Down
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
ALTER TABLE ledger_holds DROP CONSTRAINT ledger_holds_operator_partner;
ALTER TABLE ledger_holds ALTER COLUMN partner_id SET NOT NULL;
ALTER DOMAIN ledger_hold_destination DROP CONSTRAINT ledger_hold_destination_check;
ALTER DOMAIN ledger_hold_destination ADD CONSTRAINT ledger_hold_destination_check CHECK (VALUE IN
    ('partner_redeemed', 'partner_exchange_out'));
ALTER DOMAIN ledger_account_kind DROP CONSTRAINT ledger_account_kind_check;
ALTER DOMAIN ledger_account_kind ADD CONSTRAINT ledger_account_kind_check CHECK (VALUE IN
    ('member', 'partner_issued', 'partner_redeemed', 'partner_exchange_in', 'partner_exchange_out',
     'operator_breakage', 'operator_promotions', 'operator_adjustments', 'operator_fees'));
