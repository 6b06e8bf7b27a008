//go:build chaos

// Chaos tests: they kill processes (the hub, its worker, a private
// PostgreSQL, a private Redis) under load and check the promises of
// docs/reliability.md afterwards. Run them with `make chaos`; they are not
// part of `make test` (they take about a minute and need the PostgreSQL
// server binaries under /usr/lib/postgresql/*/bin).
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
)

// ---- a private PostgreSQL that the test may kill ----

type privatePG struct {
	t    *testing.T
	bin  string
	dir  string
	port string
	asPG bool // running as root: the server runs as the postgres user
}

func pgBin(t *testing.T) string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		t.Skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
	}
	return filepath.Dir(matches[len(matches)-1])
}

func (p *privatePG) run(name string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	if p.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// startPrivatePG initdbs a cluster in a temporary directory and starts it on
// a free port; it is stopped (immediately) when the test ends.
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	dir, err := os.MkdirTemp("", "hub-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privatePG{t: t, bin: pgBin(t), dir: dir, asPG: os.Geteuid() == 0}
	_, p.port, _ = strings.Cut(freeAddr(t), ":")
	if p.asPG {
		if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	p.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	p.start()
	t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(p.bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop").Run()
		_ = exec.Command(filepath.Join(p.bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop").Run()
		_ = os.RemoveAll(dir)
	})
	return p
}

func (p *privatePG) start() {
	p.t.Helper()
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w",
		"-o", fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
}

// crash stops the server without a shutdown checkpoint, as a crash would.
func (p *privatePG) crash() {
	p.t.Helper()
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
}

func (p *privatePG) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/%s?sslmode=disable&connect_timeout=2", p.port, db)
}

// noLimits lifts the per-client rate limit: the load is one client.
const noLimits = "HUB_CLIENT_RATE=100000"

// ---- a coalition to load ----

// world is one earn partner with a client, and members to earn for.
type world struct {
	db      *gorm.DB
	dbURL   string
	client  access.ClientSecret
	members []int64
	prefix  string // starts the keys of this run's earns (TestChaosCluster)
}

// seedWorld migrates dbURL (through the real binary) and creates a partner
// with a contract, an earn rule (1 point per EUR), a client with every
// points scope and n members.
func seedWorld(t *testing.T, dbURL string, n int) *world {
	t.Helper()
	if out, err := runHub(t, []string{"HUB_DATABASE_URL=" + dbURL}, "migrate", "up"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	ctx := context.Background()
	db, err := database.Open(ctx, dbURL, database.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
	})
	key, _ := base64.StdEncoding.DecodeString(testSecretsKey)
	ps := partners.NewService(db, nil)
	acc, err := access.NewService(db, ps, access.Options{Issuer: "http://hub.chaos", SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ps.CreatePartner(ctx, partners.NewPartner{Name: "Harbour Hotels", Sector: partners.SectorHotel, SettlementCurrency: "EUR", TimeZone: "UTC"})
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
	w := &world{db: db, dbURL: dbURL, client: cs}
	ms := members.NewService(db, ledger.NewService(db, time.Now), time.Now)
	for i := range n {
		m, _, err := ms.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail,
			Value: fmt.Sprintf("m%d@chaos.example", i)}, Actor: "chaos"})
		if err != nil {
			t.Fatal(err)
		}
		w.members = append(w.members, m.ID)
	}
	return w
}

// token gets an access token from the hub at base.
func (w *world) token(t *testing.T, base string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(w.client.Client.ClientID), url.QueryEscape(w.client.Secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

// attempt is one earn request of the load and what came back.
type attempt struct {
	key     string
	member  int64
	status  int // 0: no answer (connection error or timeout)
	id      int64
	elapsed time.Duration
	code    string // problem code, if any
	ctype   string
}

func earnBody(a attempt) []byte {
	b, _ := json.Marshal(map[string]any{"member_id": a.member, "amount": map[string]any{"minor": 1000, "currency": "EUR"}, "external_ref": a.key})
	return b
}

func postEarn(client *http.Client, base, token string, a attempt) attempt {
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/earn", bytes.NewReader(earnBody(a)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", a.key)
	start := time.Now()
	res, err := client.Do(req)
	a.elapsed = time.Since(start)
	if err != nil {
		return a
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	a.status, a.ctype = res.StatusCode, res.Header.Get("Content-Type")
	var out struct {
		ID   int64  `json:"id"`
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &out)
	a.id, a.code = out.ID, out.Code
	return a
}

// load fires earns from workers goroutines at *base until stop is closed.
func load(w *world, base *atomic.Pointer[string], token string, workers int, stop <-chan struct{}) func() []attempt {
	var mu sync.Mutex
	var all []attempt
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := postEarn(client, *base.Load(), token, attempt{key: fmt.Sprintf("g%d-%d", g, i), member: w.members[(g+i)%len(w.members)]})
				mu.Lock()
				all = append(all, a)
				mu.Unlock()
				if a.status < 200 || a.status > 299 {
					time.Sleep(50 * time.Millisecond) // a client backing off
				}
			}
		}()
	}
	return func() []attempt { wg.Wait(); return all }
}

