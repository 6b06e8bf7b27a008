package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

// pinMembers are the first burn members, who also have a PIN (burn-pin).
const pinMembers = 2000

// redemptionCode is member's code in issue round r: what the member's app
// would show at the till. issueCodes stores its hash as the members package
// does (SHA-256 of the member id, big-endian, and the code), with SQL.
func redemptionCode(member int64, round int) string {
	return fmt.Sprintf("%06d", (member*7919+int64(round)*104729)%1_000_000)
}

// issueCodes gives every burn member a fresh single-use redemption code
// (round r), revoking the live ones, as members.BurnConsent.IssueCode does
// one member at a time: a burn workload spends each member's code once.
func issueCodes(ctx context.Context, db *gorm.DB, s seeded, round int) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE member_redemption_codes SET revoked_at = now()
			WHERE used_at IS NULL AND revoked_at IS NULL`).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO member_redemption_codes (member_id, code_hash, created_at, expires_at)
			SELECT id, sha256(int8send(id) || convert_to(lpad(((id * 7919 + ? * 104729) % 1000000)::text, 6, '0'), 'UTF8')),
			       now(), now() + interval '1 day'
			FROM generate_series(?::bigint, ?::bigint) AS id`, round, s.minMember, s.minMember+s.burnMembers-1).Error
	})
}

// benchPIN is every burn member's PIN. Its bcrypt hash is made at
// bcrypt.MinCost: a PIN check then costs ~1 ms of CPU instead of ~60 ms at
// the default cost, so the burn benchmark measures the ledger, not bcrypt.
// docs/performance.md says what that means for production.
const benchPIN = "2468"

// Machine describes where the numbers came from.
type Machine struct {
	CPUs              int    `json:"cpus"`
	CPUModel          string `json:"cpu_model"`
	MemoryMB          int64  `json:"memory_mb"`
	Postgres          string `json:"postgres"`
	SynchronousCommit string `json:"synchronous_commit"`
	SharedBuffers     string `json:"shared_buffers"`
	Fsync             string `json:"fsync"`
}

func machineInfo(ctx context.Context, db *gorm.DB) Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		var kb int64
		_, _ = fmt.Fscanf(f, "MemTotal: %d kB", &kb)
		m.MemoryMB = kb / 1024
		f.Close()
	}
	db = db.WithContext(ctx)
	db.Raw(`SELECT current_setting('server_version')`).Scan(&m.Postgres)
	db.Raw(`SELECT current_setting('synchronous_commit')`).Scan(&m.SynchronousCommit)
	db.Raw(`SELECT current_setting('shared_buffers')`).Scan(&m.SharedBuffers)
	db.Raw(`SELECT current_setting('fsync')`).Scan(&m.Fsync)
	return m
}

