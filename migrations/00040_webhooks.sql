-- +goose Up
-- Outbound webhooks: partners register endpoints and pick events; every event
-- gets a stable id, one delivery per subscribed endpoint, and an append-only
-- log of attempts.
CREATE TABLE webhook_endpoints (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id  bigint      NOT NULL,
    url         text        NOT NULL CHECK (url ~ '^https?://'),
    events      jsonb       NOT NULL CHECK (jsonb_typeof(events) = 'array' AND jsonb_array_length(events) > 0),
    secret      bytea       NOT NULL, -- sealed signing secret (see partners/webhooks.go)
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Publishing looks up a partner's active endpoints on every event.
CREATE INDEX webhook_endpoints_partner ON webhook_endpoints (partner_id) WHERE status = 'active';

CREATE TABLE webhook_events (
    id          uuid        PRIMARY KEY,
    partner_id  bigint      NOT NULL,
    type        text        NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
    payload     text        NOT NULL, -- the exact bytes delivered and signed
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid        NOT NULL REFERENCES webhook_events (id),
    endpoint_id   bigint      NOT NULL REFERENCES webhook_endpoints (id),
    partner_id    bigint      NOT NULL,
    state         text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    UNIQUE (event_id, endpoint_id)
);
-- The delivery log is read per partner, newest first, with keyset pagination on id.
CREATE INDEX webhook_deliveries_partner ON webhook_deliveries (partner_id, id DESC);

CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   bigint      NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    error         text,
    duration_ms   integer     NOT NULL CHECK (duration_ms >= 0)
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;
