// Package tokenvendingmachine is a Google Cloud Function that hands browsers
// short-lived Momento tokens, so that a web page can subscribe to Momento
// topics without ever holding the account's API key.
//
// A GET returns {"token": "...", "exp": <unix seconds>, "expires_in": <seconds>}.
// The token may only subscribe, to the topics of one cache, and expires in an
// hour; each client IP gets one token, cached in the instance and in Momento.
// The entry point is TokenVendingMachine; the README has the configuration
// and the deploy guide.
package tokenvendingmachine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/clientip"
	"example.com/tokenvendingmachine/internal/cloudlog"
	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/vending"
)

// EntryPoint is the function's name, as passed to gcloud's --entry-point.
const EntryPoint = "TokenVendingMachine"

func init() {
	h := newHandler(deps{getenv: os.Getenv, stdout: os.Stdout, now: time.Now})
	functions.HTTP(EntryPoint, h.ServeHTTP)
	// On Cloud Functions (K_SERVICE is set there), read the secret and
	// connect to Momento while the instance starts, so its first request
	// does not wait for that; it is best effort, as the platform may
	// throttle the CPU between starting and the first request. Anywhere
	// else, setup waits for a request.
	if os.Getenv("K_SERVICE") != "" {
		go h.instance(context.Background()) //nolint:errcheck // a failure is logged, and retried by the next request
	}
}

// deps are what the handler takes from its surroundings.
type deps struct {
	getenv func(string) string
	stdout io.Writer        // structured logs
	now    func() time.Time // for expires_in, and the vendor's clock
}

// handler is the function. Its zero value is not usable; see newHandler.
type handler struct {
	deps
	log      *slog.Logger
	labelKey []byte // keys the hash that names clients in logs
	project  string // for trace links in logs; may be ""

	cfgOnce sync.Once
	cfg     config.Config
	cfgErr  error

	mu       sync.Mutex // guards the fields below
	inst     *instance  // nil until a setup succeeds
	pending  *setupCall // the setup in progress, if any
	failed   error      // the last setup's error, if it failed
	failedAt time.Time  // when it failed, on the now clock
}

// instance is what an instance sets up once: its vendor and the clients it
// calls.
type instance struct {
	vendor  *vending.Vendor
	secrets *secret.Client // nil when the key comes from MOMENTO_API_KEY
}

// setupCall is a setup shared by the requests that wait for it.
type setupCall struct {
	done chan struct{}
	inst *instance // set before done is closed
	err  error
}

func newHandler(d deps) *handler {
	key := make([]byte, 16)
	rand.Read(key) // never fails (Go 1.24+)
	h := &handler{deps: d, log: cloudlog.New(d.stdout), labelKey: key}
	h.project = strings.TrimSpace(d.getenv("GOOGLE_CLOUD_PROJECT"))
	if rest, ok := strings.CutPrefix(strings.TrimSpace(d.getenv("SECRET_ID")), "projects/"); h.project == "" && ok {
		h.project, _, _ = strings.Cut(rest, "/")
	}
	return h
}

// close releases the instance's clients. The function never calls it (an
// instance lives until the platform stops it); tests do.
func (h *handler) close() {
	h.mu.Lock()
	inst := h.inst
	h.inst = nil
	h.mu.Unlock()
	if inst != nil {
		inst.vendor.Close()
		if inst.secrets != nil {
			inst.secrets.Close()
		}
	}
}

// config returns the configuration, read once: the environment does not
// change during an instance's life.
func (h *handler) config() (config.Config, error) {
	h.cfgOnce.Do(func() {
		h.cfg, h.cfgErr = config.FromEnv(h.getenv)
		if h.cfgErr != nil {
			h.log.Error("invalid configuration; fix the environment variables and redeploy", "error", h.cfgErr.Error())
		}
	})
	return h.cfg, h.cfgErr
}

// setupRetryDelay is how long after a failed setup requests get its error
// without trying again: long enough that an outage or a broken secret does
// not cost a Secret Manager call per request, short enough to recover fast.
const setupRetryDelay = 2 * time.Second

