// Command hubbench measures what the hub sustains: closed-loop HTTP load
// against a real `hub all` process (earn spread over partners, earn through
// one hot partner, one-step burn, a 70/20/10 mix, batch earn) and the close
// of a generated settlement month. It seeds its own database (hub_bench by
// default, dropped and recreated; never the demo database), checks after
// every run that each operation acknowledged with a 2xx exists exactly once
// and that the ledger audit passes, prints a table and writes a JSON result
// under bench-results/.
//
//	go run ./cmd/hubbench -quick            # what `make bench` runs
//	go run ./cmd/hubbench -duration 60s -clients 16 -settle-tx 5000000 -settle-members 1000000
//
// These are measurements, not pass/fail tests: the targets in docs/performance.md are
// printed beside the numbers. See docs/performance.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command line of one bench run.
type options struct {
	dbURL         string
	redisURL      string
	hubBin        string
	outDir        string
	workloads     []string
	clients       int
	duration      time.Duration
	partners      int
	members       int
	burnMembers   int
	batchSize     int
	batchClients  int
	hubConns      int
	hubPort       int
	settleTx      int
	settleMembers int
	settlePartner int
	keep          bool
}

var allWorkloads = []string{"earn-spread", "earn-hot", "burn", "burn-pin", "mix", "batch", "settle"}

