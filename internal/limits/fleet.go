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
	"google.golang.org/grpc/status"
)

// ErrFleetUnavailable means the fleet budget could not be consulted: an
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
	// MaxBatch bounds how many permits one Increment reserves; 0 means
	// max(1, C/8), C being the window's capacity (see Fleet).
	MaxBatch int64
	// Shares are what one caller may take of a window while the budget is
	// under pressure; nil means DefaultShares(C).
	Shares *Shares
	// Now is the clock; nil means time.Now. Instances agree on windows
	// through it, so it must be the wall clock, not a monotonic one.
	Now func() time.Time
	// Logger is told once when an outage begins and once when it ends; nil
	// means no logging.
	Logger *slog.Logger
}

// Fleet is a mint budget shared by every instance of a deployment through
// Momento. Each instance reserves permits in batches, with one Increment of
// a counter that all instances share, and spends them one mint at a time.
// Its methods are safe for concurrent use.
//
// # The windows
//
// Time is cut into fixed windows of W = C/Rate seconds (rounded up to the
// millisecond), where C = max(1, ⌊Burst/2⌋), aligned on the Unix epoch so
// every instance cuts them alike. Window n has the counter
// KeyPrefix+"<W in ms>ms-<n>", holding C − N permits, and, if the
// newcomers' reserve N = Shares.Newcomers is not 0, the counter
// KeyPrefix+"<W in ms>ms-<n>-newcomers", holding N (see [Shares]); each
// lives for 2W+1s from its last Increment. Increment is atomic in Momento,
// so a counter's replies are a fleet-wide order of every permit asked of
// it in the window.
//
// # Reservations
//
// An instance reserves k permits of a counter holding P with one Increment
// by k. If the reply is c, its permits are the numbers c−k+1 … c, and it
// owns those at or below P: min(k, P−(c−k)) of them, none if c−k ≥ P. So
// the owned permits of a window, over all instances, are distinct numbers
// from 1 to C − N of the one counter and from 1 to N of the other: at most
// C. A permit is spent only in the window it was reserved in; whatever an
// instance still holds when its window ends is dropped (stranded). Once a
// reply reaches C − N, the instance asks the first counter no more until
// the next window, and only newcomers ask the second, one permit at a
// time; once that reaches N too, the window is spent.
//
// k follows the instance's own demand: ⌈m/4⌉, m being the larger of its
// mints in the previous window and so far in this one, at least 1 and at
// most MaxBatch, so that one instance cannot hold much of a window that
// others need. The reserve is topped up when it falls to ⌊k/2⌋ within a
// request that has just taken a permit; that Increment runs beside the
// request's mint, and the request waits for it before it responds
// ([Admission.Wait]). Only a request that finds the reserve empty waits for
// an Increment before minting: the first of a window, or one that outran
// the top-up.
//
// # The bound
//
// An interval of length T meets at most ⌈T/W⌉+1 windows, and each window
// admits at most C mints fleet-wide, however many instances reserve in it,
// and however many permits idle instances strand, so the fleet admits at
// most
//
//	C × (T/W + 2) = Rate × T + 2C ≤ Rate × T + Burst
//
// mints in any interval of length T: the token bucket's own bound. Over the
// long run that is Rate per second. Stranded permits only lower what is
// used. What differs from a token bucket is that a burst from idle gets C at
// once, and Burst only across a window's edge. If instance clocks differ
// from true time by up to ε, and a mint follows the check of its permit's
// window by up to L, the bound is Rate × (T + 2ε + L) + 2C. A window's
// Increments span W plus the instances' clock spread, and its counter lives
// 2W + 1 s, so clocks up to W + 1 s apart are covered; beyond that a lagging
// instance could find a window's counter gone and start it again.
//
// With Rate 4 and Burst 20: C = 10, W = 2.5 s, at most 4T + 20 mints in any
// T seconds, 14,400 an hour.
//
// # Pressure and shares
//
// While the budget is under pressure, [Fleet.Admit] also charges each mint
// to its caller's shares before it takes a permit; see [Shares].
type Fleet struct {
	cacheName   string
	prefix      string // KeyPrefix plus the window's length
	capacity    int64
	window      int64 // nanoseconds
	ttl         time.Duration
	callTimeout time.Duration
	retry       time.Duration
	maxBatch    int64
	shares      Shares
	now         func() time.Time
	logger      *slog.Logger

	mu sync.Mutex // guards the fields below
	// win is the window that the fields from have to over describe.
	win int64
	// have is how many permits of win this instance holds from the
	// window's counter, haveReserve how many from its newcomers' counter.
	have, haveReserve int64
	// spent and spentPrev count this instance's permits spent in win and
	// in the window before it (0 if it saw none of that window).
	spent, spentPrev int64
	// reserveOnly reports that win's counter reached C − Newcomers: only
	// the newcomers' reserve is left. full reports that that is spent too
	// (or that there is none): no permit is left to reserve in win.
	full, reserveOnly bool
	// attempts and attemptsPrev count, by the key newcomerKey names,
	// the mints asked of this instance in win and in the window before
	// it; at most maxOver keys each.
	attempts, attemptsPrev map[string]int64
	// refilling, if not nil, is the Increment in flight.
	refilling *refill
	// over holds the share counters of win seen past their share; at
	// most maxOver.
	over map[string]bool
	// uncharged counts, by share counter, the mints admitted in win before
	// this instance saw pressure, not yet added to the counters; at most
	// maxOver keys.
	uncharged map[string]int64
	// passed holds the providers that passed their share in win on this
	// instance, or minted here before it saw pressure; counted those whose
	// refusal for win's budget it has counted. At most maxOver each.
	passed, counted map[string]bool
	// pressuredUntil is when the pressure this instance last saw ends.
	pressuredUntil time.Time
	// down reports an outage: the last Increment failed.
	down bool
	// nextTry is when, during an outage, the next caller may call Momento.
	nextTry time.Time
	// failures counts the Increments that failed in this outage.
	failures int
}

