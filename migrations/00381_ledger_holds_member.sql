-- +goose Up
-- A member's holds, newest first, for the console's member page
-- (ledger.Service.MemberHolds); only active holds had an index (by account).
CREATE INDEX ledger_holds_member ON ledger_holds (member_id, id);

-- +goose Down
DROP INDEX ledger_holds_member;
