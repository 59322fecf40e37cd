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
	"example.com/tokenvendingmachine/internal/momentokey"
)

// ErrBadKey means the Momento API key does not parse. The error never
// quotes the key. Its kind is failure.Misconfigured.
var ErrBadKey = failure.New(failure.Misconfigured, "the Momento API key is not a valid Momento API key (v2, v1 or legacy)")

// ErrNoEndpoint means the Momento API key is a v2 key, which carries no
// endpoint, and none was given. Its kind is failure.Misconfigured: retrying
// cannot help.
var ErrNoEndpoint = failure.New(failure.Misconfigured, "the Momento API key is a v2 key, which carries no endpoint: "+
	"set MOMENTO_ENDPOINT to the endpoint shown beside the key in Momento's console, such as "+
	"cell-us-east-1-1.prod.a.momentohq.com, or store {\"api_key\": ..., \"endpoint\": ...} in the secret")

// Credentials are a Momento API key and the endpoint to use it with.
type Credentials struct {
	// APIKey is a Momento API key of any kind (see momentokey). Never log it.
	APIKey string
	// Endpoint, if set, is the Momento endpoint to dial (a cell's host name,
	// normalized by momentokey.NormalizeEndpoint) in place of the one a v1
	// or legacy key names. A v2 key needs one.
	Endpoint string
}

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

// Connect builds the Momento clients for creds. ConnectOptions.EmulatorHost,
// if set, stands in for every endpoint.
//
// The SDK never logs (its logger would print part of the key); the
// Vendor logs what matters. Calls are not retried by the SDK: a failed Get
// is a miss and a failed Set is harmless, so a retry would only add latency.
func Connect(ctx context.Context, creds Credentials, o ConnectOptions) (*Clients, error) {
	cp, err := Provider(creds, o.EmulatorHost)
	if err != nil {
		return nil, err
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

// Provider returns the SDK's credential provider for creds, with every
// endpoint at emulatorHost over plaintext if that is set. client-sdk-go
// v1.38.0 reads a v2 key as a legacy JWT with no endpoints; the provider is
// built as v1.40's v2-key provider builds it: the key as the auth token and
// cache., control., token. and storage. + the endpoint + ":443".
func Provider(creds Credentials, emulatorHost string) (auth.CredentialProvider, error) {
	key, err := momentokey.Parse(creds.APIKey)
	if err != nil {
		return nil, ErrBadKey
	}
	var endpoints auth.AllEndpoints
	switch {
	case emulatorHost != "":
		ep := auth.Endpoint{Endpoint: emulatorHost, InsecureConnection: true}
		endpoints = auth.AllEndpoints{ControlEndpoint: ep, CacheEndpoint: ep, TokenEndpoint: ep, StorageEndpoint: ep}
	case creds.Endpoint != "":
		h := momentokey.HostsOf(creds.Endpoint)
		endpoints = auth.AllEndpoints{
			ControlEndpoint: auth.Endpoint{Endpoint: h.Control},
			CacheEndpoint:   auth.Endpoint{Endpoint: h.Cache},
			TokenEndpoint:   auth.Endpoint{Endpoint: h.Token},
			StorageEndpoint: auth.Endpoint{Endpoint: h.Storage},
		}
	case key.NeedsEndpoint():
		return nil, ErrNoEndpoint
	}
	// For every kind of key the SDK's own reading gives the right auth
	// token (a v1 key's api_key, or the whole JWT); only a v2 key's
	// endpoints are wrong, and they are replaced.
	cp, err := auth.FromString(creds.APIKey)
	if err != nil {
		return nil, ErrBadKey // the SDK's error may quote the key
	}
	if endpoints.CacheEndpoint.Endpoint == "" {
		return cp, nil
	}
	return cp.WithEndpoints(endpoints)
}
