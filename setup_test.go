package tokenvendingmachine

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/secretmanagertest"
	"example.com/tokenvendingmachine/internal/vending"
)

func TestSecretIsReadOncePerInstance(t *testing.T) {
	hs := newHarness(t, nil)
	hs.secrets.SetFault(secretmanagertest.Fault{Latency: 50 * time.Millisecond}) // so the first requests all wait on one setup
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := hs.get(fmt.Sprintf("192.0.2.%d", i)); w.Code != http.StatusOK {
				t.Errorf("concurrent first request: status %d, body %s", w.Code, w.Body)
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		hs.token(t, fmt.Sprintf("198.51.100.%d", i))
	}
	if n := hs.secrets.Count(); n != 1 {
		t.Errorf("secret accesses after 50 concurrent and 20 sequential requests = %d, want 1", n)
	}
	if n := len(hs.logLines(t, logInstanceReady)); n != 1 {
		t.Errorf("instance set up %d times, want 1", n)
	}
}

func TestSecretManagerFaults(t *testing.T) {
	tests := []struct {
		name       string
		code       codes.Code
		wantStatus int
	}{
		{"not found", codes.NotFound, http.StatusInternalServerError},
		{"permission denied", codes.PermissionDenied, http.StatusInternalServerError},
		{"unavailable", codes.Unavailable, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil)
			hs.secrets.SetFault(secretmanagertest.Fault{Code: tt.code})
			w := hs.get("203.0.113.7")
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			checkErrorBody(t, w)
			if tt.wantStatus == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			lines := hs.logLines(t, logSetupFailed)
			if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), tt.code.String()) {
				t.Errorf("setup failure log lines %v, want one naming %v", lines, tt.code)
			}

			hs.secrets.ClearFaults()
			// For a moment the failure is served as it is, without another
			// Secret Manager call; then setup is tried again.
			if w := hs.get("203.0.113.7"); w.Code != tt.wantStatus || hs.secrets.Count() != 1 {
				t.Errorf("right after the failure: status %d, %d secret accesses; want %d and 1", w.Code, hs.secrets.Count(), tt.wantStatus)
			}
			hs.momento.FastForward(setupRetryDelay)
			if w := hs.get("203.0.113.7"); w.Code != http.StatusOK {
				t.Errorf("after the fault cleared: status %d, want 200 without a restart", w.Code)
			}
		})
	}
}

// TestBadSecretPayload: a secret that holds no usable key is a
// misconfiguration, answered 500 (or 503 where a retry may help) and logged
// once, saying why, with nothing minted. A v2 key without an endpoint to
// use it with names MOMENTO_ENDPOINT: never a 503 that invites retries, and
// nothing is dialled. (From MOMENTO_API_KEY, config refuses it at startup.)
func TestBadSecretPayload(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		seed       func(hs *harness)
		wantStatus int
		wantLog    string
	}{
		{
			name:       "checksum mismatch", // corrupted on the way: worth a retry
			wantStatus: http.StatusServiceUnavailable,
			seed: func(hs *harness) {
				wrong := int64(12345)
				hs.secrets.AddVersionWithChecksum(secretID, []byte(hs.momento.APIKey()), &wrong)
			},
			wantLog: secret.ErrChecksum.Error(),
		},
		{
			name:       "JSON without momento",
			seed:       func(hs *harness) { hs.secrets.AddVersion(secretID, []byte(`{"key": "`+hs.momento.APIKey()+`"}`)) },
			wantStatus: http.StatusInternalServerError,
			wantLog:    secret.ErrPayload.Error(),
		},
		{
			name:       "not a Momento key",
			seed:       func(hs *harness) { hs.secrets.AddVersion(secretID, []byte("not-a-momento-key")) },
			wantStatus: http.StatusInternalServerError,
			wantLog:    vending.ErrBadKey.Error(),
		},
		{
			name:       "v2 key without endpoint",
			env:        map[string]string{"MOMENTO_EMULATOR_HOST": ""},
			seed:       func(*harness) {}, // the harness's own v2 key
			wantStatus: http.StatusInternalServerError,
			wantLog:    "set MOMENTO_ENDPOINT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.env)
			tt.seed(hs) // the newest version is "latest"
			w := hs.get("203.0.113.7")
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			checkErrorBody(t, w)
			lines := hs.logLines(t, logSetupFailed)
			if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), tt.wantLog) {
				t.Errorf("setup failure log lines %v, want one mentioning %q", lines, tt.wantLog)
			}
			if n := len(hs.momento.Mints()); n != 0 {
				t.Errorf("minted %d tokens with a bad key", n)
			}
		})
	}
}

func TestKeyFromEnvironment(t *testing.T) {
	for _, kind := range []string{"v1", "v2"} {
		t.Run(kind, func(t *testing.T) {
			hs := newHarnessFunc(t, func(hs *harness) map[string]string {
				key := hs.momento.APIKey()
				if kind == "v2" {
					key = hs.momento.APIKeyV2()
				}
				return map[string]string{"SECRET_ID": "", "SECRETMANAGER_EMULATOR_HOST": "", "MOMENTO_API_KEY": key}
			})
			hs.token(t, "203.0.113.7")
			if n := hs.secrets.Count(); n != 0 {
				t.Errorf("secret accesses = %d with MOMENTO_API_KEY set, want 0", n)
			}
		})
	}
}

