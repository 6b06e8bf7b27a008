-- +goose Up
-- Running totals of qualifying credits: one row per member, UTC
-- calendar month of occurred_at and partner, kept in the same statement that
-- inserts each qualifying credit (and decremented by reversals, which carry
-- the original earn's occurred_at and partner). The earn reads at most 13
-- months of a member's rows instead of summing every credit of the window;
-- programme_qualifying_credits stays the source of truth and the daily job
-- repairs any drift and prunes months no window can reach.
CREATE TABLE programme_member_windows (
    member_id         bigint NOT NULL REFERENCES members (id),
    month             date   NOT NULL CHECK (extract(day FROM month) = 1),
    partner_id        bigint NOT NULL CHECK (partner_id > 0),
    qualifying_points bigint NOT NULL,
    spend_minor       bigint NOT NULL,
    nights            bigint NOT NULL,
    stays             bigint NOT NULL,
    flights           bigint NOT NULL,
    PRIMARY KEY (member_id, month, partner_id)
);

INSERT INTO programme_member_windows (member_id, month, partner_id, qualifying_points, spend_minor, nights, stays, flights)
SELECT member_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, partner_id,
       sum(qualifying_points), sum(spend_minor), sum(nights), sum(stays), sum(flights)
FROM programme_qualifying_credits
WHERE occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '14 months'
GROUP BY 1, 2, 3;

-- +goose Down
DROP TABLE programme_member_windows;
