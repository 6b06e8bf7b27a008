// Package database opens the PostgreSQL connection pool shared by a hub process.
package database

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	neturl "net/url"
	"regexp"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for admin statements
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/coalitionhub/hub/internal/config"
)

// Options tune the pool; zero values take sensible defaults.
type Options struct {
	MaxConns int
	// DriverName is the database/sql driver; empty means pgx's. The tests
	// register one that waits for a free connection slot on a shared server.
	DriverName string
}

// Open connects to PostgreSQL and checks that it answers. The error tells a
// newcomer what to do when it does not.
func Open(ctx context.Context, url string, opts Options) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.New(postgres.Config{DSN: url, DriverName: opts.DriverName}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, unreachable(url, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = 20
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, unreachable(url, err)
	}
	return db, nil
}

// Close closes the pool, logging rather than returning a failure: it runs on shutdown.
func Close(db *gorm.DB, log *slog.Logger) {
	if sqlDB, err := db.DB(); err == nil {
		if err := sqlDB.Close(); err != nil {
			log.Warn("closing database pool", "err", err)
		}
	}
}

func unreachable(url string, err error) error {
	if Code(err) == NoSuchDatabase {
		return fmt.Errorf("PostgreSQL at %s has no such database: run `hub migrate up` (it creates it) or `make run`",
			config.RedactURL(url))
	}
	return fmt.Errorf("cannot reach PostgreSQL at %s: %w; run `make services` (or set HUB_DATABASE_URL)",
		config.RedactURL(url), err)
}

// EnsureExists creates the database named in url when the server has none by
// that name, connecting to the server's "postgres" database to do it. `hub
// migrate up` calls it so that a fresh server needs no manual createdb.
func EnsureExists(ctx context.Context, rawURL string) error {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || !safeIdent.MatchString(name) {
		return fmt.Errorf("HUB_DATABASE_URL: database name %q must be a plain identifier", name)
	}
	u.Path = "/postgres"
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return unreachable(rawURL, err)
	}
	if exists {
		return nil
	}
	_, err = admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

var safeIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
