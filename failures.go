package tokenvendingmachine

// How the function answers what it cannot serve: one table from each kind
// of failure (internal/failure) to a status, a message that reveals nothing
// internal, a Retry-After and the request log line's outcome.

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/failure"
)

// answer is how the function answers one kind of failure.
type answer struct {
	status  int
	message string        // the body's message: it reveals nothing internal
	retry   time.Duration // Retry-After, unless the error says; 0 for none
	outcome string        // the request log line's outcome
	level   slog.Level    // the request log line's level
	logErr  bool          // whether the log line names the error
	// authenticate, if set, is the WWW-Authenticate header's value.
	authenticate string
}

// answers maps each kind of failure to its answer. It is the one place
// that decides what a caller is told.
var answers = map[failure.Kind]answer{
	failure.Misconfigured: {http.StatusInternalServerError, "the token service is misconfigured", 0, "error", slog.LevelError, true, ""},
	failure.Unavailable:   {http.StatusServiceUnavailable, "the token service is unavailable; try again shortly", 5 * time.Second, "error", slog.LevelError, true, ""},
	// The caller left, or the platform's deadline passed, while the setup
	// or the token it waited for was still under way. That work goes on,
	// each call within UPSTREAM_TIMEOUT, and its result is kept for the
	// next request (though deployed, the platform may throttle it once
	// this response is written).
	failure.Slow:          {http.StatusServiceUnavailable, "the token service is slow; try again", time.Second, "error", slog.LevelWarn, true, ""},
	failure.Limited:       {http.StatusTooManyRequests, "too many new tokens; try again shortly", time.Second, "limited", slog.LevelWarn, false, ""},
	failure.Unidentified:  {http.StatusBadRequest, "cannot identify the client", 0, "refused", slog.LevelInfo, false, ""},
	failure.OriginRefused: {http.StatusForbidden, "origin not allowed", 0, "refused", slog.LevelInfo, false, ""},
	failure.MethodRefused: {http.StatusMethodNotAllowed, "method not allowed", 0, "refused", slog.LevelInfo, false, ""},
	// One message for every reason a credential is refused; the reason
	// goes to the log line.
	failure.Unauthenticated: {http.StatusUnauthorized, "sign-in required", 0, "refused", slog.LevelInfo, false, "Bearer"},
	failure.BadCredentials:  {http.StatusUnauthorized, "invalid credentials", 0, "refused", slog.LevelInfo, false, `Bearer error="invalid_token"`},
	failure.Forbidden:       {http.StatusForbidden, "no token for this caller", 0, "refused", slog.LevelInfo, false, ""},
}

// The failures the edge itself finds.
var (
	errOriginRefused = failure.Refusal(failure.OriginRefused, "origin not in ALLOWED_ORIGINS")
	errUnreadable    = failure.Refusal(failure.OriginRefused, "browser request that cannot read the answer")
	errMethodRefused = failure.New(failure.MethodRefused, "method not allowed")
	errUnidentified  = failure.New(failure.Unidentified, "cannot identify the client")
)

// Failures whose cause was logged once where it happened; a request's log
// line names only these.
var (
	errConfig = errors.New("invalid configuration")
	errSetup  = errors.New("instance setup failed")
)

// fail answers a request that could not be served with err's answer, and
// notes it for the request's log line.
func (h *handler) fail(w http.ResponseWriter, err error, le *logEntry) {
	kind, retry := failure.Of(err)
	a, ok := answers[kind]
	if !ok {
		kind = failure.Unavailable
		a = answers[kind]
	}
	le.outcome, le.level, le.reason = a.outcome, a.level, failure.ReasonOf(err)
	if a.logErr {
		le.err = err.Error()
		for _, logged := range []error{errConfig, errSetup, credential.ErrIssuer} {
			if errors.Is(err, logged) {
				le.err = logged.Error()
			}
		}
	}
	if retry == 0 {
		retry = a.retry
	}
	if a.authenticate != "" {
		w.Header().Set("WWW-Authenticate", a.authenticate)
	}
	writeError(w, a.status, errorBodies[kind], retry)
}

// writeError answers with code and body, an answer's JSON message; a
// positive retryAfter becomes a Retry-After header in whole seconds,
// rounded up.
func writeError(w http.ResponseWriter, code int, body []byte, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header()["Cache-Control"] = noStore
	writeBody(w, code, body)
}

// errorBodies are the bodies of the answers' messages, made once: a flood
// of forged credentials is answered with one of them each time. w.Write
// only reads them.
var errorBodies = func() map[failure.Kind][]byte {
	m := make(map[failure.Kind][]byte, len(answers))
	for kind, a := range answers {
		m[kind] = errorBody(a.message)
	}
	return m
}()

// errorBody returns the JSON body of an answer with message.
func errorBody(message string) []byte {
	b, err := json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	if err != nil {
		panic(err) // a string: it always marshals
	}
	return append(b, '\n')
}
