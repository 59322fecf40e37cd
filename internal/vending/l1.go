package vending

import (
	"container/list"
	"sync"
	"time"
)

// entryOverhead estimates the bytes an L1 entry costs beyond its key and
// token: the entry struct, its list element, its map slot and the
// allocator's rounding. TestL1DefaultBound checks it against the heap.
const entryOverhead = 224

// l1 is the in-process token cache: least recently used entries are evicted
// first once it holds more than maxEntries entries or maxBytes bytes. The
// zero value is not usable; see newL1. A nil *l1 caches nothing.
type l1 struct {
	maxEntries int
	maxBytes   int

	mu    sync.Mutex // guards the fields below
	bytes int        // sum of the entries' sizes
	order *list.List // of *l1Entry, most recently used at the front
	index map[string]*list.Element
}

type l1Entry struct {
	key   string
	tok   token
	until time.Time // when the entry stops being served
	size  int
}

// newL1 returns an L1 bounded by maxEntries and maxBytes, or nil (no L1) if
// either bound is zero.
func newL1(maxEntries, maxBytes int) *l1 {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil
	}
	return &l1{
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		order:      list.New(),
		index:      make(map[string]*list.Element),
	}
}

// get returns the token cached under key if it is still to be served at now.
func (c *l1) get(key string, now time.Time) (token, bool) {
	if c == nil {
		return token{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.index[key]
	if !ok {
		return token{}, false
	}
	e := el.Value.(*l1Entry)
	if !now.Before(e.until) {
		c.removeLocked(el)
		return token{}, false
	}
	c.order.MoveToFront(el)
	return e.tok, true
}

// put caches tok under key until until, replacing any earlier entry.
func (c *l1) put(key string, tok token, until time.Time) {
	if c == nil {
		return
	}
	e := &l1Entry{key: key, tok: tok, until: until, size: len(key) + len(tok.value) + entryOverhead}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[key]; ok {
		c.removeLocked(el)
	}
	if e.size > c.maxBytes {
		return
	}
	c.index[key] = c.order.PushFront(e)
	c.bytes += e.size
	for c.order.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.removeLocked(c.order.Back())
	}
}

// removeLocked drops el. c.mu must be held.
func (c *l1) removeLocked(el *list.Element) {
	e := c.order.Remove(el).(*l1Entry)
	delete(c.index, e.key)
	c.bytes -= e.size
}

// stats returns the number of entries and their estimated size in bytes.
func (c *l1) stats() (entries, bytes int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}
