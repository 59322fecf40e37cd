package tokenvendingmachine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/config"
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
	vendor  *vending.Vendor
	secrets *secret.Client // nil when the key comes from MOMENTO_API_KEY
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

func (h *handler) connect(ctx context.Context) (*instance, error) {
	cfg := h.cfg
	inst := &instance{}
	readKey := func(context.Context) (string, error) { return cfg.APIKey, nil }
	if cfg.SecretID != "" {
		// The client outlives setup: its credentials refresh with this ctx.
		var err error
		inst.secrets, err = secret.NewClient(context.WithoutCancel(ctx), cfg.SecretManagerEmulatorHost)
		if err != nil {
			return nil, failure.Wrap(failure.Unavailable, err)
		}
		readKey = func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.UpstreamTimeout)
			defer cancel()
			return inst.secrets.MomentoKey(ctx, cfg.SecretID)
		}
	}
	fail := func(err error) (*instance, error) {
		if inst.secrets != nil {
			inst.secrets.Close()
		}
		return nil, err
	}

	key, err := readKey(ctx)
	if err != nil {
		return fail(secretError(err))
	}
	connect := vending.ConnectOptions{EmulatorHost: cfg.MomentoEmulatorHost, Timeout: cfg.UpstreamTimeout, DefaultTTL: cfg.CacheTTL}
	clients, err := vending.Connect(ctx, key, connect)
	if err != nil {
		if errors.Is(err, vending.ErrBadKey) {
			return fail(err)
		}
		return fail(failure.Wrap(failure.Unavailable, fmt.Errorf("connect to Momento: %w", err)))
	}
	if clients.Lazy {
		h.log.Warn("Momento's cache endpoint did not answer during setup; connecting on first use")
	}

	opts := vending.Options{
		CacheName:    cfg.CacheName,
		TokenTTL:     cfg.TokenTTL,
		CacheTTL:     cfg.CacheTTL,
		Margin:       config.RefreshMargin,
		CallTimeout:  cfg.UpstreamTimeout,
		MintRate:     cfg.MintRate,
		MintBurst:    cfg.MintBurst,
		LookupRate:   cfg.LookupRate,
		LookupBurst:  cfg.LookupBurst,
		L1MaxEntries: cfg.L1MaxEntries,
		L1MaxBytes:   cfg.L1MaxBytes,
		Now:          h.now,
		Logger:       h.log,
		Label:        h.label,
	}
	if inst.secrets != nil {
		// A key from the environment is fixed for the instance's life;
		// one from Secret Manager can be rotated without a redeploy.
		opts.Reconnect = func(ctx context.Context) (*vending.Clients, error) {
			key, err := readKey(ctx)
			if err != nil {
				return nil, err
			}
			return vending.Connect(ctx, key, connect)
		}
	}
	inst.vendor = vending.New(clients, opts)
	return inst, nil
}

// secretError gives a failure to read the key from Secret Manager its kind.
func secretError(err error) error {
	err = fmt.Errorf("read the Momento key from SECRET_ID: %w", err)
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
