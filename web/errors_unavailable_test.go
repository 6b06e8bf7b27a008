package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/testdb"
)

// The errors a failover produces, made on real connections, become a
// retryable 503 problem with Retry-After; an error the database returns for
// a bad statement does not.
func TestFailoverErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)

	// A server that is gone: nothing listens on the port any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, refused := database.Open(ctx, fmt.Sprintf("postgres://postgres@%s,%s/hub?sslmode=disable&connect_timeout=2&target_session_attrs=read-write", addr, addr), database.Options{})

	// A connection the server ended (a primary shut down or killed).
	var terminated error
	_ = db.Connection(func(conn *gorm.DB) error {
		var pid int
		if err := conn.Raw(`SELECT pg_backend_pid()`).Scan(&pid).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(`SELECT pg_terminate_backend(?)`, pid).Error; err != nil {
			t.Fatal(err)
		}
		terminated = conn.Exec(`SELECT 1`).Error
		return nil
	})

	// A write on a server that accepts only reads (a replica not yet promoted).
	readOnly := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET TRANSACTION READ ONLY`).Error; err != nil {
			t.Fatal(err)
		}
		return tx.Exec(`CREATE TABLE failover_probe (id int)`).Error
	})

	for name, err := range map[string]error{"connection refused": refused, "connection terminated": terminated, "read-only server": readOnly} {
		if err == nil {
			t.Fatalf("%s: no error; the test did not make the failure", name)
		}
		rec := failWith(err)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
			rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s (%v): %d, Retry-After %q, %s; want a 503 problem with Retry-After", name, err,
				rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))
		}
	}

	bad := db.Exec(`SELECT * FROM no_such_table`).Error
	if bad == nil {
		t.Fatal("a query of a missing table succeeded")
	}
	if rec := failWith(bad); rec.Code != http.StatusInternalServerError {
		t.Errorf("a refused statement: %d; want 500, not a retryable answer", rec.Code)
	}
	if rec := failWith(errors.New("plain")); rec.Code != http.StatusInternalServerError {
		t.Errorf("a plain error: %d; want 500", rec.Code)
	}
}

func failWith(err error) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodPost, "/v1/earn", nil)
	fail(c, slog.New(slog.NewTextHandler(io.Discard, nil)), err)
	return rec
}
