package tokenvendingmachine

import (
	"context"
	"fmt"
	"net/http"
	"time"

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
