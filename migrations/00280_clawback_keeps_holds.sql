-- +goose Up
-- A clawback no longer voids holds (ledger/clawback.go): holds belong to
-- exchanges, catalog orders and point-of-sale purchases a partner is already
-- delivering, and their capture goes through even when the clawback took
-- their cover, into debt. So a member account may hold more than its
-- balance, and a negative balance may have holds. The rule that replaces
-- this constraint spans rows (held beyond cover only for holds older than a
-- clawback): `hub audit` checks it ("holds within available points").
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_held_covered;

-- +goose Down
-- NOT VALID: accounts a clawback left with uncovered holds stay as they are;
-- new writes are checked again.
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_held_covered CHECK (held <= greatest(balance, 0)) NOT VALID;
