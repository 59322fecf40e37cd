package cloudlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonHandler is what Handler must write the same bytes as.
func jsonHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: replace})
}

// newHandler is NewHandler as a func(io.Writer) slog.Handler.
func newHandler(w io.Writer) slog.Handler { return NewHandler(w) }

// lineOf returns what the handler newH makes writes for r.
func lineOf(t testing.TB, newH func(io.Writer) slog.Handler, r slog.Record) string {
	t.Helper()
	var buf bytes.Buffer
	if err := newH(&buf).Handle(context.Background(), r); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return buf.String()
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

func TestHandlerWritesWhatJSONHandlerWrites(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 37, 6, 123456000, time.UTC)
	tests := []struct {
		name   string
		time   time.Time // t0 if zero, unless noTime
		noTime bool
		level  slog.Level
		msg    string
		attrs  []slog.Attr
	}{
		{name: "request line", level: slog.LevelInfo, msg: "request", attrs: []slog.Attr{
			slog.String("method", "GET"), slog.Int("status", 200), slog.String("outcome", "hit"),
			slog.Float64("latency_ms", 0.123), slog.String("source", "l1"), slog.String("client", "0123456789ab"),
			slog.String(TraceKey, "projects/p/traces/105445aa7843bc8bf206b12000100000"),
		}},
		{name: "levels", level: slog.LevelWarn + 2, msg: "m"},
		{name: "error", level: slog.LevelError, msg: "m"},
		{name: "debug", level: slog.LevelDebug, msg: "m"},
		{name: "no attributes, empty message", level: slog.LevelInfo},
		{name: "a time zone", time: t0.In(time.FixedZone("X", -5*3600)), level: slog.LevelInfo, msg: "m"},
		{name: "whole seconds", time: t0.Truncate(time.Second), level: slog.LevelInfo, msg: "m"},
		{name: "zero time", noTime: true, level: slog.LevelInfo, msg: "m"},
		{name: "year 10000", time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), level: slog.LevelInfo, msg: "m"},
		{name: "escapes", level: slog.LevelInfo, msg: "q\"b\\n\nr\rt\tc\x01\x1f del\x7f <>&'", attrs: []slog.Attr{
			slog.String("k\"ey\n", "bad \xff utf8 \xe2\x80, line\u2028para\u2029, é, 日本, 🙂"),
		}},
		{name: "numbers", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{
			slog.Int("neg", -7), slog.Int64("big", math.MaxInt64), slog.Uint64("u", math.MaxUint64),
			slog.Bool("t", true), slog.Bool("f", false), slog.Duration("d", 1500*time.Millisecond),
		}},
		{name: "floats", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{
			slog.Float64("zero", 0), slog.Float64("negzero", math.Copysign(0, -1)), slog.Float64("ms", 12.345),
			slog.Float64("third", 1.0/3), slog.Float64("small", 1e-6), slog.Float64("large", 1e20), slog.Float64("int", 42),
		}},
		{name: "float with an exponent", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Float64("tiny", 1e-7)}},
		{name: "huge float", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Float64("huge", -1e21)}},
		{name: "NaN", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Float64("nan", math.NaN())}},
		{name: "infinity", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Float64("inf", math.Inf(1))}},
		{name: "error value", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Any("error", errors.New("boom \"x\""))}},
		{name: "any value", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Any("list", []int{1, 2})}},
		{name: "time value", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Time("at", t0)}},
		{name: "group", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Group("g", "level", "x", "n", 1)}},
		{name: "empty group", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Group("g")}},
		{name: "log valuer", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Any("v", valuer{})}},
		{name: "empty attribute", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.String("a", "1"), {}, slog.String("b", "2")}},
		{name: "empty key", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.String("", "v")}},
		{name: "a level attribute", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.Any("level", slog.LevelWarn)}},
		{name: "a msg attribute", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.String("msg", "again")}},
		{name: "a time attribute", level: slog.LevelInfo, msg: "m", attrs: []slog.Attr{slog.String("time", "t"), slog.String("severity", "s")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := tt.time
			if when.IsZero() && !tt.noTime {
				when = t0
			}
			r := slog.NewRecord(when, tt.level, tt.msg, 0)
			r.AddAttrs(tt.attrs...)
			got, want := lineOf(t, newHandler, r), lineOf(t, jsonHandler, r)
			if got != want {
				t.Errorf("Handler wrote\n%s\nJSONHandler\n%s", got, want)
			}
		})
	}
}

func TestDerivedHandlersWriteWhatJSONHandlerWrites(t *testing.T) {
	var got, want bytes.Buffer
	for _, l := range []*slog.Logger{New(&got), slog.New(jsonHandler(&want))} {
		l.With("instance", "a").Info("with", "n", 1)
		l.WithGroup("g").Info("group", "n", 1)
	}
	strip := func(s string) string { // the times differ
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			delete(m, "time")
			b, _ := json.Marshal(m)
			out = append(out, string(b))
		}
		return strings.Join(out, "\n")
	}
	if g, w := strip(got.String()), strip(want.String()); g != w {
		t.Errorf("derived loggers wrote\n%s\nwant\n%s", g, w)
	}
}

func FuzzHandler(f *testing.F) {
	f.Add("request", "method", "GET", int64(200), 0.123, true)
	f.Add("q\"\\\n\x00\xff\u2028", "k\x7f", "\xe2\x80", int64(-1), -1e-7, false)
	f.Fuzz(func(t *testing.T, msg, key, value string, n int64, x float64, b bool) {
		r := slog.NewRecord(time.Unix(1765000000, 123), slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String(key+"s", value), slog.Int64(key+"n", n), slog.Float64(key+"x", x), slog.Bool(key+"b", b))
		if got, want := lineOf(t, newHandler, r), lineOf(t, jsonHandler, r); got != want {
			t.Errorf("Handler wrote\n%q\nJSONHandler\n%q", got, want)
		}
	})
}

// TestLinesStayWhole logs from many goroutines, on the fast path and
// through derived loggers, and checks that every line is whole.
func TestLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex // a writer that is not safe for concurrent use, but for the check
	w := writerFunc(func(p []byte) (int, error) {
		if !mu.TryLock() {
			t.Error("two Writes at once")
			return len(p), nil
		}
		defer mu.Unlock()
		return buf.Write(p)
	})
	l := New(w)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if i%2 == 0 {
					l.Info("fast", "i", i, "s", strings.Repeat("x", 100))
				} else {
					l.With("i", i).Info("derived", "any", []int{i})
				}
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 8*200 {
		t.Errorf("%d lines, want %d", len(lines), 8*200)
	}
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Fatalf("line %q is not JSON", line)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkRequestLine measures a request's log line: the Handler's, and
// the JSONHandler's it replaces.
//
//	go test -run '^$' -bench RequestLine -benchmem ./internal/cloudlog
func BenchmarkRequestLine(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("method", "GET"), slog.Int("status", 200), slog.String("outcome", "hit"),
		slog.Float64("latency_ms", 0.123), slog.String("source", "l1"), slog.String("client", "0123456789ab"),
	}
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"Handler", NewHandler(io.Discard)},
		{"JSONHandler", jsonHandler(io.Discard)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				r.AddAttrs(attrs...)
				bc.h.Handle(context.Background(), r)
			}
		})
	}
}
