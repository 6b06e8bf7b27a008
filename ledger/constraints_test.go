package ledger_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
)

// rowTemplates are valid rows of the posting path's tables, as SQL
// expressions per column; each case below breaks one rule of one of them.
var rowTemplates = map[string]map[string]string{
	"ledger_accounts": {"kind": "'member'", "owner_id": "424242"},
	"ledger_idempotency": {"scope": "'partner:1'", "key": "'k-1'", "operation": "'earn'", "request_hash": "'\\x01'::bytea",
		"created_at": "now()"},
	"ledger_transactions": {"type": "'earn'", "member_id": "1", "partner_id": "1", "points": "5", "occurred_at": "now()",
		"posted_at": "now()", "balance_after": "5"},
	"ledger_entries": {"transaction_id": "1", "account_id": "1", "amount": "5", "posted_at": "now()"},
	"ledger_lots": {"account_id": "1", "transaction_id": "1", "issuer_partner_id": "1", "amount": "5", "remaining": "5",
		"earned_at": "now()", "available_at": "now()"},
	"ledger_lot_consumptions": {"lot_id": "(SELECT min(id) FROM ledger_lots)", "transaction_id": "(SELECT min(id) FROM ledger_transactions)", "issuer_partner_id": "1", "points": "5", "posted_at": "now()"},
	"ledger_holds": {"account_id": "(SELECT min(id) FROM ledger_accounts)", "member_id": "1", "partner_id": "1", "points": "5", "status": "'active'",
		"purpose": "'pos'", "destination": "'partner_redeemed'", "expires_at": "now() + interval '1 hour'", "created_at": "now()",
		"idempotency_scope": "'partner:1'", "idempotency_key": "'h-1'"},
	"programme_qualifying_credits": {"member_id": "1", "transaction_id": "(SELECT max(id) FROM ledger_transactions)", "partner_id": "1", "occurred_at": "now()",
		"qualifying_points": "5", "spend_minor": "500", "nights": "0", "stays": "0", "flights": "0", "posted_at": "now()"},
	"programme_member_windows": {"member_id": "1", "month": "'2025-03-01'", "partner_id": "1", "qualifying_points": "5",
		"spend_minor": "500", "nights": "0", "stays": "0", "flights": "0"},
}

// insertSQL is an INSERT of table's template with set replacing columns.
func insertSQL(table string, set map[string]string) string {
	row := map[string]string{}
	for c, v := range rowTemplates[table] {
		row[c] = v
	}
	for c, v := range set {
		row[c] = v
	}
	cols := make([]string, 0, len(row))
	for c := range row {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = row[c]
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(vals, ", "))
}

var errRollback = errors.New("rollback")

