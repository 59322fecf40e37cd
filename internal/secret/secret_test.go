package secret_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/secretmanagertest"
)

// newClient starts a fake Secret Manager and a Client pointed at it through
// NewClient's emulator path.
func newClient(t *testing.T) (*secretmanagertest.Server, *secret.Client) {
	t.Helper()
	srv := secretmanagertest.NewServerT(t)
	c, err := secret.NewClient(context.Background(), srv.Addr())
	if err != nil {
		t.Fatalf("NewClient(%q): %v", srv.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestMomentoKey(t *testing.T) {
	srv, c := newClient(t)
	srv.AddVersion("projects/p/secrets/json", []byte(`{"momento": "json-key", "other": "ignored"}`))
	srv.AddVersion("projects/p/secrets/bare", []byte("bare-key\n"))
	srv.AddVersion("projects/p/secrets/crlf", []byte("crlf-key\r\n"))
	srv.AddVersion("projects/p/secrets/rotated", []byte("old-key"))
	srv.AddVersion("projects/p/secrets/rotated", []byte(`{"momento":"new-key"}`))
	srv.AddVersionWithChecksum("projects/p/secrets/nosum", []byte("nosum-key"), nil)

	tests := []struct {
		name     string
		secret   string
		want     string
		wantSent string // the name the service was asked for
	}{
		{"JSON payload", "projects/p/secrets/json/versions/1", "json-key", "projects/p/secrets/json/versions/1"},
		{"bare payload with trailing newline", "projects/p/secrets/bare/versions/1", "bare-key", "projects/p/secrets/bare/versions/1"},
		{"bare payload with CRLF", "projects/p/secrets/crlf/versions/latest", "crlf-key", "projects/p/secrets/crlf/versions/latest"},
		{"explicit old version", "projects/p/secrets/rotated/versions/1", "old-key", "projects/p/secrets/rotated/versions/1"},
		{"explicit new version", "projects/p/secrets/rotated/versions/2", "new-key", "projects/p/secrets/rotated/versions/2"},
		{"latest", "projects/p/secrets/rotated/versions/latest", "new-key", "projects/p/secrets/rotated/versions/latest"},
		{"short name means latest", "projects/p/secrets/rotated", "new-key", "projects/p/secrets/rotated/versions/latest"},
		{"no checksum sent", "projects/p/secrets/nosum", "nosum-key", "projects/p/secrets/nosum/versions/latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Count()
			got, err := c.MomentoKey(context.Background(), tt.secret)
			if err != nil {
				t.Fatalf("MomentoKey(%q): %v", tt.secret, err)
			}
			if got.APIKey != tt.want || got.Endpoint != "" {
				t.Errorf("MomentoKey(%q) = %+v, want key %q and no endpoint", tt.secret, got, tt.want)
			}
			if diff := cmp.Diff([]string{tt.wantSent}, srv.Accesses()[before:]); diff != "" {
				t.Errorf("MomentoKey(%q) names sent mismatch (-want +got):\n%s", tt.secret, diff)
			}
		})
	}
}

func TestMomentoKeyStatus(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		fault  codes.Code
		want   codes.Code
	}{
		{"unknown secret", "projects/p/secrets/missing", codes.OK, codes.NotFound},
		{"unknown version", "projects/p/secrets/s/versions/9", codes.OK, codes.NotFound},
		{"unknown alias", "projects/p/secrets/s/versions/prod", codes.OK, codes.NotFound},
		{"permission denied", "projects/p/secrets/s", codes.PermissionDenied, codes.PermissionDenied},
		{"unavailable", "projects/p/secrets/s", codes.Unavailable, codes.Unavailable},
		{"resource exhausted", "projects/p/secrets/s", codes.ResourceExhausted, codes.ResourceExhausted},
		{"internal", "projects/p/secrets/s", codes.Internal, codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newClient(t)
			srv.AddVersion("projects/p/secrets/s", []byte("key"))
			srv.SetFault(secretmanagertest.Fault{Code: tt.fault})

			start := time.Now()
			_, err := c.MomentoKey(context.Background(), tt.secret)
			if got := status.Code(err); got != tt.want {
				t.Errorf("status.Code(MomentoKey(%q)) = %v, want %v (err: %v)", tt.secret, got, tt.want, err)
			}
			// One attempt, no retries, no backoff.
			if got := srv.Count(); got != 1 {
				t.Errorf("MomentoKey(%q) made %d calls, want 1", tt.secret, got)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("MomentoKey(%q) took %v, want no retry backoff", tt.secret, d)
			}
		})
	}
}

