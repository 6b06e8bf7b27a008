package ledger_test

import (
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
)

// corrupt runs raw SQL with the ledger's append-only triggers disabled, as a
// buggy migration or a hand edit would.
func (f *fixture) corrupt(sql string) {
	f.t.Helper()
	for _, q := range []string{
		`ALTER TABLE ledger_entries DISABLE TRIGGER USER`,
		`ALTER TABLE ledger_transactions DISABLE TRIGGER USER`,
		`ALTER TABLE ledger_lot_consumptions DISABLE TRIGGER USER`,
		sql,
		`ALTER TABLE ledger_entries ENABLE TRIGGER USER`,
		`ALTER TABLE ledger_transactions ENABLE TRIGGER USER`,
		`ALTER TABLE ledger_lot_consumptions ENABLE TRIGGER USER`,
	} {
		if err := f.db.Exec(q).Error; err != nil {
			f.t.Fatalf("corrupt: %s: %v", q, err)
		}
	}
}

func TestAuditDetectsCorruption(t *testing.T) {
	t.Parallel()
	cases := []struct {
		check string
		sql   string
	}{
		{"transactions balance to zero", `UPDATE ledger_entries SET amount = amount + 1 WHERE id = (SELECT min(id) FROM ledger_entries WHERE amount < 0)`},
		{"member balances equal their entries", `UPDATE ledger_accounts SET balance = balance + 5 WHERE kind = 'member' AND owner_id = 2`},
		{"lots agree with balances", `UPDATE ledger_lots SET remaining = remaining - 1, amount = amount WHERE id = (SELECT max(id) FROM ledger_lots WHERE remaining > 0)`},
		{"holds within available points", `UPDATE ledger_holds SET points = points + 1 WHERE status = 'active'`},
		{"no lot consumed beyond its amount", `INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, points, posted_at)
			SELECT l.id, (SELECT max(id) FROM ledger_transactions WHERE type = 'earn'), 1, now() FROM ledger_lots l ORDER BY l.id LIMIT 1`},
		// Settlement's liability matrix attributes consumed points by the
		// consumption's own issuer column.
		{"consumptions name their lot's issuer", `UPDATE ledger_lot_consumptions SET issuer_partner_id = 999
			WHERE id = (SELECT min(id) FROM ledger_lot_consumptions)`},
		{"no idempotency key applied twice", `INSERT INTO ledger_holds (account_id, member_id, partner_id, points, status, purpose, destination,
			expires_at, created_at, closed_at, idempotency_scope, idempotency_key)
			SELECT account_id, member_id, partner_id, points, 'voided', purpose, destination, expires_at, created_at, now(), 'test', idempotency_key || '-x'
			FROM ledger_holds LIMIT 1;
			UPDATE ledger_transactions SET idempotency_key = (SELECT idempotency_key || '-x' FROM ledger_holds ORDER BY id LIMIT 1),
			  idempotency_scope = 'test' WHERE id = (SELECT min(id) FROM ledger_transactions)`},
		// Entries, lots and idempotency records refer to their rows without
		// foreign keys (migration 00220).
		{"postings refer to existing rows", `INSERT INTO ledger_lots (account_id, transaction_id, amount, remaining, earned_at, available_at)
			VALUES (987654321, (SELECT max(id) FROM ledger_transactions), 1, 0, now(), now())`},
	}
	for _, tc := range cases {
		t.Run(tc.check, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			populate(f)
			f.assertAudit()
			f.corrupt(tc.sql)
			rep, err := ledger.Audit(f.ctx, f.db)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("audit passed on corrupted data (%s)", tc.check)
			}
			for _, c := range rep.Checks {
				if c.Name == tc.check {
					if c.OK || c.Violations == 0 || len(c.Details) == 0 {
						t.Fatalf("check %q = %+v, want it failed with details", tc.check, c)
					}
					var b strings.Builder
					rep.Write(&b)
					if !strings.Contains(b.String(), "FAILED") {
						t.Fatalf("report does not say FAILED:\n%s", b.String())
					}
					f.skipAudit()
					return
				}
			}
			t.Fatalf("no check named %q in %+v", tc.check, rep.Checks)
		})
	}
}

// populate writes a bit of everything.
func populate(f *fixture) {
	f.earn(1, 1, 100, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Hour)) })
	f.earn(2, 2, 50)
	f.earn(2, 1, 30, func(r *ledger.EarnRequest) { r.OperatorFunded = 5 })
	f.mustBurn(1, 2, 20)
	if _, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 2, PartnerID: 3, Points: 10,
		ExpiresAt: t0.Add(time.Hour), Purpose: "pos"}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 2, ToMember: 3, Points: 10, Fee: 1}); err != nil {
		f.t.Fatal(err)
	}
	f.clock.Add(2 * time.Hour)
	if _, err := f.svc.ExpireLots(f.ctx, f.clock.Now(), 10); err != nil {
		f.t.Fatal(err)
	}
}

