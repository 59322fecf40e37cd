package tokenvendingmachine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/ticket"
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
	secrets *secret.Client // nil when no key comes from Secret Manager
	tickets *ticketKeys    // nil when tickets are not accepted
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
	readKey := func(context.Context) (vending.Credentials, error) {
		return vending.Credentials{APIKey: cfg.APIKey, Endpoint: cfg.MomentoEndpoint}, nil
	}
	if cfg.SecretID != "" || cfg.TicketSecretID != "" {
		// The client outlives setup: its credentials refresh with this ctx.
		var err error
		inst.secrets, err = secret.NewClient(context.WithoutCancel(ctx), cfg.SecretManagerEmulatorHost)
		if err != nil {
			return nil, failure.Wrap(failure.Unavailable, err)
		}
	}
	if cfg.SecretID != "" {
		readKey = func(ctx context.Context) (vending.Credentials, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.UpstreamTimeout)
			defer cancel()
			k, err := inst.secrets.MomentoKey(ctx, cfg.SecretID)
			if err != nil {
				return vending.Credentials{}, err
			}
			return h.endpointFor(k), nil
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
		return fail(secretError("SECRET_ID", err))
	}
	if inst.tickets, err = h.ticketKeys(ctx, inst.secrets); err != nil {
		return fail(err)
	}
	connect := vending.ConnectOptions{EmulatorHost: cfg.MomentoEmulatorHost, Timeout: cfg.UpstreamTimeout, DefaultTTL: cfg.CacheTTL}
	clients, err := vending.Connect(ctx, key, connect)
	if err != nil {
		if kind, _ := failure.Of(err); kind == failure.Misconfigured {
			return fail(err) // a bad key, or a v2 key without an endpoint
		}
		return fail(failure.Wrap(failure.Unavailable, fmt.Errorf("connect to Momento: %w", err)))
	}
	if clients.Lazy {
		h.log.Warn("Momento's cache endpoint did not answer during setup; connecting on first use")
	}

	opts := vending.Options{
		CacheName:      cfg.CacheName,
		TokenTTL:       cfg.TokenTTL,
		CacheTTL:       cfg.CacheTTL,
		Margin:         config.RefreshMargin,
		CallTimeout:    cfg.UpstreamTimeout,
		MintRate:       cfg.MintRate,
		MintBurst:      cfg.MintBurst,
		LookupRate:     cfg.LookupRate,
		LookupBurst:    cfg.LookupBurst,
		L1MaxEntries:   cfg.L1MaxEntries,
		L1MaxBytes:     cfg.L1MaxBytes,
		KeyMintRate:    cfg.NetworkMintRate,
		KeyMintBurst:   cfg.NetworkMintBurst,
		KeyLookupRate:  cfg.NetworkLookupRate,
		KeyLookupBurst: cfg.NetworkLookupBurst,
		FleetMintRate:  cfg.FleetMintRate,
		FleetMintBurst: cfg.FleetMintBurst,
		Now:            h.now,
		Logger:         h.log,
		Label:          h.label,
	}
	if cfg.SecretID != "" {
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
	if inst.vendor, err = vending.New(clients, opts); err != nil {
		return fail(err)
	}
	return inst, nil
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

// ticketKeys returns the keys that verify tickets, read from TICKET_KEY or
// from the secret TICKET_SECRET_ID names; nil if neither is set.
func (h *handler) ticketKeys(ctx context.Context, secrets *secret.Client) (*ticketKeys, error) {
	cfg := h.cfg
	tk := &ticketKeys{
		opts: ticket.Options{Audience: cfg.TicketAudience, MaxTTL: cfg.TicketMaxTTL, Now: h.now},
		log:  h.log,
	}
	switch {
	case cfg.TicketKey != "":
		tk.read = func(context.Context) ([]byte, error) { return []byte(cfg.TicketKey), nil }
		tk.variable = "TICKET_KEY"
	case cfg.TicketSecretID != "":
		tk.read = func(ctx context.Context) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.UpstreamTimeout)
			defer cancel()
			b, err := secrets.Read(ctx, cfg.TicketSecretID)
			if err != nil {
				return nil, secretError("TICKET_SECRET_ID", err)
			}
			return b, nil
		}
		tk.variable, tk.rereads = "TICKET_SECRET_ID", true
	default:
		return nil, nil
	}
	if err := tk.load(ctx); err != nil {
		return nil, err
	}
	return tk, nil
}

// ticketKeys verifies tickets with the current keys. Keys from Secret
// Manager are read again when a ticket names a key id they lack (the app
// added a key), at most once per ticketRereadInterval, and when they are
// older than ticketKeysMaxAge (the app removed one).
type ticketKeys struct {
	read     func(context.Context) ([]byte, error)
	variable string         // the variable the keys come from, for errors
	rereads  bool           // whether an unknown key id makes it read the keys again
	opts     ticket.Options // its Now is the clock
	log      *slog.Logger

	current  atomic.Pointer[ticket.Verifier]
	loadedAt atomic.Int64 // when current was read, in unix nanoseconds
	mu       sync.Mutex   // serialises reads; guards next
	next     time.Time    // the earliest time of the next re-read for an unknown key id
}

// ticketRereadInterval is the least time between two re-reads of the
// ticket keys, however many unknown key ids arrive.
const ticketRereadInterval = 30 * time.Second

// ticketKeysMaxAge is how long keys from Secret Manager are used before
// they are read again, so that a key removed from the secret stops being
// accepted without a redeploy.
const ticketKeysMaxAge = 5 * time.Minute

// load reads the keys and makes them current.
func (tk *ticketKeys) load(ctx context.Context) error {
	payload, err := tk.read(ctx)
	if err != nil {
		return err
	}
	keys, err := ticket.ParseKeys(payload)
	if err != nil {
		// The error names key ids and lengths, never key bytes.
		return failure.Wrap(failure.Misconfigured, fmt.Errorf("%s: %w", tk.variable, err))
	}
	v, err := ticket.NewVerifier(keys, tk.opts)
	if err != nil {
		return failure.Wrap(failure.Misconfigured, fmt.Errorf("%s: %w", tk.variable, err))
	}
	tk.current.Store(v)
	tk.loadedAt.Store(tk.opts.Now().UnixNano())
	return nil
}

// verify verifies raw with the current keys, reading them again first if
// raw names a key id they lack and the interval allows.
func (tk *ticketKeys) verify(ctx context.Context, raw string) (ticket.Claims, error) {
	if tk.rereads && tk.opts.Now().Sub(time.Unix(0, tk.loadedAt.Load())) > ticketKeysMaxAge && tk.mu.TryLock() {
		// One request reads them again; the others go on with the keys
		// they have.
		if err := tk.load(ctx); err != nil {
			tk.log.Error("re-reading the ticket keys failed", "error", err.Error())
			// Keep the keys, and try again after the re-read interval.
			retry := tk.opts.Now().Add(ticketRereadInterval - ticketKeysMaxAge)
			tk.loadedAt.Store(retry.UnixNano())
		}
		tk.mu.Unlock()
	}
	c, err := tk.current.Load().Verify(raw)
	if err == nil || !tk.rereads || !errors.Is(err, ticket.ErrUnknownKey) {
		return c, err
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if now := tk.opts.Now(); now.After(tk.next) {
		tk.next = now.Add(ticketRereadInterval)
		if lerr := tk.load(ctx); lerr != nil {
			tk.log.Error("re-reading the ticket keys failed", "error", lerr.Error())
		} else {
			tk.log.Info("re-read the ticket keys for an unknown key id")
		}
	}
	return tk.current.Load().Verify(raw)
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
