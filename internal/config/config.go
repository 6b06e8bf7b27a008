// Package config reads the hub's configuration from environment variables.
//
// Every setting has a safe local default so that `make run` works without any
// configuration; production deployments override them. Secrets (database
// passwords inside URLs, signing keys) are never logged: use Redacted for that.
package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of one hub process.
type Config struct {
	// DatabaseURL (HUB_DATABASE_URL) is the primary. It may name several
	// hosts, postgres://user@h1:5432,h2:5432/hub?target_session_attrs=read-write:
	// the driver then connects to whichever of them accepts writes, so after a
	// replica is promoted the pool's new connections reach it by themselves.
	DatabaseURL string
	// DatabaseReadURL (HUB_DATABASE_READ_URL) is a streaming replica for
	// reads that may be a little stale (reports, charts, statements, member
	// and partner histories). Empty, the default: those reads go to the primary.
	DatabaseReadURL string
	// ReadMaxLag (HUB_READ_MAX_LAG, default 5s) is the replica lag past which
	// those reads go to the primary after all.
	ReadMaxLag time.Duration
	RedisURL   string // HUB_REDIS_URL: the Redis server, or with sentinels only its database number and password
	// RedisSentinels (HUB_REDIS_SENTINELS, comma-separated host:port) are Redis
	// Sentinels; when set, the hub asks them for the primary of
	// RedisMasterName (HUB_REDIS_MASTER_NAME, default "hub") and follows it
	// when they promote a replica, instead of connecting to HUB_REDIS_URL's host.
	RedisSentinels  []string
	RedisMasterName string
	HTTPAddr        string        // HUB_HTTP_ADDR
	PublicURL       string        // HUB_PUBLIC_URL: base URL printed and used as token issuer
	LogLevel        string        // HUB_LOG_LEVEL: debug, info, warn, error
	DBMaxConns      int           // HUB_DB_MAX_CONNS
	WorkerConc      int           // HUB_WORKER_CONCURRENCY
	ShutdownTimeout time.Duration // HUB_SHUTDOWN_TIMEOUT
	OperatorTZ      string        // HUB_OPERATOR_TZ: time zone of settlement periods
	SigningKeyDir   string        // HUB_SIGNING_KEY_DIR: where token signing keys live
	// SecretsKey (HUB_SECRETS_KEY) is base64 of 32 bytes sealing secrets at
	// rest (token signing keys). Empty in local development: the hub then
	// keeps a generated one in SigningKeyDir/secrets.key. Never logged.
	SecretsKey  string
	ClientRate  float64 // HUB_CLIENT_RATE: partner API requests per second per client
	ClientBurst int     // HUB_CLIENT_BURST: burst of that token bucket
	LoginRate   float64 // HUB_LOGIN_RATE: sign-ins and emailed-link uses per second per client IP
	LoginBurst  int     // HUB_LOGIN_BURST: burst of that token bucket
	// TrustedProxies (HUB_TRUSTED_PROXIES, comma-separated IPs or CIDRs) are
	// the reverse proxies whose X-Forwarded-For the hub believes when it
	// takes a request's client IP (per-IP sign-in limits, logs). Empty, the
	// default: none, so the client IP is always the connection's peer.
	TrustedProxies []string
	// PprofAddr (HUB_PPROF_ADDR) serves net/http/pprof on a separate
	// listener when set; it must be a loopback address (profiles reveal
	// internals and must never face the network). Empty: off.
	PprofAddr string
	// WebhookAllowLoopback (HUB_WEBHOOK_ALLOW_LOOPBACK=1) lets webhooks go to
	// loopback receivers, over plain http too, for local development and
	// tests. Off by default: receivers must then be https URLs of public
	// hosts. Private ranges stay refused either way (package netguard).
	WebhookAllowLoopback bool
	// EarnBatchMax (HUB_EARN_BATCH_MAX), EarnBatchWait
	// (HUB_EARN_BATCH_WAIT) and EarnBatchInFlight (HUB_EARN_BATCH_IN_FLIGHT)
	// shape the group commit of single earns: a batch is posted as soon as
	// EarnBatchMax earns wait, or when the first of them has waited
	// EarnBatchWait behind a batch in flight while fewer than
	// EarnBatchInFlight are; with that many in flight, waiting earns go
	// with the next to finish. An earn that arrives when nothing is in
	// flight never waits.
	EarnBatchMax      int
	EarnBatchWait     time.Duration
	EarnBatchInFlight int
	// SMTPURL (HUB_SMTP_URL) is where the worker sends mail:
	// smtp://[user:password@]host[:port] (STARTTLS required, except on a
	// loopback host) or smtps://... (TLS from the first byte). The default
	// is the local mail catcher of `make run`. Its password is never logged.
	SMTPURL string
	// MailFrom (HUB_MAIL_FROM) is the From of every mail the hub sends.
	MailFrom string
	// UnsubscribeKey (HUB_UNSUBSCRIBE_KEY) is base64 of 32 bytes signing
	// the unsubscribe links of notification mail (HMAC-SHA256). Every process
	// must share it; empty in local development: the hub then keeps a
	// generated one in SigningKeyDir/unsubscribe.key. Never logged.
	UnsubscribeKey string
}

