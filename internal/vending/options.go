package vending

import (
	"context"
	"log/slog"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
)

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
	// average, and MintBurst how many at once, where the fleet budget does
	// not decide: without one, and while its counter cannot be reached.
	MintRate  float64
	MintBurst int
	// LookupRate is how many Momento lookups (L1 misses) the Vendor may
	// make per second, on average; LookupBurst how many at once. They bound
	// the Momento operations that requests from ever new client keys can
	// cost. 0 means no limit.
	LookupRate  float64
	LookupBurst int
	// KeyLookupRate and KeyLookupBurst size a caller's lookup bucket for
	// its provider block (see Caller.Client); its network's holds 3/5 of
	// them, its device's and its identity's 2/5. A rate of 0 means no such
	// buckets. MaxLimitKeys bounds how many keys each level remembers (0
	// means 10,000).
	KeyLookupRate  float64
	KeyLookupBurst int
	MaxLimitKeys   int
	// FleetMintRate and FleetMintBurst are the deployment's mint budget,
	// kept in Momento (package limits' Fleet), which also charges the
	// callers' shares of it under pressure; a rate of 0 means none.
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
	// Label is how a client key appears in log lines (their client field);
	// nil means "client". An upstream error's text never holds it: what it
	// quotes of a caller becomes a neutral placeholder.
	Label func(key string) string
	// Reconnect re-reads the API key and builds new clients. The Vendor
	// calls it when Momento rejects the key, at most once per
	// ReconnectInterval; nil means never.
	Reconnect func(ctx context.Context) (*Clients, error)
	// ReconnectInterval is the least time between two Reconnect calls; 0
	// means 30s.
	ReconnectInterval time.Duration
}
