-- +goose Up
-- Exchange of coalition points to and from partner programmes (package
-- exchange): programmes with their ratios and limits, members' linked
-- programme accounts, quotes, exchanges and their append-only history.

CREATE TABLE exchange_programmes (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id         bigint      NOT NULL REFERENCES partners (id),
    code               text        NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9_-]{2,40}$'),
    name               text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    unit               text        NOT NULL CHECK (length(btrim(unit)) BETWEEN 1 AND 40), -- "miles"
    status             text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- Outbound ratio: out_points coalition points give out_units partner units.
    out_points         bigint      CHECK (out_points > 0),
    out_units          bigint      CHECK (out_units > 0),
    -- Inbound ratio: in_units partner units give in_points coalition points.
    in_units           bigint      CHECK (in_units > 0),
    in_points          bigint      CHECK (in_points > 0),
    increment          bigint      NOT NULL DEFAULT 1 CHECK (increment > 0),
    min_points         bigint      NOT NULL DEFAULT 1 CHECK (min_points > 0),
    max_points         bigint      NOT NULL CHECK (max_points >= min_points AND max_points < 1000000000),
    monthly_max_points bigint      NOT NULL DEFAULT 0 CHECK (monthly_max_points >= 0), -- 0 = none
    fee_points         bigint      NOT NULL DEFAULT 0 CHECK (fee_points >= 0),
    fee_minor          bigint      NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    fee_currency       text        CHECK (fee_currency ~ '^[A-Z]{3}$'),
    bonus_bands        jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(bonus_bands) = 'array'),
    endpoint_url       text        NOT NULL CHECK (endpoint_url ~ '^https?://'),
    api_key            bytea       NOT NULL, -- sealed with partners.SecretBox
    pending_deadline   interval    NOT NULL DEFAULT '72 hours' CHECK (pending_deadline > interval '0'),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((out_points IS NULL) = (out_units IS NULL)),
    CHECK ((in_points IS NULL) = (in_units IS NULL)),
    CHECK (out_points IS NOT NULL OR in_points IS NOT NULL),
    CHECK (fee_minor = 0 OR fee_currency IS NOT NULL)
);
CREATE INDEX exchange_programmes_partner ON exchange_programmes (partner_id);

-- A member's account in a partner programme; validated by the partner
-- before first use.
CREATE TABLE exchange_links (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id     bigint      NOT NULL REFERENCES members (id),
    programme_id  bigint      NOT NULL REFERENCES exchange_programmes (id),
    account       text        NOT NULL CHECK (account ~ '^[A-Za-z0-9._-]{1,64}$'),
    validated_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    UNIQUE (member_id, programme_id)
);

CREATE TABLE exchange_quotes (
    id             uuid        PRIMARY KEY,
    member_id      bigint      NOT NULL REFERENCES members (id),
    programme_id   bigint      NOT NULL REFERENCES exchange_programmes (id),
    points         bigint      NOT NULL CHECK (points > 0),
    fee_points     bigint      NOT NULL CHECK (fee_points >= 0),
    base_units     bigint      NOT NULL CHECK (base_units > 0),
    bonus_units    bigint      NOT NULL CHECK (bonus_units >= 0),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL CHECK (expires_at > created_at)
);

CREATE TABLE exchanges (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stable transaction id sent to the partner; it dedupes on it.
    public_id          uuid        NOT NULL UNIQUE,
    direction          text        NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    programme_id       bigint      NOT NULL REFERENCES exchange_programmes (id),
    partner_id         bigint      NOT NULL REFERENCES partners (id),
    member_id          bigint      NOT NULL REFERENCES members (id),
    account            text        NOT NULL,
    points             bigint      NOT NULL CHECK (points > 0),  -- points debited or credited
    fee_points         bigint      NOT NULL DEFAULT 0 CHECK (fee_points >= 0),
    units              bigint      NOT NULL CHECK (units > 0),   -- partner units incl. bonus
    bonus_units        bigint      NOT NULL DEFAULT 0 CHECK (bonus_units >= 0),
    status             text        NOT NULL CHECK (status IN
                           ('processing', 'pending', 'completed', 'failed', 'reversed')),
    quote_id           uuid        UNIQUE REFERENCES exchange_quotes (id),
    hold_id            bigint      UNIQUE,
    transaction_id     bigint      UNIQUE,   -- the capture (outbound) or earn (inbound)
    reversal_tx_id     bigint      UNIQUE,
    partner_ref        text,
    failure_reason     text,
    attempts           integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_check_at      timestamptz,
    deadline_at        timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    completed_at       timestamptz,
    CHECK (direction = 'inbound' OR (hold_id IS NOT NULL AND quote_id IS NOT NULL AND deadline_at IS NOT NULL)),
    CHECK (direction = 'outbound' OR (status IN ('completed', 'reversed') AND partner_ref IS NOT NULL)),
    CHECK (status <> 'completed' OR transaction_id IS NOT NULL),
    CHECK (status <> 'reversed' OR reversal_tx_id IS NOT NULL)
);
-- Inbound exchanges are unique per partner transaction id.
CREATE UNIQUE INDEX exchanges_inbound_ref ON exchanges (partner_id, partner_ref) WHERE direction = 'inbound';
CREATE INDEX exchanges_member ON exchanges (member_id, id DESC);
CREATE INDEX exchanges_due ON exchanges (next_check_at) WHERE status IN ('processing', 'pending');
CREATE INDEX exchanges_monthly ON exchanges (member_id, programme_id, direction, created_at);

-- Append-only history of each exchange.
CREATE TABLE exchange_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exchange_id  bigint      NOT NULL REFERENCES exchanges (id),
    status       text        NOT NULL,
    event        text        NOT NULL CHECK (event ~ '^[a-z_]+$'),
    detail       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL
);
CREATE INDEX exchange_events_exchange ON exchange_events (exchange_id, id);

-- +goose StatementBegin
CREATE FUNCTION exchange_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'exchange_events is append-only';
END $$;
-- +goose StatementEnd
CREATE TRIGGER exchange_events_append_only BEFORE UPDATE OR DELETE ON exchange_events
    FOR EACH ROW EXECUTE FUNCTION exchange_events_append_only();

-- +goose Down
DROP TABLE exchange_events;
DROP FUNCTION exchange_events_append_only();
DROP TABLE exchanges;
DROP TABLE exchange_quotes;
DROP TABLE exchange_links;
DROP TABLE exchange_programmes;
