package limits

import (
	"sync"
	"time"
)

// Backoff pauses an action after its upstream says it is over quota: the
// first failure pauses it for Initial, each failure after a pause ended
// doubles the pause, up to Max, and a success starts the doubling over. The
// zero value is ready to use, with a 1 s first pause, a 30 s longest and
// time.Now. Its methods are safe for concurrent use; set the fields before
// first use.
//
// Failures reported while a pause is on do not lengthen it: they come from
// calls made before the pause began, so several concurrent calls refused
// together count as one failure.
type Backoff struct {
	// Initial is the first pause; 0 means 1 s.
	Initial time.Duration
	// Max is the longest pause; 0 means 30 s.
	Max time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex // guards the fields below
	// level counts the failures since the last success that each began a
	// pause; 0 means none.
	level int
	// until is when the current pause ends; zero if there has been none.
	until time.Time
}

// Allow reports whether the action may be tried now, or false and how long
// until the pause ends.
func (b *Backoff) Allow() (ok bool, retryAfter time.Duration) {
	now := b.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.until.Sub(now); d > 0 {
		return false, d
	}
	return true, 0
}

// Fail records that the upstream refused for quota, and returns how long
// the pause lasts from now: a new pause, twice the last one (at most Max),
// or what is left of the pause already on.
func (b *Backoff) Fail() (retryAfter time.Duration) {
	now := b.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.until.Sub(now); d > 0 {
		return d
	}
	first, longest := b.Initial, b.Max
	if first <= 0 {
		first = time.Second
	}
	if longest <= 0 {
		longest = 30 * time.Second
	}
	d := first
	for i := 1; i < b.level+1 && d < longest; i++ {
		d *= 2
	}
	d = min(d, longest)
	b.level++
	b.until = now.Add(d)
	return d
}

// Succeed records that the upstream accepted a call: the next failure
// pauses for Initial again. A pause already on is left to run out.
func (b *Backoff) Succeed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.level = 0
}

func (b *Backoff) clock() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}
