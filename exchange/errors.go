package exchange

import "errors"

// Domain errors; the web layer maps them to problem codes.
var (
	ErrProgrammeNotFound  = errors.New("exchange programme not found")
	ErrProgrammeExists    = errors.New("an exchange programme with this code exists")
	ErrDirectionClosed    = errors.New("the programme does not exchange in this direction")
	ErrLinkRejected       = errors.New("the partner programme rejected the account")
	ErrNotLinked          = errors.New("no validated programme account is linked")
	ErrQuoteNotFound      = errors.New("exchange quote not found")
	ErrQuoteExpired       = errors.New("exchange quote expired")
	ErrMonthlyLimit       = errors.New("monthly exchange limit reached")
	ErrExchangeNotFound   = errors.New("exchange not found")
	ErrNotReversible      = errors.New("the exchange cannot be reversed")
	ErrPartnerUnavailable = errors.New("the partner programme is unavailable")
	ErrDuplicateReference = errors.New("partner transaction id already used with different content")
)
