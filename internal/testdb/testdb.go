// Package testdb gives each test its own migrated PostgreSQL database.
//
// The first call in a run migrates a template database named after the
// migrations' fingerprint (built once, under an advisory lock, even across test
// binaries running in parallel); every New clones it with CREATE DATABASE ...
// TEMPLATE, which takes tens of milliseconds, and drops the clone when the test
// ends. Tests therefore never see rows they did not create and may run in
// parallel. Point HUB_TEST_DATABASE_URL at a server where the user may create
// databases; the default is the local server `make services` provides.
// HUB_TEST_MAX_CONNS sets the pool size of each test database (poolSize).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/migrations"
)

const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	templateMu   sync.Mutex
	templateName string // built (or found) by this process; "" until then
)

// AdminURL is the server connection tests use to create databases.
func AdminURL() string {
	if u := os.Getenv("HUB_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultAdminURL
}

// New returns a gorm handle on a fresh, fully migrated database that is
// dropped when t ends. It fails the test (never skips it) when PostgreSQL is
// unreachable: a suite that silently skips proves nothing.
func New(t testing.TB) *gorm.DB {
	t.Helper()
	db, _ := NewWithURL(t)
	return db
}

// NewWithURL is New that also returns the database's URL, for tests that start
// a hub process against it.
func NewWithURL(t testing.TB) (*gorm.DB, string) {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open(driverName(), AdminURL())
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer admin.Close()
	name := "hubt_" + randomHex(8)
	rebuilt := false
	deadline := time.Now().Add(time.Minute)
	for {
		tpl, err := template(ctx)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		_, err = admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tpl))
		code := database.Code(err)
		switch {
		case err == nil:
		case code == "55006" && time.Now().Before(deadline):
			// object_in_use: a session is connected to the template for a
			// moment; wait for it.
			time.Sleep(50 * time.Millisecond)
			continue
		case code == database.NoSuchDatabase && !rebuilt:
			// invalid_catalog_name: the template is gone (dropped by hand, or
			// by an older version of this package in another checkout).
			forgetTemplate(tpl)
			rebuilt = true
			continue
		default:
			t.Fatalf("testdb: create database: %v", err)
		}
		break
	}
	dbURL := withDatabase(AdminURL(), name)
	maxConns, err := poolSize()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	db, err := database.Open(ctx, dbURL, database.Options{MaxConns: maxConns, DriverName: driverName()})
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		database.Close(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		drop, err := sql.Open(driverName(), AdminURL())
		if err != nil {
			return
		}
		defer drop.Close()
		if _, err := drop.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
			t.Logf("testdb: drop %s: %v", name, err)
		}
	})
	return db, dbURL
}

// defaultPoolSize bounds each test database's pool. Concurrency tests run
// hundreds of goroutines through it; with two tests per package binary and two
// binaries at a time, one suite run needs at most about 80 connections, and
// the shared server may be serving other runs too (a full server makes
// connections wait, see slotWaiter).
const defaultPoolSize = 20

// slotWaiter is pgx's database/sql driver, except that a connection the
// server refuses for want of a free slot (too_many_connections, 53300) is
// tried again for up to two minutes. Tests share one server with other test
// runs on a busy machine: a full server is a reason to wait, not a failure
// of the code under test.
type slotWaiter struct{ driver.Driver }

func (d slotWaiter) Open(name string) (driver.Conn, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := d.Driver.Open(name)
		if err == nil || database.Code(err) != "53300" || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var registerOnce sync.Once

// driverName registers slotWaiter once and returns its name.
func driverName() string {
	registerOnce.Do(func() { sql.Register("pgx-testdb", slotWaiter{stdlib.GetDefaultDriver()}) })
	return "pgx-testdb"
}

// template builds the migrated template database once per fingerprint and
// process, or finds it built by another test binary.
func template(ctx context.Context) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateName != "" {
		return templateName, nil
	}
	name, err := buildTemplate(ctx)
	if err != nil {
		return "", err
	}
	templateName = name
	return name, nil
}

// forgetTemplate makes the next template call look for (and build) name again.
func forgetTemplate(name string) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateName == name {
		templateName = ""
	}
}

// keepTemplates is how many templates (the newest, by creation order) stay
// on the server. Several checkouts with different migrations share one
// server and each uses its own template while its tests run, so an older
// template is dropped only once this many newer ones exist.
const keepTemplates = 8

func buildTemplate(ctx context.Context) (string, error) {
	name := "hub_tpl_" + migrations.Fingerprint()
	admin, err := sql.Open(driverName(), AdminURL())
	if err != nil {
		return "", err
	}
	defer admin.Close()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.PingContext(ctx); err != nil {
		return "", fmt.Errorf("cannot reach PostgreSQL at %s: %w; run `make services`", AdminURL(), err)
	}
	// One builder at a time across all test binaries of this server.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(727274)`)

	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, building)); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s`, building)); err != nil {
		return "", err
	}
	mdb, err := sql.Open(driverName(), withDatabase(AdminURL(), building))
	if err != nil {
		return "", err
	}
	if err := migrations.Up(ctx, mdb, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		mdb.Close()
		return "", err
	}
	mdb.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name)); err != nil {
		return "", err
	}
	// Templates of much older migration sets are dead weight.
	rows, err := conn.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'hub\_tpl\_%' AND datname <> $1
		ORDER BY oid DESC OFFSET $2`, name, keepTemplates-1)
	if err == nil {
		var stale []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				stale = append(stale, n)
			}
		}
		rows.Close()
		for _, n := range stale {
			_, _ = conn.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, n))
		}
	}
	return name, nil
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// poolSize is each test database's pool size: defaultPoolSize, or HUB_TEST_MAX_CONNS.
// With HUB_TEST_MAX_CONNS=1 any code that holds a connection (a
// transaction) and waits for a second one hangs at once, instead of only
// when concurrent requests exhaust a production pool; the settlement close
// takes two connections by design and needs 2 (docs/reliability.md).
func poolSize() (int, error) {
	v := os.Getenv("HUB_TEST_MAX_CONNS")
	if v == "" {
		return defaultPoolSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("HUB_TEST_MAX_CONNS=%q: want a positive number of connections", v)
	}
	return n, nil
}
