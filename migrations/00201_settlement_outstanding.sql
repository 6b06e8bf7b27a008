-- +goose Up
-- The outstanding liability at the end of each closed period, per issuer and
-- issue price (the rows the period report values). The next close starts from
-- them and adds its own period's lot movements, instead of re-reading every
-- lot and consumption ever settled (a cost that grew with the ledger's age).
-- Written once at close, never updated. Periods closed before this migration
-- have no rows; the close after them recomputes from the whole history once.
CREATE TABLE settlement_period_outstanding (
    period_id         bigint        NOT NULL REFERENCES settlement_periods (id),
    issuer_partner_id bigint        NOT NULL CHECK (issuer_partner_id >= 0), -- 0: the operator
    issue_price       numeric(20,8), -- NULL only for the operator's points
    points            bigint        NOT NULL CHECK (points <> 0),
    CHECK ((issuer_partner_id = 0) = (issue_price IS NULL))
);
CREATE INDEX settlement_period_outstanding_period ON settlement_period_outstanding (period_id);

-- +goose Down
DROP TABLE settlement_period_outstanding;
