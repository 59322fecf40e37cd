// Package vending hands out Momento tokens that may only subscribe to the
// topics of one cache: one token per client key, cached in process (L1) and
// in Momento, minted only when neither has one with enough life left.
//
// Create a [Vendor] with [New] from the Momento clients and [Options], then
// call [Vendor.Token] per request. A repeat request on the same instance is
// answered from L1 without a network call; a request whose token another
// instance minted costs one Momento Get; only a true miss costs a Get, a mint
// and a Set. Concurrent misses for one key share a single Get and mint.
package vending

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/scope"
)

// ErrUnavailable means Momento could not mint a token just now; retrying
// later may succeed. Its kind is failure.Unavailable.
var ErrUnavailable = failure.New(failure.Unavailable, "momento unavailable")

// ErrRejected means Momento rejected the API key, even after it was re-read.
// Its kind is failure.Misconfigured.
var ErrRejected = failure.New(failure.Misconfigured, "momento rejected the API key")

// LogKeyRejected is the message of the line logged when Momento rejects the
// API key and the Vendor re-reads it.
const LogKeyRejected = "Momento rejected the API key; re-reading it"

// ErrNoCache means the cache CACHE_NAME names does not exist in Momento.
var ErrNoCache = errors.New("the cache does not exist in Momento; create it, or fix CACHE_NAME")

// errLimited is the cause of a failure.Limited error: a rate limit of the
// Vendor's is reached.
var errLimited = errors.New("rate limit reached")

// limited returns the error for a limit that lets a request pass in wait.
func limited(wait time.Duration) error {
	return &failure.Error{Kind: failure.Limited, Retry: wait, Err: errLimited}
}

// Source says how a token was found.
type Source int

// The ways a token is found.
const (
	// FromL1 is a token from the in-process cache: no network call.
	FromL1 Source = iota + 1
	// FromMomento is a token cached in Momento, perhaps by another instance.
	FromMomento
	// Minted is a token minted for this request.
	Minted
	// Shared is a token found or minted for a concurrent request for the
	// same key, which this request waited for.
	Shared
)

