-- +goose Up
-- Room on each page for the rows updated on every posting, so the
-- update is HOT (heap-only: no new index entries, and the old version is
-- pruned on the page). A member account's balance changes on every earn and
-- burn, and a member's month of running qualifying totals on every earn; with
-- full pages over half of those updates had to move the row to another page
-- and add an entry to every index of the table, and lookups by
-- (kind, owner_id) then stepped over the dead versions (seen in the bench:
-- 80 microseconds per account lookup in a batch). Pages written from now on
-- keep the space; an existing database gets it for old rows when the operator
-- rewrites the table (VACUUM FULL or pg_repack), which is not done here
-- because it locks the table.
ALTER TABLE ledger_accounts SET (fillfactor = 70);
ALTER TABLE programme_member_windows SET (fillfactor = 80);

-- +goose Down
ALTER TABLE programme_member_windows RESET (fillfactor);
ALTER TABLE ledger_accounts RESET (fillfactor);
