package limits

import (
	"errors"
	"math"
	"sync"
	"time"
)

// KeyedOptions configures a Keyed.
type KeyedOptions struct {
	// Rate is how many tokens each key's bucket gains per second; it must
	// be positive.
	Rate float64
	// Burst is how many tokens each bucket holds; it must be at least 1.
	Burst int
	// MaxKeys bounds how many keys are remembered; it must be at least 1.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Keyed is a token bucket per key, for at most MaxKeys keys at once. Its
// methods are safe for concurrent use.
//
// # Memory and eviction
//
// A Keyed holds at most MaxKeys keys, in a slice and a map sized once. A key
// it does not hold starts with a full bucket. When a new key arrives and
// MaxKeys are held, the key whose bucket is fullest is forgotten: the keys
// are kept in a min-heap by the time their bucket will be full, so the one
// evicted is the one that would have refilled first.
//
// Forgetting a full bucket loses nothing, since the key would start full
// anyway. Forgetting a bucket that is not full hands that key a fresh burst,
// which an attacker could try to exploit by cycling through keys. That needs
// more than MaxKeys keys whose buckets are all below full at the same moment,
// that is, more than MaxKeys distinct networks each active within the last
// Burst/Rate seconds. Such a flood gains no more than it would with no
// per-key bucket at all: every request it makes still draws on the instance
// and fleet budgets behind this one, which bound the total whatever the
// number of keys. What it can cost is only fairness between networks, and
// [Keyed.Stats] counts those evictions (EvictedEarly) so they can be seen.
// Eviction never hurts the key evicted: it comes back with a full bucket.
type Keyed[K comparable] struct {
	interval int64 // nanoseconds per token
	tau      int64 // nanoseconds of credit a full bucket holds: Burst*interval
	now      func() time.Time
	base     time.Time // the clock's reading at New; times are held relative to it

	mu sync.Mutex // guards the fields below
	// heap is a min-heap of the held keys by tat.
	heap []slot[K]
	// index maps a held key to its position in heap.
	index        map[K]int32
	evicted      uint64
	evictedEarly uint64
}

// slot is one key's bucket, kept as a theoretical arrival time (GCRA): the
// bucket is full when tat is not after now, and holds Burst-(tat-now)/interval
// tokens otherwise.
type slot[K comparable] struct {
	key K
	tat int64 // nanoseconds since Keyed.base
}

// KeyedStats describes a Keyed's memory use and evictions.
type KeyedStats struct {
	// Keys is how many keys are held.
	Keys int
	// Evicted counts keys forgotten to make room.
	Evicted uint64
	// EvictedEarly counts the evicted keys whose bucket was not yet full:
	// each gave its key a fresh burst.
	EvictedEarly uint64
}

// NewKeyed returns a Keyed with the given options, or an error if one is out
// of range.
func NewKeyed[K comparable](o KeyedOptions) (*Keyed[K], error) {
	var errs []error
	if !(o.Rate > 0) || math.IsInf(o.Rate, 0) {
		errs = append(errs, errors.New("limits: rate must be positive and finite"))
	}
	if o.Burst < 1 {
		errs = append(errs, errors.New("limits: burst must be at least 1"))
	}
	if o.MaxKeys < 1 || o.MaxKeys > math.MaxInt32 {
		errs = append(errs, errors.New("limits: max keys must be at least 1"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	interval := max(int64(float64(time.Second)/o.Rate), 1)
	tau := interval * int64(o.Burst)
	if tau/int64(o.Burst) != interval {
		return nil, errors.New("limits: burst/rate too long")
	}
	return &Keyed[K]{
		interval: interval,
		tau:      tau,
		now:      o.Now,
		base:     o.Now(),
		heap:     make([]slot[K], 0, o.MaxKeys),
		index:    make(map[K]int32, o.MaxKeys),
	}, nil
}

// Allow takes a token from key's bucket and reports true, or reports false
// and how long until the bucket holds a token again.
func (k *Keyed[K]) Allow(key K) (ok bool, retryAfter time.Duration) {
	now := int64(k.now().Sub(k.base))
	k.mu.Lock()
	defer k.mu.Unlock()
	i, held := k.index[key]
	if !held {
		k.insertLocked(key, now+k.interval, now) // a new key's bucket is full
		return true, 0
	}
	s := &k.heap[i]
	tat := max(s.tat, now) + k.interval
	if wait := tat - now - k.tau; wait > 0 {
		return false, time.Duration(wait)
	}
	s.tat = tat
	k.downLocked(int(i))
	return true, 0
}

// Burst returns how many tokens a full bucket holds.
func (k *Keyed[K]) Burst() float64 { return float64(k.tau / k.interval) }

// Tokens returns how many tokens key's bucket holds now: Burst for a key
// not held.
func (k *Keyed[K]) Tokens(key K) float64 {
	now := int64(k.now().Sub(k.base))
	k.mu.Lock()
	defer k.mu.Unlock()
	i, held := k.index[key]
	if !held {
		return k.Burst()
	}
	return float64(k.tau-max(k.heap[i].tat-now, 0)) / float64(k.interval)
}

// Refund gives back a token that Allow took from key's bucket, for a request
// that a later limit refused. It does nothing if the bucket is full or the
// key was forgotten since.
func (k *Keyed[K]) Refund(key K) {
	now := int64(k.now().Sub(k.base))
	k.mu.Lock()
	defer k.mu.Unlock()
	i, held := k.index[key]
	if !held {
		return
	}
	s := &k.heap[i]
	if s.tat <= now {
		return
	}
	s.tat = max(s.tat-k.interval, now)
	k.upLocked(int(i))
}

// Stats returns the Keyed's current memory use and evictions.
func (k *Keyed[K]) Stats() KeyedStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return KeyedStats{Keys: len(k.heap), Evicted: k.evicted, EvictedEarly: k.evictedEarly}
}

// insertLocked adds key with tat, evicting the key whose bucket is fullest
// if the heap is at capacity. k.mu must be held.
func (k *Keyed[K]) insertLocked(key K, tat, now int64) {
	if len(k.heap) < cap(k.heap) {
		i := len(k.heap)
		k.heap = append(k.heap, slot[K]{key: key, tat: tat})
		k.index[key] = int32(i)
		k.upLocked(i)
		return
	}
	old := k.heap[0]
	k.evicted++
	if old.tat > now {
		k.evictedEarly++
	}
	delete(k.index, old.key)
	k.heap[0] = slot[K]{key: key, tat: tat}
	k.index[key] = 0
	k.downLocked(0)
}

// upLocked restores the heap order after heap[i].tat decreased. k.mu must
// be held.
func (k *Keyed[K]) upLocked(i int) {
	h := k.heap
	s := h[i]
	for i > 0 {
		p := (i - 1) / 2
		if h[p].tat <= s.tat {
			break
		}
		h[i] = h[p]
		k.index[h[i].key] = int32(i)
		i = p
	}
	h[i] = s
	k.index[s.key] = int32(i)
}

// downLocked restores the heap order after heap[i].tat increased. k.mu must
// be held.
func (k *Keyed[K]) downLocked(i int) {
	h := k.heap
	n := len(h)
	s := h[i]
	moved := false
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].tat < h[c].tat {
			c = r
		}
		if s.tat <= h[c].tat {
			break
		}
		h[i] = h[c]
		k.index[h[i].key] = int32(i)
		i = c
		moved = true
	}
	if moved {
		h[i] = s
		k.index[s.key] = int32(i)
	}
}
