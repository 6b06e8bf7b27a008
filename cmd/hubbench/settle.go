package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/settlement"
)

// SettleResult is the settlement benchmark's numbers.
type SettleResult struct {
	Month            string  `json:"month"`
	Transactions     int64   `json:"transactions"`
	Members          int     `json:"members"`
	Partners         int     `json:"partners"`
	GenerateSeconds  float64 `json:"generate_seconds"`
	GenerateRowsSec  float64 `json:"generate_rows_per_sec"`
	CloseSeconds     float64 `json:"close_seconds"`
	CloseRowsPerSec  float64 `json:"close_rows_per_sec"`
	PeakRSSMB        float64 `json:"close_peak_rss_mb"`
	PeakHeapMB       float64 `json:"close_peak_heap_mb"`
	Statements       int64   `json:"statements"`
	IssuedPoints     int64   `json:"issued_points"`
	IssuedPointsWant int64   `json:"issued_points_want"`
}

// runSettle generates a month of transactions in its own database
// (<bench db>_settle), closes it in a child process and reports rows per
// second and that process's peak memory.
func runSettle(ctx context.Context, o options) (SettleResult, Machine, error) {
	dbURL := withDatabase(o.dbURL, dbName(o.dbURL)+"_settle")
	fmt.Fprintf(os.Stderr, "settlement: reset %s and migrate\n", redact(dbURL))
	if err := resetDatabase(ctx, o, dbURL); err != nil {
		return SettleResult{}, Machine{}, err
	}
	db, err := openDB(ctx, dbURL)
	if err != nil {
		return SettleResult{}, Machine{}, err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	mach := machineInfo(ctx, db)
	loc, _ := time.LoadLocation("Europe/Berlin")
	now := time.Now().In(loc)
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc).AddDate(0, -1, 0)
	r := SettleResult{Month: monthStart.Format("2006-01"), Members: o.settleMembers, Partners: o.settlePartner}
	t0 := time.Now()
	ids, err := settlePartners(ctx, db, o.settlePartner, monthStart.AddDate(0, 0, -1))
	if err != nil {
		return r, mach, err
	}
	earns := (int64(o.settleTx)*2 + 2) / 3
	if err := generateMonth(ctx, db, dbURL, ids, o.settleMembers, earns, monthStart); err != nil {
		return r, mach, err
	}
	if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM ledger_transactions`).Scan(&r.Transactions).Error; err != nil {
		return r, mach, err
	}
	r.GenerateSeconds = time.Since(t0).Seconds()
	r.GenerateRowsSec = float64(r.Transactions) / r.GenerateSeconds
	r.IssuedPointsWant = earns * 100
	fmt.Fprintf(os.Stderr, "settlement: generated %d transactions in %.1fs; closing %s\n", r.Transactions, r.GenerateSeconds, r.Month)

	self, err := os.Executable()
	if err != nil {
		return r, mach, err
	}
	cmd := exec.CommandContext(ctx, self, "close-period", "-db", dbURL, "-month", r.Month)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return r, mach, fmt.Errorf("close period: %w", err)
	}
	var child closeReport
	if err := json.Unmarshal(out.Bytes(), &child); err != nil {
		return r, mach, fmt.Errorf("close period answered %q: %w", out.String(), err)
	}
	r.PeakRSSMB = child.PeakRSSMB
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && r.PeakRSSMB == 0 {
		r.PeakRSSMB = float64(ru.Maxrss) / 1024 // kilobytes on Linux; an upper bound (above)
	}
	r.CloseSeconds, r.PeakHeapMB = child.Seconds, child.PeakHeapMB
	r.CloseRowsPerSec = float64(r.Transactions) / r.CloseSeconds
	db.WithContext(ctx).Raw(`SELECT count(*) FROM settlement_statements`).Scan(&r.Statements)
	db.WithContext(ctx).Raw(`SELECT COALESCE(sum(points), 0) FROM ledger_transactions WHERE type = 'earn'`).Scan(&r.IssuedPoints)
	if !o.keep {
		dropDatabase(ctx, dbURL)
	}
	return r, mach, nil
}

func dbName(raw string) string {
	i := strings.LastIndex(raw, "/")
	name := raw[i+1:]
	if j := strings.Index(name, "?"); j >= 0 {
		name = name[:j]
	}
	return name
}

func dropDatabase(ctx context.Context, dbURL string) {
	admin, err := pgx.Connect(ctx, withDatabase(dbURL, "postgres"))
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	_, _ = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{dbName(dbURL)}.Sanitize()+` WITH (FORCE)`)
}

// settlePartners creates n active earn-and-burn partners with contracts in
// force from `from` (the partners service runs on a clock just before it).
func settlePartners(ctx context.Context, db *gorm.DB, n int, from time.Time) ([]int64, error) {
	clock := func() time.Time { return from.Add(-time.Hour) }
	ps := partners.NewService(db, clock)
	ids := make([]int64, n)
	for i := range ids {
		p, err := ps.CreatePartner(ctx, partners.NewPartner{Name: fmt.Sprintf("Month Partner %02d", i+1),
			Sector: partners.SectorRetail, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
		if err != nil {
			return nil, err
		}
		if _, err := ps.SetPartnerStatus(ctx, p.ID, partners.StatusActive); err != nil {
			return nil, err
		}
		if _, err := ps.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: from, Earn: true, Burn: true,
			IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.005"),
			Currency: "EUR", Billing: partners.BillingPostpaid, OperatorFeeRate: decimal.RequireFromString("0.1")}, "bench"); err != nil {
			return nil, err
		}
		ids[i] = p.ID
	}
	return ids, nil
}

// generateMonth loads members with COPY and writes `earns` earns of 100
// points spread over the month and partners, plus a burn of 50 points at
// another partner for every second earn (1.5 transactions per earn), with
// their entries, lots and lot consumptions, by set-based SQL (INSERT ...
// SELECT generate_series): the rows are made inside PostgreSQL, which is
// faster than streaming them through COPY. Every ledger index is there, as in
// production. The rows are written with the session's triggers off
// (session_replication_role = replica, when the role may set it): per row,
// the foreign-key checks and the commit-time balance check of each
// transaction cost more than the writes. What those triggers check holds by
// construction and is checked afterwards set-based (checkGenerated). Member
// balances are not rolled up: this database is for the close, not for the
// ledger audit. Each step is reported on stderr.
func generateMonth(ctx context.Context, db *gorm.DB, dbURL string, partnerIDs []int64, members int, earns int64, month time.Time) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	step := func(name string, t time.Time, rows int64) {
		fmt.Fprintf(os.Stderr, "settlement: generate: %-32s %10d rows %7.1fs\n", name, rows, time.Since(t).Seconds())
	}
	t := time.Now()
	created := time.Now().UTC()
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"members"}, []string{"given_name", "family_name", "created_at", "updated_at"},
		pgx.CopyFromSlice(members, func(i int) ([]any, error) {
			return []any{"Month", fmt.Sprintf("Member %d", i+1), created, created}, nil
		})); err != nil {
		return fmt.Errorf("copy members: %w", err)
	}
	step("members (COPY)", t, int64(members))
	start := month.UTC()
	span := month.AddDate(0, 1, 0).UTC().Sub(start) - time.Minute
	stepUS := span.Microseconds() / (earns + 1)
	args := map[string]any{"n": earns, "start": start, "step": stepUS, "parts": pgIntArray(partnerIDs)}
	stmts := []struct{ name, sql string }{
		{"member accounts", `INSERT INTO ledger_accounts (kind, owner_id) SELECT 'member', id FROM members`},
		{"partner accounts", `INSERT INTO ledger_accounts (kind, owner_id) SELECT k, p FROM unnest(CAST(@parts AS bigint[])) p,
		 (VALUES ('partner_issued'), ('partner_redeemed')) v(k)`},
		{"", `CREATE TEMP TABLE gen_member AS SELECT row_number() OVER (ORDER BY id) - 1 AS i, id FROM members`},
		{"", `CREATE TEMP TABLE gen_acct AS SELECT owner_id AS member_id, id FROM ledger_accounts WHERE kind = 'member'`},
		{"", `ALTER TABLE gen_member ADD PRIMARY KEY (i)`},
		{"", `ALTER TABLE gen_acct ADD PRIMARY KEY (member_id)`},
		{"earn transactions", `INSERT INTO ledger_transactions (type, member_id, partner_id, points, occurred_at, posted_at, balance_after, external_ref)
		 SELECT 'earn', m.id, (CAST(@parts AS bigint[]))[1 + g % NP], 100,
		        CAST(@start AS timestamptz) + g * CAST(@step AS bigint) * interval '1 microsecond',
		        CAST(@start AS timestamptz) + g * CAST(@step AS bigint) * interval '1 microsecond', 100, 'E' || g
		 FROM generate_series(1, @n) g JOIN gen_member m ON m.i = g % NMEMBERS`},
		{"", `CREATE TEMP TABLE gen_earn AS SELECT t.id, t.member_id, t.partner_id, t.posted_at, a.id AS account_id
		 FROM ledger_transactions t JOIN gen_acct a ON a.member_id = t.member_id WHERE t.type = 'earn'`},
		{"earn entries", `INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
		 SELECT id, account_id, 100, posted_at FROM gen_earn
		 UNION ALL
		 SELECT e.id, a.id, -100, e.posted_at FROM gen_earn e JOIN ledger_accounts a ON a.kind = 'partner_issued' AND a.owner_id = e.partner_id`},
		{"lots", `INSERT INTO ledger_lots (account_id, transaction_id, issuer_partner_id, amount, remaining, earned_at, available_at)
		 SELECT account_id, id, partner_id, 100, CASE WHEN id % 2 = 0 THEN 50 ELSE 100 END, posted_at, posted_at FROM gen_earn`},
		{"burn transactions", `INSERT INTO ledger_transactions (type, member_id, partner_id, points, occurred_at, posted_at, balance_after, external_ref)
		 SELECT 'burn', member_id, (CAST(@parts AS bigint[]))[1 + (id + 7) % NP], 50, posted_at + interval '1 microsecond',
		        posted_at + interval '1 microsecond', 50, 'L' || id
		 FROM gen_earn WHERE id % 2 = 0`},
		{"", `CREATE TEMP TABLE gen_burn AS SELECT t.id, t.partner_id, t.posted_at, substr(t.external_ref, 2)::bigint AS earn_id, e.account_id, e.partner_id AS issuer
		 FROM ledger_transactions t JOIN gen_earn e ON e.id = substr(t.external_ref, 2)::bigint WHERE t.type = 'burn'`},
		{"burn entries", `INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
		 SELECT id, account_id, -50, posted_at FROM gen_burn
		 UNION ALL
		 SELECT b.id, a.id, 50, b.posted_at FROM gen_burn b JOIN ledger_accounts a ON a.kind = 'partner_redeemed' AND a.owner_id = b.partner_id`},
		{"lot consumptions", `INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
		 SELECT l.id, b.id, b.issuer, 50, b.posted_at FROM gen_burn b JOIN ledger_lots l ON l.transaction_id = b.earn_id`},
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var super string
		if err := tx.Raw(`SELECT current_setting('is_superuser')`).Scan(&super).Error; err != nil {
			return err
		}
		if super == "on" {
			if err := tx.Exec(`SET LOCAL session_replication_role = replica`).Error; err != nil {
				return err
			}
		} else {
			fmt.Fprintln(os.Stderr, "settlement: generate: not a superuser: triggers stay on (slower)")
		}
		for _, st := range stmts {
			q := strings.NewReplacer("NP", strconv.Itoa(len(partnerIDs)), "NMEMBERS", strconv.Itoa(members)).Replace(st.sql)
			var params []any
			if strings.Contains(q, "@") {
				params = []any{args}
			}
			t := time.Now()
			res := tx.Exec(q, params...)
			if res.Error != nil {
				return fmt.Errorf("%w\n%s", res.Error, q)
			}
			if st.name != "" {
				step(st.name, t, res.RowsAffected)
			}
		}
		t := time.Now()
		if err := checkGenerated(tx); err != nil {
			return err
		}
		step("checked (balance, references)", t, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate month: %w", err)
	}
	t = time.Now()
	if err := db.WithContext(ctx).Exec(`VACUUM ANALYZE ledger_transactions, ledger_entries, ledger_lots, ledger_lot_consumptions, ledger_accounts, members`).Error; err != nil {
		return err
	}
	step("vacuum analyze", t, 0)
	return nil
}

// checkGenerated checks, set-based, what the ledger's triggers check row by
// row: every transaction has at least two entries summing to zero, every
// entry, lot and consumption references rows that exist, a consumption names
// its lot's issuer, and each lot's consumptions add up to what it lost.
func checkGenerated(tx *gorm.DB) error {
	checks := []struct{ what, sql string }{
		{"unbalanced transactions", `SELECT count(*) FROM ledger_transactions t
		 LEFT JOIN (SELECT transaction_id, count(*) AS n, sum(amount) AS s FROM ledger_entries GROUP BY 1) e ON e.transaction_id = t.id
		 WHERE e.n IS NULL OR e.n < 2 OR e.s <> 0`},
		{"entries without their transaction", `SELECT count(*) FROM ledger_entries e
		 WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = e.transaction_id)`},
		{"entries without their account", `SELECT count(*) FROM ledger_entries e
		 WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id)`},
		{"lots without their transaction", `SELECT count(*) FROM ledger_lots l
		 WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = l.transaction_id)`},
		{"lots without their account", `SELECT count(*) FROM ledger_lots l
		 WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = l.account_id)`},
		{"consumptions without their transaction", `SELECT count(*) FROM ledger_lot_consumptions c
		 WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = c.transaction_id)`},
		{"consumptions without their lot or its issuer", `SELECT count(*) FROM ledger_lot_consumptions c
		 LEFT JOIN ledger_lots l ON l.id = c.lot_id WHERE l.id IS NULL OR c.issuer_partner_id IS DISTINCT FROM l.issuer_partner_id`},
		{"lots whose consumptions do not add up", `SELECT count(*) FROM ledger_lots l
		 LEFT JOIN (SELECT lot_id, sum(points) AS s FROM ledger_lot_consumptions GROUP BY 1) c ON c.lot_id = l.id
		 WHERE coalesce(c.s, 0) <> l.amount - l.remaining`},
	}
	if err := tx.Exec(`SET LOCAL work_mem = '256MB'`).Error; err != nil {
		return err
	}
	for _, c := range checks {
		var n int64
		if err := tx.Raw(c.sql).Scan(&n).Error; err != nil {
			return fmt.Errorf("check %s: %w", c.what, err)
		}
		if n != 0 {
			return fmt.Errorf("generated month: %d %s", n, c.what)
		}
	}
	return nil
}

// closeReport is what the close-period child prints.
type closeReport struct {
	Seconds    float64 `json:"seconds"`
	PeakHeapMB float64 `json:"peak_heap_mb"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
}

// peakRSSMB is this process's peak resident set (VmHWM), 0 when unknown.
// The child reads its own: the rusage the parent gets from wait4 starts from
// the parent's peak, because Linux carries the peak of the memory the child
// shared with its parent until exec over into the child's count.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return 0
}

// closePeriodChild closes one period with the settlement service, sampling
// the Go heap while it runs, and prints a closeReport.
func closePeriodChild(args []string) error {
	fs := flag.NewFlagSet("close-period", flag.ContinueOnError)
	dbURL := fs.String("db", "", "database URL")
	month := fs.String("month", "", "YYYY-MM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	loc, _ := time.LoadLocation("Europe/Berlin")
	svc := settlement.NewService(db, settlement.Options{Location: loc, BaseCurrency: "EUR", Now: time.Now})
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse+ms.StackInuse)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t := time.Now()
	if _, err := svc.Close(ctx, *month, "bench", nil); err != nil {
		return err
	}
	secs := time.Since(t).Seconds()
	close(stop)
	<-sampled
	return json.NewEncoder(os.Stdout).Encode(closeReport{Seconds: secs, PeakHeapMB: float64(peak) / (1 << 20),
		PeakRSSMB: peakRSSMB()})
}
