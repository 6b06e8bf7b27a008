-- +goose Up
-- A partner's market (ISO 3166-1 alpha-2 country, '' = none given) and
-- category within its sector ('' = the whole sector, e.g. 'supermarket'):
-- two active partners of one sector and category in one market overlap, and
-- creating such a partner or publishing its contract needs an explicit
-- override (package partners).
ALTER TABLE partners
    ADD COLUMN market   text NOT NULL DEFAULT '' CHECK (market = '' OR market ~ '^[A-Z]{2}$'),
    ADD COLUMN category text NOT NULL DEFAULT '' CHECK (char_length(category) <= 64);

-- +goose Down
ALTER TABLE partners DROP COLUMN category, DROP COLUMN market;