func TestMomentoKeyContext(t *testing.T) {
	srv, c := newClient(t)
	srv.AddVersion("projects/p/secrets/s", []byte("key"))
	srv.SetFault(secretmanagertest.Fault{Latency: time.Hour})

	// Each context is made when its case runs, so "during" really is
	// during the call.
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want codes.Code
	}{
		{"deadline during call", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, codes.DeadlineExceeded},
		{"canceled during call", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, codes.Canceled},
		{"canceled before call", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, codes.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.MomentoKey(ctx, "projects/p/secrets/s")
			if got := status.Code(err); got != tt.want {
				t.Errorf("status.Code(MomentoKey) = %v, want %v (err: %v)", got, tt.want, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("MomentoKey took %v after its context ended", d)
			}
		})
	}
}

func TestMomentoKeyChecksum(t *testing.T) {
	srv, c := newClient(t)
	bad := int64(12345)
	srv.AddVersionWithChecksum("projects/p/secrets/s", []byte("key"), &bad)
	tooBig := int64(1) << 40
	srv.AddVersionWithChecksum("projects/p/secrets/big", []byte("key"), &tooBig)

	for _, name := range []string{"projects/p/secrets/s", "projects/p/secrets/big/versions/1"} {
		if _, err := c.MomentoKey(context.Background(), name); !errors.Is(err, secret.ErrChecksum) {
			t.Errorf("MomentoKey(%q) with a wrong checksum = %v, want %v", name, err, secret.ErrChecksum)
		}
	}
}

func TestMomentoKeyPayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"JSON without momento", `{"key": "k"}`},
		{"JSON with momento and api_key", `{"momento": "k", "api_key": "k"}`},
		{"JSON api_key empty", `{"api_key": ""}`},
		{"JSON endpoint not a host", `{"api_key": "k", "endpoint": "https://cell.example.com/path"}`},
		{"JSON endpoint not a string", `{"api_key": "k", "endpoint": 443}`},
		{"JSON with empty momento", `{"momento": ""}`},
		{"JSON with blank momento", `{"momento": "  "}`},
		{"JSON momento not a string", `{"momento": 42}`},
		{"JSON momento null", `{"momento": null}`},
		{"malformed JSON", `{"momento": "k"`},
		{"empty", ""},
		{"only whitespace", " \n"},
		{"inner whitespace", "two words\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newClient(t)
			srv.AddVersion("projects/p/secrets/s", []byte(tt.payload))
			if _, err := c.MomentoKey(context.Background(), "projects/p/secrets/s"); !errors.Is(err, secret.ErrPayload) {
				t.Errorf("MomentoKey with payload %q = %v, want %v", tt.payload, err, secret.ErrPayload)
			}
		})
	}
}

func TestMomentoKeyInvalidName(t *testing.T) {
	srv, c := newClient(t)
	for _, name := range []string{"", "projects/p", "projects/p/secrets/s/versions/1/extra"} {
		if _, err := c.MomentoKey(context.Background(), name); err == nil {
			t.Errorf("MomentoKey(%q) succeeded, want an error", name)
		}
	}
	if got := srv.Count(); got != 0 {
		t.Errorf("Count() = %d after invalid names, want 0 (rejected before calling)", got)
	}
}

