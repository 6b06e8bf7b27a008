package settlement

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/partners"
)

// generateMonth writes n earns at partner a (1 point = 0.01 EUR) spread over
// October 2026 and a burn at partner b (0.005 EUR/point) of half the points of
// every second earn, straight into the ledger tables with set-based SQL
// (INSERT ... SELECT generate_series): the shape of a large month without
// going through the service one posting at a time.
func generateMonth(tb testing.TB, e *env, n int) (a, b int64) {
	tb.Helper()
	a = e.partner("Bulk Air", partners.SectorAirline, "EUR")
	b = e.partner("Bulk Hotel", partners.SectorHotel, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.005", "0", "0", partners.BillingPostpaid)
	e.contract(b, at(2026, 9, 1, 0, 0), "0.01", "0.005", "0", "0.1", partners.BillingPostpaid)
	members := max(n/10, 1)
	start := at(2026, 10, 1, 0, 0)
	step := at(2026, 10, 31, 23, 0).Sub(start) / time.Duration(n+1)
	stmts := []string{
		`INSERT INTO ledger_accounts (kind, owner_id) SELECT 'member', g FROM generate_series(1, @members) g`,
		`INSERT INTO ledger_accounts (kind, owner_id) VALUES ('partner_issued', @a), ('partner_redeemed', @b)`,
		`INSERT INTO ledger_transactions (type, member_id, partner_id, points, occurred_at, posted_at, balance_after, external_ref)
		 SELECT 'earn', 1 + g % @members, @a, 100, CAST(@start AS timestamptz) + g * CAST(@step AS bigint) * interval '1 microsecond',
		        CAST(@start AS timestamptz) + g * CAST(@step AS bigint) * interval '1 microsecond', 0, 'E' || g FROM generate_series(1, @n) g`,
		`INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
		 SELECT t.id, m.id, 100, t.posted_at FROM ledger_transactions t
		 JOIN ledger_accounts m ON m.kind = 'member' AND m.owner_id = t.member_id WHERE t.type = 'earn'
		 UNION ALL
		 SELECT t.id, (SELECT id FROM ledger_accounts WHERE kind = 'partner_issued' AND owner_id = @a), -100, t.posted_at
		 FROM ledger_transactions t WHERE t.type = 'earn'`,
		`INSERT INTO ledger_lots (account_id, transaction_id, issuer_partner_id, amount, remaining, earned_at, available_at)
		 SELECT m.id, t.id, @a, 100, 100, t.occurred_at, t.occurred_at FROM ledger_transactions t
		 JOIN ledger_accounts m ON m.kind = 'member' AND m.owner_id = t.member_id WHERE t.type = 'earn'`,
		`INSERT INTO ledger_transactions (type, member_id, partner_id, points, occurred_at, posted_at, balance_after, external_ref)
		 SELECT 'burn', t.member_id, @b, 50, t.occurred_at + interval '1 microsecond', t.posted_at + interval '1 microsecond', 0, 'L' || t.id
		 FROM ledger_transactions t WHERE t.type = 'earn' AND t.id % 2 = 0`,
		`INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
		 SELECT t.id, m.id, -50, t.posted_at FROM ledger_transactions t
		 JOIN ledger_accounts m ON m.kind = 'member' AND m.owner_id = t.member_id WHERE t.type = 'burn'
		 UNION ALL
		 SELECT t.id, (SELECT id FROM ledger_accounts WHERE kind = 'partner_redeemed' AND owner_id = @b), 50, t.posted_at
		 FROM ledger_transactions t WHERE t.type = 'burn'`,
		`INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
		 SELECT l.id, t.id, @a, 50, t.posted_at FROM ledger_transactions t
		 JOIN ledger_lots l ON l.transaction_id = substr(t.external_ref, 2)::bigint WHERE t.type = 'burn'`,
	}
	args := map[string]any{"members": members, "a": a, "b": b, "n": n, "start": start, "step": step.Microseconds()}
	err := e.db.Transaction(func(tx *gorm.DB) error {
		for _, q := range stmts {
			if err := tx.Exec(q, args).Error; err != nil {
				return fmt.Errorf("%w\n%s", err, q)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("generate month: %v", err)
	}
	if err := e.db.Exec("ANALYZE").Error; err != nil {
		tb.Fatal(err)
	}
	return a, b
}

// TestCloseGeneratedMonth is the small, always-run version of the
// benchmark: a generated month closes to the expected totals.
func TestCloseGeneratedMonth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 9, 1, 12, 0))
	const n = 2000
	a, b := generateMonth(t, e, n)
	e.close(at(2026, 11, 1, 1, 0), "2026-10")
	stA, stB := e.statementOf("2026-10", a), e.statementOf("2026-10", b)
	checkLines(t, stA, "EUR", []wantLine{{kind: LineIssued, version: 1, points: n * 100, minor: -n * 100}}, -n*100)
	checkLines(t, stB, "EUR", []wantLine{
		{kind: LineRedeemed, version: 1, points: n / 2 * 50, minor: n / 2 * 50 / 2},
		{kind: LineOperatorFee, version: 1, points: n / 2 * 50, minor: -n / 2 * 50 / 20},
	}, n/2*50/2-n/2*50/20)
	rep, err := e.svc.Report(e.ctx, "2026-10")
	if err != nil || len(rep.Matrix) != 1 || rep.Matrix[0].Points != n/2*50 || rep.Matrix[0].Value.Minor != n/2*50/2 {
		t.Fatalf("matrix %+v %v; want %d points of A redeemed at B", rep.Matrix, err, n/2*50)
	}
	if len(rep.Outstanding) != 1 || rep.Outstanding[0].Points != n*100-n/2*50 {
		t.Fatalf("outstanding %+v; want %d", rep.Outstanding, n*100-n/2*50)
	}
}

// BenchmarkClosePeriod closes a generated month. SETTLEMENT_BENCH_TX sets
// the number of earns (default 100000; full scale is 5000000 — an
// earn and half as many burns give 1.5 transactions per earn).
//
//	go test -run '^$' -bench ClosePeriod -benchtime 1x ./settlement/
func BenchmarkClosePeriod(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("SETTLEMENT_BENCH_TX")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnvTB(b, at(2026, 9, 1, 12, 0))
		generateMonth(b, e, n)
		e.clk.Set(at(2026, 11, 1, 1, 0))
		b.StartTimer()
		if _, err := e.svc.Close(e.ctx, "2026-10", "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*1.5, "tx/op")
}

// BenchmarkFinance computes the result and liability roll-forward of a
// closed generated month (SETTLEMENT_BENCH_TX earns, as BenchmarkClosePeriod)
// from its closed data, as the first request for it does.
//
//	go test -run '^$' -bench Finance -benchtime 1x ./settlement/
func BenchmarkFinance(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("SETTLEMENT_BENCH_TX")); err == nil && v > 0 {
		n = v
	}
	e := newEnvTB(b, at(2026, 9, 1, 12, 0))
	generateMonth(b, e, n)
	e.clk.Set(at(2026, 11, 1, 1, 0))
	if _, err := e.svc.Close(e.ctx, "2026-10", "bench", nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := e.svc.RecomputeFinance(e.ctx, "2026-10"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*1.5, "tx/op")
}
