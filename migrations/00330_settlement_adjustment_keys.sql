-- +goose Up
-- Money adjustments made through the admin API carry the caller's
-- Idempotency-Key (scoped to the staff account) and a hash of the request, so
-- a retry answers the first adjustment instead of charging a partner twice
-- (settlement/adjustment_keys.go). Adjustments made by a reconciliation
-- resolution have no key: the line's state makes those idempotent.
ALTER TABLE settlement_adjustments
    ADD COLUMN idempotency_scope text  CHECK (length(idempotency_scope) BETWEEN 1 AND 100),
    ADD COLUMN idempotency_key   text  CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    ADD COLUMN request_hash      bytea,
    ADD CONSTRAINT settlement_adjustments_key_complete
        CHECK ((idempotency_key IS NULL) = (idempotency_scope IS NULL) AND (idempotency_key IS NULL) = (request_hash IS NULL));
CREATE UNIQUE INDEX settlement_adjustments_key ON settlement_adjustments (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- +goose Down
DROP INDEX settlement_adjustments_key;
ALTER TABLE settlement_adjustments DROP CONSTRAINT settlement_adjustments_key_complete,
    DROP COLUMN request_hash, DROP COLUMN idempotency_key, DROP COLUMN idempotency_scope;
