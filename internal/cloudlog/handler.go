package cloudlog

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Handler is the slog.Handler of New's loggers: slog's JSONHandler with
// Cloud Logging's names for the level and the message, and a shorter way
// to the same bytes for the usual line, such as a request's. A line whose
// attributes are all strings, integers, booleans, durations and floats
// that JSON writes without an exponent, none named "level" or "msg", is
// written by Handler itself, in less than half the JSONHandler's time;
// any other line, and every line of a logger made by WithAttrs or
// WithGroup, by the JSONHandler. Both write the same bytes, each line
// with one Write, one at a time.
type Handler struct {
	w    *lockedWriter
	json *slog.JSONHandler // over w too
}

// NewHandler returns a Handler that writes to w, INFO and above.
func NewHandler(w io.Writer) *Handler {
	lw := &lockedWriter{w: w}
	return &Handler{w: lw, json: slog.NewJSONHandler(lw, &slog.HandlerOptions{ReplaceAttr: replace})}
}

// lockedWriter serializes the Writes of a Handler and of the JSONHandlers
// derived from it.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Enabled reports whether level is INFO or above.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}

// Handle writes r as one line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	bp := lines.Get().(*[]byte)
	b, ok := appendLine((*bp)[:0], r)
	var err error
	if ok {
		_, err = h.w.Write(b)
	}
	if cap(b) <= maxPooled {
		*bp = b[:0]
		lines.Put(bp)
	}
	if !ok {
		return h.json.Handle(ctx, r)
	}
	return err
}

// WithAttrs returns the JSONHandler's.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.json.WithAttrs(attrs) }

// WithGroup returns the JSONHandler's.
func (h *Handler) WithGroup(name string) slog.Handler { return h.json.WithGroup(name) }

// lines are buffers for lines; one that grew past maxPooled is not kept.
var lines = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooled = 16 << 10

// appendLine appends r as the JSONHandler (with replace) would write it,
// and reports false, with b in any state, for a line it leaves to the
// JSONHandler.
func appendLine(b []byte, r slog.Record) ([]byte, bool) {
	if y := r.Time.Year(); r.Time.IsZero() || y < 0 || y >= 10000 {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = r.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","severity":"`...)
	b = append(b, severity(r.Level)...)
	b = append(b, `","message":`...)
	b = appendString(b, r.Message)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAttr(b, a)
		return ok
	})
	return append(b, "}\n"...), ok
}

// appendAttr appends ,"key":value for the kinds of value appendLine
// writes itself, and reports false for any other attribute.
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	switch a.Key {
	case "", slog.LevelKey, slog.MessageKey:
		// Empty attributes are elided, and replace renames these.
		return b, false
	}
	b = append(b, ',')
	b = appendString(b, a.Key)
	b = append(b, ':')
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10), true
	case slog.KindFloat64:
		// encoding/json's form, where it uses no exponent.
		f := v.Float64()
		if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) || math.IsNaN(f) {
			return b, false
		}
		return strconv.AppendFloat(b, f, 'f', -1, 64), true
	}
	return b, false
}

// appendString appends s as a JSON string, escaped as slog's JSONHandler
// escapes it: '"', '\\' and control characters, invalid UTF-8 as U+FFFD,
// and U+2028 and U+2029; nothing else.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"
