-- +goose Up
-- The transactional outbox: rows written in the same transaction as a domain
-- change and relayed to asynq after commit by the worker (internal/outbox).
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_type    text        NOT NULL CHECK (task_type <> ''),
    queue        text        NOT NULL DEFAULT 'default' CHECK (queue <> ''),
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- process_at lets a row ask for delayed processing (e.g. a retry schedule).
    process_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error   text
);
-- The relay scans only unsent rows, in id order: a partial index keeps that
-- scan proportional to the backlog, not to history.
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE outbox;
