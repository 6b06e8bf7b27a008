package members

import "errors"

// Domain errors. Callers match them with errors.Is; the service wraps them
// with what was being done.
var (
	// ErrNotFound: no member (or identifier) with that id or value.
	ErrNotFound = errors.New("member not found")
	// ErrIdentifierTaken: another member already holds that identifier.
	ErrIdentifierTaken = errors.New("identifier already belongs to another member")
	// ErrMemberInactive: the member is suspended, closed or merged and cannot
	// earn, burn or be changed in the way asked.
	ErrMemberInactive = errors.New("member is not active")
	// ErrInvalidMerge: self-merge, or a survivor or duplicate that cannot take
	// part in a merge (closed, already merged elsewhere).
	ErrInvalidMerge = errors.New("invalid merge")
	// ErrCardRequired: cards identify the account for good and cannot be
	// removed or added by hand (the hub issues them).
	ErrCardRequired = errors.New("card numbers are issued by the hub and cannot be removed")
	// ErrNotClosed: erasure needs a closed (or merged) account first, so that
	// the erased member can no longer earn or burn.
	ErrNotClosed = errors.New("member account must be closed before erasure")
)
