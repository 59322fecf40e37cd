// Package vending hands out Momento tokens for the topics of one cache: one
// token per Caller.Key, subscribe-only on the caller's scope (and publish
// where Caller.Publish allows), cached in process (L1) and in Momento, minted
// only when neither has one with enough life left.
//
// Create a [Vendor] with [New] from the Momento clients and [Options], then
// call [Vendor.Token] per request. A repeat request on the same instance is
// answered from L1 without a network call; a request whose token another
// instance minted costs one Momento Get; only a true miss costs a Get, the
// limits (admit.go: the caller's buckets, the instance's, a pause after
// Momento's ResourceExhausted, the fleet's budget, whose Increment is mostly
// made beside an earlier mint), a mint and a Set.
// Concurrent misses for one key share a single Get and mint.
package vending

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/limits"
	"example.com/tokenvendingmachine/internal/lru"
	"example.com/tokenvendingmachine/internal/scope"
)

// ErrUnavailable means Momento could not mint a token just now; retrying
// later may succeed. Its kind is failure.Unavailable.
var ErrUnavailable = failure.New(failure.Unavailable, "momento unavailable")

// ErrRejected means Momento rejected the API key, even after it was re-read.
// Its kind is failure.Misconfigured.
var ErrRejected = failure.New(failure.Misconfigured, "momento rejected the API key")

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
	// Client is the client the request came from, as internal/clientip's
	// Result.Client holds it: an IPv4 address as its /32, an IPv6 /64. A
	// caller's lookups draw on this instance's buckets for its client, its
	// TokenID if it has one, and its client's networks (the /24 and /16 of
	// an IPv4 address, the /48 and /32 of an IPv6 one); its mints, under
	// pressure, on the same keys' shares of the fleet budget.
	Client netip.Prefix
}

// Token is a token handed out by a Vendor.
type Token struct {
	// Value is the token as Momento's browser SDK takes it.
	Value string
	// Expires is when the token expires, to the second.
	Expires time.Time
	// Source says how it was found.
	Source Source
	// Spread, in [0, 1), is a hash of Value, computed once per token: the
	// same wherever and whenever the token is served, so that where in its
	// last margin a page is told to refresh is the same in every answer
	// that carries it, and differs between tokens.
	Spread float64
}

// Vendor hands out tokens. Its methods are safe for concurrent use.
type Vendor struct {
	opts    Options
	l1      *lru.Cache[string, token]
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
	if t, ok := v.l1.Get(key, v.opts.Now()); ok {
		return t.public(FromL1), nil
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

// token is a token, its expiry and its spread (see Token.Spread).
type token struct {
	value  string
	exp    time.Time
	spread float64
}

// newToken returns the token value expiring at exp, with its spread: the
// 64-bit FNV-1a hash of the value (hash/fnv's, without its allocations), as
// a fraction.
func newToken(value string, exp time.Time) token {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(value); i++ {
		h ^= uint64(value[i])
		h *= prime
	}
	return token{value: value, exp: exp, spread: float64(h>>11) / (1 << 53)}
}

// public returns t as the Vendor hands it out.
func (t token) public(src Source) Token {
	return Token{Value: t.value, Expires: t.exp, Source: src, Spread: t.spread}
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
	if t, ok := v.l1.Get(key, now); ok {
		return t.public(FromL1), nil
	}
	chain := limits.ChainOf(c.Client, c.TokenID) // the caller's keys in the limits
	if err := v.admitLookup(chain, now); err != nil {
		return Token{}, err
	}
	gen := v.current.Load()
	itemKey := key + "-token"
	t, until, ok, err := v.lookup(ctx, gen.clients, key, itemKey, now)
	if err != nil {
		return Token{}, err
	} else if ok {
		v.l1.Put(key, t, l1Size(key, t), now, until)
		return t.public(FromMomento), nil
	}

	perms, err := v.permissions(c)
	if err != nil {
		return Token{}, err
	}
	admission, err := v.admitMint(ctx, chain, gen.clients, now)
	if err != nil {
		return Token{}, err
	}
	// The limits may have started an Increment beside the mint: it ends
	// before the response, as everything a request starts must.
	defer admission.Wait()
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
		return Token{}, v.mintError(err, c, reread)
	}
	v.lim.pause.Succeed()

	// Momento truncates exp to the second; counting from the start of this
	// second keeps the TTL a whole CacheTTL. The entry may then outlive
	// exp-Margin by under a second, which lookup never serves.
	now = v.opts.Now()
	if ttl := min(v.opts.CacheTTL, t.exp.Sub(now.Truncate(time.Second))-v.opts.Margin); ttl >= time.Second {
		until := minTime(now.Add(ttl), t.exp.Add(-v.opts.Margin))
		v.store(ctx, gen.clients, key, itemKey, item{Token: t.value, Exp: t.exp.Unix(), Until: until.UnixMilli()}, ttl)
		v.l1.Put(key, t, l1Size(key, t), now, until)
	}
	return t.public(Minted), nil
}

// expSlack is how far past now + TokenTTL a cached token's exp may be, for
// clocks that differ between instances and Momento.
const expSlack = time.Minute

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
			"client", v.opts.Label(key), "code", StatusCode(err).String(), "error", scrub(err, itemKey, scrubbedItemKey))
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
	t := newToken(it.Token, time.Unix(it.Exp, 0))
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
			"client", v.opts.Label(key), "code", StatusCode(err).String(), "error", scrub(err, itemKey, scrubbedItemKey))
	}
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

// What scrub puts in place of what it takes out of an error's text.
const (
	scrubbedItemKey = "[item key]"
	scrubbedTokenID = "[token id]"
)

// scrub returns err's text with sent, a value this function sent to
// Momento that names a caller, replaced by placeholder: Momento and the SDK
// may quote what they were sent, and an item key holds the client's IP (or
// a ticket's sub), a token id a ticket's sub. Only what was sent is taken
// out, and the placeholder is neutral, never the caller's label: a client's
// IP on its own may be an upstream's address too (both are 127.0.0.1
// locally), and "dial tcp 127.0.0.1:443" must not read as a dial to a
// host named by a label. The caller's label is the line's client field.
func scrub(err error, sent, placeholder string) string {
	if sent == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), sent, placeholder)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