// earnScale is what the workload earn-scale stands for: single earns at 1, 4,
// 16 and 64 clients, so that the group commit's cost at low load (p50 at one
// client) shows beside its gain at high load. Any workload may be written
// with "@clients" that way.
var earnScale = []string{"earn-spread@1", "earn-spread@4", "earn-spread@16", "earn-spread@64"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "close-period" {
		// Child mode: close one period and report, so that the parent can
		// read this process's peak RSS from its rusage.
		if err := closePeriodChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "hubbench close-period:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv("GOGC") == "" {
		// The load generator shares the machine with what it measures: it
		// collects garbage less often, as the hub does (cmd/hub/gc.go).
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hubbench:", err)
		os.Exit(2)
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "hubbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("hubbench", flag.ContinueOnError)
	var o options
	var workloads string
	quick := fs.Bool("quick", false, "the short `make bench` version: 10s per workload, 200k-transaction settlement month")
	fs.StringVar(&o.dbURL, "db", "", "database URL of the bench database (default: HUB_DATABASE_URL with the database name hub_bench); it is DROPPED and recreated")
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL for the bench hub (default: HUB_REDIS_URL with database 13)")
	fs.StringVar(&o.hubBin, "hub", "bin/hub", "the hub binary to start (built by `make build`)")
	fs.StringVar(&o.outDir, "out", "bench-results", "where the JSON result is written")
	fs.StringVar(&workloads, "workloads", strings.Join(allWorkloads, ","), "comma-separated workloads: "+strings.Join(allWorkloads, ", ")+
		", earn-scale ("+strings.Join(earnScale, ", ")+"); a workload@N runs with N clients")
	fs.IntVar(&o.clients, "clients", 16, "concurrent closed-loop clients")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "duration of each HTTP workload")
	fs.IntVar(&o.partners, "partners", 20, "partners (each with a contract, an earn rule and an API client)")
	fs.IntVar(&o.members, "members", 100000, "members of the HTTP workloads")
	fs.IntVar(&o.burnMembers, "burn-members", 0, "members funded for burns, each with a redemption code per workload (default: 2,500 per second of -duration, at most -members)")
	fs.IntVar(&o.batchSize, "batch-size", 200, "earns per batch request")
	fs.IntVar(&o.batchClients, "batch-clients", 4, "concurrent clients of the batch workload (each sends a whole batch)")
	fs.IntVar(&o.hubConns, "hub-conns", 32, "HUB_DB_MAX_CONNS of the bench hub")
	fs.IntVar(&o.hubPort, "hub-port", 0, "loopback port of the bench hub (default: any free port)")
	fs.IntVar(&o.settleTx, "settle-tx", 5_000_000, "transactions in the generated settlement month (0 skips)")
	fs.IntVar(&o.settleMembers, "settle-members", 1_000_000, "members in the generated settlement month")
	fs.IntVar(&o.settlePartner, "settle-partners", 20, "partners in the generated settlement month")
	fs.BoolVar(&o.keep, "keep", false, "keep the bench databases afterwards")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			o.duration = 10 * time.Second
		}
		if !set["members"] {
			o.members = 20000
		}
		if !set["settle-tx"] {
			o.settleTx = 200_000
		}
		if !set["settle-members"] {
			o.settleMembers = 50_000
		}
	}
	for _, w := range strings.Split(workloads, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if w == "earn-scale" {
			o.workloads = append(o.workloads, earnScale...)
			continue
		}
		kind, n, hasClients := strings.Cut(w, "@")
		if !contains(allWorkloads, kind) {
			return o, fmt.Errorf("unknown workload %q (have %s, earn-scale)", w, strings.Join(allWorkloads, ", "))
		}
		if c, err := strconv.Atoi(n); hasClients && (err != nil || c < 1 || kind == "settle") {
			return o, fmt.Errorf("workload %q: @ takes a number of clients >= 1, and not for settle", w)
		}
		o.workloads = append(o.workloads, w)
	}
	if o.burnMembers == 0 {
		o.burnMembers = min(o.members, int(2500*o.duration.Seconds()))
	}
	if o.clients < 1 || o.partners < 1 || o.members < o.burnMembers || o.burnMembers < 1 || o.batchSize < 1 || o.batchSize > 1000 || o.batchClients < 1 {
		return o, fmt.Errorf("need clients >= 1, partners >= 1, members >= burn-members >= 1, 1 <= batch-size <= 1000")
	}
	base := os.Getenv("HUB_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/hub?sslmode=disable"
	}
	if o.dbURL == "" {
		o.dbURL = withDatabase(base, "hub_bench")
	}
	if strings.Contains(o.dbURL, "/hub?") || strings.HasSuffix(o.dbURL, "/hub") {
		return o, fmt.Errorf("refusing to use the demo database %q: the bench drops its database", o.dbURL)
	}
	if o.redisURL == "" {
		r := os.Getenv("HUB_REDIS_URL")
		if r == "" {
			r = "redis://127.0.0.1:6379/0"
		}
		u, err := url.Parse(r)
		if err != nil {
			return o, fmt.Errorf("HUB_REDIS_URL: %w", err)
		}
		u.Path = "/13"
		o.redisURL = u.String()
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// withDatabase replaces the database name of a postgres URL.
func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

// Result is the JSON file of one bench run.
type Result struct {
	StartedAt  time.Time        `json:"started_at"`
	Machine    Machine          `json:"machine"`
	Options    map[string]any   `json:"options"`
	Workloads  []WorkloadResult `json:"workloads"`
	Settlement *SettleResult    `json:"settlement,omitempty"`
}

func run(ctx context.Context, o options) error {
	res := Result{StartedAt: time.Now().UTC(), Options: map[string]any{
		"clients": o.clients, "duration": o.duration.String(), "partners": o.partners, "members": o.members,
		"burn_members": o.burnMembers, "batch_size": o.batchSize, "batch_clients": o.batchClients, "hub_db_max_conns": o.hubConns,
		"settle_tx": o.settleTx, "settle_members": o.settleMembers, "settle_partners": o.settlePartner,
		"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0)}}
	var httpWorkloads []string
	for _, w := range o.workloads {
		if w != "settle" {
			httpWorkloads = append(httpWorkloads, w)
		}
	}
	var err error
	if len(httpWorkloads) > 0 {
		if res.Workloads, res.Machine, err = runHTTP(ctx, o, httpWorkloads); err != nil {
			return err
		}
	}
	if contains(o.workloads, "settle") && o.settleTx > 0 {
		s, m, err := runSettle(ctx, o)
		if err != nil {
			return err
		}
		res.Settlement = &s
		if res.Machine.CPUs == 0 {
			res.Machine = m
		}
	}
	printTable(os.Stdout, res)
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.outDir, "bench-"+res.StartedAt.Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nresult written to %s\n", path)
	for _, w := range res.Workloads {
		if !w.Verify.OK || !w.AuditOK {
			return fmt.Errorf("workload %s: verification failed (%s; audit ok=%v)", w.Name, w.Verify.Summary(), w.AuditOK)
		}
	}
	return nil
}

// secretsKey returns a fresh base64 32-byte key sealing the bench hub's secrets.
func secretsKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