// refill is one reserving Increment; done closes once its result is in.
type refill struct {
	done chan struct{}
	err  error // set before done closes
}

// maxOver bounds how many spent shares an instance remembers per window.
const maxOver = 10_000

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
	if o.MaxBatch < 0 {
		errs = append(errs, errors.New("limits: fleet max batch must not be negative"))
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
	if o.MaxBatch == 0 {
		o.MaxBatch = max(1, capacity/8)
	}
	shares := DefaultShares(capacity)
	if o.Shares != nil {
		shares = *o.Shares
	}
	// The reserve refuses only under pressure: a count past C − Newcomers
	// is past Pressure.
	shares.Newcomers = max(0, min(shares.Newcomers, capacity-shares.Pressure-1))
	return &Fleet{
		cacheName:   o.CacheName,
		prefix:      o.KeyPrefix + strconv.FormatInt(window.Milliseconds(), 10) + "ms-",
		capacity:    capacity,
		window:      int64(window),
		ttl:         2*window + time.Second,
		callTimeout: o.CallTimeout,
		retry:       o.RetryInterval,
		maxBatch:    min(o.MaxBatch, capacity),
		shares:      shares,
		now:         o.Now,
		logger:      o.Logger,
		win:         -1,
	}, nil
}

// Window returns the length of the budget's windows.
func (f *Fleet) Window() time.Duration { return time.Duration(f.window) }

// Capacity returns how many mints the fleet may make per window.
func (f *Fleet) Capacity() int64 { return f.capacity }

// An Admission is the Fleet's answer to one mint.
type Admission struct {
	// OK reports that the mint may go ahead.
	OK bool
	// RetryAfter is, for a refusal, how long until the next window.
	RetryAfter time.Duration
	// Share, for a refusal under pressure, names the share that was spent
	// (ShareDevice, ShareIdentity, ShareNetwork, ShareProvider or
	// ShareContended); "" if the window's budget was.
	Share string
	// pending, if not nil, closes when the Increment started beside the
	// mint is done.
	pending <-chan struct{}
}

// Wait returns once the work the Admission started beside the caller's mint
// (an Increment that tops up the reserve) is done. Call it before
// responding: Cloud Functions may stop the CPU once the response is
// written. Waiting on a refusal, or twice, returns at once.
func (a Admission) Wait() {
	if a.pending != nil {
		<-a.pending
	}
}

