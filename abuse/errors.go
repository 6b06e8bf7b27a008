package abuse

import (
	"errors"
	"time"
)

var (
	// ErrVelocityLimit: a burn would pass one of the partner's velocity
	// limits; LimitError says which and until when.
	ErrVelocityLimit = errors.New("velocity limit reached")
	// ErrFlagNotFound: no such flag (or another partner's).
	ErrFlagNotFound = errors.New("flag not found")
	// ErrFlagReviewed: the flag was approved or rejected already.
	ErrFlagReviewed = errors.New("flag already reviewed")
)

// LimitError is ErrVelocityLimit with the rule that refused and the end of
// its window.
type LimitError struct {
	Rule  string
	Until time.Time
	now   time.Time
}

func (e *LimitError) Error() string {
	return "velocity limit " + e.Rule + " reached until " + e.Until.UTC().Format(time.RFC3339)
}
func (e *LimitError) Unwrap() error { return ErrVelocityLimit }

// RetryAfter is how long until the window that refused ends.
func (e *LimitError) RetryAfter() time.Duration { return e.Until.Sub(e.now) }