// instance returns the instance's setup, running it if no request has yet
// succeeded. Concurrent callers share one run; after a failure, the first
// caller setupRetryDelay later runs it again. ctx bounds only the wait.
func (h *handler) instance(ctx context.Context) (*instance, error) {
	h.mu.Lock()
	if inst := h.inst; inst != nil {
		h.mu.Unlock()
		return inst, nil
	}
	if h.pending == nil && h.failed != nil && h.now().Sub(h.failedAt) < setupRetryDelay {
		err := h.failed
		h.mu.Unlock()
		return nil, err
	}
	call := h.pending
	if call == nil {
		call = &setupCall{done: make(chan struct{})}
		h.pending = call
		go h.runSetup(call)
	}
	h.mu.Unlock()

	select {
	case <-call.done:
		return call.inst, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// setupTimeout bounds one setup: a secret read and a connection.
const setupTimeout = 20 * time.Second

func (h *handler) runSetup(call *setupCall) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	start := time.Now()
	inst, err := h.setup(ctx)
	if err != nil {
		h.log.Error("instance setup failed; a request after the retry delay will try again",
			"retry_delay", setupRetryDelay.String(), "error", err.Error())
	} else {
		h.log.Info("instance ready", "setup_ms", msSince(start))
	}
	call.inst, call.err = inst, err
	h.mu.Lock()
	if err == nil {
		h.inst, h.failed = inst, nil
	} else {
		h.failed, h.failedAt = err, h.now()
	}
	h.pending = nil
	h.mu.Unlock()
	close(call.done)
}

// setupError is a failed setup and the status it answers with.
type setupError struct {
	status int // 500: ours to fix; 503: an upstream is unavailable
	err    error
}

func (e *setupError) Error() string { return e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

// setup reads the configuration and the Momento key and connects to Momento.
func (h *handler) setup(ctx context.Context) (*instance, error) {
	cfg, err := h.config()
	if err != nil {
		return nil, &setupError{http.StatusInternalServerError, fmt.Errorf("configuration: %w", err)}
	}
	inst := &instance{}
	readKey := func(context.Context) (string, error) { return cfg.APIKey, nil }
	if cfg.SecretID != "" {
		// The client outlives setup: its credentials refresh with this ctx.
		inst.secrets, err = secret.NewClient(context.WithoutCancel(ctx), cfg.SecretManagerEmulatorHost)
		if err != nil {
			return nil, &setupError{http.StatusServiceUnavailable, err}
		}
		readKey = func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.UpstreamTimeout)
			defer cancel()
			return inst.secrets.MomentoKey(ctx, cfg.SecretID)
		}
	}
	fail := func(err *setupError) (*instance, error) {
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
			return fail(&setupError{http.StatusInternalServerError, err})
		}
		return fail(&setupError{http.StatusServiceUnavailable, fmt.Errorf("connect to Momento: %w", err)})
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

// secretError classifies a failure to read the key from Secret Manager.
func secretError(err error) *setupError {
	err = fmt.Errorf("read the Momento key from SECRET_ID: %w", err)
	if errors.Is(err, secret.ErrPayload) {
		return &setupError{http.StatusInternalServerError, err}
	}
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition:
		// The secret is missing or the service account may not read it:
		// ours to fix, not worth retrying soon.
		return &setupError{http.StatusInternalServerError, err}
	}
	return &setupError{http.StatusServiceUnavailable, err}
}

// The methods the function answers, for Allow headers.
const allowedMethods = "GET, HEAD, OPTIONS"

// preflightMaxAge is how long a browser may cache a preflight: Chromium's
// upper limit.
const preflightMaxAge = "7200"

// response is the body of a successful request.
type response struct {
	Token string `json:"token"`
	// Exp is when the token expires, in unix seconds.
	Exp int64 `json:"exp"`
	// ExpiresIn is the seconds left when this response was made, for a
	// browser whose clock is wrong.
	ExpiresIn int64 `json:"expires_in"`
}

// logEntry collects what the request's log line says.
type logEntry struct {
	outcome string // hit, mint, limited, error, preflight or refused
	source  string
	client  string
	err     string
	level   slog.Level
}

// ServeHTTP answers one request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	le := logEntry{level: slog.LevelInfo}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { h.logRequest(r, rec.status, &le, start) }()
	h.serve(rec, r, &le)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, le *logEntry) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/favicon.ico" || r.URL.Path == "/robots.txt" {
		// Browsers ask for these when the URL is opened directly; they
		// must not cost a token.
		le.outcome = "refused"
		http.NotFound(w, r)
		return
	}

	cfg, cfgErr := h.config()
	if cfgErr == nil && !h.cors(w, r, cfg) {
		le.outcome = "refused"
		writeError(w, http.StatusForbidden, "origin not allowed", 0)
		return
	}
	if cfgErr != nil {
		hdr.Set("Access-Control-Allow-Origin", "*") // so a page can read the error
	}

	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		le.outcome = "preflight"
		hdr.Set("Allow", allowedMethods)
		if r.Header.Get("Access-Control-Request-Method") != "" {
			hdr.Set("Access-Control-Allow-Methods", allowedMethods)
			if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" && validHeaderList(asked) {
				hdr.Set("Access-Control-Allow-Headers", asked)
			}
			hdr.Add("Vary", "Access-Control-Request-Headers")
			hdr.Set("Access-Control-Max-Age", preflightMaxAge)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		le.outcome = "refused"
		hdr.Set("Allow", allowedMethods)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed", 0)
		return
	}

	if cfgErr != nil {
		le.outcome, le.err, le.level = "error", "invalid configuration", slog.LevelError
		writeError(w, http.StatusInternalServerError, "the token service is misconfigured", 0)
		return
	}
	client := clientip.Resolve(r.Header.Values("X-Forwarded-For"), r.RemoteAddr, cfg.TrustedProxies)
	if client.Rejected {
		h.log.Warn("X-Forwarded-For entry is not an IP address; using the connection's address",
			"trusted_proxies", cfg.TrustedProxies)
	}
	if client.Source == clientip.None {
		le.outcome = "refused"
		writeError(w, http.StatusBadRequest, "cannot identify the client", 0)
		return
	}
	le.client = h.label(client.Key)

	inst, err := h.instance(r.Context())
	if err != nil {
		h.fail(w, err, le)
		return
	}
	tok, err := inst.vendor.Token(r.Context(), client.Key)
	if err != nil {
		h.fail(w, err, le)
		return
	}
	le.outcome, le.source = "hit", tok.Source.String()
	if tok.Source == vending.Minted {
		le.outcome = "mint"
	}
	hdr.Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, response{
		Token:     tok.Value,
		Exp:       tok.Expires.Unix(),
		ExpiresIn: max(0, tok.Expires.Unix()-h.now().Unix()),
	})
}

