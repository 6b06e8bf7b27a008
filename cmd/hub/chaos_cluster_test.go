//go:build chaos

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
)

// The cluster of `make cluster` (scripts/cluster.sh) under earn load through
// HAProxy, faulted four times: kill -9 of a serve process, kill -9 of a
// worker, the Redis primary stopped (the Sentinels promote its replica),
// kill -9 of the PostgreSQL primary and pg_ctl promote of its replica. Every
// request carries an Idempotency-Key and is retried until it is
// acknowledged. After each fault: every acknowledged earn is in the ledger
// exactly once, `hub audit` passes, every earn's webhook event is delivered
// (one event id per earn), and no periodic job ran more often than its
// schedule allows. `make chaos-cluster` runs it; it reads the cluster's
// settings from the environment (.data/cluster/cluster.env).
func TestChaosCluster(t *testing.T) {
	lb := os.Getenv("HUB_PUBLIC_URL")
	dbURL := os.Getenv("HUB_DATABASE_URL")
	if lb == "" || !strings.Contains(dbURL, ",") {
		t.Skip("no cluster: run make chaos-cluster")
	}
	key, err := os.ReadFile(filepath.Join(os.Getenv("HUB_SIGNING_KEY_DIR"), "secrets.key"))
	if err != nil {
		t.Fatalf("the cluster's secrets key: %v", err)
	}
	testSecretsKey = strings.TrimSpace(string(key))
	ctx := context.Background()
	db, err := database.Open(ctx, dbURL, database.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	w := clusterWorld(t, dbURL, 20)
	w.db = db

	// A webhook receiver counting deliveries by event id.
	var mu sync.Mutex
	events := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		events[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	token := w.token(t, lb)
	req, _ := http.NewRequest(http.MethodPost, lb+"/v1/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`","events":["transaction.*"]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("webhook endpoint: %v %v", err, res)
	}
	res.Body.Close()

	periodic := watchPeriodic(t)
	l := startClusterLoad(w, lb, token, 6)
	started := time.Now()
	faults := []struct {
		name string
		args []string
		then []string // run after the check (bring the process back)
	}{
		{"kill -9 serve1", []string{"kill", "serve1"}, []string{"restart", "serve1"}},
		{"kill -9 worker1", []string{"kill", "worker1"}, []string{"restart", "worker1"}},
		{"Redis primary stopped, Sentinels promote", []string{"redis-failover"}, nil},
		{"kill -9 PostgreSQL primary, replica promoted", []string{"pg-failover"}, nil},
	}
	var report []string
	for _, f := range faults {
		time.Sleep(5 * time.Second) // load before the fault
		at := time.Now()
		if out, err := exec.Command("bash", append([]string{"../../scripts/cluster.sh"}, f.args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", f.name, err, out)
		}
		time.Sleep(8 * time.Second) // load after it
		recovery := l.longestGapAfter(at)
		if f.then != nil {
			if out, err := exec.Command("bash", append([]string{"../../scripts/cluster.sh"}, f.then...)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(f.then, " "), err, out)
			}
		}
		report = append(report, fmt.Sprintf("%s: longest wait between acknowledged earns %v", f.name, recovery.Round(10*time.Millisecond)))
	}
	time.Sleep(3 * time.Second)
	keys, requests, retried := l.stop()

	// Every key acknowledged, exactly once in the ledger.
	var dup []struct {
		ExternalRef string
		N           int64
	}
	if err := db.Raw(`SELECT external_ref, count(*) AS n FROM ledger_transactions
		WHERE type = 'earn' AND external_ref LIKE ? GROUP BY external_ref HAVING count(*) <> 1`, w.prefix+"%").Scan(&dup).Error; err != nil {
		t.Fatal(err)
	}
	if len(dup) > 0 {
		t.Errorf("earns recorded more than once: %v", dup)
	}
	var stored int64
	db.Raw(`SELECT count(*) FROM ledger_transactions WHERE type = 'earn' AND external_ref LIKE ?`, w.prefix+"%").Scan(&stored)
	lost := 0
	for _, k := range keys {
		var n int64
		db.Raw(`SELECT count(*) FROM ledger_transactions WHERE type = 'earn' AND external_ref = ?`, k).Scan(&n)
		if n != 1 {
			lost++
		}
	}
	if lost > 0 || stored != int64(len(keys)) {
		t.Errorf("%d acknowledged earns, %d in the ledger, %d not exactly once", len(keys), stored, lost)
	}
	if out, err := runHub(t, []string{"HUB_DATABASE_URL=" + dbURL}, "audit"); err != nil {
		t.Errorf("audit: %v\n%s", err, out)
	}

	// Every earn's event delivered, one event id each.
	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= len(keys) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // doubles, if any, arrive
	mu.Lock()
	delivered, redelivered := len(events), 0
	for _, n := range events {
		if n > 1 {
			redelivered++
		}
	}
	mu.Unlock()
	if delivered != len(keys) {
		t.Errorf("%d distinct webhook events for %d earns; want one each", delivered, len(keys))
	}

	// Periodic jobs: no type ran more often than its schedule allows.
	minutes := int(time.Since(started).Minutes()) + 2
	for typ, n := range periodic.stop() {
		limit := minutes // every minute at most (ledger:expire_holds)
		if typ != "ledger:expire_holds" {
			limit = minutes/5 + 2
		}
		if n > limit {
			t.Errorf("periodic %s ran %d times in %d minutes; want at most %d", typ, n, minutes, limit)
		}
	}

	for _, r := range report {
		t.Log("chaos_cluster_test: " + r)
	}
	t.Logf("chaos_cluster_test: %s: %d requests, %d earns acknowledged, %d retried requests, %d lost, %d webhook events (%d redelivered under the same id), %v in all",
		time.Now().UTC().Format("2006-01-02"), requests, len(keys), retried, lost, delivered, redelivered, time.Since(started).Round(time.Second))
}

// clusterWorld is seedWorld for a database that already holds the demo: a
// partner, rule, client and members of its own, named for this run.
func clusterWorld(t *testing.T, dbURL string, n int) *world {
	t.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, dbURL, database.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	ps := partners.NewService(db, nil)
	acc, err := access.NewService(db, ps, access.Options{Issuer: os.Getenv("HUB_PUBLIC_URL"), SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ps.CreatePartner(ctx, partners.NewPartner{Name: "Chaos Hotels " + run, Sector: partners.SectorHotel, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps.SetPartnerStatus(ctx, p.ID, partners.StatusActive); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: time.Now().AddDate(0, -2, 0), Earn: true, Burn: true,
		IssuePrice: decimal.RequireFromString("0.008"), RedemptionRate: decimal.RequireFromString("0.005"), Billing: partners.BillingPostpaid}, "chaos"); err != nil {
		t.Fatal(err)
	}
	def := rules.RuleDefinition{Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Currency: "EUR", Rate: decimal.NewFromInt(1), PerMinor: 100}}}
	if _, err := rules.NewService(db, time.Now).PublishRule(ctx, p.ID, def, time.Time{}, "chaos"); err != nil {
		t.Fatal(err)
	}
	cs, err := acc.CreateClient(ctx, p.ID, access.NewClient{Name: "pos", Scopes: []access.Scope{access.ScopePointsEarn, access.ScopeMembersRead}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, dbURL: dbURL, client: cs, prefix: "chaos-" + run + "-"}
	ms := members.NewService(db, ledger.NewService(db, time.Now), time.Now)
	for i := range n {
		m, _, err := ms.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail,
			Value: fmt.Sprintf("m%d-%s@chaos.example", i, run)}, Actor: "chaos"})
		if err != nil {
			t.Fatal(err)
		}
		w.members = append(w.members, m.ID)
	}
	return w
}

