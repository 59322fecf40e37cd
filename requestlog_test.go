package tokenvendingmachine

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/oidctest"
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

func TestRequestLogLine(t *testing.T) {
	hs := newHarness(t, nil)
	const trace = "105445aa7843bc8bf206b12000100000"
	hs.do(http.MethodGet, "203.0.113.7", http.Header{"X-Cloud-Trace-Context": {trace + "/1;o=1"}})
	hs.do(http.MethodGet, "203.0.113.7", http.Header{"X-Cloud-Trace-Context": {"not-a-trace"}})
	hs.momento.SetFault(momentotest.MethodMint, momentotest.Fault{Code: codes.Unavailable})
	hs.get("198.51.100.1")

	lines := hs.logLines(t, logRequest)
	if len(lines) != 3 {
		t.Fatalf("%d request lines, want 3", len(lines))
	}
	want := []map[string]any{
		{"severity": "INFO", "outcome": "mint", "source": "mint", "status": 200.0,
			"logging.googleapis.com/trace": "projects/test-project/traces/" + trace},
		{"severity": "INFO", "outcome": "hit", "source": "l1", "status": 200.0},
		{"severity": "ERROR", "outcome": "error", "status": 503.0},
	}
	for i, w := range want {
		got := map[string]any{}
		for k := range w {
			if v, ok := lines[i][k]; ok {
				got[k] = v
			}
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("request line %d (-want +got):\n%s", i, diff)
		}
		if _, ok := lines[i]["latency_ms"].(float64); !ok {
			t.Errorf("request line %d has no latency_ms", i)
		}
		if c, _ := lines[i]["client"].(string); len(c) != 12 {
			t.Errorf("request line %d client = %q, want a 12-digit hash", i, c)
		}
	}
	if _, ok := lines[1]["logging.googleapis.com/trace"]; ok {
		t.Errorf("a malformed trace header was logged")
	}
	if lines[0]["client"] != lines[1]["client"] || lines[0]["client"] == lines[2]["client"] {
		t.Errorf("client hashes do not follow the client")
	}
}

// An attacker tries this: make an error answer reveal what happened inside, or answer a
// status the table does not give.
func TestErrorsRevealNothing(t *testing.T) {
	const inside = "projects/p/secrets/momento 10.1.2.3:443 rpc error internal"
	tests := []struct {
		name   string
		env    map[string]string
		fault  momentotest.Fault
		method string
		want   int
		retry  string
	}{
		{"mint fails with internal text", nil, momentotest.Fault{Code: codes.Internal, Message: inside}, "", http.StatusServiceUnavailable, "5"},
		{"mint times out", map[string]string{"UPSTREAM_TIMEOUT": "50ms"}, momentotest.Fault{Latency: time.Second}, "", http.StatusServiceUnavailable, "5"},
		{"unknown method", nil, momentotest.Fault{}, "BREW", http.StatusMethodNotAllowed, ""},
		{"bad configuration", map[string]string{"CACHE_TTL": "2h"}, momentotest.Fault{}, "", http.StatusInternalServerError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.env)
			if tt.fault != (momentotest.Fault{}) {
				hs.momento.SetFault(momentotest.MethodMint, tt.fault)
			}
			w := hs.send(request{method: tt.method, ip: "203.0.113.7"})
			if w.Code != tt.want || w.Header().Get("Retry-After") != tt.retry {
				t.Errorf("status %d, Retry-After %q; want %d, %q", w.Code, w.Header().Get("Retry-After"), tt.want, tt.retry)
			}
			checkErrorBody(t, w)
			for _, s := range []string{"10.1.2.3", "internal", "2h", "CACHE_TTL", "BREW"} {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("body %s reveals %q", w.Body, s)
				}
			}
			if strings.Contains(hs.logs.String(), "BREW") {
				t.Errorf("the caller's method text reached the log")
			}
		})
	}
}

// A ticket's sub is the minted token's tokenId, and may be an email. When
// Momento refuses the mint with a message that quotes the request's
// token_id, the log line's error must not carry the sub.
func TestMintErrorDoesNotLogTheTicketSubject(t *testing.T) {
	const sub = "alice.smith@example.com"
	hs := newHarness(t, ticketEnv(map[string]string{"TOPICS": "none"}))
	hs.momento.SetFault(momentotest.MethodMint, momentotest.Fault{
		Code:    codes.InvalidArgument,
		Message: "invalid token_id " + sub,
	})
	w := hs.do(http.MethodGet, "203.0.113.7", withBearer(signTicket(t, ticketClaims(hs, sub, "order-42-*"))))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("mint refused: status %d, want 503", w.Code)
	}
	hs.secretsInLogs(t, sub)
}

// Attack (leak): a successful and a refused ticket whose sub is an email,
// and an ID token that carries an email claim: none reaches the logs.
func TestEmailsStayOutOfTheLogs(t *testing.T) {
	hs, issuer := oidcHarness(t, ticketEnv(nil))
	const email = "carol.jones@example.com"
	good := signTicket(t, ticketClaims(hs, email, "order-42-*"))
	bad := good[:len(good)-3] + "AAA"
	idt := idToken(t, issuer, "carol", oidctest.WithClaim("email", email))
	for _, raw := range []string{good, bad, idt} {
		hs.do(http.MethodGet, "203.0.113.7", withBearer(raw))
	}
	hs.secretsInLogs(t, email, good, bad, idt)
}
