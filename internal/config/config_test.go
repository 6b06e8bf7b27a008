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
