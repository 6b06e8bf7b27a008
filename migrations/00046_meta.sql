-- +goose Up
-- Operational facts about this database that belong to no domain, e.g. which
-- version of the demo coalition `hub seed` completed.
CREATE TABLE hub_meta (
    key        text        PRIMARY KEY CHECK (key ~ '^[a-z0-9_.:-]{1,100}$'),
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE hub_meta;
