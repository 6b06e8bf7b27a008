package ledger

import "errors"

// Domain errors. Callers match them with errors.Is; the web layer maps them to
// problem codes. Input problems are *validation.Error instead.
var (
	ErrNotFound                = errors.New("ledger: not found")
	ErrInsufficientPoints      = errors.New("ledger: insufficient available points")
	ErrIdempotencyMismatch     = errors.New("ledger: idempotency key reused with a different request")
	ErrHoldNotActive           = errors.New("ledger: hold is not active")
	ErrReversalExceedsOriginal = errors.New("ledger: reversal exceeds what remains of the original")
	ErrNotReversible           = errors.New("ledger: transaction type cannot be reversed")
	ErrAccountBlocked          = errors.New("ledger: account is blocked by a negative balance")
	ErrTransferLimit           = errors.New("ledger: transfer limit exceeded")
	ErrSameMember              = errors.New("ledger: source and destination member are the same")
	ErrInvalidCursor           = errors.New("ledger: invalid cursor")
)
