-- +goose Up
-- The references every posting writes are kept by the ledger and
-- checked without row locks, instead of by per-row foreign keys.
--
-- A foreign-key check runs a query per inserted row and takes FOR KEY SHARE
-- on the referenced row, which writes a WAL record and, when several
-- transactions hold it at once, a multixact. Every earn of a partner
-- references that partner's issued account, so its foreign key funnelled
-- every earn of the partner through one locked row, which DESIGN.md's rule on
-- hot accounts forbids: measured, earns through one partner ran at 88% of
-- earns spread over twenty with the keys, 101% without, and every earn, burn
-- and batch ran 17-25% faster (docs/performance.md).
--
-- What holds the line instead:
-- * the referenced rows cannot go away: ledger transactions are append-only
--   (00010), ledger accounts can be neither deleted nor re-keyed, and members
--   are never deleted (they are erased in place or merged) - triggers below;
-- * every ledger transaction's entries must name existing accounts, and its
--   lots too, checked at commit by ledger_check_transaction beside the zero
--   sum (an index probe per entry, no lock): since accounts are never
--   deleted, a reference that resolves at commit resolves for ever;
-- * the rows are written by the ledger in the statement that creates their
--   transaction (earn_store.go, burn.go, batch.go), and programme credits in
--   the same database transaction as the ledger transaction they name;
-- * hub audit checks every one of these references over the whole database.
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_transaction_id_fkey,
    DROP CONSTRAINT ledger_entries_account_id_fkey;
ALTER TABLE ledger_lots
    DROP CONSTRAINT ledger_lots_account_id_fkey,
    DROP CONSTRAINT ledger_lots_transaction_id_fkey;
ALTER TABLE ledger_idempotency
    DROP CONSTRAINT ledger_idempotency_transaction_id_fkey;
ALTER TABLE programme_qualifying_credits
    DROP CONSTRAINT programme_qualifying_credits_member_id_fkey,
    DROP CONSTRAINT programme_qualifying_credits_transaction_id_fkey;
ALTER TABLE programme_member_windows
    DROP CONSTRAINT programme_member_windows_member_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION ledger_keep_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted: ledger postings refer to them', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION '% rows are never re-keyed: ledger postings refer to them', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
-- +goose StatementEnd
CREATE TRIGGER ledger_accounts_keep BEFORE DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_keep_referenced();
CREATE TRIGGER ledger_accounts_keep_key BEFORE UPDATE OF id, kind, owner_id ON ledger_accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.kind IS DISTINCT FROM NEW.kind
                       OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION ledger_keep_referenced();
CREATE TRIGGER members_keep BEFORE DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION ledger_keep_referenced();
CREATE TRIGGER members_keep_key BEFORE UPDATE OF id ON members
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION ledger_keep_referenced();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_check_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    total numeric;
    lost_entries bigint;
    lost_lots bigint;
BEGIN
    -- The existence tests are correlated subqueries in aggregate filters on
    -- purpose: as joins the planner may hash the whole accounts table at
    -- every commit; here each is one primary-key probe per row.
    SELECT count(*), coalesce(sum(e.amount), 0),
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id)),
           (SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = l.account_id))
              FROM ledger_lots l WHERE l.transaction_id = NEW.id)
      INTO n, total, lost_entries, lost_lots
      FROM ledger_entries e
     WHERE e.transaction_id = NEW.id;
    IF n < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% entries, sum %)', NEW.id, n, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF lost_entries <> 0 OR lost_lots <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % names an account that does not exist (% entries, % lots)',
            NEW.id, lost_entries, lost_lots
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_check_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP TRIGGER members_keep_key ON members;
DROP TRIGGER members_keep ON members;
DROP TRIGGER ledger_accounts_keep_key ON ledger_accounts;
DROP TRIGGER ledger_accounts_keep ON ledger_accounts;
DROP FUNCTION ledger_keep_referenced();
ALTER TABLE programme_member_windows
    ADD CONSTRAINT programme_member_windows_member_id_fkey FOREIGN KEY (member_id) REFERENCES members (id);
ALTER TABLE programme_qualifying_credits
    ADD CONSTRAINT programme_qualifying_credits_member_id_fkey FOREIGN KEY (member_id) REFERENCES members (id),
    ADD CONSTRAINT programme_qualifying_credits_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id);
ALTER TABLE ledger_idempotency
    ADD CONSTRAINT ledger_idempotency_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id);
ALTER TABLE ledger_lots
    ADD CONSTRAINT ledger_lots_account_id_fkey FOREIGN KEY (account_id) REFERENCES ledger_accounts (id),
    ADD CONSTRAINT ledger_lots_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id);
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id),
    ADD CONSTRAINT ledger_entries_account_id_fkey FOREIGN KEY (account_id) REFERENCES ledger_accounts (id);
