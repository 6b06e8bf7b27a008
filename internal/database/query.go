package database

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// QueryRow sends one statement with positional ($n) arguments straight to the
// connection of tx (the caller's transaction, or the pool) and scans its one
// row into dest (sql.ErrNoRows when there is none). The hottest statements go
// this way: gorm would rebuild the statement text byte by byte on every call
// (its named-argument expansion was a tenth of the hub's CPU per earn), and
// its Scan renders every statement with its arguments through a regular
// expression for its trace logger. As the first statement of a Transaction
// it carries the transaction's BEGIN with it (one round trip for both).
func QueryRow(tx *gorm.DB, query string, args []any, dest ...any) error {
	if l, ok := tx.Statement.ConnPool.(*lazyTx); ok && !l.begun {
		return l.beginWith(contextOf(tx), query, args, dest)
	}
	rows, err := send(tx, query, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// Follow is a statement that QueryRowThen sends in the same round trip right
// after another one, with its one row scanned into Dest.
type Follow struct {
	SQL  string
	Args []any
	Dest []any
}

// QueryRowThen is QueryRow for query, then then (when not nil) in the same
// pipeline: inside a Transaction the two statements (and BEGIN, when it has
// not been sent yet) travel in one round trip, and PostgreSQL runs then after
// query has completed, in the same transaction. When query fails, then is not
// run; when it answers no row, the error is sql.ErrNoRows but then has run
// (PostgreSQL saw no failure), so the caller rolls back. Outside a
// Transaction the two are sent one after the other, and then only when query
// answered its row. The
// earn sends the programme's qualifying credit this way (one round trip
// costs ~6% of the machine per earn on the bench).
func QueryRowThen(tx *gorm.DB, query string, args []any, dest []any, then *Follow) error {
	if then == nil {
		return QueryRow(tx, query, args, dest...)
	}
	if l, ok := tx.Statement.ConnPool.(*lazyTx); ok {
		return l.pipeline(contextOf(tx), query, args, dest, then)
	}
	if err := QueryRow(tx, query, args, dest...); err != nil {
		return err
	}
	return QueryRow(tx, then.SQL, then.Args, then.Dest...)
}

// Query is QueryRow for a statement of many rows: scan is called once per
// row with the rows positioned on it (rows.Scan into the caller's
// variables). Slices as arguments travel as PostgreSQL arrays in the binary
// protocol (a []int64 is a bigint[], a []*string a text[] with NULLs), so a
// batch needs neither JSON on either side nor an array literal built by hand.
func Query(tx *gorm.DB, query string, args []any, scan func(rows *sql.Rows) error) error {
	rows, err := send(tx, query, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// Row is the row a Stmt's Scan is positioned on (a *sql.Rows or a pgx row
// set: both scan the current row into the caller's variables).
type Row interface{ Scan(dest ...any) error }

// Stmt is a statement of a Pipeline: Scan (when not nil) is called once per
// row it answers.
type Stmt struct {
	SQL  string
	Args []any
	Scan func(row Row) error
	// Name, when set, prefixes the statement's error ("qualifying credits:
	// ..."): a deferred statement's failure is returned by another's call.
	Name string
}

// Pipeline sends stmts in order. Inside a Transaction they travel in one
// round trip (with BEGIN, when it has not been sent yet) and PostgreSQL runs
// each after the one before it has completed, in the same transaction; after
// a failed statement it runs none of the rest, and Pipeline returns the
// first error (the caller rolls back). Statements go in one pipeline only
// when none needs another's answer to be written: the batch earn sends its
// account upsert and its key claims this way. On the pool (outside any
// transaction) they also travel in one round trip, as one implicit
// transaction: a read that asks two packages at once (the points API's
// member check and its configuration stamp) pays one round trip, each
// package writing its own statement. In a transaction gorm began, they are
// sent one after the other, stopping at the first failure.
func Pipeline(tx *gorm.DB, stmts ...Stmt) error {
	if l, ok := tx.Statement.ConnPool.(*lazyTx); ok {
		return l.pipelineRows(contextOf(tx), stmts)
	}
	if pool, ok := tx.Statement.ConnPool.(*sql.DB); ok && len(stmts) > 1 {
		ctx := contextOf(tx)
		conn, err := pool.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		l := &lazyTx{ctx: ctx, conn: conn, begun: true} // begun: no BEGIN, an implicit transaction
		return l.pipelineRows(ctx, stmts)
	}
	for _, st := range stmts {
		scan := func(rows *sql.Rows) error {
			if st.Scan == nil {
				return nil
			}
			return st.Scan(rows)
		}
		if err := Query(tx, st.SQL, st.Args, scan); err != nil {
			return err
		}
	}
	return nil
}

// Defer queues st to be sent with the next statement of tx's Transaction:
// in the same pipeline when that statement goes through QueryRow,
// QueryRowThen or Pipeline, just before it otherwise, or before COMMIT.
// st's Scan runs then, and st's failure is that statement's error (named by
// st.Name), which fails the transaction. Work whose answer is needed only
// later in the transaction saves its round trip this way: the batch earn's
// programme credit travels with the member locks. Outside a Transaction st
// is sent at once.
func Defer(tx *gorm.DB, st Stmt) error {
	if l, ok := tx.Statement.ConnPool.(*lazyTx); ok {
		l.pending = append(l.pending, st)
		return nil
	}
	return Pipeline(tx, st)
}

// send sends query on tx's connection with tx's context.
func send(tx *gorm.DB, query string, args []any) (*sql.Rows, error) {
	return tx.Statement.ConnPool.QueryContext(contextOf(tx), query, args...)
}

func contextOf(tx *gorm.DB) context.Context {
	if ctx := tx.Statement.Context; ctx != nil {
		return ctx
	}
	return context.Background()
}

// Named is a statement written with named parameters (@name), compiled once
// to PostgreSQL's positional form for QueryRow: each distinct name becomes
// one $n, however often it appears. Hot-path statements keep their readable
// names without paying gorm's per-call expansion.
type Named struct {
	SQL   string
	names []string
}

// CompileNamed compiles query. A name is @ followed by letters, digits or
// underscores; the statement must not contain @ otherwise (no string literals
// or operators with @).
func CompileNamed(query string) Named {
	var b strings.Builder
	index := map[string]int{}
	var names []string
	for i := 0; i < len(query); i++ {
		if query[i] != '@' {
			b.WriteByte(query[i])
			continue
		}
		j := i + 1
		for j < len(query) && (query[j] == '_' || query[j] >= 'a' && query[j] <= 'z' || query[j] >= 'A' && query[j] <= 'Z' ||
			query[j] >= '0' && query[j] <= '9') {
			j++
		}
		name := query[i+1 : j]
		if name == "" {
			panic(fmt.Sprintf("database: a lone @ at byte %d of a named statement", i))
		}
		n, ok := index[name]
		if !ok {
			names = append(names, name)
			n = len(names)
			index[name] = n
		}
		b.WriteString("$" + strconv.Itoa(n))
		i = j - 1
	}
	return Named{SQL: b.String(), names: names}
}

// Args returns the positional arguments for values; every name of the
// statement must have a value.
func (q Named) Args(values map[string]any) ([]any, error) {
	args := make([]any, len(q.names))
	for i, name := range q.names {
		v, ok := values[name]
		if !ok {
			return nil, fmt.Errorf("database: no value for @%s", name)
		}
		args[i] = v
	}
	return args, nil
}
