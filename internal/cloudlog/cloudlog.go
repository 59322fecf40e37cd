// Package cloudlog writes structured logs in the shape Cloud Logging reads
// from a function's stdout: one JSON object per line, with "severity",
// "message" and "time", and any other attributes as fields.
//
//	log := cloudlog.New(os.Stdout)
//	log.Warn("Momento Get failed; treating it as a miss", "code", "Unavailable")
//
// prints
//
//	{"time":"...","severity":"WARNING","message":"Momento Get failed; treating it as a miss","code":"Unavailable"}
//
// A line costs what the function's busiest path can afford: see [Handler].
package cloudlog

import (
	"io"
	"log/slog"
)

// TraceKey is the field Cloud Logging reads a trace from, to show the line
// with the request's trace.
const TraceKey = "logging.googleapis.com/trace"

// New returns a logger that writes Cloud Logging's JSON to w, INFO and
// above, with a [Handler].
func New(w io.Writer) *slog.Logger {
	return slog.New(NewHandler(w))
}

// replace renames slog's level and message to Cloud Logging's severity and
// message.
func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		return slog.String("severity", severity(a.Value.Any().(slog.Level)))
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

// severity returns Cloud Logging's name for level.
func severity(level slog.Level) string {
	switch {
	case level >= slog.LevelError:
		return "ERROR"
	case level >= slog.LevelWarn:
		return "WARNING"
	case level >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}