// checkExactlyOnce retries every attempt on the hub at base and checks that
// each key ends up as exactly one ledger transaction, that every attempt
// acknowledged with a 2xx is replayed with its original id, and that the
// ledger audit passes.
func checkExactlyOnce(t *testing.T, w *world, base, token string, attempts []attempt) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	acked := 0
	for _, a := range attempts {
		r := postEarn(client, base, token, attempt{key: a.key, member: a.member})
		if r.status != 201 {
			t.Errorf("retry of %s: %d %s; want 201", a.key, r.status, r.code)
			continue
		}
		if a.status >= 200 && a.status < 300 {
			acked++
			if r.id != a.id {
				t.Errorf("%s was acknowledged as transaction %d but replays as %d", a.key, a.id, r.id)
			}
		}
	}
	var dup []struct {
		ExternalRef string
		N           int64
	}
	if err := w.db.Raw(`SELECT external_ref, count(*) AS n FROM ledger_transactions WHERE type = 'earn' GROUP BY external_ref HAVING count(*) <> 1`).Scan(&dup).Error; err != nil {
		t.Fatal(err)
	}
	if len(dup) > 0 {
		t.Errorf("earns recorded more than once: %v", dup)
	}
	var n int64
	w.db.Raw(`SELECT count(*) FROM ledger_transactions WHERE type = 'earn'`).Scan(&n)
	if n != int64(len(attempts)) {
		t.Errorf("%d earns in the ledger after retrying %d keys; want one each", n, len(attempts))
	}
	if acked == 0 {
		t.Errorf("no earn was acknowledged: the load did not run")
	}
	if out, err := runHub(t, []string{"HUB_DATABASE_URL=" + w.dbURL, "HUB_SECRETS_KEY=" + testSecretsKey}, "audit"); err != nil {
		t.Errorf("audit: %v\n%s", err, out)
	}
	t.Logf("%d attempts, %d acknowledged before the fault", len(attempts), acked)
}

// 1. kill -9 under earn load: nothing acknowledged is lost or doubled.
func TestChaosKill9UnderEarnLoad(t *testing.T) {
	_, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	w := seedWorld(t, dbURL, 20)
	env := []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL, noLimits}
	hub := startHub(t, env, "serve")
	token := w.token(t, hub.URL)
	var base atomic.Pointer[string]
	base.Store(&hub.URL)
	stop := make(chan struct{})
	wait := load(w, &base, token, 8, stop)
	time.Sleep(1500 * time.Millisecond)
	if err := hub.cmd.Process.Kill(); err != nil { // kill -9
		t.Fatal(err)
	}
	<-hub.done
	time.Sleep(300 * time.Millisecond)
	close(stop)
	attempts := wait()

	hub2 := startHub(t, env, "serve")
	// The new process listens elsewhere (its issuer differs): a new token.
	checkExactlyOnce(t, w, hub2.URL, w.token(t, hub2.URL), attempts)
}

