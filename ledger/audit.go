package ledger

import (
	"context"
	"fmt"
	"io"

	"gorm.io/gorm"
)

// AuditCheck is the outcome of one invariant check.
type AuditCheck struct {
	Name       string   `json:"name"`
	OK         bool     `json:"ok"`
	Violations int      `json:"violations"`
	Details    []string `json:"details,omitempty"`
}

// AuditReport is the outcome of Audit.
type AuditReport struct {
	Checks []AuditCheck `json:"checks"`
}

// OK reports whether every check passed.
func (r AuditReport) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Write prints one line per check and the details of failed checks.
func (r AuditReport) Write(w io.Writer) {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		status := "ok"
		if !c.OK {
			status = fmt.Sprintf("FAILED (%d violations)", c.Violations)
		}
		fmt.Fprintf(w, "%-*s  %s\n", width, c.Name, status)
		for _, d := range c.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
}

// AuditQuery is one invariant check: Query returns one text line per
// violation, so an empty result means the invariant holds. Other modules
// whose tables refer to the ledger contribute their own
// (programme.AuditQueries); their queries name only their own tables, and a
// check of their references into the ledger is a Check instead, which reads
// the ledger through its functions (MissingTransactions).
type AuditQuery struct {
	Name  string
	Query string
	// Check, when set, replaces Query: it returns the violation lines.
	Check func(ctx context.Context, db *gorm.DB) ([]string, error)
}

// auditQueries are the ledger's invariants.
var auditQueries = []AuditQuery{
	{Name: "transactions balance to zero", Query: `
		SELECT format('transaction %s: %s entries summing to %s', t.id, count(e.id), coalesce(sum(e.amount), 0))
		FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
		GROUP BY t.id HAVING count(e.id) < 2 OR coalesce(sum(e.amount), 0) <> 0 ORDER BY t.id`},
	{Name: "member balances equal their entries", Query: `
		SELECT format('member %s (account %s): balance %s, entries sum to %s', a.owner_id, a.id, a.balance, coalesce(s.total, 0))
		FROM ledger_accounts a LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s
		  ON s.account_id = a.id
		WHERE a.kind = 'member' AND a.balance <> coalesce(s.total, 0) ORDER BY a.id`},
	{Name: "lots agree with balances", Query: `
		SELECT format('member %s (account %s): balance %s, lots hold %s', a.owner_id, a.id, a.balance, coalesce(l.total, 0))
		FROM ledger_accounts a LEFT JOIN (SELECT account_id, sum(remaining) AS total FROM ledger_lots GROUP BY account_id) l
		  ON l.account_id = a.id
		WHERE (a.kind = 'member' AND coalesce(l.total, 0) <> greatest(a.balance, 0))
		   OR (a.kind <> 'member' AND l.total IS NOT NULL) ORDER BY a.id`},
	// Holds are covered by settled lots and the balance, except holds that a
	// clawback (a reversal of an earn, or a merge bringing debt: a debit the
	// member did not ask for) left without cover; those are older than it,
	// since no hold can be placed while held points are not covered.
	{Name: "holds within available points", Query: `
		SELECT format('member %s (account %s): held %s, active holds %s, settled lots %s, balance %s', a.owner_id, a.id, a.held,
		              coalesce(h.total, 0), coalesce(l.total, 0), a.balance)
		FROM ledger_accounts a
		LEFT JOIN (SELECT account_id, sum(points) AS total, max(created_at) AS newest FROM ledger_holds WHERE status = 'active'
		           GROUP BY account_id) h
		  ON h.account_id = a.id
		LEFT JOIN (SELECT account_id, sum(remaining) AS total FROM ledger_lots WHERE available_at <= now() GROUP BY account_id) l
		  ON l.account_id = a.id
		WHERE a.held <> coalesce(h.total, 0)
		   OR ((a.held > coalesce(l.total, 0) OR a.held > greatest(a.balance, 0)) AND NOT EXISTS (
		       SELECT 1 FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
		       WHERE e.account_id = a.id AND e.amount < 0 AND t.type IN ('reversal', 'merge') AND e.posted_at >= h.newest))
		ORDER BY a.id`},
	{Name: "no lot consumed beyond its amount", Query: `
		SELECT format('lot %s: amount %s, remaining %s, consumed %s', l.id, l.amount, l.remaining, coalesce(c.total, 0))
		FROM ledger_lots l LEFT JOIN (SELECT lot_id, sum(points) AS total FROM ledger_lot_consumptions GROUP BY lot_id) c
		  ON c.lot_id = l.id
		WHERE l.remaining < 0 OR l.remaining > l.amount OR l.amount - l.remaining <> coalesce(c.total, 0) ORDER BY l.id`},
	{Name: "consumptions name their lot's issuer", Query: `
		SELECT format('consumption %s of lot %s: issuer %s, lot issuer %s', c.id, c.lot_id,
		  coalesce(c.issuer_partner_id::text, 'operator'), coalesce(l.issuer_partner_id::text, 'operator'))
		FROM ledger_lot_consumptions c JOIN ledger_lots l ON l.id = c.lot_id
		WHERE c.issuer_partner_id IS DISTINCT FROM l.issuer_partner_id ORDER BY c.id`},
	{Name: "no idempotency key applied twice", Query: `
		SELECT format('key %s/%s: %s transactions and holds', scope, key, n) FROM (
		  SELECT scope, key, count(*) AS n FROM (
		    SELECT idempotency_scope AS scope, idempotency_key AS key FROM ledger_transactions WHERE idempotency_key IS NOT NULL
		    UNION ALL SELECT idempotency_scope, idempotency_key FROM ledger_holds) k
		  GROUP BY scope, key HAVING count(*) > 1) d
		UNION ALL
		SELECT format('key %s/%s: used by a transaction but not recorded', t.idempotency_scope, t.idempotency_key)
		FROM ledger_transactions t LEFT JOIN ledger_idempotency i
		  ON i.scope = t.idempotency_scope AND i.key = t.idempotency_key
		WHERE t.idempotency_key IS NOT NULL AND i.result IS NULL AND i.transaction_id IS DISTINCT FROM t.id`},
	// The references of a posting are not foreign keys (migration 00220,
	// docs/performance.md): the commit-time check proves entries' and lots'
	// accounts exist, and this proves every reference over all history.
	{Name: "postings refer to existing rows", Query: `
		SELECT format('entry %s: transaction %s does not exist', e.id, e.transaction_id) FROM ledger_entries e
		WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = e.transaction_id)
		UNION ALL
		SELECT format('entry %s: account %s does not exist', e.id, e.account_id) FROM ledger_entries e
		WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id)
		UNION ALL
		SELECT format('lot %s: transaction %s does not exist', l.id, l.transaction_id) FROM ledger_lots l
		WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = l.transaction_id)
		UNION ALL
		SELECT format('lot %s: account %s does not exist', l.id, l.account_id) FROM ledger_lots l
		WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = l.account_id)
		UNION ALL
		SELECT format('idempotency key %s/%s: transaction %s does not exist', i.scope, i.key, i.transaction_id)
		FROM ledger_idempotency i
		WHERE i.transaction_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = i.transaction_id)`},
}

