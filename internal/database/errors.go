package database

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL error codes (SQLSTATE) the hub acts on. Stores translate them
// into their own domain errors at their boundary.
const (
	UniqueViolation      = "23505"
	ForeignKeyViolation  = "23503"
	ExclusionViolation   = "23P01"
	SerializationFailure = "40001"
	DeadlockDetected     = "40P01"
	NoSuchDatabase       = "3D000"
	ReadOnlyTransaction  = "25006" // a write on a hot standby, or in a READ ONLY transaction
)

// Code is the SQLSTATE of the PostgreSQL error in err's chain, or "" when
// err holds none.
func Code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Constraint is the constraint named by the PostgreSQL error in err's chain,
// or "".
func Constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// IsUnique reports whether err is a unique violation; of the named
// constraint when constraint is not empty.
func IsUnique(err error, constraint string) bool {
	return Code(err) == UniqueViolation && (constraint == "" || Constraint(err) == constraint)
}
