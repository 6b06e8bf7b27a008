-- +goose Up
-- Charities join the coalition as partners of their own sector: a donation
-- from the catalog is a redemption at the charity.
ALTER TABLE partners DROP CONSTRAINT partners_sector_check;
ALTER TABLE partners ADD CONSTRAINT partners_sector_check CHECK (sector IN
    ('airline','hotel','bank','restaurant','retail','fuel','telecom','charity'));

-- +goose Down
ALTER TABLE partners DROP CONSTRAINT partners_sector_check;
ALTER TABLE partners ADD CONSTRAINT partners_sector_check CHECK (sector IN
    ('airline','hotel','bank','restaurant','retail','fuel','telecom'));
