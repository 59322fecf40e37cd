// Package fakeclock is a clock for tests that moves only when told, for
// code that takes its time as a now func() time.Time.
//
//	clk := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
//	v := lazy.Value[int]{Now: clk.Now, ...}
//	clk.Advance(2 * time.Second)
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when told. Its methods are safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// New returns a clock that reads t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
