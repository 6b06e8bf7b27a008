-- +goose Up
-- Fraud and abuse rules (package abuse): each partner's velocity limits and
-- action caps, the counters that enforce them, and the flags held for review.

-- abuse_rules: one row per partner that configured rules; 0 = no limit.
-- Windows are fixed: an hour is a UTC clock hour, a day a UTC calendar day.
CREATE TABLE abuse_rules (
    partner_id             bigint      PRIMARY KEY REFERENCES partners (id),
    member_earns_per_hour  integer     NOT NULL DEFAULT 0 CHECK (member_earns_per_hour >= 0),
    member_points_per_day  bigint      NOT NULL DEFAULT 0 CHECK (member_points_per_day >= 0),
    member_burns_per_hour  integer     NOT NULL DEFAULT 0 CHECK (member_burns_per_hour >= 0),
    card_earns_per_hour    integer     NOT NULL DEFAULT 0 CHECK (card_earns_per_hour >= 0),
    card_points_per_day    bigint      NOT NULL DEFAULT 0 CHECK (card_points_per_day >= 0),
    card_burns_per_hour    integer     NOT NULL DEFAULT 0 CHECK (card_burns_per_hour >= 0),
    partner_earns_per_hour integer     NOT NULL DEFAULT 0 CHECK (partner_earns_per_hour >= 0),
    partner_points_per_day bigint      NOT NULL DEFAULT 0 CHECK (partner_points_per_day >= 0),
    partner_burns_per_hour integer     NOT NULL DEFAULT 0 CHECK (partner_burns_per_hour >= 0),
    -- Earn-refund-keep: a member whose reversed points exceed this share of
    -- the points earned at the partner over 90 days (0 = off), once at least
    -- refund_min_points were earned.
    refund_share           numeric(5, 4) NOT NULL DEFAULT 0 CHECK (refund_share >= 0 AND refund_share <= 1),
    refund_min_points      bigint      NOT NULL DEFAULT 0 CHECK (refund_min_points >= 0),
    updated_at             timestamptz NOT NULL,
    updated_by             text        NOT NULL CHECK (char_length(updated_by) BETWEEN 1 AND 200)
);

-- abuse_action_caps: a non-purchase action (an earn's event_code) rewarded
-- at most max_count times per member and period.
CREATE TABLE abuse_action_caps (
    partner_id bigint  NOT NULL REFERENCES partners (id),
    event_code text    NOT NULL CHECK (char_length(event_code) BETWEEN 1 AND 64),
    max_count  integer NOT NULL CHECK (max_count > 0),
    period     text    NOT NULL CHECK (period IN ('day', 'week', 'month', 'year')),
    PRIMARY KEY (partner_id, event_code)
);

-- The points API keeps each partner's rules in memory while its
-- configuration stamp is current (migration 00191).
CREATE TRIGGER abuse_rules_config AFTER INSERT OR UPDATE OR DELETE ON abuse_rules
    FOR EACH ROW EXECUTE FUNCTION partner_config_bump();
CREATE TRIGGER abuse_action_caps_config AFTER INSERT OR UPDATE OR DELETE ON abuse_action_caps
    FOR EACH ROW EXECUTE FUNCTION partner_config_bump();

-- abuse_counters: what each subject did in one window, incremented by an
-- INSERT ... ON CONFLICT DO UPDATE ... RETURNING in the posting transaction:
-- the check and the increment are one step under the row's lock, so
-- concurrent requests are counted one after another.
CREATE TABLE abuse_counters (
    partner_id   bigint      NOT NULL,
    subject      text        NOT NULL,
    window_start timestamptz NOT NULL,
    count        bigint      NOT NULL,
    points       bigint      NOT NULL,
    PRIMARY KEY (partner_id, subject, window_start)
);
-- Pruning old windows.
CREATE INDEX abuse_counters_window ON abuse_counters (window_start);

-- abuse_flags: an item held for review. An earn flag names its transaction,
-- whose lots stay pending until the flag is approved (they mature as the
-- contract said) or rejected (the earn is reversed). A member flag (the
-- earn-refund-keep pattern) names no transaction: while it is open, the
-- member's new earns at the partner are held.
CREATE TABLE abuse_flags (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id     bigint      NOT NULL REFERENCES partners (id),
    member_id      bigint      NOT NULL,
    transaction_id bigint,
    kind           text        NOT NULL CHECK (kind IN ('earn', 'member')),
    rule           text        NOT NULL CHECK (char_length(rule) BETWEEN 1 AND 64),
    detail         text        NOT NULL DEFAULT '' CHECK (char_length(detail) <= 500),
    points         bigint      NOT NULL DEFAULT 0,
    -- Where the held lots go on approval: the contract's pending end and the expiry.
    available_at   timestamptz,
    expires_at     timestamptz,
    status         text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'rejected')),
    created_at     timestamptz NOT NULL,
    reviewed_at    timestamptz,
    reviewed_by    text        NOT NULL DEFAULT '' CHECK (char_length(reviewed_by) <= 200),
    note           text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    CONSTRAINT abuse_flags_kind CHECK ((kind = 'earn') = (transaction_id IS NOT NULL)),
    CONSTRAINT abuse_flags_reviewed CHECK ((status = 'open') = (reviewed_at IS NULL))
);
CREATE UNIQUE INDEX abuse_flags_transaction ON abuse_flags (transaction_id) WHERE transaction_id IS NOT NULL;
-- One open member flag per partner and member.
CREATE UNIQUE INDEX abuse_flags_open_member ON abuse_flags (partner_id, member_id) WHERE kind = 'member' AND status = 'open';
CREATE INDEX abuse_flags_partner ON abuse_flags (partner_id, id);
CREATE INDEX abuse_flags_open ON abuse_flags (id) WHERE status = 'open';

-- +goose Down
DROP TABLE abuse_flags;
DROP TABLE abuse_counters;
DROP TRIGGER abuse_action_caps_config ON abuse_action_caps;
DROP TRIGGER abuse_rules_config ON abuse_rules;
DROP TABLE abuse_action_caps;
DROP TABLE abuse_rules;
