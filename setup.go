package tokenvendingmachine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/vending"
)

// An instance's setup runs once, on the first request that needs it, shared
// by the requests that arrive meanwhile (a lazy.Value). A failed setup is
// answered for setupRetryDelay, then tried again by the next request.

// setupRetryDelay is how long after a failed setup requests get its error
// without trying again: long enough that an outage or a broken secret does
// not cost a Secret Manager call per request, short enough to recover fast.
const setupRetryDelay = 2 * time.Second

// setupTimeout bounds one setup: a secret read and a connection.
const setupTimeout = 20 * time.Second

// instance is what an instance sets up once: its vendor and the clients it
// calls.
type instance struct {
	vendor      *vending.Vendor
	secrets     *secret.Client // nil when no key comes from Secret Manager
	credentials *credential.Resolver
}

// setup reads the Momento key and connects to Momento. Its failure is
// logged here, once, and wraps errSetup and a failure kind.
func (h *handler) setup(ctx context.Context) (*instance, error) {
	start := time.Now()
	inst, err := h.connect(ctx)
	if err != nil {
		h.log.Error(logSetupFailed,
			"retry_delay", setupRetryDelay.String(), "error", err.Error())
		return nil, fmt.Errorf("%w: %w", errSetup, err)
	}
	h.log.Info(logInstanceReady, "setup_ms", msSince(start))
	return inst, nil
}

// connect builds the instance: the Secret Manager client if a secret is
// named, the credentials' resolver, the Momento clients and the vendor.
func (h *handler) connect(ctx context.Context) (_ *instance, err error) {
	cfg := h.cfg
	inst := &instance{}
	if cfg.SecretID != "" || cfg.TicketSecretID != "" {
		// The client outlives setup: its credentials refresh with this ctx.
		var secrets *secret.Client
		if secrets, err = secret.NewClient(context.WithoutCancel(ctx), cfg.SecretManagerEmulatorHost); err != nil {
			return nil, failure.Wrap(failure.Unavailable, err)
		}
		inst.secrets = secrets
		defer func() {
			if err != nil {
				secrets.Close()
			}
		}()
	}

	key, err := h.readKey(ctx, inst.secrets)
	if err != nil {
		return nil, secretError("SECRET_ID", err)
	}
	if inst.credentials, err = h.credentials(ctx, inst.secrets); err != nil {
		return nil, err
	}
	connect := vending.ConnectOptions{EmulatorHost: cfg.MomentoEmulatorHost, Timeout: cfg.UpstreamTimeout, DefaultTTL: cfg.CacheTTL}
	clients, err := vending.Connect(ctx, key, connect)
	if err != nil {
		if kind, _ := failure.Of(err); kind == failure.Misconfigured {
			return nil, err // a bad key, or a v2 key without an endpoint
		}
		return nil, failure.Wrap(failure.Unavailable, fmt.Errorf("connect to Momento: %w", err))
	}
	if clients.Lazy {
		h.log.Warn("Momento's cache endpoint did not answer during setup; connecting on first use")
	}

	opts := h.vendingOptions()
	if cfg.SecretID != "" {
		// A key from the environment is fixed for the instance's life;
		// one from Secret Manager can be rotated without a redeploy.
		opts.Reconnect = func(ctx context.Context) (*vending.Clients, error) {
			key, err := h.readKey(ctx, inst.secrets)
			if err != nil {
				return nil, err
			}
			return vending.Connect(ctx, key, connect)
		}
	}
	if inst.vendor, err = vending.New(clients, opts); err != nil {
		return nil, err
	}
	return inst, nil
}

// readKey returns the Momento key and its endpoint: from the secret
// SECRET_ID names, read through secrets, or else from MOMENTO_API_KEY.
func (h *handler) readKey(ctx context.Context, secrets *secret.Client) (vending.Credentials, error) {
	if h.cfg.SecretID == "" {
		return vending.Credentials{APIKey: h.cfg.APIKey, Endpoint: h.cfg.MomentoEndpoint}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.UpstreamTimeout)
	defer cancel()
	k, err := secrets.MomentoKey(ctx, h.cfg.SecretID)
	if err != nil {
		return vending.Credentials{}, err
	}
	return h.endpointFor(k), nil
}

