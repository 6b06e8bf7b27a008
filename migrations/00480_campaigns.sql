-- +goose Up
-- Segments and campaigns (package campaigns): a segment is a named rule over
-- the member base, kept as its typed JSON definition and evaluated when it is
-- counted or used, never stored as a member list. A campaign grants points or
-- a tier to a segment or to an uploaded list (goodwill grants), as a job run.
CREATE TABLE segments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    definition  jsonb       NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_by  text        NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE campaigns (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    -- points: operator-funded points; tier: a tier grant.
    kind          text        NOT NULL CHECK (kind IN ('points', 'tier')),
    -- segment: every active member the segment selects when the campaign
    -- runs; list: the members of an uploaded file (campaign_list_members).
    audience      text        NOT NULL CHECK (audience IN ('segment', 'list')),
    segment_id    bigint      REFERENCES segments (id),
    -- Points per member of a segment campaign; a list gives each row's own.
    points        bigint      NOT NULL DEFAULT 0 CHECK (points >= 0 AND points <= 10000000),
    tier_code     text        CHECK (tier_code ~ '^[a-z][a-z0-9_]{0,31}$'),
    tier_ends_at  timestamptz,
    -- The cap on the points the campaign may grant, over all of its runs;
    -- spent_points grows in the transaction of each grant.
    budget_points bigint      NOT NULL DEFAULT 0 CHECK (budget_points >= 0),
    spent_points  bigint      NOT NULL DEFAULT 0 CHECK (spent_points >= 0 AND spent_points <= budget_points),
    reason        text        NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    created_by    text        NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL,
    CHECK ((audience = 'segment') = (segment_id IS NOT NULL)),
    CHECK ((kind = 'tier') = (tier_code IS NOT NULL)),
    CHECK (kind <> 'points' OR budget_points > 0),
    CHECK (kind <> 'points' OR audience = 'list' OR points > 0)
);

-- The members of a list campaign, one row per line of the uploaded file.
CREATE TABLE campaign_list_members (
    campaign_id bigint  NOT NULL REFERENCES campaigns (id),
    member_id   bigint  NOT NULL CHECK (member_id > 0),
    line        integer NOT NULL CHECK (line > 0),
    points      bigint  NOT NULL CHECK (points >= 0 AND points <= 10000000),
    reason      text    NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    PRIMARY KEY (campaign_id, member_id)
);

-- One grant per campaign and member, written in the transaction of the
-- ledger posting (or tier grant) it records: running a campaign again grants
-- nobody twice.
CREATE TABLE campaign_grants (
    campaign_id    bigint      NOT NULL REFERENCES campaigns (id),
    member_id      bigint      NOT NULL CHECK (member_id > 0),
    points         bigint      NOT NULL CHECK (points >= 0),
    -- The ledger transaction of a points grant (no FK: the ledger's table).
    transaction_id bigint,
    granted_at     timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, member_id)
);

-- Idempotency-Key of a request that started a campaign run, per staff scope.
CREATE TABLE campaign_starts (
    scope       text        NOT NULL CHECK (length(scope) BETWEEN 1 AND 100),
    key         text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    campaign_id bigint      NOT NULL REFERENCES campaigns (id),
    run_id      bigint      NOT NULL REFERENCES job_runs (id),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

-- +goose Down
DROP TABLE campaign_starts;
DROP TABLE campaign_grants;
DROP TABLE campaign_list_members;
DROP TABLE campaigns;
DROP TABLE segments;