// Admit decides one mint for caller c: it reports OK if the mint may go
// ahead, or not OK and how long until the next window. Under pressure it
// first charges c's shares (see [Shares]; the zero Chain has none); then it
// spends a permit from the instance's reserve, reserving more with an
// Increment when the reserve is empty, and starting one beside the mint
// when the reserve runs low. Once only the newcomers' reserve is left, it
// refuses a caller that is no newcomer (see [Shares]) without asking
// Momento; the zero Chain counts as a newcomer.
//
// cache is passed per call so that a caller that replaces its clients (on
// key rotation) counts with the current ones.
//
// The error wraps ErrFleetUnavailable if Momento could not be asked (an
// Increment failed now, or failed less than RetryInterval ago), or is ctx's
// error if ctx ended; the caller then falls back to its own limit. The Fleet
// logs the start and end of an outage once each; the caller need not log
// every error.
func (f *Fleet) Admit(ctx context.Context, cache momento.CacheClient, c Chain) (Admission, error) {
	now := f.now()
	n := f.windowOf(now)
	w := asker{key: newcomerKey(c)}
	f.mu.Lock()
	if f.down {
		if now.Before(f.nextTry) {
			f.mu.Unlock()
			return Admission{}, fmt.Errorf("%w: waiting to retry", ErrFleetUnavailable)
		}
		f.nextTry = now.Add(f.retry) // this caller tries; the others wait
	}
	f.rollLocked(n)
	f.noteAttemptLocked(w.key)
	f.mu.Unlock()

	// Pressure is checked where the permit is taken: a caller that came
	// in before it showed is charged before it takes one.
	charged := c == (Chain{}) // the zero chain has nothing to charge
	for {
		a, pressured, err := f.take(ctx, cache, charged, w)
		switch {
		case err != nil:
			return Admission{}, err
		case a.OK:
			if !charged && !pressured {
				f.noteUncharged(n, c)
			}
			return a, nil
		case a.RetryAfter > 0:
			return f.budgetRefused(ctx, cache, now, n, c, pressured && c != (Chain{}), w.providerCount)
		}
		f.mu.Lock()
		spent := f.knownSpentLocked(n, c)
		f.mu.Unlock()
		if spent == "" {
			spent, w.providerCount, w.contending, err = f.charge(ctx, cache, n, c)
			if err != nil {
				return Admission{}, f.callFailed(ctx, now, err)
			}
		}
		if spent != "" {
			f.pressure(n)
			return f.refused(now, spent), nil
		}
		charged = true
	}
}

// take spends one permit of the current window for w, reserving more if
// the reserve is empty, and reports whether the instance is under
// pressure. It refuses, with a RetryAfter, a caller that finds the window
// spent, or all but the newcomers' reserve spent if it is no newcomer; it
// sends one not charged yet (charged false) back without a permit, and
// with no RetryAfter, if the instance is under pressure.
func (f *Fleet) take(ctx context.Context, cache momento.CacheClient, charged bool, w asker) (a Admission, pressured bool, err error) {
	for {
		now := f.now()
		n := f.windowOf(now)
		f.mu.Lock()
		f.rollLocked(n)
		pressured = now.Before(f.pressuredUntil)
		// Whether w is a newcomer matters only once the ordinary permits
		// are spent.
		newcomer := f.have == 0 && f.newcomerLocked(w)
		usable := f.have
		if newcomer {
			usable += f.haveReserve
		}
		if usable == 0 && (f.full || f.reserveOnly && !newcomer) {
			f.mu.Unlock()
			return f.refused(now, ""), pressured, nil
		}
		if pressured && !charged {
			f.mu.Unlock()
			return Admission{}, true, nil
		}
		if usable > 0 {
			if f.have > 0 {
				f.have--
			} else {
				f.haveReserve--
			}
			f.spent++
			a := Admission{OK: true}
			if k := f.batchLocked(); k >= 2 && f.have <= k/2 && !f.reserveOnly && f.refilling == nil && !f.down {
				r := f.startRefillLocked()
				go f.reserve(context.WithoutCancel(ctx), cache, n, k, now, r, false)
				a.pending = r.done
			}
			f.mu.Unlock()
			return a, pressured, nil
		}
		if r := f.refilling; r != nil {
			f.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				return Admission{}, pressured, ctx.Err()
			}
			if r.err != nil {
				return Admission{}, pressured, unavailable(ctx, r.err)
			}
			continue
		}
		k, newcomers := f.batchLocked(), f.reserveOnly
		if newcomers {
			k = 1 // a newcomer's permit: the reserve is not to be held
		}
		r := f.startRefillLocked()
		f.mu.Unlock()
		f.reserve(ctx, cache, n, k, now, r, newcomers)
		if r.err != nil {
			return Admission{}, pressured, unavailable(ctx, r.err)
		}
	}
}

