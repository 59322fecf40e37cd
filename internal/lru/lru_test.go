package lru

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestExpiry(t *testing.T) {
	c := New[string, int](10, 1000)
	c.Put("a", 1, 10, t0, t0.Add(time.Minute))
	if v, ok := c.Get("a", t0.Add(time.Minute-time.Nanosecond)); !ok || v != 1 {
		t.Errorf("Get just before expiry = %v, %v; want 1, true", v, ok)
	}
	if _, ok := c.Get("a", t0.Add(time.Minute)); ok {
		t.Errorf("Get at expiry hit, want a miss: an entry is served only before its expiry")
	}
	if n, b := c.Len(); n != 0 || b != 0 {
		t.Errorf("Len after an expired Get = %d, %d; want the entry dropped", n, b)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	later := t0.Add(time.Hour)
	c := New[string, int](2, 1000)
	c.Put("a", 1, 1, t0, later)
	c.Put("b", 2, 1, t0, later)
	c.Get("a", t0) // b is now the least recently used
	c.Put("c", 3, 1, t0, later)
	if _, ok := c.Get("b", t0); ok {
		t.Errorf("b survived, want it evicted by the count bound")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(k, t0); !ok {
			t.Errorf("%s was evicted, want it kept", k)
		}
	}
}

func TestByteBound(t *testing.T) {
	later := t0.Add(time.Hour)
	c := New[string, int](100, 100)
	c.Put("a", 1, 40, t0, later)
	c.Put("b", 2, 40, t0, later)
	c.Put("c", 3, 40, t0, later) // 120 > 100: a goes
	if _, ok := c.Get("a", t0); ok {
		t.Errorf("a survived, want it evicted by the byte bound")
	}
	if n, b := c.Len(); n != 2 || b != 80 {
		t.Errorf("Len = %d entries, %d bytes; want 2, 80", n, b)
	}
	c.Put("huge", 4, 101, t0, later)
	if _, ok := c.Get("huge", t0); ok {
		t.Errorf("an entry larger than the byte bound was cached")
	}
	if n, _ := c.Len(); n != 2 {
		t.Errorf("caching nothing evicted something: %d entries, want 2", n)
	}
	c.Put("b", 5, 10, t0, later) // replacing frees the old size
	if n, b := c.Len(); n != 2 || b != 50 {
		t.Errorf("Len after replacing b = %d, %d; want 2, 50", n, b)
	}
	if v, _ := c.Get("b", t0); v != 5 {
		t.Errorf("Get(b) = %d after replacing it, want 5", v)
	}
	c.Remove("b")
	if n, b := c.Len(); n != 1 || b != 40 {
		t.Errorf("Len after Remove = %d, %d; want 1, 40", n, b)
	}
}

func TestNilCachesNothing(t *testing.T) {
	for _, c := range []*Cache[string, int]{New[string, int](0, 10), New[string, int](10, 0), nil} {
		c.Put("a", 1, 1, t0, t0.Add(time.Hour))
		if _, ok := c.Get("a", t0); ok {
			t.Errorf("a disabled cache hit")
		}
		c.Remove("a")
		if n, b := c.Len(); n != 0 || b != 0 {
			t.Errorf("a disabled cache has %d entries, %d bytes", n, b)
		}
	}
}

// BenchmarkPutWhenFull is what a new entry costs once the cache is full of
// unexpired entries: one eviction, O(1).
func BenchmarkPutWhenFull(b *testing.B) {
	const n = 10_000
	c := New[int, int](n, 1<<30)
	later := t0.Add(time.Hour)
	for i := range n {
		c.Put(i, i, 1, t0, later)
	}
	b.ResetTimer()
	for i := range b.N {
		c.Put(n+i, i, 1, t0, later)
	}
}

// TestPutDropsExpiredEntries: entries that expired and that nobody asks for
// again leave as new ones come, without a Get.
func TestPutDropsExpiredEntries(t *testing.T) {
	c := New[int, int](100, 1000)
	for i := range 10 {
		c.Put(i, i, 1, t0, t0.Add(time.Minute))
	}
	later := t0.Add(time.Hour)
	for i := range 5 {
		c.Put(100+i, i, 1, later, later.Add(time.Minute))
	}
	if n, _ := c.Len(); n != 5 {
		t.Errorf("after 5 puts an hour later: %d entries, want the 5 new ones (each put drops up to 2 expired)", n)
	}
	if _, ok := c.Get(104, later); !ok {
		t.Errorf("the newest entry is gone")
	}
}