// resetDatabase drops and recreates the database of dbURL and migrates it
// with the hub binary (`hub migrate up`), so the schema is exactly the hub's.
func resetDatabase(ctx context.Context, o options, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(ctx, withDatabase(dbURL, "postgres"))
	if err != nil {
		return fmt.Errorf("connect to the postgres database: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, o.hubBin, "migrate", "up")
	cmd.Env = append(os.Environ(), "HUB_DATABASE_URL="+dbURL, "HUB_REDIS_URL="+o.redisURL, "HUB_LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s migrate up: %w\n%s", o.hubBin, err, out)
	}
	return nil
}

// seeded is what the HTTP workloads need to know about the seeded coalition.
type seeded struct {
	partners []benchPartner
	// members are ids minMember..maxMember; burn members (funded, with a
	// PIN) are minMember..minMember+burnMembers-1.
	minMember, maxMember int64
	burnMembers          int64
	codeRound            int // the redemption codes in force (issueCodes)
}

type benchPartner struct {
	ID       int64
	ClientID string
	Secret   string
}

// seed creates the programme (policy, tiers) and partners (active, an
// earn-and-burn contract, an earn rule of 1 point per EUR with tier
// multipliers, an API client with every scope) through the services, and
// members and PINs with set-based SQL.
func seed(ctx context.Context, o options, db *gorm.DB, key string) (seeded, error) {
	var s seeded
	k, err := access.ParseSecretsKey(key)
	if err != nil {
		return s, err
	}
	start := time.Now().UTC().Add(-time.Hour)
	// Contracts and rules may not start in the past: publish them on a
	// clock just before start, so that they are in force for the whole run.
	clock := func() time.Time { return start.Add(-time.Minute) }
	ps := partners.NewService(db, clock)
	acc, err := access.NewService(db, ps, access.Options{Issuer: "http://bench", SecretsKey: k, Now: clock})
	if err != nil {
		return s, err
	}
	rs := rules.NewService(db, clock)
	// The programme of the demo coalition (cmd/hub/demo): a rolling 12-month
	// window, points expiring after 24 months, three earned tiers. Every
	// partner's rule multiplies by tier, so an earn reads the member's tier,
	// and members crossing a threshold during the run are upgraded: the
	// programme costs what it costs in production.
	prog := programme.NewService(db, nil, nil, nil, clock)
	if _, err := prog.SetPolicy(ctx, programme.Policy{Currency: "EUR", ExpiryMode: programme.ExpiryFixedLifetime,
		ExpiryMonths: 24, NoticeDays: 30, TransferMin: 100, TierWindow: programme.WindowRolling12Months,
		TierDowngrade: programme.DowngradeOneLevel}); err != nil {
		return s, fmt.Errorf("programme policy: %w", err)
	}
	for _, t := range []programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 5000}},
		{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[programme.Metric]int64{programme.MetricPoints: 15000}},
	} {
		if _, err := prog.PutTier(ctx, t); err != nil {
			return s, fmt.Errorf("tier %s: %w", t.Code, err)
		}
	}
	for i := 0; i < o.partners; i++ {
		p, err := ps.CreatePartner(ctx, partners.NewPartner{Name: fmt.Sprintf("Bench Partner %02d", i+1),
			Sector: partners.SectorRetail, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
		if err != nil {
			return s, fmt.Errorf("create partner: %w", err)
		}
		if _, err := ps.SetPartnerStatus(ctx, p.ID, partners.StatusActive); err != nil {
			return s, err
		}
		if _, err := ps.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: start, Earn: true, Burn: true,
			IssuePrice: decimal.RequireFromString("0.0100"), RedemptionRate: decimal.RequireFromString("0.0070"),
			Currency: "EUR", Billing: partners.BillingPostpaid}, "bench"); err != nil {
			return s, fmt.Errorf("publish contract: %w", err)
		}
		if _, err := rs.PublishRule(ctx, p.ID, rules.RuleDefinition{Description: "1 point per EUR, tier bonus",
			Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Rate: decimal.NewFromInt(1),
				Currency: "EUR", PerMinor: 100}},
			Multipliers: rules.Multipliers{Tier: []rules.TierMultiplier{
				{Tier: "silver", Rate: decimal.RequireFromString("1.25")}, {Tier: "gold", Rate: decimal.RequireFromString("1.5")}}},
		}, start, "bench"); err != nil {
			return s, fmt.Errorf("publish rule: %w", err)
		}
		sec, err := acc.CreateClient(ctx, p.ID, access.NewClient{Name: "bench", Scopes: []access.Scope{
			access.ScopePointsEarn, access.ScopePointsBurn, access.ScopePointsReverse, access.ScopeMembersRead}})
		if err != nil {
			return s, fmt.Errorf("create client: %w", err)
		}
		s.partners = append(s.partners, benchPartner{ID: p.ID, ClientID: sec.Client.ClientID, Secret: sec.Secret})
	}
	if err := db.WithContext(ctx).Exec(`INSERT INTO members (given_name, family_name, created_at, updated_at)
		SELECT 'Bench', 'Member ' || g, now(), now() FROM generate_series(1, ?) g`, o.members).Error; err != nil {
		return s, fmt.Errorf("insert members: %w", err)
	}
	if err := db.WithContext(ctx).Raw(`SELECT min(id), max(id) FROM members`).Row().Scan(&s.minMember, &s.maxMember); err != nil {
		return s, err
	}
	s.burnMembers = int64(o.burnMembers)
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPIN), bcrypt.MinCost)
	if err != nil {
		return s, err
	}
	if err := db.WithContext(ctx).Exec(`INSERT INTO member_pins (member_id, pin_hash, updated_at)
		SELECT id, ?, now() FROM members WHERE id < ?`, string(hash), s.minMember+min(s.burnMembers, pinMembers)).Error; err != nil {
		return s, fmt.Errorf("insert PINs: %w", err)
	}
	return s, db.WithContext(ctx).Exec(`ANALYZE`).Error
}

// hubProc is the `hub all` child process under load.
type hubProc struct {
	URL  string
	cmd  *exec.Cmd
	done chan error
	logs *os.File
}

// startHub starts `hub all` against the bench database with the per-client
// rate limit lifted and waits for /readyz.
func startHub(ctx context.Context, o options, dbURL, key string) (*hubProc, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.hubPort))
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	keyDir, err := os.MkdirTemp("", "hubbench-keys-")
	if err != nil {
		return nil, err
	}
	logs, err := os.CreateTemp("", "hubbench-hub-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.hubBin, "all")
	cmd.Env = append(os.Environ(), "HUB_DATABASE_URL="+dbURL, "HUB_REDIS_URL="+o.redisURL, "HUB_HTTP_ADDR="+addr,
		"HUB_SECRETS_KEY="+key, "HUB_SIGNING_KEY_DIR="+keyDir, "HUB_LOG_LEVEL=warn",
		"HUB_CLIENT_RATE=1000000", "HUB_CLIENT_BURST=1000000", fmt.Sprintf("HUB_DB_MAX_CONNS=%d", o.hubConns),
		"HUB_SHUTDOWN_TIMEOUT=10s", "HUB_WORKER_CONCURRENCY=4")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s all: %w", o.hubBin, err)
	}
	h := &hubProc{URL: "http://" + addr, cmd: cmd, done: make(chan error, 1), logs: logs}
	go func() { h.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-h.done:
			return nil, fmt.Errorf("hub exited during start-up (%v); log in %s", err, logs.Name())
		case <-ctx.Done():
			h.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(h.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h, nil
			}
		}
	}
	h.stop()
	return nil, fmt.Errorf("hub not ready after 30s; log in %s", logs.Name())
}

// stop sends SIGTERM and waits for a graceful exit (SIGKILL after 15s).
func (h *hubProc) stop() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
	h.logs.Close()
}

// rss returns the hub process's resident set size in MB (from /proc).
func (h *hubProc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb / 1024
		}
	}
	return 0
}

func openDB(ctx context.Context, dbURL string) (*gorm.DB, error) {
	return database.Open(ctx, dbURL, database.Options{MaxConns: 8})
}
