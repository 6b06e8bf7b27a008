-- +goose Up
-- Programme rules (package programme): the programme policy (expiry,
-- transfers, birthday bonus, tier window), tiers and their qualifying credits,
-- expiry notices, and corporate accounts.

-- The one programme policy row (id = 1). Each mode says which numbers it needs.
CREATE TABLE programme_policy (
    id                    smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    -- Qualifying spend counts only earns in this currency.
    currency              text        NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    expiry_mode           text        NOT NULL DEFAULT 'never'
                          CHECK (expiry_mode IN ('never', 'fixed_lifetime', 'inactivity', 'end_of_year')),
    -- fixed_lifetime: months from each earn; inactivity: months without an earn or burn.
    expiry_months         integer     NOT NULL DEFAULT 0 CHECK (expiry_months BETWEEN 0 AND 600),
    -- end_of_year: points expire at the end of the Nth calendar year (1 = the year of the earn).
    expiry_years          integer     NOT NULL DEFAULT 0 CHECK (expiry_years BETWEEN 0 AND 50),
    notice_days           integer     NOT NULL DEFAULT 30 CHECK (notice_days BETWEEN 1 AND 365),
    transfers_enabled     boolean     NOT NULL DEFAULT true,
    transfer_min          bigint      NOT NULL DEFAULT 1 CHECK (transfer_min >= 1),
    transfer_per_transfer bigint      NOT NULL DEFAULT 0 CHECK (transfer_per_transfer >= 0),
    transfer_daily        bigint      NOT NULL DEFAULT 0 CHECK (transfer_daily >= 0),
    transfer_monthly      bigint      NOT NULL DEFAULT 0 CHECK (transfer_monthly >= 0),
    transfer_fee_fixed    bigint      NOT NULL DEFAULT 0 CHECK (transfer_fee_fixed >= 0),
    transfer_fee_rate     numeric(9, 6) NOT NULL DEFAULT 0 CHECK (transfer_fee_rate >= 0 AND transfer_fee_rate < 1),
    birthday_points       bigint      NOT NULL DEFAULT 0 CHECK (birthday_points >= 0 AND birthday_points <= 1000000),
    tier_window           text        NOT NULL DEFAULT 'rolling_12_months'
                          CHECK (tier_window IN ('rolling_12_months', 'calendar_year')),
    tier_downgrade        text        NOT NULL DEFAULT 'to_qualified'
                          CHECK (tier_downgrade IN ('to_qualified', 'one_level')),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT programme_policy_expiry CHECK (
        (expiry_mode = 'never' AND expiry_months = 0 AND expiry_years = 0)
        OR (expiry_mode IN ('fixed_lifetime', 'inactivity') AND expiry_months > 0 AND expiry_years = 0)
        OR (expiry_mode = 'end_of_year' AND expiry_years > 0 AND expiry_months = 0)),
    CONSTRAINT programme_policy_transfer_limits CHECK (
        (transfer_per_transfer = 0 OR transfer_per_transfer >= transfer_min)
        AND (transfer_daily = 0 OR transfer_monthly = 0 OR transfer_daily <= transfer_monthly))
);
INSERT INTO programme_policy (id) VALUES (1);

-- Tier definitions: ordered by rank (0 = the base level everyone has).
CREATE TABLE programme_tiers (
    code            text    PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    name            text    NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    rank            integer NOT NULL UNIQUE CHECK (rank BETWEEN 0 AND 100),
    -- Reached only by a grant (status match, invitation), never by qualifying.
    invitation_only boolean NOT NULL DEFAULT false,
    -- Named benefits partners read through the member lookup, e.g.
    -- [{"code":"late_checkout","value":"16:00"}].
    entitlements    jsonb   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(entitlements) = 'array'),
    CHECK (rank > 0 OR NOT invitation_only)
);

-- Thresholds of a tier, combined with OR: any one met qualifies.
CREATE TABLE programme_tier_thresholds (
    tier_code text   NOT NULL REFERENCES programme_tiers (code) ON DELETE CASCADE,
    metric    text   NOT NULL CHECK (metric IN ('qualifying_points', 'spend_minor', 'nights', 'stays', 'flights', 'partners')),
    minimum   bigint NOT NULL CHECK (minimum > 0),
    PRIMARY KEY (tier_code, metric)
);