// clusterLoad posts earns from several goroutines, each key retried (with
// the same Idempotency-Key) until it is acknowledged.
type clusterLoad struct {
	halt     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    []string
	ackTimes []time.Time
	requests atomic.Int64
	retried  atomic.Int64
}

func startClusterLoad(w *world, base, token string, workers int) *clusterLoad {
	l := &clusterLoad{halt: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for g := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				a := attempt{key: fmt.Sprintf("%sg%d-%d", w.prefix, g, i), member: w.members[(g+i)%len(w.members)]}
				for try := 0; ; try++ {
					select {
					case <-l.halt:
						if try == 0 {
							return
						}
					default:
					}
					if try > 0 {
						l.retried.Add(1)
					}
					l.requests.Add(1)
					r := postEarn(client, base, token, a)
					if r.status == 201 || r.status == 200 {
						l.mu.Lock()
						l.acked = append(l.acked, a.key)
						l.ackTimes = append(l.ackTimes, time.Now())
						l.mu.Unlock()
						break
					}
					time.Sleep(200 * time.Millisecond) // a client backing off
				}
			}
		}()
	}
	return l
}

// stop ends the load once every started key is acknowledged.
func (l *clusterLoad) stop() (keys []string, requests, retried int64) {
	close(l.halt)
	l.wg.Wait()
	return l.acked, l.requests.Load(), l.retried.Load()
}

// longestGapAfter is the longest time without an acknowledged earn from at
// until now: how long the fault at at held the clients up.
func (l *clusterLoad) longestGapAfter(at time.Time) time.Duration {
	l.mu.Lock()
	times := append([]time.Time(nil), l.ackTimes...)
	l.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	prev := at
	for _, x := range times {
		if x.Before(at) {
			continue
		}
		gap = max(gap, x.Sub(prev))
		prev = x
	}
	return gap
}

// periodicWatch adds up the periodic jobs both workers ran, from their
// /metrics, across restarts (a counter that drops restarted from zero).
type periodicWatch struct {
	halt chan struct{}
	done chan map[string]int
}

var periodicTypes = []string{"ledger:expire_holds", "catalog:expire_orders", "exchange:poll", "partners:prepaid_alerts"}

func watchPeriodic(t *testing.T) *periodicWatch {
	t.Helper()
	urls := []string{"http://127.0.0.1:18520/metrics", "http://127.0.0.1:18521/metrics"}
	scrape := func(u string) map[string]int {
		out := map[string]int{}
		res, err := http.Get(u)
		if err != nil {
			return nil
		}
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "hub_jobs_total{") {
				continue
			}
			for _, typ := range periodicTypes {
				if strings.Contains(line, `type="`+typ+`"`) {
					f := strings.Fields(line)
					n, _ := strconv.ParseFloat(f[len(f)-1], 64)
					out[typ] += int(n)
				}
			}
		}
		return out
	}
	p := &periodicWatch{halt: make(chan struct{}), done: make(chan map[string]int, 1)}
	base := make([]map[string]int, len(urls))
	for i, u := range urls {
		base[i] = scrape(u)
	}
	go func() {
		total := map[string]int{}
		last := base
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			for i, u := range urls {
				now := scrape(u)
				if now == nil {
					continue // the worker is down
				}
				for _, typ := range periodicTypes {
					if d := now[typ] - last[i][typ]; d >= 0 {
						total[typ] += d
					} else {
						total[typ] += now[typ] // restarted
					}
				}
				last[i] = now
			}
			select {
			case <-p.halt:
				p.done <- total
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *periodicWatch) stop() map[string]int {
	close(p.halt)
	return <-p.done
}
