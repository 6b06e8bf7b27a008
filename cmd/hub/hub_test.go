package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
)

// The test binary doubles as the hub: with HUB_RUN_AS_HUB set it runs main()
// with the arguments that follow "--". End-to-end tests start it as a real
// process, so they exercise flags, signals and exit codes like production.
// HUB_TEST_CLOCK_SHIFT (a Go duration) runs that hub's clock ahead of the
// wall clock, so a test can close the month it posted in; only the test
// binary reads it.
func TestMain(m *testing.M) {
	if os.Getenv("HUB_RUN_AS_HUB") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"hub"}, os.Args[i+1:]...)
				break
			}
		}
		now := time.Now
		if shift := os.Getenv("HUB_TEST_CLOCK_SHIFT"); shift != "" {
			d, err := time.ParseDuration(shift)
			if err != nil {
				panic("HUB_TEST_CLOCK_SHIFT: " + err.Error())
			}
			now = func() time.Time { return time.Now().Add(d) }
		}
		runMain(now)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testSecretsKey seals secrets in test hubs (base64 of 32 bytes; tests only).
var testSecretsKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// hubProc is a running hub process.
type hubProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string
	mu   sync.Mutex
	logs strings.Builder
	done chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runHub runs a hub subcommand to completion and returns its combined output.
func runHub(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "HUB_RUN_AS_HUB=1"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startHub starts `hub <args>` with env and waits until /healthz answers.
// A start that fails for the machine's sake, not the hub's (the free port it
// was given was taken meanwhile, or the shared PostgreSQL has no connection
// slot left), is tried again.
func startHub(t *testing.T, env []string, args ...string) *hubProc {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := tryStartHub(t, env, deadline, args...)
		if err == nil {
			return p
		}
		logs := p.Logs()
		if time.Now().Before(deadline) && (strings.Contains(logs, "address already in use") || strings.Contains(logs, "SQLSTATE 53300")) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		t.Fatalf("%v\n%s", err, logs)
	}
}

// tryStartHub starts one hub process and waits until /healthz answers, the
// process exits, or the deadline passes.
func tryStartHub(t *testing.T, env []string, deadline time.Time, args ...string) (*hubProc, error) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	// Every request of a test comes from 127.0.0.1: the per-IP limit on
	// sign-ins and emailed links (5 at once, then one per 5 s) would refuse
	// a browser test's steps when the machine runs them fast. The limit's
	// own tests are in web (TestLoginRateLimitedPerIP).
	cmd.Env = append(append(os.Environ(), "HUB_RUN_AS_HUB=1", "HUB_HTTP_ADDR="+addr, "HUB_SHUTDOWN_TIMEOUT=5s",
		"HUB_DB_MAX_CONNS=10", "HUB_SIGNING_KEY_DIR="+t.TempDir(), "HUB_SECRETS_KEY="+testSecretsKey,
		"HUB_LOGIN_BURST=1000"), env...)
	p := &hubProc{t: t, cmd: cmd, URL: "http://" + addr, done: make(chan error, 1)}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hub: %v", err)
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
			t.Logf("hub logs:\n%s", p.Logs())
		}
	})
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case err := <-p.done:
			return p, fmt.Errorf("hub exited before serving: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p, fmt.Errorf("hub did not answer /healthz within 2 minutes")
}

func (p *hubProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *hubProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("hub did not stop within a minute of SIGTERM")
	}
}

// waitReady polls /readyz until it answers 200. Readiness pings PostgreSQL
// and Redis with a 2 s budget, which a loaded machine may overrun once;
// a hub that never becomes ready fails the test.
func waitReady(t *testing.T, base string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := getJSON(t, base+"/readyz")
		if code == 200 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %v for 2 minutes; want 200 ready", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

func TestServeReadyMetricsAndGracefulStop(t *testing.T) {
	t.Parallel()
	_, dbURL := testdb.NewWithURL(t)
	ks := testredis.New(t)
	p := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + ks.URL}, "all")

	if body := waitReady(t, p.URL); body["ready"] != true {
		t.Fatalf("/readyz: %v; want ready", body)
	}
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `hub_http_request_duration_seconds_count{method="GET",route="/readyz",status="200"}`) {
		t.Fatalf("/metrics lacks the request latency of /readyz:\n%.2000s", metrics)
	}
	// Unknown routes answer problem+json with a request id echoed.
	req, _ := http.NewRequest("GET", p.URL+"/v1/nothing-here", nil)
	req.Header.Set("X-Request-Id", "trace-123")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" ||
		resp.Header.Get("X-Request-Id") != "trace-123" {
		t.Fatalf("unknown route: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Request-Id"))
	}

	if err := p.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	logs := p.Logs()
	for _, want := range []string{"HTTP server stopped", "worker stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q after SIGTERM", want)
		}
	}
	// Logs are JSON, one object per line.
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

func TestServeKeepsServingWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	_, dbURL := testdb.NewWithURL(t)
	srv := testredis.StartServer(t)
	srv.Stop()
	p := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + srv.URL()}, "serve")
	// Every answer names Redis; PostgreSQL is ok once its ping fits the
	// 2 s budget (a loaded machine may overrun it once).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := getJSON(t, p.URL+"/readyz")
		checks, _ := body["checks"].(map[string]any)
		if code != 503 || checks["redis"] != "unreachable" {
			t.Fatalf("/readyz with Redis down: %d %v; want 503 naming redis", code, body)
		}
		if checks["postgres"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with Redis down: %v for 2 minutes; want postgres ok", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := getJSON(t, p.URL+"/healthz"); code != 200 {
		t.Fatalf("/healthz with Redis down: %d, want 200", code)
	}
	srv.Start()
	waitReady(t, p.URL) // recovers after Redis returns
}

func TestStartupErrorsAreActionable(t *testing.T) {
	t.Parallel()
	out, err := runHub(t, []string{"HUB_DATABASE_URL=postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, "serve")
	if err == nil || !strings.Contains(out, "cannot reach PostgreSQL") || !strings.Contains(out, "make services") {
		t.Fatalf("want an actionable PostgreSQL error, got err=%v out=%s", err, out)
	}
	out, err = runHub(t, []string{"HUB_DB_MAX_CONNS=lots"}, "serve")
	if err == nil || !strings.Contains(out, "HUB_DB_MAX_CONNS") {
		t.Fatalf("want an error naming HUB_DB_MAX_CONNS, got err=%v out=%s", err, out)
	}
	out, err = runHub(t, nil, "frobnicate")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: want exit 2, got %v %s", err, out)
	}
}

func TestMigrateStatusAndWorkerNeedsRedis(t *testing.T) {
	t.Parallel()
	_, dbURL := testdb.NewWithURL(t)
	out, err := runHub(t, []string{"HUB_DATABASE_URL=" + dbURL}, "migrate", "status")
	if err != nil || !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Fatalf("migrate status on a migrated database: %v\n%s", err, out)
	}
	out, err = runHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=redis://127.0.0.1:1/0"}, "worker")
	if err == nil || !strings.Contains(out, "cannot reach Redis") {
		t.Fatalf("worker without Redis: want an actionable error, got %v\n%s", err, out)
	}
}
