-- +goose Up
-- done_at: the relay saw the enqueued task finish (completed or archived) in
-- asynq. Rows sent but not done are checked against Redis periodically and
-- enqueued again (same task id) when Redis lost them, e.g. after a restart
-- without persistence.
ALTER TABLE outbox ADD COLUMN done_at timestamptz;
ALTER TABLE outbox ADD CONSTRAINT outbox_done_after_sent CHECK (done_at IS NULL OR sent_at IS NOT NULL);
-- The verifier scans only work in flight.
CREATE INDEX outbox_in_flight ON outbox (id) WHERE sent_at IS NOT NULL AND done_at IS NULL;

-- +goose Down
DROP INDEX outbox_in_flight;
ALTER TABLE outbox DROP CONSTRAINT outbox_done_after_sent;
ALTER TABLE outbox DROP COLUMN done_at;
