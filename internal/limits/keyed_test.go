package limits

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/fakeclock"
)

func newTestKeyed[K comparable](t testing.TB, clock *fakeclock.Clock, rate float64, burst, maxKeys int) *Keyed[K] {
	t.Helper()
	k, err := NewKeyed[K](KeyedOptions{Rate: rate, Burst: burst, MaxKeys: maxKeys, Now: clock.Now})
	if err != nil {
		t.Fatalf("NewKeyed() = %v", err)
	}
	return k
}

// step is one call in a scripted Keyed test.
type step struct {
	advance   time.Duration // before the call
	key       string
	refund    bool // call Refund instead of Allow
	wantOK    bool
	wantRetry time.Duration
}

func TestKeyedAllow(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		burst   int
		maxKeys int
		steps   []step
	}{
		{
			name: "burst then refused until a token refills",
			rate: 2, burst: 3, maxKeys: 10,
			steps: []step{
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: 500 * time.Millisecond},
				{advance: 200 * time.Millisecond, key: "a", wantOK: false, wantRetry: 300 * time.Millisecond},
				{advance: 300 * time.Millisecond, key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: 500 * time.Millisecond},
			},
		},
		{
			name: "keys are independent",
			rate: 1, burst: 1, maxKeys: 10,
			steps: []step{
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: time.Second},
				{key: "b", wantOK: true},
				{key: "b", wantOK: false, wantRetry: time.Second},
			},
		},
		{
			name: "a long idle refills no more than the burst",
			rate: 1, burst: 2, maxKeys: 10,
			steps: []step{
				{key: "a", wantOK: true},
				{advance: time.Hour, key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: time.Second},
			},
		},
		{
			name: "refund gives a token back",
			rate: 1, burst: 1, maxKeys: 10,
			steps: []step{
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: time.Second},
				{key: "a", refund: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: time.Second},
			},
		},
		{
			name: "refund never fills past the burst",
			rate: 1, burst: 2, maxKeys: 10,
			steps: []step{
				{key: "a", wantOK: true},
				{key: "a", refund: true},
				{key: "a", refund: true},
				{key: "a", refund: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: time.Second},
			},
		},
		{
			name: "a full bucket is evicted before a draining one",
			rate: 1, burst: 2, maxKeys: 2,
			steps: []step{
				{key: "drained", wantOK: true},
				{key: "drained", wantOK: true},
				{key: "idle", wantOK: true},
				{advance: time.Second, key: "new", wantOK: true}, // evicts idle, full again
				{key: "drained", wantOK: true},                   // one token refilled
				{key: "drained", wantOK: false, wantRetry: time.Second},
			},
		},
		{
			name: "an evicted key starts full",
			rate: 1, burst: 1, maxKeys: 1,
			steps: []step{
				{key: "a", wantOK: true},
				{key: "a", wantOK: false, wantRetry: time.Second},
				{key: "b", wantOK: true}, // evicts a before it refilled
				{key: "a", wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
			k := newTestKeyed[string](t, clock, tt.rate, tt.burst, tt.maxKeys)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				if s.refund {
					k.Refund(s.key)
					continue
				}
				ok, retry := k.Allow(s.key)
				if ok != s.wantOK || retry != s.wantRetry {
					t.Errorf("step %d: Allow(%q) = %v, %v, want %v, %v", i, s.key, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

// TestKeyedTokens checks what a key holds: the burst when not held, less
// what was taken, plus what refilled since, up to the burst.
func TestKeyedTokens(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	k := newTestKeyed[string](t, clock, 2, 4, 10)
	if got := k.Tokens("a"); got != 4 {
		t.Errorf("Tokens of a key not held = %v, want the burst, 4", got)
	}
	for range 3 {
		k.Allow("a")
	}
	if got := k.Tokens("a"); got != 1 {
		t.Errorf("Tokens after 3 of 4 taken = %v, want 1", got)
	}
	clock.Advance(250 * time.Millisecond)
	if got := k.Tokens("a"); got != 1.5 {
		t.Errorf("Tokens 250 ms later at 2 a second = %v, want 1.5", got)
	}
	clock.Advance(time.Hour)
	if got := k.Tokens("a"); got != 4 {
		t.Errorf("Tokens after an hour = %v, want the burst, 4", got)
	}
}

// TestKeyedRate checks that over a long run each key gets rate × time +
// burst tokens, whatever the pattern of calls.
func TestKeyedRate(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	k := newTestKeyed[string](t, clock, 4, 10, 100)
	allowed := 0
	const steps = 10000
	step := 7 * time.Millisecond // 70 s in all
	for range steps {
		for range 3 {
			if ok, _ := k.Allow("a"); ok {
				allowed++
			}
		}
		clock.Advance(step)
	}
	// The last Advance added no chance to spend its tokens.
	elapsed := time.Duration(steps-1) * step
	want := int(4*elapsed.Seconds()) + 10
	if allowed != want {
		t.Errorf("allowed %d in %v at rate 4, burst 10; want %d", allowed, elapsed, want)
	}
}

func TestKeyedEvictionBound(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	const maxKeys = 64
	k := newTestKeyed[netip.Prefix](t, clock, 1, 5, maxKeys)
	// Far more networks than fit: memory stays bounded.
	for i := range 10 * maxKeys {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		k.Allow(Network(addr))
	}
	got := k.Stats()
	want := KeyedStats{Keys: maxKeys, Evicted: 9 * maxKeys, EvictedEarly: 9 * maxKeys}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats() after a flood of distinct networks (-want +got):\n%s", diff)
	}

	// Once the buckets have refilled, evicting them loses nothing.
	clock.Advance(5 * time.Second)
	for i := range maxKeys {
		addr := netip.AddrFrom4([4]byte{11, 0, byte(i), 1})
		k.Allow(Network(addr))
	}
	got = k.Stats()
	want = KeyedStats{Keys: maxKeys, Evicted: 10 * maxKeys, EvictedEarly: 9 * maxKeys}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats() after refilled buckets were evicted (-want +got):\n%s", diff)
	}
}

// TestKeyedHeap drives many keys through a small Keyed and checks the heap
// and index stay consistent.
func TestKeyedHeap(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	k := newTestKeyed[int](t, clock, 3, 4, 37)
	for i := range 5000 {
		key := (i * 7919) % 101
		if i%5 == 0 {
			k.Refund(key)
		} else {
			k.Allow(key)
		}
		clock.Advance(time.Duration(i%13) * time.Millisecond)
		if i%97 == 0 {
			checkHeap(t, k)
		}
	}
	checkHeap(t, k)
}

func checkHeap[K comparable](t *testing.T, k *Keyed[K]) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.index) != len(k.heap) {
		t.Fatalf("index holds %d keys, heap %d", len(k.index), len(k.heap))
	}
	for i, s := range k.heap {
		if got := k.index[s.key]; int(got) != i {
			t.Fatalf("index[%v] = %d, want %d", s.key, got, i)
		}
		if i > 0 && k.heap[(i-1)/2].tat > s.tat {
			t.Fatalf("heap[%d].tat = %d is below its parent's %d", i, s.tat, k.heap[(i-1)/2].tat)
		}
	}
}

func TestNewKeyedRejects(t *testing.T) {
	tests := []struct {
		name string
		opts KeyedOptions
	}{
		{name: "zero rate", opts: KeyedOptions{Rate: 0, Burst: 1, MaxKeys: 1}},
		{name: "negative rate", opts: KeyedOptions{Rate: -1, Burst: 1, MaxKeys: 1}},
		{name: "zero burst", opts: KeyedOptions{Rate: 1, Burst: 0, MaxKeys: 1}},
		{name: "zero keys", opts: KeyedOptions{Rate: 1, Burst: 1, MaxKeys: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeyed[string](tt.opts); err == nil {
				t.Errorf("NewKeyed(%+v) = nil error, want one", tt.opts)
			}
		})
	}
}

func TestKeyedAllocs(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	k := newTestKeyed[netip.Prefix](t, clock, 1, 5, 1024)
	keys := make([]netip.Prefix, 4096)
	for i := range keys {
		keys[i] = Network(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
	}
	for _, key := range keys {
		k.Allow(key) // fill the map to its bound once
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k.Allow(keys[i%len(keys)]) // a held key or an eviction
		i++
	})
	if allocs > 0 {
		t.Errorf("Allow allocates %v times a call, want 0", allocs)
	}
}

func BenchmarkKeyedAllow(b *testing.B) {
	for _, held := range []int{100, 10000} {
		for _, distinct := range []int{held / 2, held * 4} {
			b.Run(fmt.Sprintf("held=%d/keys=%d", held, distinct), func(b *testing.B) {
				k, err := NewKeyed[netip.Prefix](KeyedOptions{Rate: 1, Burst: 10, MaxKeys: held})
				if err != nil {
					b.Fatal(err)
				}
				keys := make([]netip.Prefix, distinct)
				for i := range keys {
					keys[i] = Network(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
				}
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					k.Allow(keys[i%len(keys)])
					i++
				}
			})
		}
	}
}

func BenchmarkKeyedAllowParallel(b *testing.B) {
	k, err := NewKeyed[string](KeyedOptions{Rate: 1, Burst: 10, MaxKeys: 10000})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("198.51.%d.0/24", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k.Allow(keys[i%len(keys)])
			i++
		}
	})
}
