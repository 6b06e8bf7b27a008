-- +goose Up
-- Partner registry, outlets, contract versions and prepaid balances
-- (package partners). Money is integer minor units plus an ISO 4217 code;
-- prices and rates per point are exact numerics, never floats.

CREATE TABLE partners (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    sector              text        NOT NULL CHECK (sector IN
                            ('airline','hotel','bank','restaurant','retail','fuel','telecom')),
    status              text        NOT NULL DEFAULT 'onboarding' CHECK (status IN
                            ('onboarding','active','suspended','terminated')),
    settlement_currency text        NOT NULL CHECK (settlement_currency ~ '^[A-Z]{3}$'),
    time_zone           text        NOT NULL CHECK (time_zone <> ''),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Target of composite FKs: contracts and prepaid money must be in the
    -- partner's settlement currency, enforced by the database.
    UNIQUE (id, settlement_currency)
);
CREATE UNIQUE INDEX partners_name_unique ON partners (lower(name));

CREATE TABLE partner_outlets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id  bigint      NOT NULL REFERENCES partners (id),
    code        text        NOT NULL CHECK (code ~ '^[A-Za-z0-9._-]{1,64}$'),
    name        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    address     text        NOT NULL DEFAULT '',
    time_zone   text        CHECK (time_zone <> ''), -- NULL: the partner's
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active','closed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (partner_id, code)
);

-- Contracts are immutable versions: a change is a new row with a later
-- effective_from. The version in force at t is the latest effective_from <= t.
CREATE TABLE partner_contracts (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id               bigint        NOT NULL,
    version                  integer       NOT NULL CHECK (version >= 1),
    effective_from           timestamptz   NOT NULL,
    earn_role                boolean       NOT NULL,
    burn_role                boolean       NOT NULL,
    issue_price              numeric(20,8) NOT NULL CHECK (issue_price >= 0),
    redemption_rate          numeric(20,8) NOT NULL CHECK (redemption_rate >= 0),
    currency                 text          NOT NULL,
    billing                  text          NOT NULL CHECK (billing IN ('prepaid','postpaid')),
    prepaid_alert_threshold  bigint        NOT NULL DEFAULT 0 CHECK (prepaid_alert_threshold >= 0),
    pending_days             integer       NOT NULL DEFAULT 0 CHECK (pending_days BETWEEN 0 AND 365),
    cap_per_transaction      bigint        NOT NULL DEFAULT 0 CHECK (cap_per_transaction >= 0), -- 0: no cap
    cap_per_member_day       bigint        NOT NULL DEFAULT 0 CHECK (cap_per_member_day >= 0),  -- 0: no cap
    breakage_share           numeric(9,8)  NOT NULL DEFAULT 0 CHECK (breakage_share BETWEEN 0 AND 1),
    operator_fee_rate        numeric(9,8)  NOT NULL DEFAULT 0 CHECK (operator_fee_rate BETWEEN 0 AND 1),
    notes                    text          NOT NULL DEFAULT '',
    created_at               timestamptz   NOT NULL DEFAULT now(),
    created_by               text          NOT NULL CHECK (created_by <> ''),
    CHECK (earn_role OR burn_role),
    CHECK (billing = 'postpaid' OR earn_role),          -- prepaid pays for issued points
    CHECK (prepaid_alert_threshold = 0 OR billing = 'prepaid'),
    UNIQUE (partner_id, version),
    UNIQUE (partner_id, effective_from),
    FOREIGN KEY (partner_id, currency) REFERENCES partners (id, settlement_currency)
);
CREATE INDEX partner_contracts_in_force ON partner_contracts (partner_id, effective_from DESC);

-- Prepaid balance: the movements are the record (top-ups positive,
-- draw-downs negative); prepaid_accounts.balance_minor is their running sum,
-- maintained in the same transaction as each movement and never negative.
-- The account row is the per-partner lock; only prepaid partners have one.
CREATE TABLE prepaid_accounts (
    partner_id     bigint      PRIMARY KEY,
    currency       text        NOT NULL,
    balance_minor  bigint      NOT NULL DEFAULT 0 CHECK (balance_minor >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (partner_id, currency) REFERENCES partners (id, settlement_currency)
);

CREATE TABLE prepaid_movements (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id    bigint      NOT NULL REFERENCES prepaid_accounts (partner_id),
    kind          text        NOT NULL CHECK (kind IN ('top_up','draw_down')),
    amount_minor  bigint      NOT NULL,
    currency      text        NOT NULL,
    ref           text        NOT NULL CHECK (length(ref) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL CHECK (created_by <> ''),
    CHECK ((kind = 'top_up' AND amount_minor > 0) OR (kind = 'draw_down' AND amount_minor < 0)),
    -- A retried top-up or draw-down with the same reference never counts twice.
    UNIQUE (partner_id, kind, ref),
    FOREIGN KEY (partner_id, currency) REFERENCES partners (id, settlement_currency)
);
CREATE INDEX prepaid_movements_partner ON prepaid_movements (partner_id, id);

-- +goose Down
DROP TABLE prepaid_movements;
DROP TABLE prepaid_accounts;
DROP TABLE partner_contracts;
DROP TABLE partner_outlets;
DROP TABLE partners;
