-- +goose Up
-- Running totals in two lanes. A batch earn holds its members'
-- account rows from the lock to COMMIT, and with its programme statement
-- inside that span, batches that share members queued behind each other (about
-- half of the batch backends waited on a member lock in the bench). The batch
-- now writes its credits and totals right after its idempotency claims, before
-- the member lock, into lane 1, which only batches write; every other path
-- (single earns, reversals, the daily repair) keeps lane 0. A single earn
-- takes the member's account row, then its lane-0 total; a batch takes lane-1
-- totals, then account rows: they share no total, so the opposite orders
-- cannot deadlock. Readers sum the lanes; the daily repair folds them back
-- into lane 0.
ALTER TABLE programme_member_windows ADD COLUMN lane smallint NOT NULL DEFAULT 0 CHECK (lane IN (0, 1));
ALTER TABLE programme_member_windows DROP CONSTRAINT programme_member_windows_pkey;
ALTER TABLE programme_member_windows ADD PRIMARY KEY (member_id, month, partner_id, lane);

-- +goose Down
-- +goose StatementBegin
WITH folded AS (
    DELETE FROM programme_member_windows WHERE lane = 1
    RETURNING member_id, month, partner_id, qualifying_points, spend_minor, nights, stays, flights
)
INSERT INTO programme_member_windows AS w (member_id, month, partner_id, lane, qualifying_points, spend_minor,
    nights, stays, flights)
SELECT member_id, month, partner_id, 0, qualifying_points, spend_minor, nights, stays, flights FROM folded
ON CONFLICT (member_id, month, partner_id, lane) DO UPDATE SET
    qualifying_points = w.qualifying_points + EXCLUDED.qualifying_points,
    spend_minor = w.spend_minor + EXCLUDED.spend_minor, nights = w.nights + EXCLUDED.nights,
    stays = w.stays + EXCLUDED.stays, flights = w.flights + EXCLUDED.flights;
-- +goose StatementEnd
ALTER TABLE programme_member_windows DROP CONSTRAINT programme_member_windows_pkey;
ALTER TABLE programme_member_windows ADD PRIMARY KEY (member_id, month, partner_id);
ALTER TABLE programme_member_windows DROP COLUMN lane;