// fail answers a request that setup or the vendor could not serve. The
// cause goes to the request's log line; a setup failure was logged by the
// setup, once.
func (h *handler) fail(w http.ResponseWriter, err error, le *logEntry) {
	le.outcome, le.err, le.level = "error", err.Error(), slog.LevelError
	var setup *setupError
	var limit *vending.LimitError
	switch {
	case errors.As(err, &setup):
		le.err = "instance setup failed"
		if setup.status == http.StatusInternalServerError {
			writeError(w, http.StatusInternalServerError, "the token service is misconfigured", 0)
			return
		}
		writeError(w, http.StatusServiceUnavailable, "the token service is unavailable; try again shortly", 5*time.Second)
	case errors.As(err, &limit):
		le.outcome, le.err, le.level = "limited", "", slog.LevelWarn
		writeError(w, http.StatusTooManyRequests, "too many new tokens; try again shortly", limit.RetryAfter)
	case errors.Is(err, vending.ErrRejected):
		writeError(w, http.StatusInternalServerError, "the token service is misconfigured", 0)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller left, or the platform's deadline passed, while the
		// setup or the token it waited for was still under way. That work
		// goes on, each call within UPSTREAM_TIMEOUT, and its result is kept
		// for the next request (though deployed, the platform may throttle
		// it once this response is written).
		le.level = slog.LevelWarn
		writeError(w, http.StatusServiceUnavailable, "the token service is slow; try again", time.Second)
	default:
		writeError(w, http.StatusServiceUnavailable, "the token service is unavailable; try again shortly", 5*time.Second)
	}
}

// cors sets the CORS headers for r's origin and reports whether the
// request may go on: false for an origin not in ALLOWED_ORIGINS. A request
// without an Origin is not a CORS request and goes on without them.
func (h *handler) cors(w http.ResponseWriter, r *http.Request, cfg config.Config) bool {
	hdr := w.Header()
	allow := func(origin string) bool {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Expose-Headers", "Retry-After") // so a page can back off
		return true
	}
	if cfg.AllowedOrigins == nil {
		return allow("*")
	}
	hdr.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if canon, ok := config.CanonicalOrigin(origin); ok {
		for _, allowed := range cfg.AllowedOrigins {
			if canon == allowed {
				return allow(origin)
			}
		}
	}
	return false
}

// validHeaderList reports whether s is a comma-separated list of header
// names, short enough to echo.
func validHeaderList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c == '-' || c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// label names a client key in logs: a short keyed hash, stable for the
// instance's life, from which the IP cannot be recovered.
func (h *handler) label(key string) string {
	m := hmac.New(sha256.New, h.labelKey)
	m.Write([]byte(key))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:6])
}

// logRequest writes the request's one log line.
func (h *handler) logRequest(r *http.Request, status int, le *logEntry, start time.Time) {
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.String("outcome", le.outcome),
		slog.Float64("latency_ms", msSince(start)),
	)
	if le.source != "" {
		attrs = append(attrs, slog.String("source", le.source))
	}
	if le.client != "" {
		attrs = append(attrs, slog.String("client", le.client))
	}
	if le.err != "" {
		attrs = append(attrs, slog.String("error", le.err))
	}
	if trace := traceID(r.Header.Get("X-Cloud-Trace-Context")); trace != "" {
		if h.project != "" {
			trace = "projects/" + h.project + "/traces/" + trace
		}
		attrs = append(attrs, slog.String(cloudlog.TraceKey, trace))
	}
	h.log.LogAttrs(context.Background(), le.level, "request", attrs...)
}

// traceID returns the trace ID of an X-Cloud-Trace-Context header
// ("TRACE_ID/SPAN_ID;o=1"), or "" if it has none: 32 hex digits.
func traceID(header string) string {
	id, _, _ := strings.Cut(header, "/")
	if len(id) != 32 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return ""
		}
	}
	return id
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only strings and numbers: it always marshals
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// writeError answers with code and a JSON message that reveals nothing
// internal; a positive retryAfter becomes a Retry-After header in seconds.
func writeError(w http.ResponseWriter, code int, message string, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, struct {
		Message string `json:"message"`
	}{message})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func msSince(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}
