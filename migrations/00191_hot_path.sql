-- +goose Up
-- Hot paths.
--
-- partner_config_versions: a counter per partner bumped by every write to the
-- configuration the points API prices with (contract versions, earn rules,
-- promotions, webhook endpoints). partner_id 0 counts the coalition-wide
-- promotions (partner_id NULL). The points API caches a partner's
-- configuration in memory and checks the counter in the query it sends
-- anyway (the member check), so a cached configuration is never used after a
-- change has committed, in any process.
CREATE TABLE partner_config_versions (
    partner_id bigint PRIMARY KEY CHECK (partner_id >= 0),
    version    bigint NOT NULL CHECK (version > 0)
);

-- +goose StatementBegin
CREATE FUNCTION partner_config_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO partner_config_versions AS v (partner_id, version) VALUES (coalesce(OLD.partner_id, 0), 1)
        ON CONFLICT (partner_id) DO UPDATE SET version = v.version + 1;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.partner_id IS DISTINCT FROM OLD.partner_id) THEN
        INSERT INTO partner_config_versions AS v (partner_id, version) VALUES (coalesce(NEW.partner_id, 0), 1)
        ON CONFLICT (partner_id) DO UPDATE SET version = v.version + 1;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER partner_contracts_config AFTER INSERT OR UPDATE OR DELETE ON partner_contracts
    FOR EACH ROW EXECUTE FUNCTION partner_config_bump();
CREATE TRIGGER earn_rules_config AFTER INSERT OR UPDATE OR DELETE ON earn_rules
    FOR EACH ROW EXECUTE FUNCTION partner_config_bump();
CREATE TRIGGER promotions_config AFTER INSERT OR UPDATE OR DELETE ON promotions
    FOR EACH ROW EXECUTE FUNCTION partner_config_bump();
CREATE TRIGGER webhook_endpoints_config AFTER INSERT OR UPDATE OR DELETE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION partner_config_bump();

-- An idempotency record may point at the transaction it produced instead of
-- storing the answer: the earn writes its record, transaction, entries and
-- lots in one statement, before the answer exists; a replay renders the
-- (immutable) transaction again.
ALTER TABLE ledger_idempotency ADD COLUMN transaction_id bigint REFERENCES ledger_transactions (id);

-- +goose Down
ALTER TABLE ledger_idempotency DROP COLUMN transaction_id;
DROP TRIGGER webhook_endpoints_config ON webhook_endpoints;
DROP TRIGGER promotions_config ON promotions;
DROP TRIGGER earn_rules_config ON earn_rules;
DROP TRIGGER partner_contracts_config ON partner_contracts;
DROP FUNCTION partner_config_bump();
DROP TABLE partner_config_versions;
