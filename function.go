// Package tokenvendingmachine is a Google Cloud Function that hands browsers
// short-lived Momento tokens, so that a web page can subscribe to Momento
// topics without ever holding the account's API key.
//
// A GET returns {"token": "...", "exp": <unix seconds>, "expires_in":
// <seconds>, "refresh_in": <seconds>}, the last saying when to fetch the next.
// The token may subscribe, in one cache, to the topics its caller is entitled
// to (and publish only where OIDC_PUBLISH allows), for TOKEN_TTL; a caller is
// a client IP, the holder of a ticket from the app's backend, or a user
// signed in with an ID token. Each caller gets one token per scope, cached in
// the instance and in Momento.
// The entry point is TokenVendingMachine; the README has the configuration
// and the deploy guide.
//
// The package is the function's HTTP edge, a file per concern: this file
// registers the function and serves a request; caller.go tells who a request
// is for; setup.go sets up an instance, and secrets.go reads its Momento key;
// cors.go decides what a browser may read; respond.go writes a token;
// failures.go is the one table that maps a failure to a status, and writes
// it; requestlog.go is the request's log line.
package tokenvendingmachine

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/tokenvendingmachine/internal/cloudlog"
	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/lazy"
	"example.com/tokenvendingmachine/internal/vending"
)

// EntryPoint is the function's name, as passed to gcloud's --entry-point.
const EntryPoint = "TokenVendingMachine"

func init() {
	functions.HTTP(EntryPoint, func(w http.ResponseWriter, r *http.Request) {
		fromEnv().ServeHTTP(w, r)
	})
}

// fromEnv is the function as the platform runs it, built on its first
// request from the environment of that moment. Not at init: the local
// runner sets the emulator's variables after this package's init has run.
var fromEnv = sync.OnceValue(func() *handler {
	return handlerFromEnv(os.LookupEnv, deps{stdout: os.Stdout, now: time.Now})
})

// deps are what the handler takes from its surroundings.
type deps struct {
	stdout io.Writer        // structured logs
	now    func() time.Time // for expires_in, and the vendor's clock
}

// handler is the function. Its zero value is not usable; see newHandler.
type handler struct {
	deps
	cfg config.Config
	// cfgErr, if not nil, is why the configuration is invalid; every
	// request that gets past CORS and the method is answered with it.
	cfgErr  error
	log     *slog.Logger
	labeler *sync.Pool // of keyed hashes that name callers in logs; see label
	inst    lazy.Value[*instance]
	// topicsKey is appended to an anonymous caller's key when TOPICS is
	// a list, so that a token cached for another TOPICS is never served.
	topicsKey string
}

// handlerFromEnv returns the handler for the configuration lookupenv
// (os.LookupEnv) reads. An invalid configuration is logged once, here, and
// makes a handler that answers every request with it, so that a page can
// show the error and the log says what to fix.
func handlerFromEnv(lookupenv func(string) (string, bool), d deps) *handler {
	cfg, err := config.FromLookupEnv(lookupenv)
	h := newHandler(cfg, d)
	if err != nil {
		h.log.Error(logInvalidConfig, "error", err.Error())
		h.cfgErr = fmt.Errorf("%w: %w", errConfig, failure.Wrap(failure.Misconfigured, err))
	}
	for _, d := range cfg.Deprecated {
		h.log.Warn(logDeprecated, "variable", d.Variable, "instead", d.Instead)
	}
	return h
}

// newHandler returns the function for cfg. Nothing is read or connected
// until the first request that needs it.
func newHandler(cfg config.Config, d deps) *handler {
	h := &handler{deps: d, cfg: cfg, log: cloudlog.New(d.stdout), labeler: newLabeler()}
	h.inst = lazy.Value[*instance]{
		Build:      h.setup,
		RetryDelay: setupRetryDelay,
		Timeout:    setupTimeout,
		Now:        d.now,
	}
	if !cfg.Topics.IsAll() {
		h.topicsKey = ":" + cfg.Topics.Key()
	}
	return h
}

// ServeHTTP answers one request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	le := logEntry{level: slog.LevelInfo}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { h.writeLogLine(r, rec.status, &le, start) }()
	if err := h.serve(rec, r, &le); err != nil {
		h.fail(rec, err, &le)
	}
}

// serve answers r, or returns the failure to answer it with: the gate,
// then who is calling, then their token.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, le *logEntry) error {
	if answered, err := h.gate(w, r, le); answered || err != nil {
		return err
	}
	inst, caller, err := h.caller(r, le)
	if err != nil {
		return err
	}
	tok, err := inst.vendor.Token(r.Context(), caller)
	if err != nil {
		return err
	}
	le.outcome, le.source = "hit", tok.Source.String()
	if tok.Source == vending.Minted {
		le.outcome = "mint"
	}
	writeToken(w, tok, h.now(), h.cfg.Margin)
	return nil
}

// gate answers what costs no token (the browser's favicon and robots.txt
// requests, CORS preflights) and refuses what may have none (origins,
// methods, a configuration that is invalid). answered reports that the
// response is written.
func (h *handler) gate(w http.ResponseWriter, r *http.Request, le *logEntry) (answered bool, err error) {
	hdr := w.Header()
	hdr["X-Content-Type-Options"] = nosniff
	if r.URL.Path == "/favicon.ico" || r.URL.Path == "/robots.txt" {
		// Browsers ask for these when the URL is opened directly; they
		// must not cost a token.
		le.outcome = "refused"
		http.NotFound(w, r)
		return true, nil
	}

	if h.cfgErr != nil {
		hdr["Access-Control-Allow-Origin"] = anyOrigin // so a page can read the error
	} else if !allowOrigin(hdr, r.Header.Get("Origin"), h.cfg.AllowedOrigins) {
		return false, errOriginRefused
	} else if h.cfg.AllowedOrigins != nil && unreadable(r.Header) {
		hdr.Del("Access-Control-Allow-Origin")
		hdr.Del("Access-Control-Expose-Headers")
		return false, errUnreadable
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		le.outcome = "preflight"
		preflight(hdr, r.Header)
		w.WriteHeader(http.StatusNoContent)
		return true, nil
	default:
		hdr.Set("Allow", allowedMethods)
		return false, errMethodRefused
	}
	return false, h.cfgErr
}
