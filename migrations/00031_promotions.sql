-- +goose Up
-- Promotions (package partners, promotions*.go): time-boxed earn bonuses.
-- partner_id NULL is a coalition-wide promotion, which only the operator funds.
-- Rows are immutable except for being ended (status, ended_at, ended_by).
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE promotions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id    bigint      REFERENCES partners (id),
    name          text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    code          text        CHECK (code ~ '^[A-Z0-9_-]{3,32}$'), -- NULL: no code needed
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    effect        text        NOT NULL CHECK (effect IN ('multiplier', 'bonus')),
    multiplier    numeric(8,4) CHECK (multiplier > 1 AND multiplier <= 10),
    bonus_points  bigint      CHECK (bonus_points BETWEEN 1 AND 10000000),
    funded_by     text        NOT NULL CHECK (funded_by IN ('partner', 'operator')),
    exclusive     boolean     NOT NULL DEFAULT false,
    -- Conditions (categories, min_amount, tiers), validated by the service.
    definition    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(definition) = 'object'),
    status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    ended_at      timestamptz,
    ended_by      text        CHECK (length(btrim(ended_by)) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL CHECK (length(btrim(created_by)) BETWEEN 1 AND 200),
    CHECK (ends_at > starts_at),
    CHECK ((effect = 'multiplier' AND multiplier IS NOT NULL AND bonus_points IS NULL)
        OR (effect = 'bonus' AND bonus_points IS NOT NULL AND multiplier IS NULL)),
    CHECK (partner_id IS NOT NULL OR funded_by = 'operator'),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    CHECK ((ended_at IS NULL) = (ended_by IS NULL)),
    -- One code means one promotion at a time for a partner: the windows
    -- (cut short when ended) of promotions sharing a code never overlap.
    CONSTRAINT promotions_code_window EXCLUDE USING gist (
        coalesce(partner_id, 0) WITH =,
        code WITH =,
        tstzrange(starts_at, greatest(starts_at, least(ends_at, coalesce(ended_at, ends_at)))) WITH &&
    ) WHERE (code IS NOT NULL)
);
CREATE INDEX promotions_partner_window ON promotions (partner_id, starts_at, ends_at);

-- +goose StatementBegin
CREATE FUNCTION promotions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'promotions are never deleted; end them' USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status = 'ended'
       OR (NEW.id, NEW.partner_id, NEW.name, NEW.code, NEW.starts_at, NEW.ends_at, NEW.effect,
           NEW.multiplier, NEW.bonus_points, NEW.funded_by, NEW.exclusive, NEW.definition,
           NEW.created_at, NEW.created_by)
          IS DISTINCT FROM
          (OLD.id, OLD.partner_id, OLD.name, OLD.code, OLD.starts_at, OLD.ends_at, OLD.effect,
           OLD.multiplier, OLD.bonus_points, OLD.funded_by, OLD.exclusive, OLD.definition,
           OLD.created_at, OLD.created_by) THEN
        RAISE EXCEPTION 'a promotion can only be ended, once' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER promotions_immutable BEFORE UPDATE OR DELETE ON promotions
    FOR EACH ROW EXECUTE FUNCTION promotions_immutable();

-- +goose Down
DROP TABLE promotions;
DROP FUNCTION promotions_immutable();
-- btree_gist stays: other tables may use it.