// String returns "l1", "momento", "mint" or "shared".
func (s Source) String() string {
	switch s {
	case FromL1:
		return "l1"
	case FromMomento:
		return "momento"
	case Minted:
		return "mint"
	case Shared:
		return "shared"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Caller is whom a token is for, and what it may do.
type Caller struct {
	// Key names the caller's token in L1 and, with "-token" appended, in
	// Momento: the client key for anonymous callers, or one derived from an
	// identity and its scope. Callers with the same Key share a token, so
	// a Key must determine Scope, Publish and TokenID. Logs name it only
	// through Options.Label.
	Key string
	// Scope is what the token may subscribe to: scope.All() for every topic
	// of the cache. An empty scope is an error: nothing to mint.
	Scope scope.Scope
	// Publish is what the token may also publish to; usually empty. A
	// topic in both gets one publish-and-subscribe permission.
	Publish scope.Scope
	// TokenID, if not "", is the token's tokenId: Momento shows it to the
	// subscribers of every message the token publishes.
	TokenID string
	// Client is the client key (internal/clientip's) the request came
	// from. A caller's lookups and mints draw first on buckets of its own:
	// its TokenID's if it has one, else its client's networks (the /24 and
	// /16 of an IPv4 address, the /48 and /32 of an IPv6 one).
	Client string
}

// Token is a token handed out by a Vendor.
type Token struct {
	// Value is the token as Momento's browser SDK takes it.
	Value string
	// Expires is when the token expires, to the second.
	Expires time.Time
	// Source says how it was found.
	Source Source
}

// Clients are the Momento clients a Vendor calls.
type Clients struct {
	// Cache gets and sets cached tokens.
	Cache momento.CacheClient
	// Auth mints tokens.
	Auth momento.AuthClient
	// Lazy reports that Connect could not reach the cache endpoint, so
	// Cache connects on its first call instead.
	Lazy bool
}

// Close closes both clients.
func (c *Clients) Close() {
	if c.Cache != nil {
		c.Cache.Close()
	}
	if c.Auth != nil {
		c.Auth.Close()
	}
}

// Options configures a Vendor.
type Options struct {
	// CacheName is the cache tokens may subscribe in, and where they are cached.
	CacheName string
	// TokenTTL is the lifetime of a minted token, in whole seconds.
	TokenTTL time.Duration
	// CacheTTL is the longest a token stays cached.
	CacheTTL time.Duration
	// Margin is the least lifetime a handed-out token has left; a cached
	// token with less is a miss, and no cache entry outlives its token's
	// expiry minus Margin.
	Margin time.Duration
	// CallTimeout bounds each Momento call.
	CallTimeout time.Duration
	// MintRate is how many tokens the Vendor may mint per second, on
	// average; MintBurst how many at once.
	MintRate  float64
	MintBurst int
	// LookupRate is how many Momento lookups (L1 misses) the Vendor may
	// make per second, on average; LookupBurst how many at once. They bound
	// the Momento operations that requests from ever new client keys can
	// cost. 0 means no limit.
	LookupRate  float64
	LookupBurst int
	// KeyMintRate and KeyMintBurst size each of a caller's own mint
	// buckets (Caller.Limits); KeyLookupRate and KeyLookupBurst its lookup
	// buckets. A rate of 0 means no such bucket. MaxLimitKeys bounds how
	// many keys are remembered (0 means 10,000).
	KeyMintRate    float64
	KeyMintBurst   int
	KeyLookupRate  float64
	KeyLookupBurst int
	MaxLimitKeys   int
	// FleetMintRate and FleetMintBurst are the deployment's mint budget,
	// kept in Momento with one Increment per mint (package limits' Fleet);
	// a rate of 0 means none.
	FleetMintRate  float64
	FleetMintBurst int
	// L1MaxEntries bounds the in-process cache's entries and L1MaxBytes
	// its estimated size; if either is 0 there is no in-process cache.
	L1MaxEntries int
	L1MaxBytes   int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings about upstream faults; nil means none. Its
	// lines never hold a token, and name a client only through Label.
	Logger *slog.Logger
	// Label is how a client key appears in logs and errors; nil means
	// "client".
	Label func(key string) string
	// Reconnect re-reads the API key and builds new clients. The Vendor
	// calls it when Momento rejects the key, at most once per
	// ReconnectInterval; nil means never.
	Reconnect func(ctx context.Context) (*Clients, error)
	// ReconnectInterval is the least time between two Reconnect calls; 0
	// means 30s.
	ReconnectInterval time.Duration
}

// Vendor hands out tokens. Its methods are safe for concurrent use.
type Vendor struct {
	opts    Options
	l1      *l1
	flights singleflight.Group
	lim     *limiter
	current atomic.Pointer[generation]

	mu sync.Mutex // serialises reconnects; guards the fields below
	// nextReconnect is the earliest time Reconnect may be called again.
	nextReconnect time.Time
	// reconnectErr is the error of the last Reconnect, nil if it succeeded.
	reconnectErr error
	retired      []*retiree // clients replaced by a reconnect, closing soon
	closed       bool
}

// retiree is a set of clients replaced by a reconnect and the timer that
// will close it.
type retiree struct {
	clients *Clients
	timer   *time.Timer
	done    bool // the timer closed the clients; guarded by Vendor.mu
}

// generation is one set of clients; a reconnect makes the next.
type generation struct {
	clients *Clients
}

// New returns a Vendor that calls clients. It owns them from then on, even
// if it fails: its error means opts' limits are invalid.
func New(clients *Clients, opts Options) (*Vendor, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Label == nil {
		opts.Label = func(string) string { return "client" }
	}
	if opts.ReconnectInterval == 0 {
		opts.ReconnectInterval = 30 * time.Second
	}
	if opts.MaxLimitKeys == 0 {
		opts.MaxLimitKeys = 10_000
	}
	lim, err := newLimiter(opts)
	if err != nil {
		clients.Close()
		return nil, failure.Wrap(failure.Misconfigured, err)
	}
	v := &Vendor{
		opts: opts,
		l1:   newL1(opts.L1MaxEntries, opts.L1MaxBytes),
		lim:  lim,
	}
	v.current.Store(&generation{clients: clients})
	return v, nil
}

// Token returns a token for c: from L1, from Momento, or freshly minted,
// always with at least Options.Margin of life left.
//
// ctx bounds only the wait: the work is shared with concurrent requests for
// the same key and finishes (bounded by Options.CallTimeout per call) even if
// ctx ends first, so that its result is cached for them and the next request.
// The error has a failure kind: Limited (with the wait in its Retry),
// Unavailable (wrapping ErrUnavailable) or Misconfigured (wrapping
// ErrRejected); or it is ctx's error.
func (v *Vendor) Token(ctx context.Context, c Caller) (Token, error) {
	key := c.Key
	if t, ok := v.l1.get(key, v.opts.Now()); ok {
		return Token{Value: t.value, Expires: t.exp, Source: FromL1}, nil
	}
	var leader bool // set only in the flight this request started
	ch := v.flights.DoChan(key, func() (any, error) {
		leader = true
		return v.fill(context.WithoutCancel(ctx), c)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		t := r.Val.(Token)
		if !leader {
			t.Source = Shared
		}
		return t, nil
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// token is a token and its expiry.
type token struct {
	value string
	exp   time.Time
}

// item is a token as cached in Momento.
type item struct {
	Token string `json:"token"`
	Exp   int64  `json:"exp"` // unix seconds
	// Until is when the Momento item expires, in unix milliseconds, so that
	// an instance that reads it can keep it in L1 exactly that long.
	Until int64 `json:"until,omitempty"`
}

// fill finds or mints the token for key, caching it in Momento and L1.
func (v *Vendor) fill(ctx context.Context, c Caller) (Token, error) {
	key := c.Key
	now := v.opts.Now()
	if t, ok := v.l1.get(key, now); ok {
		return Token{Value: t.value, Expires: t.exp, Source: FromL1}, nil
	}
	keys := limitKeys(c)
	if err := v.admitLookup(keys, now); err != nil {
		return Token{}, err
	}
	gen := v.current.Load()
	itemKey := key + "-token"
	t, until, ok, err := v.lookup(ctx, gen.clients, key, itemKey, now)
	if err != nil {
		return Token{}, err
	} else if ok {
		v.l1.put(key, t, until)
		return Token{Value: t.value, Expires: t.exp, Source: FromMomento}, nil
	}

	perms, err := v.permissions(c)
	if err != nil {
		return Token{}, err
	}
	if err := v.admitMint(ctx, keys, gen.clients, now); err != nil {
		return Token{}, err
	}
	t, err = v.mint(ctx, gen.clients, perms, c.TokenID)
	reread := false // whether the key was re-read for this mint
	if err != nil && rejected(err) {
		v.opts.Logger.Warn(LogKeyRejected, "code", StatusCode(err).String())
		next, rerr := v.reconnect(ctx, gen)
		if rerr != nil {
			// The key could not be re-read (Secret Manager is down, say):
			// that passes, unlike a key Momento rejects after a re-read.
			return Token{}, fmt.Errorf("mint token: %w: re-read the API key: %v", ErrUnavailable, rerr)
		}
		if next != nil {
			gen, reread = next, true
			t, err = v.mint(ctx, gen.clients, perms, c.TokenID)
		}
	}
	if err != nil {
		return Token{}, v.mintError(err, key, reread)
	}
	v.lim.pause.Succeed()

	// Momento truncates exp to the second; counting from the start of this
	// second keeps the TTL a whole CacheTTL. The entry may then outlive
	// exp-Margin by under a second, which lookup never serves.
	now = v.opts.Now()
	if ttl := min(v.opts.CacheTTL, t.exp.Sub(now.Truncate(time.Second))-v.opts.Margin); ttl >= time.Second {
		until := minTime(now.Add(ttl), t.exp.Add(-v.opts.Margin))
		v.store(ctx, gen.clients, key, itemKey, item{Token: t.value, Exp: t.exp.Unix(), Until: until.UnixMilli()}, ttl)
		v.l1.put(key, t, until)
	}
	return Token{Value: t.value, Expires: t.exp, Source: Minted}, nil
}

// expSlack is how far past now + TokenTTL a cached token's exp may be, for
// clocks that differ between instances and Momento.
const expSlack = time.Minute

// LogMintsPaused is the message of the line logged when Momento answers a
// mint with ResourceExhausted and the Vendor pauses mints.
const LogMintsPaused = "Momento refused a mint for the account's rate limit; pausing mints"

// mintError gives a failed mint its kind: Limited for Momento's
// ResourceExhausted (after which mints pause, 1 s doubling to 30 s);
// Misconfigured for a key Momento rejects that cannot be, or was just,
// re-read; Unavailable, with the time until the next re-read, for a key
// rejected within the re-read interval, which a rotation in progress may
// explain; Unavailable for anything else.
func (v *Vendor) mintError(err error, key string, reread bool) error {
	code := StatusCode(err)
	cause := fmt.Errorf("mint token (%s): %s", code, v.redact(err, key))
	switch {
	case code == codes.ResourceExhausted:
		wait := v.lim.pause.Fail()
		v.opts.Logger.Warn(LogMintsPaused, "pause", wait.String())
		return &failure.Error{Kind: failure.Limited, Retry: wait, Err: cause}
	case rejected(err) && (reread || v.opts.Reconnect == nil):
		return fmt.Errorf("%w: %w", ErrRejected, cause)
	case rejected(err):
		v.mu.Lock()
		wait := v.nextReconnect.Sub(v.opts.Now())
		v.mu.Unlock()
		return &failure.Error{Kind: failure.Unavailable, Retry: max(wait, time.Second), Err: fmt.Errorf("%w: %w", ErrUnavailable, cause)}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

// lookup returns the token cached in Momento under itemKey and when it stops
// being served, if it has at least the margin left at now. Failures are
// logged and count as a miss: a token can still be minted.
//
// A cache that does not exist is not a miss but a misconfiguration: the
// error, of kind Misconfigured, names CACHE_NAME.
func (v *Vendor) lookup(ctx context.Context, c *Clients, key, itemKey string, now time.Time) (token, time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.CallTimeout)
	defer cancel()
	resp, err := c.Cache.Get(ctx, &momento.GetRequest{CacheName: v.opts.CacheName, Key: momento.String(itemKey)})
	if err != nil {
		if StatusCode(err) == codes.NotFound {
			return token{}, time.Time{}, false, failure.Wrap(failure.Misconfigured,
				fmt.Errorf("%w: CACHE_NAME=%q", ErrNoCache, v.opts.CacheName))
		}
		v.opts.Logger.Warn("Momento Get failed; treating it as a miss",
			"client", v.opts.Label(key), "code", StatusCode(err).String(), "error", v.redact(err, key))
		return token{}, time.Time{}, false, nil
	}
	hit, ok := resp.(*responses.GetHit)
	if !ok {
		return token{}, time.Time{}, false, nil
	}
	var it item
	if err := json.Unmarshal(hit.ValueByte(), &it); err != nil || it.Token == "" || it.Exp <= 0 {
		v.opts.Logger.Warn("cached token does not parse; treating it as a miss", "client", v.opts.Label(key))
		return token{}, time.Time{}, false, nil
	}
	t := token{value: it.Token, exp: time.Unix(it.Exp, 0)}
	if t.exp.After(now.Add(v.opts.TokenTTL + expSlack)) {
		// No token of ours lives that long: the item was not written by
		// this function as configured.
		v.opts.Logger.Warn("cached token expires later than TOKEN_TTL allows; treating it as a miss", "client", v.opts.Label(key))
		return token{}, time.Time{}, false, nil
	}
	until := t.exp.Add(-v.opts.Margin)
	if it.Until > 0 {
		until = minTime(until, time.UnixMilli(it.Until))
	} else {
		until = minTime(until, now.Add(v.opts.CacheTTL))
	}
	if !now.Before(until) {
		return token{}, time.Time{}, false, nil
	}
	return t, until, true, nil
}

// store caches it in Momento for ttl. A failure is logged: the token is
// still good to hand out.
func (v *Vendor) store(ctx context.Context, c *Clients, key, itemKey string, it item, ttl time.Duration) {
	b, err := json.Marshal(it)
	if err != nil {
		panic(err) // an item of strings and numbers always marshals
	}
	ctx, cancel := context.WithTimeout(ctx, v.opts.CallTimeout)
	defer cancel()
	_, err = c.Cache.Set(ctx, &momento.SetRequest{CacheName: v.opts.CacheName, Key: momento.String(itemKey), Value: momento.Bytes(b), Ttl: ttl})
	if err != nil {
		v.opts.Logger.Warn("Momento Set failed; the token is served uncached",
			"client", v.opts.Label(key), "code", StatusCode(err).String(), "error", v.redact(err, key))
	}
}

// MaxPermissions is the most permission statements Momento lets a token
// carry: one per topic selector.
const MaxPermissions = 20

// errNoScope means a caller's scope allows nothing; the edge refuses such a
// caller before asking for a token.
var errNoScope = failure.New(failure.Misconfigured, "the caller's scope allows no topic")

// permissions returns the permissions of c's token in the cache: subscribe
// on Scope, publish and subscribe on Publish.
func (v *Vendor) permissions(c Caller) (momento.Permissions, error) {
	cache := momento.CacheName{Name: v.opts.CacheName}
	if c.Scope.IsEmpty() && c.Publish.IsEmpty() {
		return momento.Permissions{}, errNoScope
	}
	var perms []momento.Permission
	add := func(s scope.Scope, role momento.TopicRole, skip scope.Scope) {
		if s.IsAll() {
			perms = append(perms, momento.TopicPermission{Role: role, Cache: cache, Topic: momento.AllTopics{}})
			return
		}
		for _, sel := range s.Selectors() {
			if skip.IsAll() || (!sel.Prefix && skip.Allows(sel.Topic)) {
				continue // granted with publish already
			}
			var topic momento.TopicSelector = momento.TopicName{Name: sel.Topic}
			if sel.Prefix {
				topic = momento.TopicNamePrefix{NamePrefix: sel.Topic}
			}
			perms = append(perms, momento.TopicPermission{Role: role, Cache: cache, Topic: topic})
		}
	}
	add(c.Publish, momento.PublishSubscribe, scope.Scope{})
	add(c.Scope, momento.SubscribeOnly, c.Publish)
	if len(perms) > MaxPermissions {
		return momento.Permissions{}, failure.Wrap(failure.Misconfigured,
			fmt.Errorf("the caller's scope needs %d permissions, more than Momento's %d", len(perms), MaxPermissions))
	}
	return momento.Permissions{Permissions: perms}, nil
}

// mint asks Momento for a token with perms and tokenID.
func (v *Vendor) mint(ctx context.Context, c *Clients, perms momento.Permissions, tokenID string) (token, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.CallTimeout)
	defer cancel()
	req := &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(int64(v.opts.TokenTTL / time.Second)),
		Scope:     perms,
	}
	if tokenID != "" {
		req.Props.TokenId = &tokenID
	}
	resp, err := c.Auth.GenerateDisposableToken(ctx, req)
	if err != nil {
		return token{}, err
	}
	minted, _ := resp.(*authresp.GenerateDisposableTokenSuccess)
	if minted == nil || minted.ApiKey == "" {
		return token{}, fmt.Errorf("unexpected response %T", resp)
	}
	t := token{value: minted.ApiKey, exp: time.Unix(int64(minted.ValidUntil), 0)}
	if left := t.exp.Sub(v.opts.Now()); left < v.opts.Margin {
		// Only a clock far off Momento's gets here; such a token would
		// break the promise of Margin.
		return token{}, fmt.Errorf("minted token has only %v left", left.Round(time.Second))
	}
	return t, nil
}

// reserve takes a token from the bucket lim, or says how long until one is
// available. A nil lim has no limit.
func reserve(lim *rate.Limiter, now time.Time) time.Duration {
	if lim == nil {
		return 0
	}
	r := lim.ReserveN(now, 1) // always OK: every bucket holds at least one
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// reconnect replaces the clients of generation used with new ones built
// by Options.Reconnect, unless another request already did. It returns the
// generation to retry with, or nil if there is none to try: no Reconnect,
// or one was made less than Options.ReconnectInterval ago. A non-nil error
// means Reconnect failed, just now or on its last try less than a few
// seconds ago.
func (v *Vendor) reconnect(ctx context.Context, used *generation) (*generation, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur := v.current.Load(); cur != used {
		return cur, nil
	}
	if v.opts.Reconnect == nil || v.closed {
		return nil, nil
	}
	now := v.opts.Now()
	if now.Before(v.nextReconnect) {
		if v.reconnectErr != nil {
			return nil, v.reconnectErr
		}
		v.opts.Logger.Warn("API key was re-read recently; not re-reading it again yet",
			"retry_in", v.nextReconnect.Sub(now).Round(time.Second).String())
		return nil, nil
	}
	clients, err := v.opts.Reconnect(ctx)
	v.reconnectErr = err
	if err != nil {
		// Try again soon: the key is still rejected, and the re-read may
		// have failed only for now.
		v.nextReconnect = now.Add(reconnectRetry)
		v.opts.Logger.Error("re-reading the API key failed", "error", err.Error())
		return nil, err
	}
	v.nextReconnect = now.Add(v.opts.ReconnectInterval)
	next := &generation{clients: clients}
	v.current.Store(next)
	v.retire(used.clients)
	v.opts.Logger.Info("reconnected to Momento with the re-read API key")
	return next, nil
}

// reconnectRetry is how soon a failed Reconnect may be tried again.
const reconnectRetry = 5 * time.Second

// retire closes clients once the calls in flight on them are done: each
// is bounded by CallTimeout, and a request makes at most three. v.mu must
// be held.
func (v *Vendor) retire(clients *Clients) {
	live := v.retired[:0]
	for _, r := range v.retired {
		if !r.done {
			live = append(live, r)
		}
	}
	r := &retiree{clients: clients}
	r.timer = time.AfterFunc(4*v.opts.CallTimeout+time.Second, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if !r.done {
			r.done = true
			r.clients.Close()
		}
	})
	v.retired = append(live, r)
}

// Close closes the clients. Token must not be called after Close.
func (v *Vendor) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	for _, r := range v.retired {
		r.timer.Stop()
		if !r.done {
			r.done = true
			r.clients.Close()
		}
	}
	v.current.Load().clients.Close()
}

// redact returns err's text with the client key replaced by its label: the
// SDK and Momento may quote the item key, which holds the client's IP.
func (v *Vendor) redact(err error, key string) string {
	return strings.ReplaceAll(err.Error(), key, v.opts.Label(key))
}

// rejected reports whether err says Momento rejected the credentials.
func rejected(err error) bool {
	switch StatusCode(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// StatusCode returns the gRPC status code behind an error of the Momento
// SDK, looking through the SDK's OriginalErr chain: the SDK reports every
// GenerateDisposableToken failure as a ClientSdkError that keeps the real
// one there. It returns codes.Unknown if there is none.
func StatusCode(err error) codes.Code {
	for err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return codes.DeadlineExceeded
		}
		if st, ok := status.FromError(err); ok {
			return st.Code()
		}
		var me momento.MomentoError
		if errors.As(err, &me) {
			switch me.Code() {
			case momento.AuthenticationError:
				return codes.Unauthenticated
			case momento.PermissionError:
				return codes.PermissionDenied
			}
			err = me.OriginalErr()
			continue
		}
		err = errors.Unwrap(err)
	}
	return codes.Unknown
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
