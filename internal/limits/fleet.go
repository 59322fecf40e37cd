package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	"github.com/momentohq/client-sdk-go/utils"
)

// ErrFleetUnavailable means the fleet budget could not be consulted: the
// Increment failed, or failed recently and is not being retried yet. The
// caller falls back to its per-instance limit.
var ErrFleetUnavailable = errors.New("fleet mint budget unavailable")

// DefaultFleetKeyPrefix starts the names of the fleet budget's counters.
const DefaultFleetKeyPrefix = "tvm-fleet-mints-"

// FleetOptions configures a Fleet.
type FleetOptions struct {
	// CacheName is the Momento cache that holds the counters.
	CacheName string
	// Rate is how many mints the whole fleet may make per second, on
	// average (FLEET_MINT_RATE); it must be positive.
	Rate float64
	// Burst is how far above Rate × time the fleet may go over a short
	// interval (FLEET_MINT_BURST); it must be at least 1.
	Burst int
	// KeyPrefix starts the counters' keys; "" means DefaultFleetKeyPrefix.
	// Every instance of a deployment must use the same.
	KeyPrefix string
	// CallTimeout bounds each Increment; 0 means only ctx bounds it.
	CallTimeout time.Duration
	// RetryInterval is, once an Increment failed, how long the Fleet answers
	// ErrFleetUnavailable without calling Momento before it tries again; 0
	// means 5 s. One caller at a time tries.
	RetryInterval time.Duration
	// Now is the clock; nil means time.Now. Instances agree on windows
	// through it, so it must be the wall clock, not a monotonic one.
	Now func() time.Time
	// Logger is told once when an outage begins and once when it ends; nil
	// means no logging.
	Logger *slog.Logger
}

// Fleet is a mint budget shared by every instance of a deployment through
// Momento: each mint attempt costs one Increment of a counter that all
// instances share. Its methods are safe for concurrent use.
//
// # The scheme and its bound
//
// Time is cut into fixed windows of W = C/Rate seconds (rounded up to the
// millisecond), where C = max(1, ⌊Burst/2⌋), aligned on the Unix epoch so every instance cuts them
// alike. Window n has the counter KeyPrefix+"<W in ms>ms-<n>", which lives
// for 2W+1s from its last Increment. Allow increments the current window's
// counter and admits the mint if the new count is at most C. Increment is
// atomic in Momento, so at most C attempts are admitted per window, however
// many instances ask. Once an instance sees a window full, it refuses the
// rest of that window without calling Momento.
//
// An interval of length T meets at most ⌈T/W⌉+1 windows, so the fleet
// admits at most
//
//	C × (T/W + 2) = Rate × T + 2C ≤ Rate × T + Burst
//
// mints in any interval of length T: the token bucket's own bound. Over the
// long run that is Rate per second. What differs from a token bucket is that
// a burst from idle gets C at once, and Burst only across a window's edge.
// If instance clocks differ from true time by up to ε, and a mint follows its
// Increment by up to L, the bound is Rate × (T + 2ε + L) + 2C. A window's
// Increments span W plus the instances' clock spread, and its counter lives
// 2W + 1 s, so clocks up to W + 1 s apart are covered; beyond that a lagging
// instance could find a window's counter gone and start it again.
//
// With Rate 4 and Burst 20: C = 10, W = 2.5 s, at most 4T + 20 mints in any
// T seconds, 14,400 an hour.
type Fleet struct {
	cacheName   string
	prefix      string // KeyPrefix plus the window's length
	capacity    int64
	window      int64 // nanoseconds
	ttl         time.Duration
	callTimeout time.Duration
	retry       time.Duration
	now         func() time.Time
	logger      *slog.Logger

	mu sync.Mutex // guards the fields below
	// full is the window this instance last saw full; -1 if none.
	full int64
	// down reports an outage: the last Increment failed.
	down bool
	// nextTry is when, during an outage, the next caller may call Momento.
	nextTry time.Time
	// failures counts the Increments that failed in this outage.
	failures int
}

