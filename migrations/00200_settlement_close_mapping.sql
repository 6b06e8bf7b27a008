-- +goose Up
-- The period mapping is written at close, millions of rows in one statement
--. Two of its per-row costs go:
--
-- * the foreign key period_id -> settlement_periods fired one RI trigger per
--   row (55 s of a 5-million-row close). The rows are inserted only by the
--   close, in one statement, with the id of the period row it holds FOR UPDATE;
--   settlement_periods rows are never deleted. (The transaction_id key went in
--   00121 for the same reason.)
-- * the B-tree on (period_id, transaction_id) was a second per-row index
--   insert. A period's rows are appended together, so a BRIN index on
--   period_id (a few pages) finds them for reconciliation and Verify. The
--   primary key on transaction_id stays: it is what settles a transaction once.
ALTER TABLE settlement_period_transactions DROP CONSTRAINT settlement_period_transactions_period_id_fkey;
DROP INDEX settlement_period_transactions_period;
CREATE INDEX settlement_period_transactions_period_brin ON settlement_period_transactions USING brin (period_id);

-- +goose Down
DROP INDEX settlement_period_transactions_period_brin;
CREATE INDEX settlement_period_transactions_period ON settlement_period_transactions (period_id, transaction_id);
ALTER TABLE settlement_period_transactions ADD CONSTRAINT settlement_period_transactions_period_id_fkey
    FOREIGN KEY (period_id) REFERENCES settlement_periods (id);
