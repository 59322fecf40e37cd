package tokenvendingmachine

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/vending"
)

// response is the body of a successful request.
type response struct {
	Token string `json:"token"`
	// Exp is when the token expires, in unix seconds.
	Exp int64 `json:"exp"`
	// ExpiresIn is the seconds left when this response was made, for a
	// browser whose clock is wrong.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshIn is the seconds, to the millisecond, after which the page
	// should fetch its next token (see refreshIn). Pages that predate it
	// ignore it; the browser helper falls back to expires_in without it.
	RefreshIn float64 `json:"refresh_in"`
}

// writeToken answers with tok, as of now; margin is the least life a
// served token has left.
func writeToken(w http.ResponseWriter, tok vending.Token, now time.Time, margin time.Duration) {
	w.Header()["Cache-Control"] = noStore
	bp := bodies.Get().(*[]byte)
	b := appendResponse((*bp)[:0], response{
		Token:     tok.Value,
		Exp:       tok.Expires.Unix(),
		ExpiresIn: max(0, tok.Expires.Unix()-now.Unix()),
		RefreshIn: float64(refreshIn(tok, now, margin).Milliseconds()) / 1000,
	})
	writeBody(w, http.StatusOK, b)
	*bp = b[:0] // w kept none of it
	bodies.Put(bp)
}

// bodies are buffers for token responses.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendResponse appends r's JSON and a newline, as json.Marshal writes
// it: by hand when the token holds nothing JSON escapes (a Momento token
// is base64), which costs a tenth of json.Marshal's reflection.
func appendResponse(b []byte, r response) []byte {
	if !jsonVerbatim(r.Token) {
		j, err := json.Marshal(r)
		if err != nil {
			panic(err) // only strings and numbers: it always marshals
		}
		return append(append(b, j...), '\n')
	}
	b = append(b, `{"token":"`...)
	b = append(b, r.Token...)
	b = append(b, `","exp":`...)
	b = strconv.AppendInt(b, r.Exp, 10)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, r.ExpiresIn, 10)
	b = append(b, `,"refresh_in":`...)
	b = strconv.AppendFloat(b, r.RefreshIn, 'f', -1, 64)
	return append(b, "}\n"...)
}

// jsonVerbatim reports whether json.Marshal writes s, in quotes, as it is:
// printable ASCII but for '"', '\\' and the characters it escapes for
// HTML ('<', '>', '&').
func jsonVerbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ' || c > '~', c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// Header values every response shares, set as hdr[key] = value: what
// Header.Set does, but for the canonicalization and a new slice each time.
// net/http only reads them (it copies the header when it writes it), and
// nothing here changes a value in place.
var (
	nosniff          = []string{"nosniff"}
	anyOrigin        = []string{"*"}
	exposeRetryAfter = []string{"Retry-After"}
	noStore          = []string{"no-store"}
	jsonContent      = []string{"application/json"}
)

// refreshIn returns how long after now a page holding tok should fetch the
// next token: at a point in the first half of tok's last margin of life.
// From that margin on the function no longer serves tok, so the fetch gets
// a newer token, and the second half is left for retries. Where in the
// first half follows from a hash of the token, so the point is the same in
// every answer that carries tok: callers whose tokens were minted together
// (after a deploy, say) refresh spread over half the margin, while the pages
// of one caller, which share a token, ask together and cost one mint. The
// function chooses, not the page, so that a new margin or spread reaches
// pages already open without a change to them.
func refreshIn(tok vending.Token, now time.Time, margin time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(tok.Value))
	frac := float64(h.Sum64()>>11) / (1 << 53) // in [0, 1)
	at := tok.Expires.Add(-margin + time.Duration(frac*float64(margin/2)))
	return min(max(at.Sub(now), 0), tok.Expires.Sub(now))
}

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
		a = answers[failure.Unavailable]
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
	writeError(w, a.status, a.message, retry)
}

// writeError answers with code and a JSON message; a positive retryAfter
// becomes a Retry-After header in whole seconds, rounded up.
func writeError(w http.ResponseWriter, code int, message string, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header()["Cache-Control"] = noStore
	body, ok := errorBodies[message]
	if !ok {
		body = errorBody(message)
	}
	writeBody(w, code, body)
}

// errorBodies are the bodies of the answers' messages, made once: a flood
// of forged credentials is answered with one of them each time. w.Write
// only reads them.
var errorBodies = func() map[string][]byte {
	m := make(map[string][]byte, len(answers))
	for _, a := range answers {
		m[a.message] = errorBody(a.message)
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

// writeBody answers with code and body, JSON.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContent
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}