// NewFleet returns a Fleet with the given options, or an error if one is out
// of range.
func NewFleet(o FleetOptions) (*Fleet, error) {
	var errs []error
	if o.CacheName == "" {
		errs = append(errs, errors.New("limits: fleet cache name is empty"))
	}
	if !(o.Rate > 0) || math.IsInf(o.Rate, 0) {
		errs = append(errs, errors.New("limits: fleet rate must be positive and finite"))
	}
	if o.Burst < 1 {
		errs = append(errs, errors.New("limits: fleet burst must be at least 1"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	capacity := max(int64(o.Burst/2), 1)
	// Rounding the window up to the millisecond keeps the rate at or below
	// Rate.
	window := time.Duration(math.Ceil(float64(capacity)/o.Rate*1000)) * time.Millisecond
	if window < time.Millisecond || window > 24*time.Hour {
		return nil, fmt.Errorf("limits: fleet window %v (burst/2 over rate) is out of range", window)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Second
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultFleetKeyPrefix
	}
	return &Fleet{
		cacheName:   o.CacheName,
		prefix:      o.KeyPrefix + strconv.FormatInt(window.Milliseconds(), 10) + "ms-",
		capacity:    capacity,
		window:      int64(window),
		ttl:         2*window + time.Second,
		callTimeout: o.CallTimeout,
		retry:       o.RetryInterval,
		now:         o.Now,
		logger:      o.Logger,
		full:        -1,
	}, nil
}

// Window returns the length of the budget's windows.
func (f *Fleet) Window() time.Duration { return time.Duration(f.window) }

// Capacity returns how many mints the fleet may make per window.
func (f *Fleet) Capacity() int64 { return f.capacity }

// Allow spends one mint from the fleet budget through cache: it reports
// true if the mint may go ahead, or false and how long until the next
// window. It makes at most one Increment, and none when this instance
// already saw the window full.
//
// cache is passed per call so that a caller that replaces its clients (on
// key rotation) counts with the current ones.
//
// The error wraps ErrFleetUnavailable if Momento could not be asked (the
// Increment failed now, or failed less than RetryInterval ago), or is ctx's
// error if ctx ended; ok is then false and the caller falls back to its own
// limit. The Fleet logs the start and end of an outage once each; the caller
// need not log every error.
func (f *Fleet) Allow(ctx context.Context, cache momento.CacheClient) (ok bool, retryAfter time.Duration, err error) {
	now := f.now()
	n := now.UnixNano() / f.window
	untilNext := time.Duration((n+1)*f.window - now.UnixNano())

	f.mu.Lock()
	if f.full == n {
		f.mu.Unlock()
		return false, untilNext, nil
	}
	if f.down {
		if now.Before(f.nextTry) {
			f.mu.Unlock()
			return false, 0, fmt.Errorf("%w: waiting to retry", ErrFleetUnavailable)
		}
		f.nextTry = now.Add(f.retry) // this caller tries; the others wait
	}
	f.mu.Unlock()

	count, err := f.increment(ctx, cache, n)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0, ctx.Err()
		}
		f.failed(now, err)
		return false, 0, fmt.Errorf("%w: %w", ErrFleetUnavailable, err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		f.down = false
		f.logger.Info("fleet mint budget reachable again", "failed_increments", f.failures)
		f.failures = 0
	}
	if count > f.capacity {
		f.full = n
		return false, untilNext, nil
	}
	return true, 0, nil
}

// Down reports whether the last Increment failed: while it does, Allow
// answers ErrFleetUnavailable.
func (f *Fleet) Down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// increment adds one to window n's counter and returns the new count.
func (f *Fleet) increment(ctx context.Context, cache momento.CacheClient, n int64) (int64, error) {
	if f.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.callTimeout)
		defer cancel()
	}
	resp, err := cache.Increment(ctx, &momento.IncrementRequest{
		CacheName: f.cacheName,
		Field:     momento.String(f.prefix + strconv.FormatInt(n, 10)),
		Amount:    1,
		Ttl:       &utils.CollectionTtl{Ttl: f.ttl},
	})
	if err != nil {
		return 0, err
	}
	r, ok := resp.(*responses.IncrementSuccess)
	if !ok {
		return 0, fmt.Errorf("unexpected Increment response %T", resp)
	}
	return r.Value(), nil
}

// LogFleetDown is the message of the line logged when an outage begins.
const LogFleetDown = "fleet mint budget unavailable; using the per-instance limit until Momento answers"

// failed records a failed Increment, logging the first of an outage.
func (f *Fleet) failed(now time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures++
	f.nextTry = now.Add(f.retry)
	if f.down {
		return
	}
	f.down = true
	// The error names only the counter's key, never a client.
	f.logger.Warn(LogFleetDown,
		"error", err.Error(), "retry_in", f.retry.String())
}