// budgetRefused refuses c for the budget of window n. Under pressure, a
// provider that finds the window spent after another attempt of its passed
// its provider share in n wants more than the window holds: that counts
// towards its contending (see [Shares]), once per window and instance. The
// instance knows of the other attempt from the count its charge of this
// attempt returned (providerCount, at least 2), or from its own record of
// the window: a charge that passed here, or a mint here before pressure.
// It asks Momento nothing to find out.
func (f *Fleet) budgetRefused(ctx context.Context, cache momento.CacheClient, now time.Time, n int64, c Chain, pressured bool, providerCount int64) (Admission, error) {
	refusal := f.refused(now, "")
	if !pressured || c.Provider == "" {
		return refusal, nil
	}
	f.mu.Lock()
	wants := providerCount >= 2 || providerCount == 0 && f.win == n && f.passed[c.Provider]
	f.mu.Unlock()
	if wants {
		if err := f.countRefusal(ctx, cache, n, c.Provider); err != nil {
			return Admission{}, f.callFailed(ctx, now, err)
		}
	}
	return refusal, nil
}

// notePassedLocked records that provider passed its share, or minted, in
// window n on this instance. f.mu must be held.
func (f *Fleet) notePassedLocked(n int64, provider string) {
	if f.win != n || provider == "" {
		return
	}
	if f.passed == nil {
		f.passed = make(map[string]bool)
	}
	if len(f.passed) < maxOver {
		f.passed[provider] = true
	}
}

// startRefillLocked records a refill in flight. f.mu must be held.
func (f *Fleet) startRefillLocked() *refill {
	r := &refill{done: make(chan struct{})}
	f.refilling = r
	return r
}

// reserve asks Momento for k permits of window n, from its newcomers'
// counter if newcomers, and adds those it owns to the reserve, if n is
// still the current window; then it ends refill r.
func (f *Fleet) reserve(ctx context.Context, cache momento.CacheClient, n, k int64, now time.Time, r *refill, newcomers bool) {
	key, capacity := f.prefix+strconv.FormatInt(n, 10), f.capacity-f.shares.Newcomers
	if newcomers {
		key, capacity = key+"-newcomers", f.shares.Newcomers
	}
	count, err := f.increment(ctx, cache, key, k, f.ttl)
	f.mu.Lock()
	defer f.mu.Unlock()
	defer close(r.done)
	f.refilling = nil
	if err != nil {
		r.err = err
		if ctx.Err() == nil {
			f.failedLocked(now, err)
		}
		return
	}
	f.reachableLocked()
	if newcomers || count > f.shares.Pressure || count >= capacity {
		f.pressureLocked(n)
	}
	if f.win != n {
		return // the window ended while the Increment was in flight
	}
	owned := max(0, min(k, capacity-(count-k)))
	switch {
	case newcomers:
		f.haveReserve += owned
		f.full = count >= capacity
	default:
		f.have += owned
		if count >= capacity {
			f.reserveOnly, f.full = true, f.shares.Newcomers == 0
		}
	}
}

// batchLocked returns how many permits the next Increment reserves. f.mu
// must be held.
func (f *Fleet) batchLocked() int64 {
	m := max(f.spent, f.spentPrev)
	return min(max((m+3)/4, 1), f.maxBatch)
}

