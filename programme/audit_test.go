package programme_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/programme"
)

// Qualifying credits and running totals name their member and transaction
// without foreign keys (migration 00220); hub audit finds a dangling one.
func TestAuditFindsDanglingProgrammeReferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	p := e.partner("Audit Air")
	m := e.member("audit@example.com", "1980-01-01")
	e.earnAt(p, m.ID, 120, "a1")
	e.audit()

	for _, q := range []string{
		`INSERT INTO programme_qualifying_credits (member_id, transaction_id, partner_id, occurred_at, qualifying_points,
		   spend_minor, nights, stays, flights, posted_at)
		 SELECT 987654321, transaction_id + 1000000, partner_id, occurred_at, 1, 0, 0, 0, 0, posted_at
		 FROM programme_qualifying_credits LIMIT 1`,
		`INSERT INTO programme_member_windows (member_id, month, partner_id, qualifying_points, spend_minor, nights, stays, flights)
		 VALUES (987654321, '2026-03-01', 1, 1, 0, 0, 0, 0)`,
	} {
		if err := e.db.Exec(q).Error; err != nil {
			t.Fatalf("corrupt: %v", err)
		}
	}
	rep, err := ledger.Audit(context.Background(), e.db, programme.AuditQueries()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Name != "qualifying credits refer to existing rows" {
			continue
		}
		all := strings.Join(c.Details, "\n")
		if c.OK || c.Violations != 3 || !strings.Contains(all, "ledger transaction") ||
			!strings.Contains(all, "member 987654321 does not exist") || !strings.Contains(all, "running total of member 987654321") {
			t.Fatalf("check = %+v, want the credit's transaction, its member and the running total's member reported", c)
		}
		return
	}
	t.Fatalf("no programme check in %+v", rep.Checks)
}