// Load reads the configuration through getenv (os.Getenv in production, a map
// in tests) and validates it. The error names the variable to fix.
func Load(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DatabaseURL:     get("HUB_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub?sslmode=disable"),
		RedisURL:        get("HUB_REDIS_URL", "redis://127.0.0.1:6379/0"),
		DatabaseReadURL: get("HUB_DATABASE_READ_URL", ""),
		RedisMasterName: get("HUB_REDIS_MASTER_NAME", "hub"),
		HTTPAddr:        get("HUB_HTTP_ADDR", "127.0.0.1:8080"),
		PublicURL:       get("HUB_PUBLIC_URL", ""),
		LogLevel:        get("HUB_LOG_LEVEL", "info"),
		OperatorTZ:      get("HUB_OPERATOR_TZ", "Europe/Berlin"),
		SigningKeyDir:   get("HUB_SIGNING_KEY_DIR", ".data/keys"),
		SecretsKey:      get("HUB_SECRETS_KEY", ""),
		PprofAddr:       get("HUB_PPROF_ADDR", ""),
		SMTPURL:         get("HUB_SMTP_URL", "smtp://127.0.0.1:1025"),
		MailFrom:        get("HUB_MAIL_FROM", "Coalition Rewards <no-reply@coalition.example>"),

		UnsubscribeKey: get("HUB_UNSUBSCRIBE_KEY", ""),
	}
	var err error
	if c.DBMaxConns, err = intVar(get, "HUB_DB_MAX_CONNS", 20); err != nil {
		return c, err
	}
	if c.WorkerConc, err = intVar(get, "HUB_WORKER_CONCURRENCY", 10); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = time.ParseDuration(get("HUB_SHUTDOWN_TIMEOUT", "25s")); err != nil {
		return c, fmt.Errorf("HUB_SHUTDOWN_TIMEOUT: %w (use a Go duration such as 25s)", err)
	}
	if c.ClientBurst, err = intVar(get, "HUB_CLIENT_BURST", 40); err != nil {
		return c, err
	}
	if c.EarnBatchMax, err = intVar(get, "HUB_EARN_BATCH_MAX", 64); err != nil {
		return c, err
	}
	if c.EarnBatchInFlight, err = intVar(get, "HUB_EARN_BATCH_IN_FLIGHT", 2); err != nil {
		return c, err
	}
	if c.EarnBatchInFlight < 1 || c.EarnBatchInFlight > 16 {
		return c, fmt.Errorf("HUB_EARN_BATCH_IN_FLIGHT must be from 1 to 16, got %d", c.EarnBatchInFlight)
	}
	waitText := get("HUB_EARN_BATCH_WAIT", "1ms")
	if c.EarnBatchWait, err = time.ParseDuration(waitText); err != nil || c.EarnBatchWait < 0 || c.EarnBatchWait > time.Second {
		return c, fmt.Errorf("HUB_EARN_BATCH_WAIT must be a Go duration from 0 to 1s such as 1ms, got %q", waitText)
	}
	if c.LoginBurst, err = intVar(get, "HUB_LOGIN_BURST", 5); err != nil {
		return c, err
	}
	loginText := get("HUB_LOGIN_RATE", "0.2")
	if c.LoginRate, err = strconv.ParseFloat(loginText, 64); err != nil || c.LoginRate <= 0 {
		return c, fmt.Errorf("HUB_LOGIN_RATE must be a positive number of attempts per second, got %q", loginText)
	}
	rateText := get("HUB_CLIENT_RATE", "20")
	if c.ClientRate, err = strconv.ParseFloat(rateText, 64); err != nil || c.ClientRate <= 0 {
		return c, fmt.Errorf("HUB_CLIENT_RATE must be a positive number of requests per second, got %q", rateText)
	}
	if c.SecretsKey != "" {
		if k, err := base64.StdEncoding.DecodeString(c.SecretsKey); err != nil || len(k) != 32 {
			return c, fmt.Errorf("HUB_SECRETS_KEY must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
		}
	}
	if c.UnsubscribeKey != "" {
		if k, err := base64.StdEncoding.DecodeString(c.UnsubscribeKey); err != nil || len(k) != 32 {
			return c, fmt.Errorf("HUB_UNSUBSCRIBE_KEY must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
		}
	}
	loopbackText := get("HUB_WEBHOOK_ALLOW_LOOPBACK", "0")
	if c.WebhookAllowLoopback, err = strconv.ParseBool(loopbackText); err != nil {
		return c, fmt.Errorf("HUB_WEBHOOK_ALLOW_LOOPBACK must be 1 (allow loopback webhook receivers) or 0, got %q", loopbackText)
	}
	if c.TrustedProxies, err = proxyList(get("HUB_TRUSTED_PROXIES", "")); err != nil {
		return c, err
	}
	if c.PprofAddr != "" && !loopback(c.PprofAddr) {
		return c, fmt.Errorf("HUB_PPROF_ADDR must be a loopback address such as 127.0.0.1:6060, got %q", c.PprofAddr)
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	}
	if err := checkPostgresURL(c.DatabaseURL); err != nil {
		return c, fmt.Errorf("HUB_DATABASE_URL %w, got %q", err, redactURL(c.DatabaseURL))
	}
	if c.DatabaseReadURL != "" {
		if err := checkPostgresURL(c.DatabaseReadURL); err != nil {
			return c, fmt.Errorf("HUB_DATABASE_READ_URL %w, got %q", err, redactURL(c.DatabaseReadURL))
		}
	}
	lagText := get("HUB_READ_MAX_LAG", "5s")
	if c.ReadMaxLag, err = time.ParseDuration(lagText); err != nil || c.ReadMaxLag <= 0 {
		return c, fmt.Errorf("HUB_READ_MAX_LAG must be a positive Go duration such as 5s, got %q", lagText)
	}
	if c.RedisSentinels, err = hostPorts(get("HUB_REDIS_SENTINELS", "")); err != nil {
		return c, fmt.Errorf("HUB_REDIS_SENTINELS must list host:port pairs separated by commas: %w", err)
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return c, fmt.Errorf("HUB_REDIS_URL must be a redis:// URL, got %q", redactURL(c.RedisURL))
	}
	if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return c, fmt.Errorf("HUB_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://..., got %q", redactURL(c.SMTPURL))
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		return c, fmt.Errorf("HUB_MAIL_FROM must be an address such as \"Coalition Rewards <no-reply@example.com>\", got %q", c.MailFrom)
	}
	if _, err := time.LoadLocation(c.OperatorTZ); err != nil {
		return c, fmt.Errorf("HUB_OPERATOR_TZ: %w", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("HUB_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return c, nil
}

// Location is the operator's time zone; Load has validated it.
func (c Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.OperatorTZ)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Redacted returns the configuration as key/value pairs safe to log.
func (c Config) Redacted() []any {
	return []any{
		"database", redactURL(c.DatabaseURL), "database_read", redactURL(c.DatabaseReadURL),
		"redis", redactURL(c.RedisURL), "redis_sentinels", strings.Join(c.RedisSentinels, ","),
		"http", c.HTTPAddr, "public_url", c.PublicURL, "operator_tz", c.OperatorTZ,
		"webhook_allow_loopback", c.WebhookAllowLoopback,
		"trusted_proxies", strings.Join(c.TrustedProxies, ","),
		"smtp", redactURL(c.SMTPURL), "mail_from", c.MailFrom,
	}
}

func intVar(get func(string, string) string, name string, def int) (int, error) {
	v := get(name, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer, got %q", name, v)
	}
	return n, nil
}

// redactURL hides the password of a URL, keeping everything else readable.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// RedactURL is redactURL for other packages' error messages.
func RedactURL(raw string) string { return redactURL(raw) }

// proxyList parses a comma-separated list of IP addresses and CIDRs.
func proxyList(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		_, _, cidrErr := net.ParseCIDR(p)
		if cidrErr != nil && net.ParseIP(p) == nil {
			return nil, fmt.Errorf("HUB_TRUSTED_PROXIES must list IP addresses or CIDRs separated by commas, got %q", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// checkPostgresURL checks a postgres:// URL with one host or several
// (h1:p1,h2:p2), each with a port when several are named.
func checkPostgresURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("must be a postgres:// URL")
	}
	if hosts := strings.Split(u.Host, ","); len(hosts) > 1 {
		if _, err := hostPorts(u.Host); err != nil {
			return fmt.Errorf("must name each of its hosts as host:port: %w", err)
		}
	}
	switch u.Query().Get("target_session_attrs") {
	case "", "any", "read-write", "read-only", "primary", "standby", "prefer-standby":
	default:
		return fmt.Errorf("has an unknown target_session_attrs (use read-write)")
	}
	return nil
}

// hostPorts parses a comma-separated list of host:port pairs.
func hostPorts(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		host, port, err := net.SplitHostPort(p)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("%q is not host:port", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// loopback reports whether addr (host:port) names a loopback host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
