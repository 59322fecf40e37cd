package vending

import "example.com/tokenvendingmachine/internal/lru"

// The L1 is the in-process token cache, an lru.Cache keyed by the caller's
// cache key. A nil one (either bound zero) caches nothing.

// entryOverhead estimates the bytes an L1 entry costs beyond its key and
// token: the entry struct, its list element, its map slot and the
// allocator's rounding. TestL1DefaultBound checks it against the heap.
const entryOverhead = 224

func newL1(maxEntries, maxBytes int) *lru.Cache[string, token] {
	return lru.New[string, token](maxEntries, maxBytes)
}

// l1Size is the L1's estimate of the bytes an entry costs.
func l1Size(key string, tok token) int { return len(key) + len(tok.value) + entryOverhead }
