package vending

import (
	"cmp"
	"context"
	"time"

	"github.com/momentohq/client-sdk-go/auth"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/config/retry"
	"github.com/momentohq/client-sdk-go/momento"

	"example.com/tokenvendingmachine/internal/failure"
)

// ErrBadKey means the Momento API key does not parse. The error never
// quotes the key. Its kind is failure.Misconfigured.
var ErrBadKey = failure.New(failure.Misconfigured, "the Momento API key is not a valid Momento API key")

// ConnectOptions configures Connect.
type ConnectOptions struct {
	// EmulatorHost, if set ("host:port"), is where every endpoint is, over
	// plaintext.
	EmulatorHost string
	// Timeout bounds the cache client's eager connection and each of its
	// calls.
	Timeout time.Duration
	// DefaultTTL is the cache client's default TTL. The Vendor always
	// passes its own, so this only matters to other callers.
	DefaultTTL time.Duration
}

// Connect builds the Momento clients for apiKey.
//
// The SDK never logs (its logger would print part of the key); the
// Vendor logs what matters. Calls are not retried by the SDK: a failed Get
// is a miss and a failed Set is harmless, so a retry would only add latency.
func Connect(ctx context.Context, apiKey string, o ConnectOptions) (*Clients, error) {
	cp, err := auth.FromString(apiKey)
	if err != nil {
		return nil, ErrBadKey // the SDK's error may quote the key
	}
	if o.EmulatorHost != "" {
		ep := auth.Endpoint{Endpoint: o.EmulatorHost, InsecureConnection: true}
		cp, err = cp.WithEndpoints(auth.AllEndpoints{ControlEndpoint: ep, CacheEndpoint: ep, TokenEndpoint: ep, StorageEndpoint: ep})
		if err != nil {
			return nil, err
		}
	}
	quiet := logger.NewNoopMomentoLoggerFactory()
	cfg := config.InRegionLatestWithLogger(quiet).
		WithClientTimeout(o.Timeout).
		WithRetryStrategy(retry.NewNeverRetryStrategy())

	// Connect eagerly, so the first request does not pay for the handshake;
	// if Momento cannot be reached now, connect on first use instead: a
	// cache that is down only costs misses, and the mint may still work.
	eager := o.Timeout
	if d, ok := ctx.Deadline(); ok {
		eager = min(eager, time.Until(d))
	}
	lazy := false
	ttl := cmp.Or(o.DefaultTTL, time.Hour)
	cache, err := momento.NewCacheClientWithEagerConnectTimeout(cfg, cp, ttl, max(eager, time.Millisecond))
	if err != nil {
		lazy = true
		cache, err = momento.NewCacheClientWithEagerConnectTimeout(cfg, cp, ttl, 0)
		if err != nil {
			return nil, err
		}
	}
	authClient, err := momento.NewAuthClient(config.AuthDefaultWithLogger(quiet), cp)
	if err != nil {
		cache.Close()
		return nil, err
	}
	return &Clients{Cache: cache, Auth: authClient, Lazy: lazy}, nil
}
