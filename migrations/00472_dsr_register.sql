-- +goose Up
-- The register of data-subject requests (package members) records every
-- export, erasure, consent change and access request with its due date
-- (30 days after the request), its status and who handled it.
ALTER TABLE data_subject_requests DROP CONSTRAINT data_subject_requests_kind_check;
ALTER TABLE data_subject_requests
    ADD CONSTRAINT data_subject_requests_kind_check CHECK (kind IN ('export', 'erasure', 'consent', 'access')),
    ADD COLUMN due_at     timestamptz,
    ADD COLUMN status     text NOT NULL DEFAULT 'done' CHECK (status IN ('open', 'done', 'refused', 'cancelled')),
    ADD COLUMN handled_by text NOT NULL DEFAULT '' CHECK (char_length(handled_by) <= 200),
    ADD COLUMN note       text NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    -- A scheduled erasure (after consent was withdrawn) runs from this time on.
    ADD COLUMN erase_at   timestamptz,
    ADD COLUMN updated_at timestamptz;
UPDATE data_subject_requests SET due_at = requested_at + interval '30 days', handled_by = actor, updated_at = coalesce(completed_at, requested_at);
ALTER TABLE data_subject_requests
    ALTER COLUMN due_at SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL,
    -- 'refused' is still open: the last attempt was refused (note says why).
    ADD CONSTRAINT data_subject_requests_completed CHECK ((status IN ('done', 'cancelled')) = (completed_at IS NOT NULL));
-- Erasure happens once per member: a cancelled schedule does not count.
DROP INDEX data_subject_requests_one_erasure;
CREATE UNIQUE INDEX data_subject_requests_one_erasure ON data_subject_requests (member_id)
    WHERE kind = 'erasure' AND status <> 'cancelled';
-- What is due: open requests by due date; the erasure job by erase_at.
CREATE INDEX data_subject_requests_due ON data_subject_requests (due_at) WHERE status IN ('open', 'refused');
CREATE INDEX data_subject_requests_erase ON data_subject_requests (erase_at) WHERE kind = 'erasure' AND status IN ('open', 'refused');

-- The operator's erasure schedule after consent is withdrawn: erase this
-- many days later (NULL = never).
ALTER TABLE programme_policy
    ADD COLUMN erasure_after_days integer CHECK (erasure_after_days BETWEEN 0 AND 30);

-- +goose Down
ALTER TABLE programme_policy DROP COLUMN erasure_after_days;
DROP INDEX data_subject_requests_erase;
DROP INDEX data_subject_requests_due;
DROP INDEX data_subject_requests_one_erasure;
DELETE FROM data_subject_requests WHERE kind IN ('consent', 'access') OR status = 'cancelled';
CREATE UNIQUE INDEX data_subject_requests_one_erasure ON data_subject_requests (member_id) WHERE kind = 'erasure';
ALTER TABLE data_subject_requests DROP CONSTRAINT data_subject_requests_completed,
    DROP COLUMN updated_at, DROP COLUMN erase_at, DROP COLUMN note, DROP COLUMN handled_by,
    DROP COLUMN status, DROP COLUMN due_at, DROP CONSTRAINT data_subject_requests_kind_check,
    ADD CONSTRAINT data_subject_requests_kind_check CHECK (kind IN ('export', 'erasure'));
