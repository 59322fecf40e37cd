package limits

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/config/retry"
	"github.com/momentohq/client-sdk-go/momento"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/fakeclock"
	"example.com/tokenvendingmachine/internal/logbuf"
	"example.com/tokenvendingmachine/internal/momentotest"
)

const testCache = "tvm"

// newCacheClient returns a real SDK cache client for the fake, configured
// as internal/vending's Connect configures it: no SDK logging, no retries.
func newCacheClient(t *testing.T, fake *momentotest.Server) momento.CacheClient {
	t.Helper()
	cp, err := fake.CredentialProvider(fake.APIKey())
	if err != nil {
		t.Fatalf("CredentialProvider() = %v", err)
	}
	cfg := config.InRegionLatestWithLogger(logger.NewNoopMomentoLoggerFactory()).
		WithClientTimeout(5 * time.Second).
		WithRetryStrategy(retry.NewNeverRetryStrategy())
	c, err := momento.NewCacheClientWithEagerConnectTimeout(cfg, cp, time.Hour, 5*time.Second)
	if err != nil {
		t.Fatalf("NewCacheClient() = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// fleetSetup is one emulator, a clock it shares with the Fleets, and a log.
type fleetSetup struct {
	fake  *momentotest.Server
	clock *fakeclock.Clock
	logs  *logbuf.Buffer
}

func newFleetSetup(t *testing.T) *fleetSetup {
	t.Helper()
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	fake := momentotest.NewServerT(t, testCache)
	fake.SetTime(clock.Now())
	return &fleetSetup{fake: fake, clock: clock, logs: &logbuf.Buffer{}}
}

// advance moves the Fleets' clock and the emulator's together.
func (s *fleetSetup) advance(d time.Duration) {
	s.clock.Advance(d)
	s.fake.FastForward(d)
}

func (s *fleetSetup) newFleet(t *testing.T, rate float64, burst int) *Fleet {
	t.Helper()
	return s.newFleetWith(t, FleetOptions{Rate: rate, Burst: burst})
}

// newFleetWith returns a Fleet with o, on the setup's cache, clock and log.
func (s *fleetSetup) newFleetWith(t *testing.T, o FleetOptions) *Fleet {
	t.Helper()
	o.CacheName, o.CallTimeout, o.Now = testCache, 5*time.Second, s.clock.Now
	o.Logger = slog.New(slog.NewJSONHandler(s.logs, nil))
	f, err := NewFleet(o)
	if err != nil {
		t.Fatalf("NewFleet() = %v", err)
	}
	return f
}

// allow asks f for one mint for a caller charged to no share, and waits for
// what the admission started.
func allow(f *Fleet, c momento.CacheClient) (ok bool, retryAfter time.Duration, err error) {
	a, err := f.Admit(context.Background(), c, Chain{})
	a.Wait()
	return a.OK, a.RetryAfter, err
}

// messages returns the msg of every line logged so far.
func (s *fleetSetup) messages(t *testing.T) []string {
	t.Helper()
	var msgs []string
	for line := range strings.Lines(s.logs.String()) {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msgs = append(msgs, rec.Msg)
	}
	return msgs
}

func TestFleetWindow(t *testing.T) {
	tests := []struct {
		rate         float64
		burst        int
		wantCapacity int64
		wantWindow   time.Duration
	}{
		{rate: 4, burst: 20, wantCapacity: 10, wantWindow: 2500 * time.Millisecond},
		{rate: 5, burst: 1, wantCapacity: 1, wantWindow: 200 * time.Millisecond},
		{rate: 3, burst: 21, wantCapacity: 10, wantWindow: 3334 * time.Millisecond},
		{rate: 0.1, burst: 4, wantCapacity: 2, wantWindow: 20 * time.Second},
	}
	for _, tt := range tests {
		f, err := NewFleet(FleetOptions{CacheName: testCache, Rate: tt.rate, Burst: tt.burst})
		if err != nil {
			t.Fatalf("NewFleet(rate %v, burst %d) = %v", tt.rate, tt.burst, err)
		}
		if f.Capacity() != tt.wantCapacity || f.Window() != tt.wantWindow {
			t.Errorf("NewFleet(rate %v, burst %d): capacity %d per %v, want %d per %v",
				tt.rate, tt.burst, f.Capacity(), f.Window(), tt.wantCapacity, tt.wantWindow)
		}
	}
}

// TestFleetWindowNeverRollsBack: a caller that read the clock just before
// a window ended, and took the lock after another had moved on to the next,
// leaves the next window's state as it is: its permits, and the attempts
// that tell newcomers apart.
func TestFleetWindowNeverRollsBack(t *testing.T) {
	s := newFleetSetup(t)
	f := s.newFleet(t, 4, 20)
	n := f.windowOf(s.clock.Now())
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollLocked(n)
	f.noteAttemptLocked("provider a")
	f.rollLocked(n + 1)
	f.noteAttemptLocked("provider b")
	f.have = 3
	f.rollLocked(n) // the late caller
	if f.win != n+1 || f.have != 3 || f.attempts["provider b"] != 1 || f.attemptsPrev["provider a"] != 1 {
		t.Errorf("after a late caller: window %d (want %d), %d permits held (want 3), attempts %v and before %v (want b once, and a once before)",
			f.win-n, 1, f.have, f.attempts, f.attemptsPrev)
	}
}

func TestNewFleetRejects(t *testing.T) {
	tests := []struct {
		name string
		opts FleetOptions
	}{
		{name: "no cache", opts: FleetOptions{Rate: 4, Burst: 20}},
		{name: "zero rate", opts: FleetOptions{CacheName: testCache, Burst: 20}},
		{name: "zero burst", opts: FleetOptions{CacheName: testCache, Rate: 4}},
		{name: "window over a day", opts: FleetOptions{CacheName: testCache, Rate: 1e-9, Burst: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFleet(tt.opts); err == nil {
				t.Errorf("NewFleet(%+v) = nil error, want one", tt.opts)
			}
		})
	}
}

// TestFleetBound has two instances, each with its own SDK client, ask more
// than the budget of one emulator over a simulated 12 seconds, and checks
// the mints admitted in every interval against Rate × T + Burst.
func TestFleetBound(t *testing.T) {
	const (
		rate   = 4
		burst  = 20
		step   = 50 * time.Millisecond
		steps  = 240 // 12 s
		window = 2500 * time.Millisecond
	)
	tests := []struct {
		name string
		// asks is how many mints each instance asks for at time now.
		asks func(now time.Time) int
		// wantTotal is the range of mints the 12 s should admit: the budget
		// is spent, so the test is not vacuous.
		wantMin, wantMax int
	}{
		{
			name:    "steady flood",
			asks:    func(time.Time) int { return 3 }, // 120 a second between them
			wantMin: 50, wantMax: 60,                  // 12 s off the windows' edges meet 5 or 6 windows
		},
		{
			// Idle, then a burst at a window's end and another at the start
			// of the next: the worst case of fixed windows. The cycle is
			// 10 s, so that the burst before the edge finds its window
			// unspent whatever the windows' length up to 5 s.
			name: "bursts on both sides of a window edge after idling",
			asks: func(now time.Time) int {
				const cycle = 10 * time.Second
				if in := time.Duration(now.UnixNano() % int64(cycle)); in < step || in >= cycle-step {
					return 20
				}
				return 0
			},
			wantMin: 30, wantMax: 30, // at 0 s, 9.95 s and 10 s
		},
		{
			name: "a trickle below the budget",
			asks: func(now time.Time) int {
				if now.UnixMilli()%1000 == 0 {
					return 1 // 2 a second between them
				}
				return 0
			},
			wantMin: 24, wantMax: 24,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFleetSetup(t)
			fleets := []*Fleet{s.newFleet(t, rate, burst), s.newFleet(t, rate, burst)}
			clients := []momento.CacheClient{newCacheClient(t, s.fake), newCacheClient(t, s.fake)}
			start := s.clock.Now()

			var admitted []time.Duration // since start
			for range steps {
				for i, f := range fleets {
					for range tt.asks(s.clock.Now()) {
						ok, retry, err := allow(f, clients[i])
						if err != nil {
							t.Fatalf("Admit() = %v", err)
						}
						if ok {
							admitted = append(admitted, s.clock.Now().Sub(start))
							continue
						}
						if retry <= 0 || retry > f.Window() {
							t.Fatalf("Admit() refused with retry after %v, want within (0, %v]", retry, f.Window())
						}
					}
				}
				s.advance(step)
			}

			for _, T := range []time.Duration{0, step, time.Second, window, 3 * time.Second, 5 * time.Second, 12 * time.Second} {
				bound := int(rate*T.Seconds()) + burst
				most := 0
				for i, a := range admitted {
					n, _ := slices.BinarySearch(admitted, a+T+1) // the closed interval [a, a+T]
					most = max(most, n-i)
				}
				if most > bound {
					t.Errorf("%d mints admitted within %v, want at most %d (rate × T + burst)", most, T, bound)
				}
			}
			if total := len(admitted); total < tt.wantMin || total > tt.wantMax {
				t.Errorf("%d mints admitted in 12 s, want %d to %d", total, tt.wantMin, tt.wantMax)
			}
			// Each instance stops calling Momento once it saw a window full.
			if got, most := s.fake.Count(momentotest.MethodIncrement), len(admitted)+2*6; got > most {
				t.Errorf("%d Increments for %d mints, want at most %d", got, len(admitted), most)
			}
		})
	}
}

// TestFleetConcurrent has two instances ask at once, many times, at one
// instant: exactly the window's capacity is admitted.
func TestFleetConcurrent(t *testing.T) {
	s := newFleetSetup(t)
	fleets := []*Fleet{s.newFleet(t, 4, 20), s.newFleet(t, 4, 20)}
	clients := []momento.CacheClient{newCacheClient(t, s.fake), newCacheClient(t, s.fake)}
	var (
		mu      sync.Mutex
		allowed int
		wg      sync.WaitGroup
	)
	for i := range 2 {
		for range 15 {
			wg.Go(func() {
				ok, _, err := allow(fleets[i], clients[i])
				if err != nil {
					t.Errorf("Admit() = %v", err)
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if allowed != 10 {
		t.Errorf("%d of 30 concurrent asks admitted, want the window's 10", allowed)
	}
}

func TestFleetCounterKey(t *testing.T) {
	s := newFleetSetup(t)
	f := s.newFleet(t, 4, 20)
	if ok, _, err := allow(f, newCacheClient(t, s.fake)); !ok || err != nil {
		t.Fatalf("Admit() = %v, _, %v, want true, nil", ok, err)
	}
	keys := s.fake.Keys(testCache)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], DefaultFleetKeyPrefix+"2500ms-") {
		t.Fatalf("keys after a mint = %q, want one %q...", keys, DefaultFleetKeyPrefix+"2500ms-")
	}
	it, _ := s.fake.Item(testCache, keys[0])
	if want := 6 * time.Second; it.TTL != want {
		t.Errorf("counter TTL = %v, want %v (two windows and a second)", it.TTL, want)
	}
	if string(it.Value) != "1" {
		t.Errorf("counter = %q, want \"1\"", it.Value)
	}
}

func TestFleetRetryAfter(t *testing.T) {
	s := newFleetSetup(t)
	// Put the clock 1 s into a window of 2.5 s.
	now := s.clock.Now()
	s.advance(now.Truncate(2500 * time.Millisecond).Add(3500 * time.Millisecond).Sub(now))
	f := s.newFleet(t, 4, 20)
	c := newCacheClient(t, s.fake)
	for range 10 {
		if ok, _, err := allow(f, c); !ok || err != nil {
			t.Fatalf("Admit() = %v, _, %v, want true, nil", ok, err)
		}
	}
	ok, retry, err := allow(f, c)
	if ok || err != nil || retry != 1500*time.Millisecond {
		t.Errorf("Admit() past the window's capacity = %v, %v, %v, want false, 1.5s, nil", ok, retry, err)
	}
	s.advance(retry)
	if ok, _, err := allow(f, c); !ok || err != nil {
		t.Errorf("Admit() in the next window = %v, _, %v, want true, nil", ok, err)
	}
}

// TestFleetFault checks that a failing Increment is reported so the caller
// can fall back, is not retried for RetryInterval, and is logged once per
// outage.
func TestFleetFault(t *testing.T) {
	s := newFleetSetup(t)
	f := s.newFleet(t, 4, 20)
	c := newCacheClient(t, s.fake)

	s.fake.SetFault(momentotest.MethodIncrement, momentotest.Fault{Code: codes.Unavailable})
	for i := range 3 {
		ok, _, err := allow(f, c)
		if ok || !errors.Is(err, ErrFleetUnavailable) {
			t.Fatalf("Admit() #%d with Increment failing = %v, _, %v, want false, ErrFleetUnavailable", i+1, ok, err)
		}
	}
	if got := s.fake.Count(momentotest.MethodIncrement); got != 1 {
		t.Errorf("%d Increments during one retry interval, want 1", got)
	}
	if !f.Down() {
		t.Errorf("Down() = false during an outage")
	}

	// Still failing after the retry interval: one more try, no more logging.
	s.advance(5 * time.Second)
	if _, _, err := allow(f, c); !errors.Is(err, ErrFleetUnavailable) {
		t.Fatalf("Admit() = %v, want ErrFleetUnavailable", err)
	}
	if got := s.fake.Count(momentotest.MethodIncrement); got != 2 {
		t.Errorf("%d Increments after one retry interval, want 2", got)
	}

	s.fake.ClearFaults()
	if _, _, err := allow(f, c); !errors.Is(err, ErrFleetUnavailable) {
		t.Errorf("Admit() before the retry interval = %v, want ErrFleetUnavailable", err)
	}
	s.advance(5 * time.Second)
	if ok, _, err := allow(f, c); !ok || err != nil {
		t.Fatalf("Admit() once Momento answers = %v, _, %v, want true, nil", ok, err)
	}
	if f.Down() {
		t.Errorf("Down() = true after a successful Increment")
	}

	want := []string{
		"fleet mint budget unavailable; using the per-instance limit until Momento answers",
		"fleet mint budget reachable again",
	}
	if diff := cmp.Diff(want, s.messages(t)); diff != "" {
		t.Errorf("log messages (-want +got):\n%s", diff)
	}
}

// TestFleetResourceExhausted: Momento refusing the Increment for quota is
// an outage of the budget too; the caller falls back.
func TestFleetResourceExhausted(t *testing.T) {
	s := newFleetSetup(t)
	f := s.newFleet(t, 4, 20)
	s.fake.SetFault(momentotest.MethodIncrement, momentotest.Fault{Code: codes.ResourceExhausted, Times: 1})
	if _, _, err := allow(f, newCacheClient(t, s.fake)); !errors.Is(err, ErrFleetUnavailable) {
		t.Errorf("Admit() = %v, want ErrFleetUnavailable", err)
	}
}

func TestFleetContextEnded(t *testing.T) {
	s := newFleetSetup(t)
	f := s.newFleet(t, 4, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Admit(ctx, newCacheClient(t, s.fake), Chain{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Admit() with an ended context = %v, want context.Canceled", err)
	}
	if f.Down() {
		t.Errorf("Down() = true after the caller's context ended; that is no outage")
	}
}

// maxInAnyInterval returns the most of the sorted times that fall within
// any closed interval of length T.
func maxInAnyInterval(times []time.Duration, T time.Duration) int {
	most := 0
	for i, a := range times {
		n, _ := slices.BinarySearch(times, a+T+1)
		most = max(most, n-i)
	}
	return most
}

// TestFleetBoundWithReservations has six instances reserve permits in
// batches against one emulator for 30 simulated seconds, each with its own
// pattern of demand, concurrently within each step: steady, bursts on both
// sides of window edges, a burst and then idling with permits in hand, a
// random one, a trickle, and one that joins late. The mints admitted in
// every interval stay within Rate × T + 2C.
func TestFleetBoundWithReservations(t *testing.T) {
	const (
		rate  = 40
		burst = 200 // C = 100, W = 2.5 s, batches of up to 12
		step  = 50 * time.Millisecond
		steps = 600
	)
	s := newFleetSetup(t)
	f0 := s.newFleet(t, rate, burst)
	window := f0.Window()
	rng := rand.New(rand.NewPCG(1, 2))
	var rngMu sync.Mutex
	random := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	demand := []func(i int, at time.Duration) int{
		func(int, time.Duration) int { return 2 }, // 40 a second
		func(_ int, at time.Duration) int { // bursts either side of each window edge
			if in := at % window; in < step || in >= window-step {
				return 60
			}
			return 0
		},
		func(i int, _ time.Duration) int { // a burst in the first window, then idle holding a reserve
			if i < 40 {
				return 3
			}
			return 0
		},
		func(int, time.Duration) int { return random(6) },
		func(i int, _ time.Duration) int { return boolInt(i%10 == 0) },
		func(i int, _ time.Duration) int { return 8 * boolInt(i >= steps/2) },
	}
	fleets := []*Fleet{f0}
	for range len(demand) - 1 {
		fleets = append(fleets, s.newFleet(t, rate, burst))
	}
	client := newCacheClient(t, s.fake)
	epoch := s.clock.Now()
	// Start on a window's edge, so that the bursts meet edges.
	s.advance(time.Duration(int64(window) - epoch.UnixNano()%int64(window)))
	start := s.clock.Now()

	var (
		mu       sync.Mutex
		admitted []time.Duration
	)
	for i := range steps {
		at := s.clock.Now().Sub(start)
		var wg sync.WaitGroup
		for j, f := range fleets {
			wg.Go(func() {
				for range demand[j](i, at) {
					ok, _, err := allow(f, client)
					if err != nil {
						t.Errorf("Admit() = %v", err)
						return
					}
					if ok {
						mu.Lock()
						admitted = append(admitted, at)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		s.advance(step)
	}
	slices.Sort(admitted)
	for _, T := range []time.Duration{0, step, time.Second, window, 5 * time.Second, 10 * time.Second, 30 * time.Second} {
		bound := int(rate*T.Seconds()) + 2*int(f0.Capacity())
		if most := maxInAnyInterval(admitted, T); most > bound {
			t.Errorf("%d mints admitted within %v, want at most rate × T + 2C = %d", most, T, bound)
		}
	}
	// The budget is spent (30 s meet 12 windows of 100), and batches save
	// Increments.
	if n := len(admitted); n < 1000 || n > 1200 {
		t.Errorf("%d mints admitted in 30 s, want 1000 to 1200", n)
	}
	if incs := s.fake.Count(momentotest.MethodIncrement); incs*2 > len(admitted) {
		t.Errorf("%d Increments for %d mints, want at most one per two", incs, len(admitted))
	}
	t.Logf("%d mints, %d Increments; most in 1 s: %d (bound %d), in 10 s: %d (bound %d)", len(admitted), s.fake.Count(momentotest.MethodIncrement),
		maxInAnyInterval(admitted, time.Second), rate+200, maxInAnyInterval(admitted, 10*time.Second), 10*rate+200)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFleetStrandedPermits: an instance that reserved a batch and went idle
// strands its permits; they are never spent in a later window, and the
// window's mints stay within C.
func TestFleetStrandedPermits(t *testing.T) {
	s := newFleetSetup(t)
	idle, busy := s.newFleet(t, 40, 200), s.newFleet(t, 40, 200) // C = 100, batches up to 12
	client := newCacheClient(t, s.fake)
	s.advance(time.Duration(int64(idle.Window()) - s.clock.Now().UnixNano()%int64(idle.Window())))

	admitted := 0
	for range 40 {
		if ok, _, err := allow(idle, client); !ok || err != nil {
			t.Fatalf("Admit() = %v, _, %v; want true, nil", ok, err)
		}
		admitted++
	}
	idle.mu.Lock()
	held := idle.have
	idle.mu.Unlock()
	if held == 0 {
		t.Fatalf("the instance holds no permits after 40 mints; the test needs some stranded")
	}
	for {
		ok, _, err := allow(busy, client)
		if err != nil {
			t.Fatalf("Admit() = %v", err)
		}
		if !ok {
			break
		}
		admitted++
	}
	if want := 100 - int(held); admitted != want {
		t.Errorf("%d mints admitted in one window with %d permits stranded, want C minus them, %d", admitted, held, want)
	}
	// In the next window the idle instance reserves anew.
	s.advance(idle.Window())
	before := s.fake.Count(momentotest.MethodIncrement)
	if ok, _, _ := allow(idle, client); !ok {
		t.Fatalf("Admit() in the next window refused")
	}
	if s.fake.Count(momentotest.MethodIncrement) == before {
		t.Errorf("a permit of the last window was spent in this one")
	}
}

// TestFleetBatchesFollowDemand: one instance minting steadily reserves in
// batches of about a quarter of its mints per window, at most MaxBatch,
// topping up beside a mint rather than before it.
func TestFleetBatchesFollowDemand(t *testing.T) {
	s := newFleetSetup(t)
	f := s.newFleetWith(t, FleetOptions{Rate: 400, Burst: 2000, MaxBatch: 20}) // C = 1000, W = 2.5 s
	client := newCacheClient(t, s.fake)
	const perStep, steps = 4, 500 // 80 a second, 200 a window, over 25 s
	admitted, waitedFor, beside := 0, 0, 0
	for range steps {
		for range perStep {
			before := s.fake.Count(momentotest.MethodIncrement)
			a, err := f.Admit(context.Background(), client, Chain{})
			if err != nil || !a.OK {
				t.Fatalf("Admit() = %+v, %v; want OK", a, err)
			}
			if s.fake.Count(momentotest.MethodIncrement) > before {
				waitedFor++ // an Increment happened before Admit returned
			}
			if a.pending != nil {
				beside++
			}
			a.Wait()
			admitted++
		}
		s.advance(50 * time.Millisecond)
	}
	incs := s.fake.Count(momentotest.MethodIncrement)
	t.Logf("%d mints, %d Increments: %d before a mint, %d beside one", admitted, incs, waitedFor, beside)
	// 200 a window in batches of 20 (the most) is 10 Increments a window;
	// the first mint of each window waits for one.
	if incs > admitted/15 {
		t.Errorf("%d Increments for %d mints, want at most one per 15", incs, admitted)
	}
	if windows := 11; waitedFor > 2*windows {
		t.Errorf("%d mints waited for an Increment, want about one a window (%d windows)", waitedFor, windows)
	}
}
