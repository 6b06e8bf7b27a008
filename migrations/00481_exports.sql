-- +goose Up
-- Large exports (package exports): a job run writes its CSV file here in
-- chunks, so any `hub serve` process can stream it for download and neither
-- the writer nor the reader holds the whole file in memory.
CREATE TABLE export_files (
    run_id       bigint      PRIMARY KEY REFERENCES job_runs (id),
    kind         text        NOT NULL CHECK (kind IN ('members', 'transactions')),
    filename     text        NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    rows         bigint      NOT NULL DEFAULT 0 CHECK (rows >= 0),
    bytes        bigint      NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    -- Set once the last chunk is written: only a complete file is served.
    completed_at timestamptz,
    created_at   timestamptz NOT NULL
);

CREATE TABLE export_chunks (
    run_id bigint  NOT NULL REFERENCES export_files (run_id) ON DELETE CASCADE,
    seq    integer NOT NULL CHECK (seq >= 0),
    data   bytea   NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- +goose Down
DROP TABLE export_chunks;
DROP TABLE export_files;