// maxDetails caps the violation lines kept per check; Violations counts all.
const maxDetails = 20

// Audit checks the ledger invariants on db: every transaction has two or more
// entries summing to zero; each member balance equals the sum of its entries;
// lots' remaining points equal the (non-negative part of the) balance; held
// points equal the active holds and are covered by settled lots (unless a
// clawback posted after them took their cover); no lot is
// consumed beyond its amount; every consumption names its lot's issuer (the
// settlement matrix attributes by it); no idempotency key was applied twice;
// every entry, lot and idempotency record refers to rows that exist. Then
// the extra checks of other modules. The error is only for failing to run
// the checks; breaches are in the report.
func Audit(ctx context.Context, db *gorm.DB, extra ...AuditQuery) (AuditReport, error) {
	var rep AuditReport
	for _, q := range append(auditQueries[:len(auditQueries):len(auditQueries)], extra...) {
		var lines []string
		var err error
		if q.Check != nil {
			lines, err = q.Check(ctx, db)
		} else {
			err = db.WithContext(ctx).Raw(q.Query).Scan(&lines).Error
		}
		if err != nil {
			return rep, fmt.Errorf("audit %q: %w", q.Name, err)
		}
		c := AuditCheck{Name: q.Name, OK: len(lines) == 0, Violations: len(lines)}
		if len(lines) > maxDetails {
			lines = append(lines[:maxDetails], fmt.Sprintf("... and %d more", len(lines)-maxDetails))
		}
		c.Details = lines
		rep.Checks = append(rep.Checks, c)
	}
	return rep, nil
}
