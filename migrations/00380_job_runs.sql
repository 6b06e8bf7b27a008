-- +goose Up
-- A job run is one piece of long work a person started (closing a settlement
-- period): its state, its progress (done of total, with the phase it is in),
-- its result or error, and who started it (internal/jobs). The work itself
-- runs as an asynq task queued through the outbox in the transaction that
-- inserts the row. At most one run per (kind, key) is queued or running at a
-- time: starting it again while it runs answers the run in progress.
CREATE TABLE job_runs (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (length(kind) BETWEEN 1 AND 100),
    key         text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    state       text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    done        bigint      NOT NULL DEFAULT 0 CHECK (done >= 0),
    total       bigint      NOT NULL DEFAULT 0 CHECK (total >= 0),
    phase       text        NOT NULL DEFAULT '',
    result      jsonb,
    error       text,
    attempts    int         NOT NULL DEFAULT 0,
    started_by  text        NOT NULL CHECK (length(started_by) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL,
    CHECK ((state IN ('succeeded', 'failed')) = (finished_at IS NOT NULL))
);
CREATE UNIQUE INDEX job_runs_active ON job_runs (kind, key) WHERE state IN ('queued', 'running');
CREATE INDEX job_runs_kind_key ON job_runs (kind, key, id DESC);

-- +goose Down
DROP TABLE job_runs;
