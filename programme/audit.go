package programme

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// AuditQueries are the programme's checks for hub audit (ledger.Audit runs
// them after the ledger's). Qualifying credits and running window totals
// name their member and ledger transaction without foreign keys (migration
// 00220: a key check locks the referenced member row on every earn); the
// credit is written in the ledger transaction's database transaction, members
// are never deleted and transactions are append-only, so a dangling reference
// can only come from a bug or a hand edit, and this finds it.
func AuditQueries() []ledger.AuditQuery {
	return []ledger.AuditQuery{{Name: "qualifying credits refer to existing rows", Check: auditReferences}}
}

// auditReferences reports the credits whose ledger transaction does not
// exist and the credits and running totals whose member does not.
func auditReferences(ctx context.Context, db *gorm.DB) ([]string, error) {
	lines, err := auditCreditTransactions(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, t := range []struct{ table, line string }{
		{"programme_qualifying_credits", "qualifying credits name member %d: member %[1]d does not exist"},
		{"programme_member_windows", "running total of member %d: the member does not exist"},
	} {
		var after int64
		for {
			var ids []int64
			if err := db.WithContext(ctx).Raw(`SELECT DISTINCT member_id FROM `+t.table+`
				WHERE member_id > ? ORDER BY member_id LIMIT ?`, after, auditChunk).Scan(&ids).Error; err != nil {
				return nil, err
			}
			if len(ids) == 0 {
				break
			}
			after = ids[len(ids)-1]
			missing, err := members.Missing(ctx, db, ids)
			if err != nil {
				return nil, err
			}
			for _, id := range missing {
				lines = append(lines, fmt.Sprintf(t.line, id))
			}
		}
	}
	return lines, nil
}

// auditChunk is how many credits auditCreditTransactions checks per round
// trip.
const auditChunk = 10000

// auditCreditTransactions reports the qualifying credits whose ledger
// transaction does not exist, asking the ledger a chunk of credits at a
// time.
func auditCreditTransactions(ctx context.Context, db *gorm.DB) ([]string, error) {
	var lines []string
	var after int64
	for {
		var credits []struct {
			ID            int64
			TransactionID int64
		}
		if err := db.WithContext(ctx).Raw(`SELECT id, transaction_id FROM programme_qualifying_credits
			WHERE id > ? ORDER BY id LIMIT ?`, after, auditChunk).Scan(&credits).Error; err != nil {
			return nil, err
		}
		if len(credits) == 0 {
			return lines, nil
		}
		after = credits[len(credits)-1].ID
		ids := make([]int64, len(credits))
		for i, c := range credits {
			ids[i] = c.TransactionID
		}
		missing, err := ledger.MissingTransactions(ctx, db, ids)
		if err != nil {
			return nil, err
		}
		gone := make(map[int64]bool, len(missing))
		for _, id := range missing {
			gone[id] = true
		}
		for _, c := range credits {
			if gone[c.TransactionID] {
				lines = append(lines, fmt.Sprintf("qualifying credit %d: ledger transaction %d does not exist", c.ID, c.TransactionID))
			}
		}
	}
}
