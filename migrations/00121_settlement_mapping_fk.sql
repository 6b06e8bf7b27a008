-- +goose Up
-- settlement_period_transactions.transaction_id loses its foreign key to
-- ledger_transactions: the rows are selected from ledger_transactions in the
-- same statement and ledger rows are never deleted (append-only trigger),
-- while the FK check takes a KEY SHARE lock on, and so rewrites, every ledger
-- row of the month (millions) at each close.
ALTER TABLE settlement_period_transactions DROP CONSTRAINT settlement_period_transactions_transaction_id_fkey;

-- +goose Down
ALTER TABLE settlement_period_transactions ADD CONSTRAINT settlement_period_transactions_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id);