// inRollback runs sql in a transaction that is rolled back.
func inRollback(db *gorm.DB, sql string) error {
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(sql).Error; err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// Migration 00250 moved the posting path's single-column checks onto
// domains, the rules between a transaction's columns into its statement
// trigger, and rewrote the qualifying credits' sign rule. Every rule must
// still refuse what it refused, with check_violation and a constraint name.
func TestDatabaseRefusesRowsBreakingARule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Rows for the references that keep foreign keys: a transaction and its
	// lot, a hold, a qualifying credit (of another transaction than the
	// template's).
	f.earn(1, 1, 10)
	f.earn(1, 1, 10)
	if _, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 5,
		ExpiresAt: t0.Add(time.Hour), Purpose: "pos"}); err != nil {
		t.Fatal(err)
	}
	db := f.db
	if err := db.Exec(insertSQL("programme_qualifying_credits",
		map[string]string{"transaction_id": "(SELECT min(id) FROM ledger_transactions)"})).Error; err != nil {
		t.Fatal(err)
	}
	for table := range rowTemplates {
		if err := inRollback(db, insertSQL(table, nil)); err != nil {
			t.Fatalf("the valid %s template was refused: %v", table, err)
		}
	}
	long := func(n int) string { return "'" + strings.Repeat("x", n) + "'" }
	cases := []struct {
		table, constraint string
		set               map[string]string
	}{
		{"ledger_accounts", "ledger_account_kind_check", map[string]string{"kind": "'wallet'"}},
		{"ledger_accounts", "ledger_owner_id_check", map[string]string{"owner_id": "-1"}},
		{"ledger_accounts", "hub_nonnegative_points_check", map[string]string{"held": "-1"}},
		{"ledger_accounts", "ledger_accounts_derived_balance", map[string]string{"kind": "'partner_issued'", "balance": "3"}},
		{"ledger_accounts", "ledger_accounts_operator_owner", map[string]string{"kind": "'operator_fees'", "owner_id": "3"}},
		{"ledger_idempotency", "ledger_idempotency_key_check", map[string]string{"key": "''"}},
		{"ledger_idempotency", "ledger_idempotency_key_check", map[string]string{"key": long(201)}},
		{"ledger_idempotency", "hub_name_check", map[string]string{"scope": "''"}},
		{"ledger_idempotency", "hub_name_check", map[string]string{"operation": "''"}},
		{"ledger_idempotency", "ledger_request_hash_check", map[string]string{"request_hash": "''::bytea"}},
		{"ledger_transactions", "ledger_transaction_type_check", map[string]string{"type": "'gift'"}},
		{"ledger_transactions", "hub_positive_id_check", map[string]string{"member_id": "0"}},
		{"ledger_transactions", "hub_positive_id_check", map[string]string{"partner_id": "-4"}},
		{"ledger_transactions", "hub_short_text_check", map[string]string{"external_ref": long(201)}},
		{"ledger_transactions", "hub_short_text_check", map[string]string{"actor": long(201)}},
		{"ledger_transactions", "hub_long_text_check", map[string]string{"reason": long(501)}},
		{"ledger_transactions", "ledger_transactions_points", map[string]string{"points": "0"}},
		{"ledger_transactions", "ledger_transactions_points", map[string]string{"type": "'burn'", "points": "-5"}},
		{"ledger_transactions", "ledger_transactions_reversal", map[string]string{"type": "'reversal'"}},
		{"ledger_transactions", "ledger_transactions_reversal", map[string]string{"reverses_id": "(SELECT min(id) FROM ledger_transactions)"}},
		{"ledger_transactions", "ledger_transactions_capture", map[string]string{"type": "'capture'"}},
		{"ledger_transactions", "ledger_transactions_capture", map[string]string{"hold_id": "(SELECT min(id) FROM ledger_holds)"}},
		{"ledger_transactions", "ledger_transactions_counter", map[string]string{"type": "'transfer'"}},
		{"ledger_transactions", "ledger_transactions_counter", map[string]string{"counter_member_id": "2"}},
		{"ledger_transactions", "ledger_transactions_check", map[string]string{"type": "'transfer'", "counter_member_id": "1"}},
		{"ledger_transactions", "ledger_transactions_reason", map[string]string{"type": "'adjustment'"}},
		{"ledger_transactions", "ledger_transactions_partner", map[string]string{"type": "'burn'", "partner_id": "NULL"}},
		{"ledger_transactions", "ledger_transactions_idem_pair", map[string]string{"idempotency_scope": "'partner:1'"}},
		{"ledger_entries", "ledger_entry_amount_check", map[string]string{"amount": "0"}},
		{"ledger_lots", "hub_positive_points_check", map[string]string{"amount": "0", "remaining": "0"}},
		{"ledger_lots", "hub_positive_id_check", map[string]string{"issuer_partner_id": "0"}},
		{"ledger_lots", "ledger_lots_check", map[string]string{"remaining": "6"}},
		{"ledger_lot_consumptions", "hub_positive_points_check", map[string]string{"points": "0"}},
		{"ledger_lot_consumptions", "hub_positive_id_check", map[string]string{"issuer_partner_id": "0"}},
		{"ledger_holds", "ledger_hold_status_check", map[string]string{"status": "'open'"}},
		{"ledger_holds", "ledger_hold_purpose_check", map[string]string{"purpose": "'gift'"}},
		{"ledger_holds", "ledger_hold_destination_check", map[string]string{"destination": "'member'"}},
		{"ledger_holds", "hub_positive_points_check", map[string]string{"points": "0"}},
		{"ledger_holds", "hub_positive_id_check", map[string]string{"member_id": "0"}},
		{"ledger_holds", "hub_short_text_check", map[string]string{"external_ref": long(201)}},
		{"programme_qualifying_credits", "hub_positive_id_check", map[string]string{"partner_id": "0"}},
		{"programme_qualifying_credits", "programme_qualifying_credits_sign", map[string]string{"nights": "-1"}},
		{"programme_qualifying_credits", "programme_qualifying_credits_sign", map[string]string{"reverses_id": "(SELECT min(id) FROM programme_qualifying_credits)", "qualifying_points": "-5"}},
		{"programme_member_windows", "programme_month_check", map[string]string{"month": "'2025-03-02'"}},
		{"programme_member_windows", "programme_window_lane_check", map[string]string{"lane": "2"}},
		{"programme_member_windows", "hub_positive_id_check", map[string]string{"partner_id": "0"}},
	}
	for _, c := range cases {
		sql := insertSQL(c.table, c.set)
		err := inRollback(db, sql)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "23514" || pg.ConstraintName != c.constraint {
			t.Errorf("%s %v: err = %v, want check_violation of %s", c.table, c.set, err, c.constraint)
		}
	}
	// A reversal credit whose measures are all zero or below is valid.
	if err := inRollback(db, insertSQL("programme_qualifying_credits", map[string]string{"reverses_id": "(SELECT min(id) FROM programme_qualifying_credits)",
		"qualifying_points": "-5", "spend_minor": "-500"})); err != nil {
		t.Errorf("a valid reversal credit was refused: %v", err)
	}
}
