package testdb

import (
	"database/sql/driver"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// fullServer refuses the first connections for want of a slot, then accepts.
type fullServer struct {
	refusals, opens int
	err             error
}

func (f *fullServer) Open(string) (driver.Conn, error) {
	f.opens++
	if f.opens <= f.refusals {
		return nil, f.err
	}
	return nil, nil
}

// A server with no connection slot left makes a test wait for one; any other
// refusal is the test's answer at once.
func TestSlotWaiterWaitsOnlyForAFreeSlot(t *testing.T) {
	full := &fullServer{refusals: 3, err: &pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"}}
	if _, err := (slotWaiter{full}).Open("dsn"); err != nil || full.opens != 4 {
		t.Fatalf("full server: err %v after %d attempts; want success on the 4th", err, full.opens)
	}
	denied := &fullServer{refusals: 3, err: &pgconn.PgError{Code: "28P01", Message: "password authentication failed"}}
	var pe *pgconn.PgError
	if _, err := (slotWaiter{denied}).Open("dsn"); !errors.As(err, &pe) || pe.Code != "28P01" || denied.opens != 1 {
		t.Fatalf("refused login: err %v after %d attempts; want the refusal at once", err, denied.opens)
	}
}
