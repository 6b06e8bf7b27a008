-- +goose Up
-- The shared member base (package members). Personal data lives only in the
-- members row (profile columns) and in member_identifiers; erasure clears both
-- and keeps the row, its card numbers and every ledger amount.
CREATE TABLE members (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status               text        NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'suspended', 'closed', 'merged')),
    -- Why and by whom the status last changed (suspension, closure, merge).
    status_reason        text        CHECK (char_length(status_reason) <= 500),
    status_actor         text        CHECK (char_length(status_actor) <= 200),
    given_name           text        CHECK (char_length(given_name) BETWEEN 1 AND 100),
    family_name          text        CHECK (char_length(family_name) BETWEEN 1 AND 100),
    -- Contact details, normalised by the service; the unique lookup keys are
    -- in member_identifiers (an email here is not necessarily an identifier).
    email                text        CHECK (email = lower(email) AND email LIKE '_%@_%.__%'),
    phone                text        CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    birth_date           date        CHECK (birth_date >= DATE '1900-01-01'),
    locale               text        NOT NULL DEFAULT 'en'
                         CHECK (locale ~ '^[a-z]{2,3}(-[A-Z]{2})?$'),
    -- Current marketing consent; consent_events holds the history.
    marketing_consent    boolean     NOT NULL DEFAULT false,
    marketing_consent_at timestamptz,
    -- Partner through which the member enrolled; NULL = the operator. No FK:
    -- partners belong to another package and are migrated later.
    source_partner_id    bigint      CHECK (source_partner_id > 0),
    merged_into_id       bigint      REFERENCES members (id),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    closed_at            timestamptz,
    merged_at            timestamptz,
    erased_at            timestamptz,
    CHECK (merged_into_id IS DISTINCT FROM id),
    CHECK ((status = 'merged') = (merged_into_id IS NOT NULL)),
    CHECK ((status = 'merged') = (merged_at IS NOT NULL)),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK (marketing_consent_at IS NOT NULL OR NOT marketing_consent),
    -- Only an account that no longer transacts can be erased, and an erased
    -- row holds no personal data and no marketing consent.
    CHECK (erased_at IS NULL OR (status IN ('closed', 'merged')
        AND given_name IS NULL AND family_name IS NULL AND email IS NULL
        AND phone IS NULL AND birth_date IS NULL AND NOT marketing_consent))
);
-- Console search by name prefix (case-insensitive); text_pattern_ops lets
-- LIKE 'abc%' use the index whatever the collation.
CREATE INDEX members_family_name_prefix ON members (lower(family_name) text_pattern_ops);
CREATE INDEX members_given_name_prefix ON members (lower(given_name) text_pattern_ops);
-- Following merges backwards (who was merged into X) for export and erasure.
CREATE INDEX members_merged_into ON members (merged_into_id) WHERE merged_into_id IS NOT NULL;

-- Identifiers by which partners and the console find a member. A value is
-- unique per type (partner references per partner: two airlines may both
-- issue "AB123"). NULLS NOT DISTINCT makes (type, NULL, value) collide for the
-- types without a partner.
CREATE TABLE member_identifiers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   bigint      NOT NULL REFERENCES members (id),
    type        text        NOT NULL CHECK (type IN ('card', 'email', 'phone', 'partner_ref')),
    value       text        NOT NULL CHECK (char_length(value) BETWEEN 1 AND 254),
    -- Issuing partner of a partner_ref; no FK (partners is another package).
    partner_id  bigint      CHECK (partner_id > 0),
    -- The card issued at enrolment; cards moved in by a merge are secondary.
    is_primary  boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    CHECK ((type = 'partner_ref') = (partner_id IS NOT NULL)),
    CHECK (NOT is_primary OR type = 'card'),
    CHECK (type <> 'card' OR value ~ '^7301[0-9]{12}$'),
    CHECK (type <> 'email' OR (value = lower(value) AND value LIKE '_%@_%.__%')),
    CHECK (type <> 'phone' OR value ~ '^\+[1-9][0-9]{6,14}$'),
    -- Serves lookup by identifier (type, value) and the uniqueness rule.
    CONSTRAINT member_identifiers_unique UNIQUE NULLS NOT DISTINCT (type, partner_id, value)
);
-- Every member has at most one primary card (the service gives each exactly one).
CREATE UNIQUE INDEX member_identifiers_primary_card ON member_identifiers (member_id) WHERE is_primary;
-- Listing a member's identifiers, moving them on merge, deleting them on erasure.
CREATE INDEX member_identifiers_member ON member_identifiers (member_id);

-- +goose Down
DROP TABLE member_identifiers;
DROP TABLE members;