// TestErrorsNeverContainPayload checks every way MomentoKey can fail for a
// payload that holds a key: the error text must not contain the key or any
// distinctive part of the payload.
func TestErrorsNeverContainPayload(t *testing.T) {
	const key = "SECRETkey0123456789abcdef"
	bad := int64(7)
	tests := []struct {
		name    string
		payload string
		seed    func(srv *secretmanagertest.Server, payload []byte)
		fault   codes.Code
		secret  string
	}{
		{name: "checksum mismatch, bare", payload: key},
		{name: "checksum mismatch, JSON", payload: `{"momento": "` + key + `"}`},
		{name: "JSON without momento", payload: `{"apiKey": "` + key + `"}`},
		{name: "JSON momento not a string", payload: `{"momento": ["` + key + `"]}`},
		{name: "JSON momento number", payload: `{"momento": 1` + strings.Repeat("9", 30) + `}`},
		{name: "malformed JSON", payload: `{"momento": "` + key + `" "x"}`},
		{name: "JSON bad escape", payload: `{"momento": "` + key + `\q"}`},
		{name: "JSON inner whitespace", payload: `{"momento": "` + key + ` ` + key + `"}`},
		{name: "inner whitespace", payload: key + " " + key},
		{name: "control character", payload: key + "\x00" + key},
		{name: "invalid UTF-8", payload: key + "\xff"},
		{name: "not found", payload: key, secret: "projects/p/secrets/other"},
		{name: "permission denied", payload: key, fault: codes.PermissionDenied},
		{name: "unavailable", payload: key, fault: codes.Unavailable},
	}
	for i := range tests {
		if strings.HasPrefix(tests[i].name, "checksum") {
			tests[i].seed = func(srv *secretmanagertest.Server, p []byte) {
				srv.AddVersionWithChecksum("projects/p/secrets/s", p, &bad)
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newClient(t)
			if tt.seed != nil {
				tt.seed(srv, []byte(tt.payload))
			} else {
				srv.AddVersion("projects/p/secrets/s", []byte(tt.payload))
			}
			srv.SetFault(secretmanagertest.Fault{Code: tt.fault})
			name := tt.secret
			if name == "" {
				name = "projects/p/secrets/s"
			}
			got, err := c.MomentoKey(context.Background(), name)
			if err == nil {
				t.Fatalf("MomentoKey(%q) = %q, want an error", name, got)
			}
			if got != (secret.Key{}) {
				t.Errorf("MomentoKey(%q) returned %+v with its error, want the zero Key", name, got)
			}
			// Deliberately inspects error text: this is what would reach a log.
			for _, text := range errorTexts(err) {
				for _, s := range []string{key, "SECRET", "99999999"} {
					if strings.Contains(text, s) {
						t.Errorf("MomentoKey(%q) error text contains %q: %s", name, s, text)
					}
				}
			}
		})
	}
}

