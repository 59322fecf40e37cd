package vending

import (
	"context"
	"errors"
	"time"

	"github.com/momentohq/client-sdk-go/auth"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/config/retry"
	"github.com/momentohq/client-sdk-go/momento"
)

// ErrBadKey means the Momento API key does not parse. The error never
// quotes the key.
var ErrBadKey = errors.New("the Momento API key is not a valid Momento API key")

// Connect builds the Momento clients for apiKey. With emulatorHost
// ("host:port") set, every endpoint is that host, over plaintext. timeout
// bounds the cache client's eager connection and each of its calls.
//
// The SDK never logs (its logger would print part of the key); the
// Vendor logs what matters. Calls are not retried by the SDK: a failed Get
// is a miss and a failed Set is harmless, so a retry would only add latency.
func Connect(ctx context.Context, apiKey, emulatorHost string, timeout time.Duration) (*Clients, error) {
	cp, err := auth.FromString(apiKey)
	if err != nil {
		return nil, ErrBadKey // the SDK's error may quote the key
	}
	if emulatorHost != "" {
		ep := auth.Endpoint{Endpoint: emulatorHost, InsecureConnection: true}
		cp, err = cp.WithEndpoints(auth.AllEndpoints{ControlEndpoint: ep, CacheEndpoint: ep, TokenEndpoint: ep, StorageEndpoint: ep})
		if err != nil {
			return nil, err
		}
	}
	quiet := logger.NewNoopMomentoLoggerFactory()
	cfg := config.InRegionLatestWithLogger(quiet).
		WithClientTimeout(timeout).
		WithRetryStrategy(retry.NewNeverRetryStrategy())

	// Connect eagerly, so the first request does not pay for the handshake;
	// if Momento cannot be reached now, connect on first use instead: a
	// cache that is down only costs misses, and the mint may still work.
	eager := timeout
	if d, ok := ctx.Deadline(); ok {
		eager = min(eager, time.Until(d))
	}
	lazy := false
	cache, err := momento.NewCacheClientWithEagerConnectTimeout(cfg, cp, time.Hour, max(eager, time.Millisecond))
	if err != nil {
		lazy = true
		cache, err = momento.NewCacheClientWithEagerConnectTimeout(cfg, cp, time.Hour, 0)
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
