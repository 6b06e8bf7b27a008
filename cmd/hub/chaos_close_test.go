//go:build chaos

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/settlement"
)

// closeChaosEarns is the number of generated earns of the month (plus half as
// many burns): enough that the close's work takes a few seconds.
const closeChaosEarns = 400000

// startWorker starts `hub worker` with env and waits until it logs that it
// runs (the worker alone serves no /healthz).
func startWorker(t *testing.T, env []string) *hubProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "worker")
	cmd.Env = append(append(os.Environ(), "HUB_RUN_AS_HUB=1", "HUB_SHUTDOWN_TIMEOUT=5s",
		"HUB_SECRETS_KEY="+testSecretsKey), env...)
	p := &hubProc{t: t, cmd: cmd, done: make(chan error, 1)}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("worker logs:\n%s", p.Logs())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Logs(), "worker running") {
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("worker exited before running: %v\n%s", err, p.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("worker did not start within 30s\n%s", p.Logs())
	return nil
}

// generateCloseMonth writes n earns at partner a and a burn at partner b of
// half the points of every second earn, spread over [from, to), straight into
// the ledger tables with set-based SQL (the shape of settlement's
// generateMonth), then sets member balances and lot remainders so the ledger
// audit holds. It returns the number of burns.
func generateCloseMonth(t *testing.T, db *gorm.DB, a, b int64, n int, from, to time.Time) int64 {
	t.Helper()
	step := to.Sub(from) / time.Duration(n+1)
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
		// Every second earn's lot is half consumed by its burn below.
		`INSERT INTO ledger_lots (account_id, transaction_id, issuer_partner_id, amount, remaining, earned_at, available_at)
		 SELECT m.id, t.id, @a, 100, CASE WHEN t.id % 2 = 0 THEN 50 ELSE 100 END, t.occurred_at, t.occurred_at
		 FROM ledger_transactions t
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
		`UPDATE ledger_accounts a SET balance = s.total
		 FROM (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s
		 WHERE a.id = s.account_id AND a.kind = 'member'`,
	}
	args := map[string]any{"members": max(n/10, 1), "a": a, "b": b, "n": n, "start": from, "step": step.Microseconds()}
	err := db.Transaction(func(tx *gorm.DB) error {
		for _, q := range stmts {
			var err error
			if strings.Contains(q, "@") {
				err = tx.Exec(q, args).Error
			} else {
				err = tx.Exec(q).Error
			}
			if err != nil {
				return fmt.Errorf("%w\n%s", err, q)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("generate month: %v", err)
	}
	if err := db.Exec("ANALYZE").Error; err != nil {
		t.Fatal(err)
	}
	var burns int64
	if err := db.Raw(`SELECT count(*) FROM ledger_transactions WHERE type = 'burn'`).Scan(&burns).Error; err != nil {
		t.Fatal(err)
	}
	return burns
}

// closeState is what a period close has left in the database.
type closeState struct {
	Status     string
	Statements int64
	Lines      int64
	Settled    int64 // rows of settlement_period_transactions
	HasReport  bool
}

func readCloseState(t *testing.T, db *gorm.DB, month string) closeState {
	t.Helper()
	var s closeState
	err := db.Raw(`SELECT p.status,
		(SELECT count(*) FROM settlement_statements s WHERE s.period_id = p.id) AS statements,
		(SELECT count(*) FROM settlement_statement_lines l JOIN settlement_statements s ON s.id = l.statement_id
		  WHERE s.period_id = p.id) AS lines,
		(SELECT count(*) FROM settlement_period_transactions x WHERE x.period_id = p.id) AS settled,
		p.report IS NOT NULL AS has_report
		FROM settlement_periods p WHERE p.month = to_date(?, 'YYYY-MM')`, month).Scan(&s).Error
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// closerLocks counts sessions other than this one holding a row lock on
// settlement_periods: a closer in phase 2 holds the period row FOR UPDATE.
func closerLocks(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	err := db.Raw(`SELECT count(DISTINCT l.pid) FROM pg_locks l
		WHERE l.relation = 'settlement_periods'::regclass AND l.mode = 'RowShareLock'
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.pid <> pg_backend_pid()`).Scan(&n).Error
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storedHashes maps partner id to the stored statement's SHA-256 and
// document; key 0 holds the period report's hash.
func storedHashes(t *testing.T, db *gorm.DB, month string) map[int64]string {
	t.Helper()
	var rows []struct {
		PartnerID int64
		SHA256    []byte `gorm:"column:sha256"`
		Document  string
	}
	if err := db.Raw(`SELECT s.partner_id, s.sha256, s.document::text AS document FROM settlement_statements s
		JOIN settlement_periods p ON p.id = s.period_id WHERE p.month = to_date(?, 'YYYY-MM')`, month).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, r := range rows {
		out[r.PartnerID] = fmt.Sprintf("%x %s", r.SHA256, r.Document)
	}
	var period struct{ ReportSHA256 []byte }
	if err := db.Raw(`SELECT report_sha256 FROM settlement_periods WHERE month = to_date(?, 'YYYY-MM')`, month).Scan(&period).Error; err != nil {
		t.Fatal(err)
	}
	out[0] = fmt.Sprintf("%x", period.ReportSHA256)
	return out
}

// 4b. Worker killed (kill -9) in the middle of a period close: nothing of the
// close survives but the visible "closing" mark; a new worker closes the
// period; the statements verify (recomputed hashes equal the stored ones),
// closing again changes nothing, and the ledger audit passes.
func TestChaosWorkerKilledMidPeriodClose(t *testing.T) {
	db, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}

	// Last month in the operator's time zone: what the scheduled close takes.
	now := time.Now().In(berlin)
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, berlin)
	from := thisMonth.AddDate(0, -1, 0)
	month := from.Format("2006-01")

	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	ps := partners.NewService(db, nil)
	acc, err := access.NewService(db, ps, access.Options{Issuer: "http://hub.chaos", SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	var ids [2]int64
	for i, name := range []string{"Bulk Air", "Bulk Hotel"} {
		p, err := ps.CreatePartner(ctx, partners.NewPartner{Name: name, Sector: partners.SectorAirline, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ps.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: from.AddDate(0, -1, 0), Earn: true, Burn: true,
			IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.005"),
			Billing: partners.BillingPostpaid, BreakageShare: decimal.Zero, OperatorFeeRate: decimal.RequireFromString("0.1")}, "chaos"); err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	a, b := ids[0], ids[1]
	genStart := time.Now()
	burns := generateCloseMonth(t, db, a, b, closeChaosEarns, from.Add(time.Hour), thisMonth.Add(-time.Hour))
	t.Logf("generated %d earns and %d burns in %s for %s", closeChaosEarns, burns, time.Since(genStart).Round(time.Millisecond), month)

	env := []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, "HUB_OPERATOR_TZ=Europe/Berlin"}
	worker := startWorker(t, env)

	// The task the daily scheduler enqueues (no payload: the previous month),
	// with the options of the task table.
	client := asynq.NewClient(ks.Opt())
	t.Cleanup(func() { _ = client.Close() })
	closeOpts := []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(2 * time.Hour)}
	if _, err := client.Enqueue(asynq.NewTask(settlement.TypeClosePeriod, nil), append(closeOpts, asynq.TaskID("close-1"))...); err != nil {
		t.Fatal(err)
	}

	// Wait for phase 2: the period is "closing" and a closer holds its row.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s := readCloseState(t, db, month); s.Status == "closing" && closerLocks(t, db) > 0 {
			break
		} else if s.Status == "closed" {
			t.Fatalf("the close finished before the kill: make the month bigger than %d earns", closeChaosEarns)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not start closing %s within 60s: %+v\n%s", month, readCloseState(t, db, month), worker.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let the work run a little, then kill -9.
	time.Sleep(100 * time.Millisecond)
	if err := worker.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-worker.done
	killedAt := time.Now()

	// The orphaned backend notices the dead client and rolls back; wait for
	// it to let go of the period row, then look at what survived.
	deadline = time.Now().Add(2 * time.Minute)
	for closerLocks(t, db) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed worker's transaction still holds the period row after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("orphaned close rolled back %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	if s := readCloseState(t, db, month); s.Status == "closed" {
		t.Fatalf("the close committed before the kill landed: make the month bigger than %d earns", closeChaosEarns)
	} else if s != (closeState{Status: "closing"}) {
		t.Fatalf("after kill -9 mid close: %+v; want status closing with no statements, lines, settled transactions or report", s)
	}
	// asynq still holds the killed worker's task: it is recovered after its
	// lease expires (a no-op then). Not waited for here (it takes 1-3 min).
	insp := asynq.NewInspector(ks.Opt())
	t.Cleanup(func() { _ = insp.Close() })
	if info, err := insp.GetTaskInfo("low", "close-1"); err != nil || info.State != asynq.TaskStateActive {
		t.Errorf("the killed worker's task: %+v %v; want it still active (leased) in queue low", info, err)
	}

	// A new worker. Instead of waiting for asynq's lease recovery, the close
	// is enqueued again as tomorrow's scheduled run would (idempotent).
	worker2 := startWorker(t, env)
	if _, err := client.Enqueue(asynq.NewTask(settlement.TypeClosePeriod, nil), append(closeOpts, asynq.TaskID("close-2"))...); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Minute)
	for readCloseState(t, db, month).Status != "closed" {
		if time.Now().After(deadline) {
			t.Fatalf("period %s after the restart: %+v; want closed\n%s", month, readCloseState(t, db, month), worker2.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("closed by the new worker %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	got := readCloseState(t, db, month)
	if want := int64(closeChaosEarns) + burns; got.Settled != want || got.Statements != 2 || !got.HasReport {
		t.Fatalf("closed period: %+v; want %d settled transactions, 2 statements and a report", got, want)
	}

	// The statements: issued points at A, redeemed points and the fee at B.
	svc := settlement.NewService(db, settlement.Options{Location: berlin, BaseCurrency: "EUR", Now: time.Now})
	sts, err := svc.Statements(ctx, settlement.StatementFilter{Period: month})
	if err != nil {
		t.Fatal(err)
	}
	nets := map[int64]int64{}
	for _, st := range sts {
		nets[st.PartnerID] = st.Net.Minor
	}
	// A: 100 points per earn at 0.01 EUR, charged. B: 50 points per burn at
	// 0.005 EUR reimbursed, minus the 10% operator fee.
	wantA, wantB := -int64(closeChaosEarns)*100, burns*50/2-burns*50/2/10
	if len(sts) != 2 || nets[a] != wantA || nets[b] != wantB {
		t.Fatalf("statement nets %v; want %d for partner %d and %d for partner %d", nets, wantA, a, wantB, b)
	}

	ok, err := svc.Verify(ctx, month)
	if err != nil || !ok {
		t.Fatalf("Verify(%s) = %v, %v; want the recomputed hashes to equal the stored ones", month, ok, err)
	}
	before := storedHashes(t, db, month)
	p, err := svc.Close(ctx, month, "chaos", nil)
	if err != nil || p.Status != settlement.PeriodClosed || p.ReportSHA256 != before[0] {
		t.Fatalf("closing again: %+v %v; want the closed period unchanged (report hash %s)", p, err, before[0])
	}
	after := storedHashes(t, db, month)
	if len(before) != 3 {
		t.Fatalf("stored hashes %v; want two statements and the report", before)
	}
	if len(after) != len(before) {
		t.Fatalf("closing again changed the statements: %d before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("closing again changed the statement of partner %d (0: report):\n before %.200s\n after  %.200s", k, v, after[k])
		}
	}
	if got := readCloseState(t, db, month); got.Settled != int64(closeChaosEarns)+burns || got.Statements != 2 {
		t.Errorf("after closing again: %+v; want nothing added", got)
	}

	rep, err := ledger.Audit(ctx, db)
	if err != nil || !rep.OK() {
		var buf bytes.Buffer
		rep.Write(&buf)
		t.Fatalf("ledger audit: %v\n%s", err, buf.String())
	}
}
