package tokenvendingmachine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"example.com/tokenvendingmachine/internal/cloudlog"
)

// The messages of the function's log lines, besides the vendor's; tests
// find lines by them.
const (
	logRequest       = "request"
	logInvalidConfig = "invalid configuration; fix the environment variables and redeploy"
	logSetupFailed   = "instance setup failed; a request after the retry delay will try again"
	logInstanceReady = "instance ready"
	logDeprecated    = "deprecated variable; it is read for this release only"
)

// logEntry collects what the request's log line says.
type logEntry struct {
	outcome string // hit, mint, limited, error, preflight or refused
	source  string
	client  string
	err     string
	level   slog.Level
	// credential is the kind of credential presented: "ticket" or
	// "id_token"; "" for none.
	credential string
	// reason is why the caller was refused: the failure's Reason.
	reason string
	// forwardedJunk reports that the trusted X-Forwarded-For entry was
	// not an address, so the connection's was used.
	forwardedJunk bool
}

// writeLogLine writes the request's one log line. Nothing in it is text the
// caller wrote, so no line grows with the caller's input. The record goes
// to the logger's handler directly: slog.Logger would also look up the
// caller's program counter, which no line shows.
func (h *handler) writeLogLine(r *http.Request, status int, le *logEntry, start time.Time) {
	ctx := context.Background()
	lh := h.log.Handler()
	if !lh.Enabled(ctx, le.level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("method", methodName(r.Method)),
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
	if le.credential != "" {
		attrs = append(attrs, slog.String("credential", le.credential))
	}
	if le.reason != "" {
		attrs = append(attrs, slog.String("reason", le.reason))
	}
	if le.forwardedJunk {
		attrs = append(attrs, slog.String("forwarded_for", "not an address; used the connection's"))
	}
	if trace := traceID(r.Header.Get("X-Cloud-Trace-Context")); trace != "" {
		if h.cfg.Project != "" {
			trace = "projects/" + h.cfg.Project + "/traces/" + trace
		}
		attrs = append(attrs, slog.String(cloudlog.TraceKey, trace))
	}
	rec := slog.NewRecord(time.Now(), le.level, logRequest, 0)
	rec.AddAttrs(attrs...)
	lh.Handle(ctx, rec)
}

// methodName returns m if it is a method HTTP defines, and "other" if not:
// the method is the caller's to write.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
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

// newLabeler returns the pool of keyed hashes label uses, with a key new
// for each instance.
func newLabeler() *sync.Pool {
	key := make([]byte, 16)
	rand.Read(key) // never fails (Go 1.24+)
	return &sync.Pool{New: func() any { return &labeler{mac: hmac.New(sha256.New, key)} }}
}

// labeler is a keyed hash and the room to use it without allocating.
type labeler struct {
	mac hash.Hash
	in  []byte // the key hashed last
	sum [sha256.Size]byte
}

// label names a caller key in logs: a short keyed hash, stable for the
// instance's life, from which the IP or identity cannot be recovered. The
// HMACs are pooled, with their buffers: building one per request cost
// more than the rest of a cache hit's logging.
func (h *handler) label(key string) string {
	l := h.labeler.Get().(*labeler)
	l.mac.Reset()
	l.in = append(l.in[:0], key...)
	l.mac.Write(l.in)
	var label [12]byte
	hex.Encode(label[:], l.mac.Sum(l.sum[:0])[:6])
	if cap(l.in) <= 1<<10 {
		h.labeler.Put(l)
	}
	return string(label[:])
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
