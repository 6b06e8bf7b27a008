package programme

import "github.com/coalitionhub/hub/ledger"

// AuditQueries are the programme's checks for hub audit (ledger.Audit runs
// them after the ledger's). Qualifying credits and running window totals
// name their member and ledger transaction without foreign keys (migration
// 00220: a key check locks the referenced member row on every earn); the
// credit is written in the ledger transaction's database transaction, members
// are never deleted and transactions are append-only, so a dangling reference
// can only come from a bug or a hand edit, and this finds it.
func AuditQueries() []ledger.AuditQuery {
	return []ledger.AuditQuery{{Name: "qualifying credits refer to existing rows", Query: `
		SELECT format('qualifying credit %s: ledger transaction %s does not exist', c.id, c.transaction_id)
		FROM programme_qualifying_credits c
		WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = c.transaction_id)
		UNION ALL
		SELECT format('qualifying credit %s: member %s does not exist', c.id, c.member_id)
		FROM programme_qualifying_credits c
		WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = c.member_id)
		UNION ALL
		SELECT format('running total of member %s, %s, partner %s: the member does not exist', w.member_id, w.month, w.partner_id)
		FROM programme_member_windows w
		WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = w.member_id)`}}
}
