package database_test

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/testdb"
)

// txEnv is a test database whose pool holds one connection, so that every
// transaction runs on the connection the one before it left behind, and a
// second pool that sees only what was committed.
type txEnv struct {
	db, other *gorm.DB
	ctx       context.Context
}

func newTxEnv(t *testing.T) txEnv {
	t.Helper()
	db, url := testdb.NewWithURL(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	other, err := database.Open(context.Background(), url, database.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := other.DB(); err == nil {
			s.Close()
		}
	})
	if err := db.Exec(`CREATE TABLE tx_probe (id int PRIMARY KEY, note text NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	return txEnv{db: db, other: other, ctx: context.Background()}
}

// insert is a first statement that goes through database.QueryRow (so it
// carries BEGIN with it) and answers the row's id.
func insert(tx *gorm.DB, id int, note string) error {
	var got int
	return database.QueryRow(tx, `INSERT INTO tx_probe (id, note) VALUES ($1, $2) RETURNING id`, []any{id, note}, &got)
}

// committed lists the probe ids another connection sees.
func (e txEnv) committed(t *testing.T) []int {
	t.Helper()
	var ids []int
	if err := e.other.Raw(`SELECT id FROM tx_probe ORDER BY id`).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}

// idle checks that the pool's one connection is outside any transaction: a
// statement through the pool commits on its own.
func (e txEnv) idle(t *testing.T, id int) {
	t.Helper()
	if err := e.db.Exec(`INSERT INTO tx_probe (id, note) VALUES (?, 'autocommit')`, id).Error; err != nil {
		t.Fatalf("the pool's connection after a transaction: %v", err)
	}
	for _, got := range e.committed(t) {
		if got == id {
			return
		}
	}
	t.Fatalf("a statement after the transaction was not committed on its own: the connection was left inside a transaction")
}

func TestTransactionCommitsWithBeginInTheFirstStatement(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	err := database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		if err := insert(tx, 1, "pipelined with BEGIN"); err != nil {
			return err
		}
		if got := e.committed(t); len(got) != 0 {
			t.Errorf("another connection saw %v before COMMIT: the first statement ran outside the transaction", got)
		}
		return tx.Exec(`INSERT INTO tx_probe (id, note) VALUES (2, 'through gorm')`).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.committed(t); len(got) != 2 {
		t.Fatalf("committed %v, want [1 2]", got)
	}
	e.idle(t, 100)
}

func TestTransactionRollsBackOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	boom := errors.New("boom")
	err := database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		if err := insert(tx, 1, "rolled back"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fn's error", err)
	}
	e.idle(t, 100)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		_ = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
			if err := insert(tx, 2, "rolled back"); err != nil {
				return err
			}
			panic("fn panics")
		})
	}()
	e.idle(t, 101)
	// BEGIN sent on its own when the first statement is not a QueryRow.
	err = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO tx_probe (id, note) VALUES (3, 'rolled back')`).Error; err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fn's error", err)
	}
	if got := e.committed(t); len(got) != 2 || got[0] != 100 || got[1] != 101 {
		t.Fatalf("committed %v, want only the two autocommitted probes [100 101]", got)
	}
	e.idle(t, 102)
}

func TestTransactionFirstStatementFailing(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	// A transaction of one pipelined statement commits.
	err := database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		return insert(tx, -1, "")
	})
	if err != nil {
		t.Fatalf("a valid insert failed: %v", err)
	}
	// The first statement fails inside the pipeline: the transaction is
	// aborted and rolled back, and the connection is clean afterwards.
	err = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		var n int
		return database.QueryRow(tx, `SELECT 1/0`, nil, &n)
	})
	if err == nil {
		t.Fatal("division by zero succeeded")
	}
	e.idle(t, 100)
	// No row: sql.ErrNoRows, as QueryRow promises outside a transaction.
	err = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		var n int
		return database.QueryRow(tx, `SELECT id FROM tx_probe WHERE id = 424242`, nil, &n)
	})
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("err = %v, want sql.ErrNoRows", err)
	}
	e.idle(t, 101)
}

func TestTransactionRefusesACommitThatRollsBack(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	// fn swallows a failed statement and returns nil: PostgreSQL answers the
	// COMMIT with ROLLBACK, and the caller must not be told it committed.
	err := database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		if err := insert(tx, 1, "lost"); err != nil {
			return err
		}
		_ = tx.Exec(`INSERT INTO tx_probe (id, note) VALUES (1, 'duplicate')`).Error
		return nil
	})
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("err = %v, want pgx.ErrTxCommitRollback", err)
	}
	if got := e.committed(t); len(got) != 0 {
		t.Fatalf("committed %v after a rolled-back COMMIT", got)
	}
	e.idle(t, 100)
}

func TestTransactionNestsWithSavepoints(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	err := database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		if err := insert(tx, 1, "outer"); err != nil {
			return err
		}
		inner := tx.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`INSERT INTO tx_probe (id, note) VALUES (2, 'inner')`).Error; err != nil {
				return err
			}
			return errors.New("inner fails")
		})
		if inner == nil {
			t.Error("the inner transaction's error was lost")
		}
		return tx.Exec(`INSERT INTO tx_probe (id, note) VALUES (3, 'outer again')`).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.committed(t); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("committed %v, want [1 3]: the inner transaction rolls back to its savepoint", got)
	}
	e.idle(t, 100)
}

func TestTransactionWithACancelledContext(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	var ran atomic.Bool
	err := database.Transaction(ctx, e.db, func(tx *gorm.DB) error {
		if err := insert(tx, 1, "cancelled"); err != nil {
			return err
		}
		ran.Store(true)
		cancel()
		return tx.Exec(`INSERT INTO tx_probe (id, note) VALUES (2, 'cancelled')`).Error
	})
	if err == nil || !ran.Load() {
		t.Fatalf("err = %v (first statement ran: %v), want the cancellation", err, ran.Load())
	}
	if got := e.committed(t); len(got) != 0 {
		t.Fatalf("committed %v from a cancelled transaction", got)
	}
	e.idle(t, 100)
}
