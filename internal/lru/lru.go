// Package lru is a bounded cache whose entries expire: the one in-process
// cache of the function, used for minted tokens (internal/vending) and for
// the callers of verified credentials (internal/credential).
//
// A [Cache] holds at most a number of entries and a number of bytes (each
// entry's size is the caller's estimate); past either bound the least
// recently used entries go first. An entry is served while the time passed
// to [Cache.Get] is before its expiry, and dropped at the first Get at or
// after it. Time is always passed in, so tests need no sleeping, and no
// goroutine runs behind the cache: each Put also drops a few expired
// entries from the least recently used end.
//
// Maintained libraries were weighed: hashicorp/golang-lru/v2's expirable
// cache bounds only the count and runs a goroutine per cache to expire
// entries; its simplelru has no expiry. This type is the ~100 lines both
// users need.
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Cache is a bounded, expiring, least-recently-used cache. Its methods are
// safe for concurrent use. A nil *Cache caches nothing: Get always misses
// and Put does nothing.
type Cache[K comparable, V any] struct {
	maxEntries int
	maxBytes   int

	mu    sync.Mutex // guards the fields below
	bytes int        // the sum of the entries' sizes
	order list.List  // of *entry[K, V], most recently used at the front
	index map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key   K
	value V
	until time.Time // when the entry stops being served
	size  int
}

// New returns a cache of at most maxEntries entries and maxBytes bytes, or
// nil (a cache that caches nothing) if either bound is not positive.
func New[K comparable, V any](maxEntries, maxBytes int) *Cache[K, V] {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil
	}
	return &Cache[K, V]{maxEntries: maxEntries, maxBytes: maxBytes, index: make(map[K]*list.Element)}
}

// Get returns the value cached under key if now is before its expiry. An
// expired entry is dropped.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.index[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !now.Before(e.until) {
		c.removeLocked(el)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// Put caches v under key until until, replacing any earlier entry, and
// evicts the least recently used entries while either bound is exceeded.
// size is the entry's estimated cost in bytes; an entry larger than the
// whole byte bound is not cached. now is the time on the caller's clock: Put
// also drops up to two entries that have expired by then from the least
// recently used end, so that entries nobody asks for again leave without a
// goroutine to sweep them.
func (c *Cache[K, V]) Put(key K, v V, size int, now, until time.Time) {
	if c == nil {
		return
	}
	e := &entry[K, V]{key: key, value: v, until: until, size: size}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[key]; ok {
		c.removeLocked(el)
	}
	for range 2 {
		back := c.order.Back()
		if back == nil || now.Before(back.Value.(*entry[K, V]).until) {
			break
		}
		c.removeLocked(back)
	}
	if size > c.maxBytes {
		return
	}
	c.index[key] = c.order.PushFront(e)
	c.bytes += size
	for c.order.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.removeLocked(c.order.Back())
	}
}

// Remove drops the entry under key, if any.
func (c *Cache[K, V]) Remove(key K) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[key]; ok {
		c.removeLocked(el)
	}
}

// removeLocked drops el. c.mu must be held.
func (c *Cache[K, V]) removeLocked(el *list.Element) {
	e := c.order.Remove(el).(*entry[K, V])
	delete(c.index, e.key)
	c.bytes -= e.size
}

// Len returns the number of entries and the sum of their sizes, expired
// ones that no Get has dropped yet included.
func (c *Cache[K, V]) Len() (entries, bytes int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}