// vendingOptions are the vendor's options from the configuration.
func (h *handler) vendingOptions() vending.Options {
	cfg := h.cfg
	return vending.Options{
		CacheName:      cfg.CacheName,
		TokenTTL:       cfg.TokenTTL,
		CacheTTL:       cfg.CacheTTL,
		Margin:         cfg.Margin,
		CallTimeout:    cfg.UpstreamTimeout,
		MintRate:       cfg.MintRate,
		MintBurst:      cfg.MintBurst,
		LookupRate:     cfg.LookupRate,
		LookupBurst:    cfg.LookupBurst,
		L1MaxEntries:   cfg.L1MaxEntries,
		L1MaxBytes:     cfg.L1MaxBytes,
		KeyLookupRate:  cfg.NetworkLookupRate,
		KeyLookupBurst: cfg.NetworkLookupBurst,
		FleetMintRate:  cfg.FleetMintRate,
		FleetMintBurst: cfg.FleetMintBurst,
		Now:            h.now,
		Logger:         h.log,
		Label:          h.label,
	}
}

// endpointFor returns the credentials for a key read from Secret Manager.
// An endpoint stored with the key wins over MOMENTO_ENDPOINT: the two were
// issued together and rotate together, while the variable changes only
// with a redeploy. A disagreement is logged, since one of them is stale.
func (h *handler) endpointFor(k secret.Key) vending.Credentials {
	if k.Endpoint != "" && h.cfg.MomentoEndpoint != "" && k.Endpoint != h.cfg.MomentoEndpoint {
		h.log.Warn("the secret names its own Momento endpoint; MOMENTO_ENDPOINT is ignored",
			"endpoint", k.Endpoint, "momento_endpoint", h.cfg.MomentoEndpoint)
	}
	return vending.Credentials{APIKey: k.APIKey, Endpoint: cmp.Or(k.Endpoint, h.cfg.MomentoEndpoint)}
}

// secretError gives a failure to read the secret that variable names its
// kind.
func secretError(variable string, err error) error {
	err = fmt.Errorf("read the secret %s names: %w", variable, err)
	if errors.Is(err, secret.ErrPayload) {
		return failure.Wrap(failure.Misconfigured, err)
	}
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition:
		// The secret is missing or the service account may not read it:
		// ours to fix, not worth retrying soon.
		return failure.Wrap(failure.Misconfigured, err)
	}
	return failure.Wrap(failure.Unavailable, err)
}

// credentials builds the resolver of the callers' credentials, reading the
// ticket keys from TICKET_KEY or the secret TICKET_SECRET_ID names.
func (h *handler) credentials(ctx context.Context, secrets *secret.Client) (*credential.Resolver, error) {
	cfg := h.cfg
	opts := credential.Options{
		TicketAudience: cfg.TicketAudience, TicketMaxTTL: cfg.TicketMaxTTL,
		Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, JWKSURL: cfg.OIDCJWKSURL,
		HTTPClient: &http.Client{Timeout: cfg.UpstreamTimeout},
		Topics:     cfg.OIDCTopics, Publish: cfg.OIDCPublish,
		IssuerRetryDelay: setupRetryDelay, IssuerTimeout: setupTimeout,
		Now: h.now, Log: h.log,
	}
	switch {
	case cfg.TicketKey != "":
		opts.TicketKeysFrom = "TICKET_KEY"
		opts.TicketKeys = func(context.Context) ([]byte, error) { return []byte(cfg.TicketKey), nil }
	case cfg.TicketSecretID != "":
		opts.TicketKeysFrom, opts.TicketKeysChange = "TICKET_SECRET_ID", true
		opts.TicketKeys = func(ctx context.Context) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.UpstreamTimeout)
			defer cancel()
			b, err := secrets.Read(ctx, cfg.TicketSecretID)
			if err != nil {
				return nil, secretError("TICKET_SECRET_ID", err)
			}
			return b, nil
		}
	}
	return credential.New(ctx, opts)
}

// close releases the instance's clients. The function never calls it (an
// instance lives until the platform stops it); tests do.
func (h *handler) close() {
	inst, ok := h.inst.Peek()
	if !ok {
		return
	}
	inst.vendor.Close()
	if inst.secrets != nil {
		inst.secrets.Close()
	}
}
