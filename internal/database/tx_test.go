package database_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
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

// seen is a Follow that counts the probes with id, as the statement before it
// in the pipeline left them.
func seen(id int, n *int) *database.Follow {
	return &database.Follow{SQL: `SELECT count(*) FROM tx_probe WHERE id = $1`, Args: []any{id}, Dest: []any{n}}
}

func TestQueryRowThenRunsAfterTheStatementInOnePipeline(t *testing.T) {
	t.Parallel()
	e := newTxEnv(t)
	insertThen := func(tx *gorm.DB, id int, then *database.Follow) error {
		var got int
		return database.QueryRowThen(tx, `INSERT INTO tx_probe (id, note) VALUES ($1, 'then') RETURNING id`,
			[]any{id}, []any{&got}, then)
	}
	// First statement of the transaction (with BEGIN), and a later one.
	var first, later int
	err := database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		if err := insertThen(tx, 1, seen(1, &first)); err != nil {
			return err
		}
		if got := e.committed(t); len(got) != 0 {
			t.Errorf("another connection saw %v before COMMIT", got)
		}
		return insertThen(tx, 2, seen(2, &later))
	})
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 || later != 1 {
		t.Fatalf("the follow-up saw %d and %d rows of the statement before it, want 1 and 1", first, later)
	}
	if got := e.committed(t); len(got) != 2 {
		t.Fatalf("committed %v, want [1 2]", got)
	}
	// The statement fails: the follow-up does not run, nothing is committed.
	var n int
	err = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		return insertThen(tx, 1, &database.Follow{SQL: `INSERT INTO tx_probe (id, note) VALUES (3, 'after a failure') RETURNING id`, Dest: []any{&n}})
	})
	if err == nil {
		t.Fatal("a duplicate id was inserted")
	}
	e.idle(t, 100)
	// The follow-up fails: the statement before it is rolled back with it.
	err = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		return insertThen(tx, 4, &database.Follow{SQL: `SELECT 1/0`, Dest: []any{&n}})
	})
	if err == nil {
		t.Fatal("division by zero succeeded")
	}
	e.idle(t, 101)
	// No row from the follow-up: sql.ErrNoRows.
	err = database.Transaction(e.ctx, e.db, func(tx *gorm.DB) error {
		return insertThen(tx, 5, &database.Follow{SQL: `SELECT id FROM tx_probe WHERE id = 424242`, Dest: []any{&n}})
	})
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("err = %v, want sql.ErrNoRows", err)
	}
	e.idle(t, 102)
	// Outside a Transaction: one after the other, each committing.
	var outside int
	if err := insertThen(e.db, 6, seen(6, &outside)); err != nil || outside != 1 {
		t.Fatalf("outside a transaction: %v, saw %d", err, outside)
	}
	if got := e.committed(t); !slices.Equal(got, []int{1, 2, 6, 100, 101, 102}) {
		t.Fatalf("committed %v, want [1 2 6 100 101 102]", got)
	}
}

func TestQueryRowThenIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	db, n := testdb.NewCounting(t)
	if err := db.Exec(`CREATE TABLE tx_probe (id int PRIMARY KEY, note text NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	n.Store(0)
	var id, count int
	err := database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		return database.QueryRowThen(tx, `INSERT INTO tx_probe (id, note) VALUES (1, 'x') RETURNING id`, nil, []any{&id}, seen(1, &count))
	})
	if err != nil || count != 1 {
		t.Fatalf("err %v, count %d", err, count)
	}
	// BEGIN, the statement and its follow-up in one pipeline, then COMMIT.
	if got := n.Load(); got != 2 {
		t.Fatalf("%d round trips, want 2", got)
	}
}

func TestPipelineRunsItsStatementsInOrderInOneRoundTrip(t *testing.T) {
	t.Parallel()
	db, n := testdb.NewCounting(t)
	if err := db.Exec(`CREATE TABLE tx_probe (id int PRIMARY KEY, note text NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	ids := func(into *[]int) database.Stmt {
		return database.Stmt{SQL: `SELECT id FROM tx_probe ORDER BY id`, Scan: func(row database.Row) error {
			var id int
			err := row.Scan(&id)
			*into = append(*into, id)
			return err
		}}
	}
	insert := func(id int) database.Stmt {
		return database.Stmt{SQL: `INSERT INTO tx_probe (id, note) SELECT $1::int, 'p'`, Args: []any{id}}
	}
	// BEGIN and three statements in one pipeline, then COMMIT; the third
	// sees the rows of the two before it.
	n.Store(0)
	var seenRows []int
	err := database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		return database.Pipeline(tx, insert(1), insert(2), ids(&seenRows))
	})
	if err != nil || !slices.Equal(seenRows, []int{1, 2}) {
		t.Fatalf("err %v, the third statement saw %v; want [1 2]", err, seenRows)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d round trips, want 2 (the pipeline with BEGIN, COMMIT)", got)
	}
	// A failing statement: those after it do not run, nothing is committed.
	var after []int
	err = database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		return database.Pipeline(tx, insert(3), insert(1), ids(&after))
	})
	if err == nil || len(after) != 0 {
		t.Fatalf("a duplicate id: err %v, the statement after it saw %v", err, after)
	}
	// On the pool: one round trip, one implicit transaction (a failure
	// keeps none of it).
	var all []int
	n.Store(0)
	if err := database.Pipeline(db, insert(4), ids(&all)); err != nil || !slices.Equal(all, []int{1, 2, 4}) {
		t.Fatalf("outside a transaction: err %v, rows %v; want [1 2 4]", err, all)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("on the pool: %d round trips, want 1", got)
	}
	if err := database.Pipeline(db, insert(5), insert(4)); err == nil {
		t.Fatal("a duplicate id on the pool: no error")
	}
	all = nil
	if err := database.Pipeline(db, ids(&all)); err != nil || !slices.Equal(all, []int{1, 2, 4}) {
		t.Fatalf("after a failed pipeline on the pool: err %v, rows %v; want [1 2 4] (5 rolled back)", err, all)
	}
}

