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
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for admin statements
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/migrations"
)

const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
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
	tpl, err := template(ctx)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	admin, err := sql.Open("pgx", AdminURL())
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer admin.Close()
	name := "hubt_" + randomHex(8)
	var createErr error
	for attempt := 0; attempt < 20; attempt++ {
		_, createErr = admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tpl))
		// Another CREATE from the same template may hold it for a moment.
		if createErr == nil || !strings.Contains(createErr.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if createErr != nil {
		t.Fatalf("testdb: create database: %v", createErr)
	}
	dbURL := withDatabase(AdminURL(), name)
	maxConns, err := poolSize()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	db, err := database.Open(ctx, dbURL, database.Options{MaxConns: maxConns})
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		database.Close(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		drop, err := sql.Open("pgx", AdminURL())
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

// template builds the migrated template database once per fingerprint.
func template(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		templateName, templateErr = buildTemplate(ctx)
	})
	return templateName, templateErr
}

func buildTemplate(ctx context.Context) (string, error) {
	name := "hub_tpl_" + migrations.Fingerprint()
	admin, err := sql.Open("pgx", AdminURL())
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
	mdb, err := sql.Open("pgx", withDatabase(AdminURL(), building))
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
	// Templates of older migration sets are dead weight.
	rows, err := conn.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'hub\_tpl\_%' AND datname <> $1`, name)
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

// poolSize is each test database's pool size: 40, or HUB_TEST_MAX_CONNS.
// With HUB_TEST_MAX_CONNS=1 any code that holds a connection (a
// transaction) and waits for a second one hangs at once, instead of only
// when concurrent requests exhaust a production pool; the settlement close
// takes two connections by design and needs 2 (docs/reliability.md).
func poolSize() (int, error) {
	v := os.Getenv("HUB_TEST_MAX_CONNS")
	if v == "" {
		return 40, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("HUB_TEST_MAX_CONNS=%q: want a positive number of connections", v)
	}
	return n, nil
}
