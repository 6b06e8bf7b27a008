-- +goose Up
-- A transaction's idempotency key was unique twice over: as the
-- primary key of ledger_idempotency, which every posting claims first (in the
-- same statement or transaction) and which points at the one transaction the
-- key posted, and as this unique index on ledger_transactions, which nothing
-- reads by. Each posting paid a second B-tree insert of a long text key
-- (scope and key, ~40 bytes) and its uniqueness check. The claim stays the
-- guard, and hub audit ("no idempotency key applied twice") checks that no key
-- is used by two transactions or holds and that each transaction's key
-- record points at it.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_idempotency;

-- +goose Down
ALTER TABLE ledger_transactions
    ADD CONSTRAINT ledger_transactions_idempotency UNIQUE (idempotency_scope, idempotency_key);