func TestDeferTravelsWithTheNextStatement(t *testing.T) {
	t.Parallel()
	db, n := testdb.NewCounting(t)
	if err := db.Exec(`CREATE TABLE tx_probe (id int PRIMARY KEY, note text NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	insert := func(id int, name string) database.Stmt {
		return database.Stmt{SQL: `INSERT INTO tx_probe (id, note) VALUES ($1, 'deferred') RETURNING id`, Args: []any{id}, Name: name,
			Scan: func(row database.Row) error { var got int; return row.Scan(&got) }}
	}
	count := func(tx *gorm.DB) (int, error) {
		var c int
		err := database.QueryRow(tx, `SELECT count(*) FROM tx_probe`, nil, &c)
		return c, err
	}
	// Deferred, then a QueryRow: BEGIN, the deferred insert and the count in
	// one pipeline; the count sees the insert.
	n.Store(0)
	var seenRows int
	err := database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		if err := database.Defer(tx, insert(1, "probe 1")); err != nil {
			return err
		}
		var err error
		seenRows, err = count(tx)
		return err
	})
	if err != nil || seenRows != 1 {
		t.Fatalf("err %v, the statement after the deferred one saw %d rows; want 1", err, seenRows)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d round trips, want 2 (the pipeline with BEGIN, COMMIT)", got)
	}
	// Deferred with nothing after it: sent before COMMIT.
	if err := database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		return database.Defer(tx, insert(2, "probe 2"))
	}); err != nil {
		t.Fatal(err)
	}
	// A deferred statement that fails fails the statement it travels with,
	// named, and the transaction: nothing of it is committed.
	err = database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		if err := database.Defer(tx, insert(3, "probe 3")); err != nil {
			return err
		}
		if err := database.Defer(tx, insert(1, "the duplicate")); err != nil {
			return err
		}
		_, err := count(tx)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "the duplicate") {
		t.Fatalf("err %v, want the failure of the deferred statement named", err)
	}
	// Before a statement sent on its own (gorm's Exec): the deferred one goes first.
	if err := database.Transaction(context.Background(), db, func(tx *gorm.DB) error {
		if err := database.Defer(tx, insert(4, "probe 4")); err != nil {
			return err
		}
		return tx.Exec(`UPDATE tx_probe SET note = 'seen' WHERE id = 4`).Error
	}); err != nil {
		t.Fatal(err)
	}
	var notes []string
	if err := db.Raw(`SELECT id || ':' || note FROM tx_probe ORDER BY id`).Scan(&notes).Error; err != nil {
		t.Fatal(err)
	}
	if want := []string{"1:deferred", "2:deferred", "4:seen"}; !slices.Equal(notes, want) {
		t.Fatalf("rows %v, want %v", notes, want)
	}
	// Outside a Transaction: sent at once.
	if err := database.Defer(db, insert(5, "probe 5")); err != nil {
		t.Fatal(err)
	}
	if c, err := count(db); err != nil || c != 4 {
		t.Fatalf("outside a transaction: %d rows (%v), want 4", c, err)
	}
}