// errorTexts returns every rendering of err and of the errors it wraps.
func errorTexts(err error) []string {
	var out []string
	for len(out) < 100 && err != nil {
		out = append(out, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		if s, ok := status.FromError(err); ok {
			out = append(out, s.Message(), fmt.Sprint(s.Proto()))
		}
		err = errors.Unwrap(err)
	}
	return out
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		name         string
		payload      string
		want         string
		wantEndpoint string
		wantErr      error
	}{
		{"JSON", `{"momento":"k1"}`, "k1", "", nil},
		{"JSON api_key", `{"api_key":"k1"}`, "k1", "", nil},
		{"JSON api_key and endpoint", `{"api_key":"k1","endpoint":"cell-us-east-1-1.prod.a.momentohq.com"}`, "k1", "cell-us-east-1-1.prod.a.momentohq.com", nil},
		{"JSON endpoint as the docs show it", `{"api_key":"k1","endpoint":"https://api.cache.cell-1.example.com/"}`, "k1", "cell-1.example.com", nil},
		{"JSON momento and endpoint", `{"momento":"k1","endpoint":"cache.cell-1.example.com:443"}`, "k1", "cell-1.example.com", nil},
		{"JSON api_key case differs", `{"API_KEY":"k1"}`, "", "", secret.ErrPayload},
		{"JSON endpoint with a port", `{"api_key":"k1","endpoint":"cell-1.example.com:8443"}`, "", "", secret.ErrPayload},
		{"JSON with whitespace and newline", "{\n  \"momento\": \"k1\"\n}\n", "k1", "", nil},
		{"JSON with other members", `{"momento":"k1","cache":"pizza","n":1}`, "k1", "", nil},
		{"JSON key padded", `{"momento":" k1\n"}`, "k1", "", nil},
		{"bare", "k1", "k1", "", nil},
		{"bare with newline", "k1\n", "k1", "", nil},
		{"bare with CRLF", "k1\r\n", "k1", "", nil},
		{"bare with surrounding spaces", "\t k1 \n", "k1", "", nil},
		{"byte order mark", "\ufeffk1\n", "k1", "", nil},
		{"bare JWT-like", "eyJhbGciOi.eyJzdWIiOi.sig_-+/=", "eyJhbGciOi.eyJzdWIiOi.sig_-+/=", "", nil},
		{"empty", "", "", "", secret.ErrPayload},
		{"whitespace only", " \r\n\t", "", "", secret.ErrPayload},
		{"JSON empty object", `{}`, "", "", secret.ErrPayload},
		{"JSON momento case differs", `{"Momento":"k1"}`, "", "", secret.ErrPayload},
		{"JSON momento empty", `{"momento":""}`, "", "", secret.ErrPayload},
		{"JSON momento number", `{"momento":1}`, "", "", secret.ErrPayload},
		{"JSON momento object", `{"momento":{"key":"k1"}}`, "", "", secret.ErrPayload},
		{"JSON inner space", `{"momento":"k 1"}`, "", "", secret.ErrPayload},
		{"JSON array", `["k1"]`, "", "", secret.ErrPayload},
		{"JSON string", `"k1"`, "", "", secret.ErrPayload},
		{"malformed JSON", `{"momento":"k1"`, "", "", secret.ErrPayload},
		{"JSON trailing garbage", `{"momento":"k1"} x`, "", "", secret.ErrPayload},
		{"inner space", "k 1", "", "", secret.ErrPayload},
		{"inner newline", "k1\nk2", "", "", secret.ErrPayload},
		{"inner tab", "k1\tk2", "", "", secret.ErrPayload},
		{"control character", "k1\x00", "", "", secret.ErrPayload},
		{"invalid UTF-8", "k1\xff", "", "", secret.ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secret.ParsePayload([]byte(tt.payload))
			want := secret.Key{APIKey: tt.want, Endpoint: tt.wantEndpoint}
			if got != want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("ParsePayload(%q) = %+v, %v; want %+v, %v", tt.payload, got, err, want, tt.wantErr)
			}
		})
	}
}

func TestNewClientOptionsOverride(t *testing.T) {
	// With no emulator host, the caller's options alone point the client at
	// the fake (and, because they disable authentication, no credentials are
	// looked up).
	srv := secretmanagertest.NewServerT(t)
	srv.AddVersion("projects/p/secrets/s", []byte("key"))
	c, err := secret.NewClient(context.Background(), "", srv.ClientOptions()...)
	if err != nil {
		t.Fatalf("NewClient with ClientOptions: %v", err)
	}
	defer c.Close()
	if got, err := c.MomentoKey(context.Background(), "projects/p/secrets/s"); err != nil || got.APIKey != "key" {
		t.Errorf("MomentoKey = %+v, %v; want %q, nil", got, err, "key")
	}
}

func TestAccessCounting(t *testing.T) {
	srv, c := newClient(t)
	srv.AddVersion("projects/p/secrets/s", []byte("key"))
	ctx := context.Background()
	for range 3 {
		if _, err := c.MomentoKey(ctx, "projects/p/secrets/s"); err != nil {
			t.Fatal(err)
		}
	}
	c.MomentoKey(ctx, "projects/p/secrets/missing")
	want := []string{
		"projects/p/secrets/s/versions/latest",
		"projects/p/secrets/s/versions/latest",
		"projects/p/secrets/s/versions/latest",
		"projects/p/secrets/missing/versions/latest",
	}
	if diff := cmp.Diff(want, srv.Accesses()); diff != "" {
		t.Errorf("Accesses() mismatch (-want +got):\n%s", diff)
	}
	if got := srv.Count(); got != len(want) {
		t.Errorf("Count() = %d, want %d", got, len(want))
	}
}

func TestCloseTwice(t *testing.T) {
	_, c := newClient(t)
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if _, err := c.MomentoKey(context.Background(), "projects/p/secrets/s"); status.Code(err) != codes.Canceled {
		t.Errorf("MomentoKey after Close = %v, want code %v", err, codes.Canceled)
	}
}
