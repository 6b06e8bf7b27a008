-- +goose Up
-- Outbound mail (internal/mail). A row is queued in the transaction of the
-- change that causes the mail, with an outbox row that relays its send task;
-- the task claims the row for one attempt at a time (sending_until), sends it
-- over SMTP under the row's Message-ID and marks it sent, so a retried or
-- duplicated task never sends a sent row again. data holds what the template
-- needs (a link's secret among it) and is emptied once the mail is sent.
CREATE TABLE outbound_mail (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id     text        NOT NULL UNIQUE CHECK (char_length(message_id) BETWEEN 3 AND 200),
    template       text        NOT NULL CHECK (template ~ '^[a-z][a-z0-9_]{0,39}$'),
    locale         text        NOT NULL CHECK (locale ~ '^[a-z]{2,3}(-[A-Z]{2})?$'),
    recipient      text        NOT NULL CHECK (char_length(recipient) BETWEEN 3 AND 254),
    recipient_name text        NOT NULL DEFAULT '' CHECK (char_length(recipient_name) <= 200),
    data           jsonb       NOT NULL,
    created_at     timestamptz NOT NULL,
    sending_until  timestamptz,
    attempts       integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error     text        CHECK (char_length(last_error) <= 1000),
    sent_at        timestamptz,
    failed_at      timestamptz,
    CHECK (sent_at IS NULL OR failed_at IS NULL)
);
-- The console's and the tests' view of what is waiting.
CREATE INDEX outbound_mail_unsent ON outbound_mail (created_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- +goose Down
DROP TABLE outbound_mail;
