package cloudlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		log   func(*slog.Logger)
		want  map[string]any
		empty bool
	}{
		{name: "info", log: func(l *slog.Logger) { l.Info("request", "status", 200) },
			want: map[string]any{"severity": "INFO", "message": "request", "status": 200.0}},
		{name: "warning", log: func(l *slog.Logger) { l.Warn("slow", TraceKey, "projects/p/traces/abc") },
			want: map[string]any{"severity": "WARNING", "message": "slow", TraceKey: "projects/p/traces/abc"}},
		{name: "error", log: func(l *slog.Logger) { l.Error("broken") },
			want: map[string]any{"severity": "ERROR", "message": "broken"}},
		{name: "group keeps its own keys", log: func(l *slog.Logger) { l.Info("m", slog.Group("g", "level", "x")) },
			want: map[string]any{"severity": "INFO", "message": "m", "g": map[string]any{"level": "x"}}},
		{name: "debug is dropped", log: func(l *slog.Logger) { l.Debug("noise") }, empty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf))
			if tt.empty {
				if buf.Len() != 0 {
					t.Fatalf("logged %q, want nothing", buf.String())
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("line %q is not JSON: %v", buf.String(), err)
			}
			if _, ok := got["time"]; !ok {
				t.Errorf("line has no time: %s", buf.String())
			}
			delete(got, "time")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("log line (-want +got):\n%s", diff)
			}
		})
	}
}
