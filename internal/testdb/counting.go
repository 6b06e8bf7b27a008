package testdb

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
)

// NewCounting is New opened with a pgx tracer that counts the round trips an
// operation costs: every statement the driver sends on its own — BEGIN and
// COMMIT included, and the hot statements that bypass gorm
// (database.QueryRow) — and every pipeline of statements (database.Transaction
// sends BEGIN with the first statement) as one. BENCH_SQL=1 prints the
// statements.
func NewCounting(tb testing.TB) (*gorm.DB, *atomic.Int64) {
	tb.Helper()
	_, url := NewWithURL(tb)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	n := &atomic.Int64{}
	cfg.Tracer = countingTracer{n}
	sqlDB := stdlib.OpenDB(*cfg)
	tb.Cleanup(func() { sqlDB.Close() })
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		tb.Fatal(err)
	}
	return db, n
}

type countingTracer struct{ n *atomic.Int64 }

func (t countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.n.Add(1)
	if os.Getenv("BENCH_SQL") != "" {
		fmt.Println("SQL:", strings.Join(strings.Fields(d.SQL), " "))
	}
	return ctx
}

func (countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t countingTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	t.n.Add(1)
	if os.Getenv("BENCH_SQL") != "" {
		fmt.Println("SQL: (one pipeline:)")
	}
	return ctx
}

func (countingTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if os.Getenv("BENCH_SQL") != "" {
		fmt.Println("SQL:   ", strings.Join(strings.Fields(d.SQL), " "))
	}
}

func (countingTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
