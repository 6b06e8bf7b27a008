package partners_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/coalitionhub/hub/internal/testdb"
)

// roundTripDB is a fresh test database opened with a pgx tracer that counts
// every statement the driver sends — BEGIN and COMMIT included, and the hot
// statements that bypass gorm — so a count is the round trips an operation
// costs. BENCH_SQL=1 prints them.
func roundTripDB(tb testing.TB) (*gorm.DB, *atomic.Int64) {
	tb.Helper()
	_, url := testdb.NewWithURL(tb)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	n := &atomic.Int64{}
	cfg.Tracer = roundTripTracer{n}
	sqlDB := stdlib.OpenDB(*cfg)
	tb.Cleanup(func() { sqlDB.Close() })
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		tb.Fatal(err)
	}
	return db, n
}

type roundTripTracer struct{ n *atomic.Int64 }

func (t roundTripTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.n.Add(1)
	if os.Getenv("BENCH_SQL") != "" {
		fmt.Println("SQL:", strings.Join(strings.Fields(d.SQL), " "))
	}
	return ctx
}

func (roundTripTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countStatements counts the statements gorm sends on db (not BEGIN and
// COMMIT, nor the statements that bypass gorm): roundTripDB counts them all.
func countStatements(db *gorm.DB) *atomic.Int64 {
	var n atomic.Int64
	inc := func(d *gorm.DB) {
		n.Add(1)
		if os.Getenv("BENCH_SQL") != "" {
			fmt.Println("SQL:", strings.Join(strings.Fields(d.Statement.SQL.String()), " "))
		}
	}
	cb := db.Callback()
	_ = cb.Create().After("gorm:create").Register("bench:count", inc)
	_ = cb.Query().After("gorm:query").Register("bench:count", inc)
	_ = cb.Update().After("gorm:update").Register("bench:count", inc)
	_ = cb.Delete().After("gorm:delete").Register("bench:count", inc)
	_ = cb.Row().After("gorm:row").Register("bench:count", inc)
	_ = cb.Raw().After("gorm:raw").Register("bench:count", inc)
	return &n
}
