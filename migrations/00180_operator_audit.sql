-- +goose Up
-- The audit log of operator actions taken in the console (web/ui_console.go):
-- who did what to which object, when, and whether it succeeded. Append-only:
-- the database refuses UPDATE and DELETE, so a console user with SQL-level
-- mistakes in code cannot rewrite history.
CREATE TABLE operator_audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    staff_id   bigint      NOT NULL REFERENCES staff_users (id),
    actor      text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    role       text        NOT NULL CHECK (role IN ('admin', 'finance', 'support')),
    action     text        NOT NULL CHECK (action ~ '^[a-z][a-z_.]{0,63}$'),
    target     text        NOT NULL DEFAULT '' CHECK (length(target) <= 200),
    detail     text        NOT NULL DEFAULT '' CHECK (length(detail) <= 1000),
    outcome    text        NOT NULL CHECK (outcome IN ('ok', 'failed')),
    request_id text        NOT NULL DEFAULT '' CHECK (length(request_id) <= 64)
);
CREATE INDEX operator_audit_log_staff ON operator_audit_log (staff_id, id);

-- +goose StatementBegin
CREATE FUNCTION operator_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operator_audit_log is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER operator_audit_log_append_only BEFORE UPDATE OR DELETE ON operator_audit_log
    FOR EACH ROW EXECUTE FUNCTION operator_audit_log_append_only();

-- +goose Down
DROP TABLE operator_audit_log;
DROP FUNCTION operator_audit_log_append_only();