// TestEndpointInSecret: a secret may hold a key and its endpoint together;
// the secret's endpoint wins over MOMENTO_ENDPOINT, which is logged.
func TestEndpointInSecret(t *testing.T) {
	hs := newHarness(t, map[string]string{"MOMENTO_ENDPOINT": "cell-old.example.com"})
	hs.secrets.AddVersion(secretID, []byte(`{"api_key": "`+hs.momento.APIKeyV2()+`", "endpoint": "https://api.cache.cell-new.example.com"}`))
	k, err := secret.ParsePayload([]byte(`{"api_key": "` + hs.momento.APIKeyV2() + `", "endpoint": "cell-new.example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	h := hs.h
	if got := h.endpointFor(k).Endpoint; got != "cell-new.example.com" {
		t.Errorf("endpoint = %q, want the secret's cell-new.example.com", got)
	}
	if got := h.endpointFor(secret.Key{APIKey: k.APIKey}).Endpoint; got != "cell-old.example.com" {
		t.Errorf("endpoint of a bare key = %q, want MOMENTO_ENDPOINT's cell-old.example.com", got)
	}
	// Through the function: the emulator stands in for either endpoint.
	hs.token(t, "203.0.113.7")
	if len(hs.logLines(t, "the secret names its own Momento endpoint; MOMENTO_ENDPOINT is ignored")) == 0 {
		t.Errorf("the disagreement between the secret and MOMENTO_ENDPOINT was not logged")
	}
}

func TestInvalidConfiguration(t *testing.T) {
	hs := newHarness(t, map[string]string{"CACHE_TTL": "58m"})
	w := hs.get("203.0.113.7")
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	checkErrorBody(t, w)
	lines := hs.logLines(t, logInvalidConfig)
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), "CACHE_TTL") {
		t.Errorf("configuration log lines %v, want one naming CACHE_TTL", lines)
	}
	if n := hs.secrets.Count(); n != 0 {
		t.Errorf("secret read %d times with an invalid configuration", n)
	}
}

func TestKeyRotationWithoutRedeploy(t *testing.T) {
	for _, tc := range []struct{ from, to string }{{"v2", "v2"}, {"v1", "v2"}, {"v2", "v1"}} {
		t.Run(tc.from+" to "+tc.to, func(t *testing.T) {
			testKeyRotation(t, tc.from, tc.to)
		})
	}
}

func testKeyRotation(t *testing.T, from, to string) {
	hs := newHarness(t, nil)
	key := func() string {
		if to == "v1" {
			return hs.momento.APIKey()
		}
		return hs.momento.APIKeyV2()
	}
	if from == "v1" {
		hs.secrets.AddVersion(secretID, []byte(hs.momento.APIKey()))
	}
	hs.token(t, "192.0.2.1")
	// The account's key is rotated: Momento accepts only the new one, which
	// is stored as the secret's new version.
	hs.momento.RotateAPIKey()
	hs.secrets.AddVersion(secretID, []byte(`{"momento": "`+key()+`"}`))

	tok := hs.token(t, "192.0.2.2")
	if n := hs.secrets.Count(); n != 2 {
		t.Errorf("secret accesses = %d, want 2 (setup, then one re-read)", n)
	}
	if m, ok := hs.momento.MintOf(tok.Token); !ok || m.Caller != "key-2" {
		t.Errorf("token minted by %q, want the new key-2", m.Caller)
	}
	hs.token(t, "192.0.2.3")
	if n := hs.secrets.Count(); n != 2 {
		t.Errorf("secret accesses = %d after another request, want still 2", n)
	}
	if len(hs.logLines(t, vending.LogKeyRejected)) != 1 {
		t.Errorf("rotation not logged once")
	}
}

func TestKeyRotationWhileSecretManagerIsDown(t *testing.T) {
	hs := newHarness(t, nil)
	hs.token(t, "192.0.2.1")
	newKey := hs.momento.RotateAPIKey()
	hs.secrets.SetFault(secretmanagertest.Fault{Code: codes.Unavailable})
	w := hs.get("192.0.2.2")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("key rejected while the secret cannot be read: status %d, want 503 with Retry-After", w.Code)
	}
	checkErrorBody(t, w)
	hs.secrets.ClearFaults()
	hs.secrets.AddVersion(secretID, []byte(newKey))
	hs.momento.FastForward(5 * time.Second)
	hs.token(t, "192.0.2.2")
}

func TestCallerGivesUpDuringSetup(t *testing.T) {
	hs := newHarness(t, nil)
	hs.secrets.SetFault(secretmanagertest.Fault{Latency: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	w := hs.send(request{ctx: ctx, ip: "203.0.113.7"})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("status %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
	}
	lines := hs.logLines(t, logRequest)
	if len(lines) != 1 || lines[0]["severity"] != "WARNING" || lines[0]["error"] == "instance setup failed" {
		t.Errorf("request line %v, want a WARNING that is not a setup failure", lines)
	}
	// The setup went on, and serves the next request.
	hs.token(t, "203.0.113.7")
	if n := hs.secrets.Count(); n != 1 {
		t.Errorf("secret accesses = %d, want 1", n)
	}
}

func TestWrongCacheName(t *testing.T) {
	hs := newHarness(t, map[string]string{"CACHE_NAME": "piza"})
	w := hs.get("203.0.113.7")
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, body %s; want 500 for a cache that does not exist", w.Code, w.Body)
	}
	checkErrorBody(t, w)
	if body := w.Body.String(); strings.Contains(body, "piza") || strings.Contains(body, "CACHE_NAME") {
		t.Errorf("body %s names the configuration", body)
	}
	lines := hs.logLines(t, logRequest)
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), vending.ErrNoCache.Error()) || !strings.Contains(fmt.Sprint(lines[0]["error"]), "piza") {
		t.Errorf("request line %v, want an error naming CACHE_NAME", lines)
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("minted %d tokens for a cache that does not exist", n)
	}
}