// rollLocked moves the instance's state to window n if it is a new one:
// permits of the old window are dropped. A caller that read the clock
// before another moved on to the next window (n < f.win) leaves the
// state as it is. f.mu must be held.
func (f *Fleet) rollLocked(n int64) {
	if n <= f.win {
		return
	}
	f.spentPrev, f.attemptsPrev = 0, nil
	if n == f.win+1 {
		f.spentPrev, f.attemptsPrev = f.spent, f.attempts
	}
	f.win, f.have, f.haveReserve, f.spent, f.full, f.reserveOnly = n, 0, 0, 0, false, false
	f.over, f.passed, f.counted, f.uncharged, f.attempts = nil, nil, nil, nil, nil
}

// windowOf returns the number of the window now is in.
func (f *Fleet) windowOf(now time.Time) int64 { return now.UnixNano() / f.window }

// refused is a refusal at now, until the next window, for share ("" for
// the budget).
func (f *Fleet) refused(now time.Time, share string) Admission {
	n := f.windowOf(now)
	return Admission{RetryAfter: time.Duration((n+1)*f.window - now.UnixNano()), Share: share}
}

// PressureHold is how many windows, after the last sign of pressure, an
// instance keeps charging shares.
const PressureHold = 8

// pressure records a sign of pressure in window n.
func (f *Fleet) pressure(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pressureLocked(n)
}

func (f *Fleet) pressureLocked(n int64) {
	until := time.Unix(0, (n+1+PressureHold)*f.window)
	if until.After(f.pressuredUntil) {
		f.pressuredUntil = until
	}
}

// Pressured reports whether the instance charges shares now.
func (f *Fleet) Pressured() bool {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	return now.Before(f.pressuredUntil)
}

// Down reports whether the last Increment failed: while it does, Admit
// answers ErrFleetUnavailable.
func (f *Fleet) Down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// increment adds amount to the counter key, which lives ttl from now on,
// and returns the new count.
func (f *Fleet) increment(ctx context.Context, cache momento.CacheClient, key string, amount int64, ttl time.Duration) (int64, error) {
	if f.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.callTimeout)
		defer cancel()
	}
	resp, err := cache.Increment(ctx, &momento.IncrementRequest{
		CacheName: f.cacheName,
		Field:     momento.String(key),
		Amount:    amount,
		Ttl:       &utils.CollectionTtl{Ttl: ttl, RefreshTtl: true},
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

// callFailed records that an Increment failed with err, unless ctx ended,
// and returns the error for it.
func (f *Fleet) callFailed(ctx context.Context, now time.Time, err error) error {
	if ctx.Err() == nil {
		f.mu.Lock()
		f.failedLocked(now, err)
		f.mu.Unlock()
	}
	return unavailable(ctx, err)
}

// unavailable returns the error for an Increment that failed with err:
// ctx's if it ended, else one wrapping ErrFleetUnavailable.
func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrFleetUnavailable, err)
}

// failedLocked records a failed Increment, logging the first of an outage.
// f.mu must be held.
func (f *Fleet) failedLocked(now time.Time, err error) {
	f.failures++
	if t := now.Add(f.retry); t.After(f.nextTry) {
		f.nextTry = t
	}
	if f.down {
		return
	}
	f.down = true
	// Only the status: the message could quote a counter's key, which may
	// name a client.
	f.logger.Warn(LogFleetDown, "code", errorCode(err), "retry_in", f.retry.String())
}

// reachableLocked records a successful Increment, logging the end of an
// outage. f.mu must be held.
func (f *Fleet) reachableLocked() {
	if !f.down {
		return
	}
	f.down = false
	f.logger.Info("fleet mint budget reachable again", "failed_increments", f.failures)
	f.failures = 0
}

// errorCode names err's status for a log line, without its message.
func errorCode(err error) string {
	var me momento.MomentoError
	if errors.As(err, &me) {
		if st, ok := status.FromError(me.OriginalErr()); ok {
			return st.Code().String()
		}
		return me.Code()
	}
	if st, ok := status.FromError(err); ok {
		return st.Code().String()
	}
	return "Unknown"
}
