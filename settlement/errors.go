package settlement

import "errors"

// Settlement errors. The web layer maps each to a status and problem code.
var (
	ErrPeriodNotFound         = errors.New("settlement period not found")
	ErrPeriodNotEnded         = errors.New("settlement period has not ended yet")
	ErrPeriodClosed           = errors.New("settlement period is closed")
	ErrPeriodNotClosed        = errors.New("settlement period is not closed")
	ErrEarlierPeriodOpen      = errors.New("an earlier settlement period is not closed")
	ErrMissingRate            = errors.New("exchange rate missing for the period")
	ErrNoContract             = errors.New("no contract in force for a settled transaction")
	ErrStatementNotFound      = errors.New("statement not found")
	ErrStatementState         = errors.New("statement is not in the state this action needs")
	ErrLineNotFound           = errors.New("statement line not found")
	ErrReconciliationNotFound = errors.New("reconciliation not found")
	ErrReconLineNotFound      = errors.New("reconciliation line not found")
	ErrAlreadyResolved        = errors.New("reconciliation line already resolved")
	ErrNothingToResolve       = errors.New("a matched line needs no resolution")
)

// Errors of approval, invoicing and payments.
var (
	ErrFourEyes        = errors.New("approval needs a second finance user")
	ErrBillingDetails  = errors.New("billing details missing for the invoice")
	ErrInvoiceNotFound = errors.New("invoice not found")
	ErrNotNettable     = errors.New("the statements cannot be netted")
	ErrPaymentMismatch = errors.New("the net payment does not match the difference of the netted balances")
)
