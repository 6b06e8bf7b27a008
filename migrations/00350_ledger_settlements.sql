-- +goose Up
-- The mapping of ledger transactions to the settlement period that settled
-- each one becomes the ledger's: every read of it joins ledger rows (the
-- transactions a period settles, the stragglers an earlier close missed, the
-- recorded set Verify and reconciliation read), and the ledger's tables are
-- read and written only by the ledger. The ledger knows the period only as an
-- opaque batch id. The primary key still settles a transaction once.
ALTER TABLE settlement_period_transactions RENAME TO ledger_settlements;
ALTER TABLE ledger_settlements RENAME COLUMN period_id TO batch_id;
ALTER INDEX settlement_period_transactions_pkey RENAME TO ledger_settlements_pkey;
ALTER INDEX settlement_period_transactions_period_brin RENAME TO ledger_settlements_batch_brin;

-- +goose Down
ALTER INDEX ledger_settlements_batch_brin RENAME TO settlement_period_transactions_period_brin;
ALTER INDEX ledger_settlements_pkey RENAME TO settlement_period_transactions_pkey;
ALTER TABLE ledger_settlements RENAME COLUMN batch_id TO period_id;
ALTER TABLE ledger_settlements RENAME TO settlement_period_transactions;
