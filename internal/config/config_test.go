package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load with no environment: %v", err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("defaults: got addr %q public %q", c.HTTPAddr, c.PublicURL)
	}
	if c.EarnBatchMax != 64 || c.EarnBatchWait != time.Millisecond {
		t.Fatalf("defaults: earn batches of %d, waiting %s; want 64, 1ms", c.EarnBatchMax, c.EarnBatchWait)
	}
	if c.EarnBatchInFlight != 2 || c.LoginRate != 0.2 || c.LoginBurst != 5 {
		t.Fatalf("defaults: %d batches in flight, sign-ins %v/s burst %d; want 2, 0.2, 5", c.EarnBatchInFlight, c.LoginRate, c.LoginBurst)
	}
	if c.WebhookAllowLoopback {
		t.Fatal("defaults: webhooks to loopback allowed; want refused unless HUB_WEBHOOK_ALLOW_LOOPBACK=1")
	}
	if c, err := Load(env(map[string]string{"HUB_WEBHOOK_ALLOW_LOOPBACK": "1"})); err != nil || !c.WebhookAllowLoopback {
		t.Fatalf("HUB_WEBHOOK_ALLOW_LOOPBACK=1: got %v, %v", c.WebhookAllowLoopback, err)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]string{
		"HUB_DATABASE_URL":           {"HUB_DATABASE_URL": "mysql://x"},
		"HUB_REDIS_URL":              {"HUB_REDIS_URL": "http://x"},
		"HUB_DB_MAX_CONNS":           {"HUB_DB_MAX_CONNS": "zero"},
		"HUB_SHUTDOWN_TIMEOUT":       {"HUB_SHUTDOWN_TIMEOUT": "soon"},
		"HUB_OPERATOR_TZ":            {"HUB_OPERATOR_TZ": "Mars/Olympus"},
		"HUB_LOG_LEVEL":              {"HUB_LOG_LEVEL": "loud"},
		"HUB_PPROF_ADDR":             {"HUB_PPROF_ADDR": "0.0.0.0:6060"},
		"HUB_WEBHOOK_ALLOW_LOOPBACK": {"HUB_WEBHOOK_ALLOW_LOOPBACK": "yes"},
		"HUB_EARN_BATCH_MAX":         {"HUB_EARN_BATCH_MAX": "0"},
		"HUB_EARN_BATCH_WAIT":        {"HUB_EARN_BATCH_WAIT": "-1ms"},
		"HUB_SMTP_URL":               {"HUB_SMTP_URL": "http://mail.example"},
		"HUB_UNSUBSCRIBE_KEY":        {"HUB_UNSUBSCRIBE_KEY": "c2hvcnQ="},
		"HUB_MAIL_FROM":              {"HUB_MAIL_FROM": "not an address"},
		"HUB_EARN_BATCH_IN_FLIGHT":   {"HUB_EARN_BATCH_IN_FLIGHT": "0"},
		"HUB_LOGIN_RATE":             {"HUB_LOGIN_RATE": "-1"},
		"HUB_LOGIN_BURST":            {"HUB_LOGIN_BURST": "none"},
	}
	for name, e := range cases {
		_, err := Load(env(e))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: want an error naming the variable, got %v", name, err)
		}
	}
}

func TestRedactedHidesPassword(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"HUB_DATABASE_URL": "postgres://u:s3cret@db/hub", "HUB_SMTP_URL": "smtps://u:s3cret@mail.example"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range c.Redacted() {
		if s, ok := v.(string); ok && strings.Contains(s, "s3cret") {
			t.Fatalf("Redacted leaked the password: %q", s)
		}
	}
}

func TestPprofAddrLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"127.0.0.1:6060", "localhost:6060", "[::1]:6060"} {
		c, err := Load(env(map[string]string{"HUB_PPROF_ADDR": ok}))
		if err != nil || c.PprofAddr != ok {
			t.Errorf("%s: got %q, %v", ok, c.PprofAddr, err)
		}
	}
	for _, bad := range []string{":6060", "10.0.0.1:6060", "example.com:6060", "6060"} {
		if _, err := Load(env(map[string]string{"HUB_PPROF_ADDR": bad})); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil || c.TrustedProxies != nil {
		t.Fatalf("default: %v, %v; want no trusted proxy", c.TrustedProxies, err)
	}
	c, err = Load(env(map[string]string{"HUB_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,::1,"}))
	if err != nil || strings.Join(c.TrustedProxies, "|") != "10.0.0.0/8|192.168.1.7|::1" {
		t.Fatalf("list: %v, %v", c.TrustedProxies, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "10.0.0.1:80", "*"} {
		if _, err := Load(env(map[string]string{"HUB_TRUSTED_PROXIES": bad})); err == nil || !strings.Contains(err.Error(), "HUB_TRUSTED_PROXIES") {
			t.Errorf("%q: %v; want an error naming HUB_TRUSTED_PROXIES", bad, err)
		}
	}
}

func TestClusterSettings(t *testing.T) {
	t.Parallel()
	multi := "postgres://postgres@127.0.0.1:15450,127.0.0.1:15451/hub?sslmode=disable&target_session_attrs=read-write"
	c, err := Load(env(map[string]string{
		"HUB_DATABASE_URL":      multi,
		"HUB_DATABASE_READ_URL": "postgres://postgres@127.0.0.1:15451/hub?sslmode=disable",
		"HUB_READ_MAX_LAG":      "2s",
		"HUB_REDIS_SENTINELS":   "127.0.0.1:26450, 127.0.0.1:26451,localhost:26452",
		"HUB_REDIS_MASTER_NAME": "loyalty",
	}))
	if err != nil {
		t.Fatalf("cluster settings: %v", err)
	}
	if c.DatabaseURL != multi || c.ReadMaxLag != 2*time.Second || c.RedisMasterName != "loyalty" {
		t.Fatalf("got database %q, read lag %s, master %q", c.DatabaseURL, c.ReadMaxLag, c.RedisMasterName)
	}
	if strings.Join(c.RedisSentinels, "|") != "127.0.0.1:26450|127.0.0.1:26451|localhost:26452" {
		t.Fatalf("sentinels: %v", c.RedisSentinels)
	}
	d, err := Load(env(nil))
	if err != nil || d.DatabaseReadURL != "" || d.RedisSentinels != nil || d.ReadMaxLag != 5*time.Second || d.RedisMasterName != "hub" {
		t.Fatalf("defaults: read URL %q, sentinels %v, lag %s, master %q, %v; want none, none, 5s, hub",
			d.DatabaseReadURL, d.RedisSentinels, d.ReadMaxLag, d.RedisMasterName, err)
	}
	bad := map[string]map[string]string{
		"HUB_DATABASE_URL":      {"HUB_DATABASE_URL": "postgres://u@h1:5432,h2/hub"},
		"HUB_DATABASE_URL ":     {"HUB_DATABASE_URL": "postgres://u@h1:5432/hub?target_session_attrs=writable"},
		"HUB_DATABASE_READ_URL": {"HUB_DATABASE_READ_URL": "redis://replica"},
		"HUB_READ_MAX_LAG":      {"HUB_READ_MAX_LAG": "0s"},
		"HUB_REDIS_SENTINELS":   {"HUB_REDIS_SENTINELS": "127.0.0.1"},
		"HUB_REDIS_SENTINELS ":  {"HUB_REDIS_SENTINELS": "127.0.0.1:26450,:26451"},
	}
	for name, e := range bad {
		if _, err := Load(env(e)); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%v: want an error naming %s, got %v", e, strings.TrimSpace(name), err)
		}
	}
}