-- Qualifying credits, apart from redeemable points: one row per posted earn
-- (fed inside the earn's database transaction) and one negative row per
-- reversal, dated at the original earn's occurred_at so it leaves the same window.
CREATE TABLE programme_qualifying_credits (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id         bigint      NOT NULL REFERENCES members (id),
    transaction_id    bigint      NOT NULL UNIQUE REFERENCES ledger_transactions (id),
    reverses_id       bigint      REFERENCES programme_qualifying_credits (id),
    partner_id        bigint      NOT NULL CHECK (partner_id > 0),
    occurred_at       timestamptz NOT NULL,
    qualifying_points bigint      NOT NULL,
    spend_minor       bigint      NOT NULL,
    nights            bigint      NOT NULL,
    stays             bigint      NOT NULL,
    flights           bigint      NOT NULL,
    posted_at         timestamptz NOT NULL,
    CONSTRAINT programme_qualifying_credits_sign CHECK (
        (reverses_id IS NULL AND qualifying_points >= 0 AND spend_minor >= 0 AND nights >= 0 AND stays >= 0 AND flights >= 0)
        OR (reverses_id IS NOT NULL AND qualifying_points <= 0 AND spend_minor <= 0 AND nights <= 0 AND stays <= 0 AND flights <= 0))
);
CREATE INDEX programme_qualifying_credits_member ON programme_qualifying_credits (member_id, occurred_at);
CREATE INDEX programme_qualifying_credits_reverses ON programme_qualifying_credits (reverses_id) WHERE reverses_id IS NOT NULL;

-- A member's current tier. No row = the base tier.
CREATE TABLE programme_member_tiers (
    member_id      bigint      PRIMARY KEY REFERENCES members (id),
    tier_code      text        NOT NULL REFERENCES programme_tiers (code),
    since          timestamptz NOT NULL,
    -- Start of the last yearly review applied (a review runs once per year).
    last_review_at timestamptz,
    updated_at     timestamptz NOT NULL
);

-- Manual grants: status match, invitation, campaign; no end = lifetime status.
CREATE TABLE programme_tier_grants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint      NOT NULL REFERENCES members (id),
    tier_code  text        NOT NULL REFERENCES programme_tiers (code),
    reason     text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    actor      text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz CHECK (ends_at > starts_at),
    created_at timestamptz NOT NULL
);
CREATE INDEX programme_tier_grants_member ON programme_tier_grants (member_id);

-- Tier history: every change with why.
CREATE TABLE programme_tier_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint      NOT NULL REFERENCES members (id),
    from_code  text        REFERENCES programme_tiers (code),
    to_code    text        NOT NULL REFERENCES programme_tiers (code),
    reason     text        NOT NULL CHECK (reason IN ('upgrade', 'grant', 'review')),
    changed_at timestamptz NOT NULL,
    CHECK (from_code IS DISTINCT FROM to_code)
);
CREATE INDEX programme_tier_changes_member ON programme_tier_changes (member_id, id);

-- "Points expiring" notices: one per member and expiry date, so the daily job
-- can run any number of times; the portal lists them.
CREATE TABLE programme_expiry_notices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   bigint      NOT NULL REFERENCES members (id),
    -- The UTC day the points expire and the earliest expiry instant that day.
    expires_on  date        NOT NULL,
    expires_at  timestamptz NOT NULL CHECK ((expires_at AT TIME ZONE 'UTC')::date = expires_on),
    points      bigint      NOT NULL CHECK (points > 0),
    created_at  timestamptz NOT NULL,
    CONSTRAINT programme_expiry_notices_once UNIQUE (member_id, expires_on)
);

-- Corporate levels by yearly spend brackets in the policy currency.
CREATE TABLE programme_company_levels (
    code            text          PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    name            text          NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    min_spend_minor bigint        NOT NULL UNIQUE CHECK (min_spend_minor >= 0),
    -- Share of eligible spend credited as points per currency unit (0.05 = 5%).
    rate            numeric(7, 4) NOT NULL CHECK (rate > 0 AND rate <= 1)
);

-- A company's points live in the ledger account of its own member record.
CREATE TABLE programme_companies (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    account_member_id bigint      NOT NULL UNIQUE REFERENCES members (id),
    level_code        text        NOT NULL REFERENCES programme_company_levels (code),
    level_since       timestamptz NOT NULL,
    -- The year whose spend the last yearly review applied.
    reviewed_year     integer,
    created_at        timestamptz NOT NULL
);

-- Employees linked to a company; can_spend marks designated employees.
CREATE TABLE programme_company_employees (
    company_id bigint      NOT NULL REFERENCES programme_companies (id),
    member_id  bigint      NOT NULL UNIQUE REFERENCES members (id),
    can_spend  boolean     NOT NULL DEFAULT false,
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (company_id, member_id)
);

-- Partners whose purchases credit the employee's company (dual accrual).
CREATE TABLE programme_corporate_partners (
    partner_id bigint      PRIMARY KEY CHECK (partner_id > 0),
    created_at timestamptz NOT NULL
);

-- One company credit per employee earn (dual accrual exactly once), and
-- reversals of it.
CREATE TABLE programme_company_credits (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id             bigint        NOT NULL REFERENCES programme_companies (id),
    employee_member_id     bigint        NOT NULL REFERENCES members (id),
    source_transaction_id  bigint        NOT NULL UNIQUE REFERENCES ledger_transactions (id),
    company_transaction_id bigint        NOT NULL UNIQUE REFERENCES ledger_transactions (id),
    reverses_id            bigint        REFERENCES programme_company_credits (id),
    spend_minor            bigint        NOT NULL,
    rate                   numeric(7, 4) NOT NULL CHECK (rate > 0),
    points                 bigint        NOT NULL,
    occurred_at            timestamptz   NOT NULL,
    CHECK ((reverses_id IS NULL AND spend_minor >= 0 AND points > 0)
        OR (reverses_id IS NOT NULL AND spend_minor <= 0 AND points < 0))
);
CREATE INDEX programme_company_credits_company ON programme_company_credits (company_id, occurred_at);

-- +goose Down
DROP TABLE programme_company_credits;
DROP TABLE programme_corporate_partners;
DROP TABLE programme_company_employees;
DROP TABLE programme_companies;
DROP TABLE programme_company_levels;
DROP TABLE programme_expiry_notices;
DROP TABLE programme_tier_changes;
DROP TABLE programme_tier_grants;
DROP TABLE programme_member_tiers;
DROP TABLE programme_qualifying_credits;
DROP TABLE programme_tier_thresholds;
DROP TABLE programme_tiers;
DROP TABLE programme_policy;
