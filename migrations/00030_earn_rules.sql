-- +goose Up
-- Earn rules (package partners, earnrules*.go): a partner's rule is data,
-- versioned and immutable. The version in force at t is the latest
-- effective_from <= t (highest version on a tie). The definition is validated
-- by the service on write; the database checks its outline.
CREATE TABLE earn_rules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id      bigint      NOT NULL REFERENCES partners (id),
    version         integer     NOT NULL CHECK (version >= 1),
    effective_from  timestamptz NOT NULL,
    definition      jsonb       NOT NULL CHECK (
                        jsonb_typeof(definition) = 'object'
                        AND jsonb_typeof(definition -> 'earn') = 'array'
                        AND jsonb_array_length(definition -> 'earn') > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL CHECK (length(btrim(created_by)) BETWEEN 1 AND 200),
    UNIQUE (partner_id, version),
    -- Never retroactive: a version cannot reprice purchases made before it
    -- was published.
    CHECK (effective_from >= created_at)
);
CREATE INDEX earn_rules_in_force ON earn_rules (partner_id, effective_from DESC, version DESC);

-- A published version is a record other transactions point to: it never
-- changes and is never deleted.
-- +goose StatementBegin
CREATE FUNCTION earn_rules_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'earn_rules rows are immutable; publish a new version'
        USING ERRCODE = 'restrict_violation';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER earn_rules_immutable BEFORE UPDATE OR DELETE ON earn_rules
    FOR EACH ROW EXECUTE FUNCTION earn_rules_immutable();

-- +goose Down
DROP TABLE earn_rules;
DROP FUNCTION earn_rules_immutable();
