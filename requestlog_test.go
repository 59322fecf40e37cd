package tokenvendingmachine

import (
	"net/http"
	"strings"
	"testing"
)

func TestLogLineHoldsNoCallerText(t *testing.T) {
	hs := newHarness(t, nil)
	planted := "PLANTED" + strings.Repeat("x", 500_000)
	hs.do(planted, "203.0.113.7", nil)
	hs.do("get", "203.0.113.7", nil) // methods are case-sensitive: not GET
	hs.do(http.MethodPost, "203.0.113.7", nil)
	lines := hs.logLines(t, logRequest)
	if len(lines) != 3 {
		t.Fatalf("%d request lines, want 3", len(lines))
	}
	for i, want := range []string{"other", "other", "POST"} {
		if got := lines[i]["method"]; got != want {
			t.Errorf("request line %d method = %q, want %q", i, got, want)
		}
	}
	if logs := hs.logs.String(); strings.Contains(logs, "PLANTED") || len(logs) > 10_000 {
		t.Errorf("logs hold the caller's method text (%d bytes)", len(logs))
	}
}

func TestTraceID(t *testing.T) {
	tests := []struct{ header, want string }{
		{"105445aa7843bc8bf206b12000100000/1;o=1", "105445aa7843bc8bf206b12000100000"},
		{"105445AA7843BC8BF206B12000100000", "105445AA7843BC8BF206B12000100000"},
		{"", ""},
		{"not-a-trace", ""},
		{"105445aa7843bc8bf206b1200010000g/1", ""},
		{"105445aa7843bc8bf206b120001000001/1", ""},
	}
	for _, tt := range tests {
		if got := traceID(tt.header); got != tt.want {
			t.Errorf("traceID(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}
