package idtoken

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// cache holds verified identities by the SHA-256 of the raw token (the token
// itself is never kept), each until the token's "exp", at most max entries,
// least recently used out first.
type cache struct {
	max int

	mu sync.Mutex
	// entries maps a token hash to its element in lru. Guarded by mu.
	entries map[[sha256.Size]byte]*list.Element
	// lru orders *cacheEntry values, most recently used first. Guarded by mu.
	lru list.List
}

type cacheEntry struct {
	key [sha256.Size]byte
	id  Identity
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[[sha256.Size]byte]*list.Element)}
}

// get returns the identity cached under key if it has not expired at now.
func (c *cache) get(key [sha256.Size]byte, now time.Time) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return Identity{}, false
	}
	e := el.Value.(*cacheEntry)
	if e.id.Expires.Before(now) { // go-oidc's test: valid through "exp"
		c.lru.Remove(el)
		delete(c.entries, key)
		return Identity{}, false
	}
	c.lru.MoveToFront(el)
	return e.id, true
}

// put caches id under key, evicting the least recently used entry when full.
// Expired entries go when a get finds them or when they reach the back.
func (c *cache) put(key [sha256.Size]byte, id Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		el.Value.(*cacheEntry).id = id
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		back := c.lru.Back()
		c.lru.Remove(back)
		delete(c.entries, back.Value.(*cacheEntry).key)
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, id: id})
}
