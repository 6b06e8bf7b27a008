package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// Transaction runs fn in a database transaction, as gorm's Transaction does
// (commit when fn returns nil, roll back when it fails or panics, savepoints
// for transactions nested in it), except that BEGIN is not a round trip of
// its own: it waits for the transaction's first statement and, when that
// statement goes through QueryRow or Pipeline, travels with it in one
// pipeline (BEGIN, the statements, one Sync). The hot postings (earn, one-step burn) start with
// such a statement, and on the bench one round trip is ~6% of the machine's
// CPU per earn. Any other first statement sends BEGIN first, as before.
//
// The transaction runs on one connection taken from the pool for its
// duration; a connection that is still inside a transaction when fn is done
// (a failed COMMIT or ROLLBACK) is closed, never returned to the pool.
func Transaction(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) (err error) {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	l := &lazyTx{ctx: ctx, conn: conn}
	defer l.release()
	tx := db.Session(&gorm.Session{NewDB: true, Context: ctx})
	tx.Statement.ConnPool = l
	panicked := true
	defer func() {
		if panicked || err != nil {
			if rerr := l.Rollback(); rerr != nil && err != nil {
				err = fmt.Errorf("%w (and the rollback failed: %v)", err, rerr)
			}
		}
	}()
	err = fn(tx)
	if err == nil {
		err = l.Commit()
	}
	panicked = false
	if err != nil && l.beginErr != nil && !errors.Is(err, l.beginErr) {
		err = fmt.Errorf("%w (begin: %v)", err, l.beginErr)
	}
	return err
}

// lazyTx is the connection pool gorm sees inside Transaction: the pinned
// connection, with BEGIN sent before the first statement that needs it.
type lazyTx struct {
	ctx      context.Context
	conn     *sql.Conn
	begun    bool
	beginErr error
	pending  []Stmt // deferred statements (Defer), sent with the next one
}

// begin sends BEGIN unless the transaction has begun, with the deferred
// statements, before a statement that does not travel in a pipeline.
func (l *lazyTx) begin(ctx context.Context) error {
	if len(l.pending) > 0 {
		if err := l.pipelineRows(ctx, nil); err != nil {
			l.beginErr = err
			return err
		}
		return nil
	}
	if l.begun {
		return nil
	}
	if _, err := l.conn.ExecContext(ctx, "BEGIN"); err != nil {
		l.beginErr = err
		return err
	}
	l.begun = true
	return nil
}

func (l *lazyTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := l.begin(ctx); err != nil {
		return nil, err
	}
	return l.conn.PrepareContext(ctx, query)
}

func (l *lazyTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := l.begin(ctx); err != nil {
		return nil, err
	}
	return l.conn.ExecContext(ctx, query, args...)
}

func (l *lazyTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := l.begin(ctx); err != nil {
		return nil, err
	}
	return l.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext cannot return BEGIN's failure in a *sql.Row: it then
// queries on a cancelled context, so the row reports an error and nothing
// runs outside the transaction; Transaction adds BEGIN's error to fn's.
func (l *lazyTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := l.begin(ctx); err != nil {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		return l.conn.QueryRowContext(cancelled, query, args...)
	}
	return l.conn.QueryRowContext(ctx, query, args...)
}

// beginWith sends BEGIN and query in one pipeline and scans query's one row
// into dest (sql.ErrNoRows when there is none).
func (l *lazyTx) beginWith(ctx context.Context, query string, args []any, dest []any) error {
	return l.pipeline(ctx, query, args, dest, nil)
}

// pipeline sends BEGIN (unless the transaction has begun), the deferred
// statements, query and then (when not nil) in one pipeline, and scans
// query's first row into dest and then's into then.Dest (sql.ErrNoRows when
// one has none, after both have run). PostgreSQL skips what follows a failed
// statement up to the pipeline's one Sync.
func (l *lazyTx) pipeline(ctx context.Context, query string, args []any, dest []any, then *Follow) error {
	first := func(got *bool, dest []any) func(Row) error {
		return func(row Row) error {
			if *got {
				return nil
			}
			*got = true
			return row.Scan(dest...)
		}
	}
	var got, gotThen bool
	stmts := []Stmt{{SQL: query, Args: args, Scan: first(&got, dest)}}
	if then != nil {
		stmts = append(stmts, Stmt{SQL: then.SQL, Args: then.Args, Scan: first(&gotThen, then.Dest)})
	}
	if err := l.pipelineRows(ctx, stmts); err != nil {
		return err
	}
	if !got || (then != nil && !gotThen) {
		return sql.ErrNoRows
	}
	return nil
}

// pipelineRows sends BEGIN (unless the transaction has begun), the deferred
// statements and stmts in one pipeline, and passes each statement's rows to
// its Scan. PostgreSQL
// skips what follows a failed statement up to the pipeline's one Sync; the
// first error is returned.
func (l *lazyTx) pipelineRows(ctx context.Context, stmts []Stmt) error {
	if len(l.pending) > 0 {
		stmts = append(l.pending[:len(l.pending):len(l.pending)], stmts...)
		l.pending = nil
	}
	return l.conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		var b pgx.Batch
		begin := !l.begun
		if begin {
			b.Queue("BEGIN")
		}
		for _, st := range stmts {
			b.Queue(st.SQL, st.Args...)
		}
		br := c.SendBatch(ctx, &b)
		var err error
		if begin {
			if _, err = br.Exec(); err != nil {
				l.beginErr = err
			}
		}
		for _, st := range stmts {
			if err != nil {
				break
			}
			if err = readRows(br, st.Scan); err != nil && st.Name != "" {
				err = fmt.Errorf("%s: %w", st.Name, err)
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if s := c.PgConn().TxStatus(); begin && (s == 'T' || s == 'E') {
			l.begun = true
		}
		return err
	})
}

// readRows reads the next result of br, passing each row to scan.
func readRows(br pgx.BatchResults, scan func(Row) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if scan == nil {
			continue
		}
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Commit commits, and refuses as pgx does when the server answers COMMIT
// with ROLLBACK (the transaction had failed).
func (l *lazyTx) Commit() error {
	if len(l.pending) > 0 {
		if err := l.pipelineRows(l.ctx, nil); err != nil {
			return err
		}
	}
	if !l.begun {
		return nil
	}
	return l.conn.Raw(func(dc any) error {
		tag, err := dc.(*stdlib.Conn).Conn().Exec(l.ctx, "COMMIT")
		if err != nil {
			return err
		}
		l.begun = false
		if tag.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
}

// Rollback rolls back; it runs even when the request's context has ended.
func (l *lazyTx) Rollback() error {
	l.pending = nil
	if !l.begun {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 5*time.Second)
	defer cancel()
	if _, err := l.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return err
	}
	l.begun = false
	return nil
}

// release returns the connection to the pool, or closes it when it is not
// idle (outside any transaction). pgx's database/sql driver would also
// discard such a connection when next taken from the pool; this closes it at
// once.
func (l *lazyTx) release() {
	_ = l.conn.Raw(func(dc any) error {
		if c := dc.(*stdlib.Conn).Conn(); c.IsClosed() || c.PgConn().TxStatus() != 'I' {
			return driver.ErrBadConn
		}
		return nil
	})
	_ = l.conn.Close()
}
