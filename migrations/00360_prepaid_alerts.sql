-- +goose Up
-- One row per prepaid partner whose balance is below its contract's alert
-- threshold and who has been told (webhook prepaid.low_balance). The row is
-- deleted when the balance is back at or above the threshold, so the next
-- crossing alerts again: one alert per crossing, however often the job runs.
CREATE TABLE prepaid_alerts (
    partner_id       bigint      PRIMARY KEY REFERENCES prepaid_accounts (partner_id),
    balance_minor    bigint      NOT NULL,
    threshold_minor  bigint      NOT NULL CHECK (threshold_minor > 0),
    currency         text        NOT NULL,
    alerted_at       timestamptz NOT NULL
);

-- +goose Down
DROP TABLE prepaid_alerts;
