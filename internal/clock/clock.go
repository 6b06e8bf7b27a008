// Package clock is a clock that moves only when told. Tests hand its Now to
// the services they build instead of time.Now, and the demo seed walks it
// through months of history.
package clock

import (
	"sync"
	"time"
)

// Manual is a clock safe for concurrent use; its time changes only through
// Set and Add.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// New starts a clock at t.
func New(t time.Time) *Manual { return &Manual{t: t} }

// Now reads the clock.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t, forwards or back.
func (c *Manual) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d.
func (c *Manual) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