func TestDatabaseRefusesUnbalancedAndEditedEntries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tx := f.earn(1, 1, 10)
	if err := f.db.Exec(`UPDATE ledger_entries SET amount = 11 WHERE transaction_id = ?`, tx.ID).Error; err == nil {
		t.Fatal("an entry was updated: entries must be append-only")
	}
	if err := f.db.Exec(`DELETE FROM ledger_transactions WHERE id = ?`, tx.ID).Error; err == nil {
		t.Fatal("a transaction was deleted: transactions must be append-only")
	}
	// Each check twice: a transaction checked at commit (the default) and
	// one whose statement asks for the check at its end
	// (checked_in_statement, migration 00240: earns, batches, burns).
	for check, flag := range map[string]string{"at commit": "false", "in statement": "true"} {
		ins := `WITH t AS (INSERT INTO ledger_transactions (type, member_id, partner_id, points, occurred_at, posted_at, balance_after,
			checked_in_statement) VALUES ('earn', 1, 1, 5, now(), now(), 0, ` + flag + `) RETURNING id`
		err := f.db.Exec(ins + `)
			INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
			SELECT t.id, a.id, 5, now() FROM t, ledger_accounts a WHERE a.kind = 'member' AND a.owner_id = 1`).Error
		if err == nil || !strings.Contains(err.Error(), "is unbalanced") {
			t.Fatalf("%s: an unbalanced transaction: err = %v, want it refused as unbalanced", check, err)
		}

		// Entries name their accounts without a foreign key (migration 00220):
		// the commit-time check refuses a balanced transaction on an account that
		// does not exist, and accounts can be neither deleted nor re-keyed.
		err = f.db.Exec(ins + `)
			INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
			SELECT t.id, x.account_id, x.amount, now() FROM t,
			  (VALUES ((SELECT id FROM ledger_accounts WHERE kind = 'member' AND owner_id = 1), 5), (987654321, -5)) x(account_id, amount)`).Error
		if err == nil || !strings.Contains(err.Error(), "names an account that does not exist") {
			t.Fatalf("%s: a transaction on an unknown account: err = %v, want it refused", check, err)
		}
		err = f.db.Exec(ins + `), e AS (
			INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
			SELECT t.id, x.account_id, x.amount, now() FROM t,
			  (VALUES ((SELECT id FROM ledger_accounts WHERE kind = 'member' AND owner_id = 1), 5),
			          ((SELECT id FROM ledger_accounts WHERE kind = 'partner_issued' AND owner_id = 1), -5)) x(account_id, amount))
			INSERT INTO ledger_lots (account_id, transaction_id, amount, remaining, earned_at, available_at)
			SELECT 987654321, t.id, 5, 5, now(), now() FROM t`).Error
		if err == nil || !strings.Contains(err.Error(), "names an account that does not exist") {
			t.Fatalf("%s: a lot on an unknown account: err = %v, want it refused", check, err)
		}
	}
	// A transaction checked in its statement must bring its entries in that
	// statement: entries sent in a later statement come too late.
	err := f.db.Transaction(func(tx *gorm.DB) error {
		var id int64
		if err := tx.Raw(`INSERT INTO ledger_transactions (type, member_id, partner_id, points, occurred_at, posted_at,
			balance_after, checked_in_statement) VALUES ('earn', 1, 1, 5, now(), now(), 0, true) RETURNING id`).Scan(&id).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
			SELECT ?, a.id, CASE a.kind WHEN 'member' THEN 5 ELSE -5 END, now() FROM ledger_accounts a
			WHERE (a.kind = 'member' OR a.kind = 'partner_issued') AND a.owner_id = 1`, id).Error
	})
	if err == nil || !strings.Contains(err.Error(), "is unbalanced") {
		t.Fatalf("a transaction checked in its statement without entries in it: err = %v, want it refused as unbalanced", err)
	}
	if err := f.db.Exec(`DELETE FROM ledger_accounts WHERE kind = 'member' AND owner_id = 1`).Error; err == nil {
		t.Fatal("a ledger account was deleted")
	}
	if err := f.db.Exec(`UPDATE ledger_accounts SET owner_id = 77 WHERE kind = 'member' AND owner_id = 1`).Error; err == nil {
		t.Fatal("a ledger account was re-keyed")
	}
	if err := f.db.Exec(`UPDATE ledger_accounts SET balance = balance WHERE kind = 'member' AND owner_id = 1`).Error; err != nil {
		t.Fatalf("a balance update was refused: %v", err)
	}
}