// 3. PostgreSQL crash and restart under load: requests fail fast with 503
// problem+json, the hub recovers without a restart, nothing is partial.
func TestChaosPostgresRestartUnderLoad(t *testing.T) {
	pg := startPrivatePG(t)
	ks := testredis.New(t)
	w := seedWorld(t, pg.url("hub"), 20)
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + w.dbURL, "HUB_REDIS_URL=" + ks.URL, noLimits}, "serve")
	token := w.token(t, hub.URL)
	var base atomic.Pointer[string]
	base.Store(&hub.URL)
	stop := make(chan struct{})
	wait := load(w, &base, token, 6, stop)
	time.Sleep(time.Second)
	pg.crash()
	down := time.Now()
	time.Sleep(2 * time.Second)
	// While the database is down, answers come fast and say 503.
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 5 {
		a := postEarn(client, hub.URL, token, attempt{key: fmt.Sprintf("down-%d", i), member: w.members[0]})
		if a.status != 503 || a.ctype != "application/problem+json" || a.code != "unavailable" || a.elapsed > 3*time.Second {
			t.Errorf("earn with PostgreSQL down: %d %s %q after %v; want a 503 unavailable problem within 3s", a.status, a.code, a.ctype, a.elapsed)
		}
	}
	if code, _ := getJSON(t, hub.URL+"/readyz"); code != 503 {
		t.Errorf("/readyz with PostgreSQL down: %d; want 503", code)
	}
	pg.start()
	t.Logf("PostgreSQL was down %v", time.Since(down))
	// The same process serves again once the database is back.
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := postEarn(client, hub.URL, token, attempt{key: "back", member: w.members[0]})
		if a.status == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub did not recover within 15s of PostgreSQL returning: last %d %s", a.status, a.code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	attempts := wait()
	slow := 0
	for _, a := range attempts {
		if a.status == 0 || a.elapsed > 5*time.Second {
			slow++
		}
		if a.status >= 500 && a.status != 503 {
			t.Errorf("%s answered %d %s; want 2xx or 503", a.key, a.status, a.code)
		}
	}
	if slow > 0 {
		t.Errorf("%d requests hung (no answer or >5s) during the outage", slow)
	}
	attempts = append(attempts, attempt{key: "back", member: w.members[0]})
	for i := range 5 {
		attempts = append(attempts, attempt{key: fmt.Sprintf("down-%d", i), member: w.members[0]})
	}
	checkExactlyOnce(t, w, hub.URL, token, attempts)
}

// 2. Redis outage under load: earns keep succeeding; webhooks go out once
// Redis is back, one per event, none lost or doubled.
func TestChaosRedisOutageUnderLoad(t *testing.T) {
	_, dbURL := testdb.NewWithURL(t)
	rs := testredis.StartServer(t)
	w := seedWorld(t, dbURL, 10)
	var mu sync.Mutex
	got := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &ev)
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	// The receiver is on loopback over http: allowed only with the development setting.
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + rs.URL(), noLimits,
		"HUB_WEBHOOK_ALLOW_LOOPBACK=1"}, "all")
	token := w.token(t, hub.URL)
	// The webhook endpoint, through the partner's own API (needs no scope).
	req, _ := http.NewRequest(http.MethodPost, hub.URL+"/v1/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`","events":["transaction.*"]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("webhook endpoint: %v %v", err, res)
	}
	res.Body.Close()

	var base atomic.Pointer[string]
	base.Store(&hub.URL)
	stop := make(chan struct{})
	wait := load(w, &base, token, 4, stop)
	time.Sleep(700 * time.Millisecond)
	rs.Stop()
	time.Sleep(2 * time.Second)
	rs.Start()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	attempts := wait()
	for _, a := range attempts {
		if a.status != 201 {
			t.Errorf("earn %s during the Redis outage: %d %s; want 201", a.key, a.status, a.code)
		}
	}
	// Every posted earn becomes exactly one delivered event.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(attempts) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Second) // let doubles, if any, arrive
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(attempts) {
		var state []struct {
			TaskType string
			Relayed  bool
			N        int64
		}
		w.db.Raw(`SELECT task_type, sent_at IS NOT NULL AS relayed, count(*) AS n FROM outbox GROUP BY 1, 2 ORDER BY 1, 2`).Scan(&state)
		t.Errorf("%d distinct webhook events delivered for %d earns; outbox: %+v", len(got), len(attempts), state)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times; want once", id, n)
		}
	}
	checkExactlyOnce(t, w, hub.URL, token, attempts)
}
