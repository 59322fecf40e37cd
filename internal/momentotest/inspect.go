package momentotest

import (
	"sort"
	"time"
)

// The Go API for seeding, inspecting and misbehaving, miniredis style.

// Item is a stored cache item.
type Item struct {
	// Value is the item's value.
	Value []byte
	// TTL is the time to live the item was set with.
	TTL time.Duration
	// ExpiresAt is when it expires on the fake's clock.
	ExpiresAt time.Time
}

// SetFault makes method m misbehave as f until ClearFaults, or for f.Times calls.
func (s *Server) SetFault(m Method, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[m] = f
}

// ClearFaults removes every fault set with SetFault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// SetLatency makes every modelled call wait d before it is served, as a real
// network would; it adds to any Fault's Latency. 0 removes it.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Count returns how many calls of method m the fake has received, failed
// ones included.
func (s *Server) Count(m Method) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[m]
}

// TotalCount returns how many calls of every modelled method the fake has
// received.
func (s *Server) TotalCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// ResetCounts sets every call count to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// Unmodelled returns the full names of calls the fake does not model, in the
// order they arrived.
func (s *Server) Unmodelled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unmodelled...)
}

// Mints returns every successful mint, oldest first.
func (s *Server) Mints() []Mint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Mint, len(s.mints))
	for i, m := range s.mints {
		m.Grants = append([]Grant(nil), m.Grants...)
		out[i] = m
	}
	return out
}

// MintOf returns the mint that produced token (as the SDK returned it).
func (s *Server) MintOf(token string) (Mint, bool) {
	for _, m := range s.Mints() {
		if m.Token == token {
			return m, true
		}
	}
	return Mint{}, false
}

// Item returns the item stored under key in cache, if it has not expired.
func (s *Server) Item(cache, key string) (Item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.itemLocked(cache, key)
}

// itemLocked returns a live item, dropping it if it has expired. s.mu must be held.
func (s *Server) itemLocked(cache, key string) (Item, bool) {
	k := itemKey{cache, key}
	it, ok := s.items[k]
	if !ok {
		return Item{}, false
	}
	if !s.nowLocked().Before(it.ExpiresAt) {
		delete(s.items, k)
		return Item{}, false
	}
	it.Value = append([]byte(nil), it.Value...)
	return it, true
}

// SetItem stores value under key in cache for ttl, as a Set call would. It
// fails with status NotFound if the cache does not exist.
func (s *Server) SetItem(cache, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.requireCacheLocked(cache); err != nil {
		return err
	}
	s.setItemLocked(cache, key, value, ttl)
	return nil
}

func (s *Server) setItemLocked(cache, key string, value []byte, ttl time.Duration) {
	s.items[itemKey{cache, key}] = Item{
		Value:     append([]byte(nil), value...),
		TTL:       ttl,
		ExpiresAt: s.nowLocked().Add(ttl),
	}
}

// Keys returns the keys of the live items in cache, sorted.
func (s *Server) Keys(cache string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.items {
		if k.cache != cache {
			continue
		}
		if _, ok := s.itemLocked(k.cache, k.key); ok {
			keys = append(keys, k.key)
		}
	}
	sort.Strings(keys)
	return keys
}
