package tokenvendingmachine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/secretmanagertest"
	"example.com/tokenvendingmachine/internal/vending"
)

func TestFirstRequestMintsASubscribeOnlyToken(t *testing.T) {
	hs := newHarness(t, nil)
	w := hs.get("203.0.113.7")
	if w.Code != http.StatusOK {
		t.Fatalf("GET: status %d, body %s", w.Code, w.Body)
	}
	wantHeaders := map[string]string{
		"Content-Type":                "application/json",
		"Access-Control-Allow-Origin": "*",
		"Cache-Control":               "no-store",
	}
	for k, want := range wantHeaders {
		if got := w.Header().Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	body := decode(t, w)

	mints := hs.momento.Mints()
	if len(mints) != 1 {
		t.Fatalf("mints = %d, want 1", len(mints))
	}
	m := mints[0]
	wantScope := []momentotest.Grant{{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "*"}}
	if diff := cmp.Diff(wantScope, m.Grants); diff != "" {
		t.Errorf("minted scope (-want +got):\n%s", diff)
	}
	if m.ValidFor != time.Hour || m.SuperUser {
		t.Errorf("minted for %v (super user %v), want 1h, not super user", m.ValidFor, m.SuperUser)
	}
	if body.Token != m.Token || body.Exp != m.ValidUntil.Unix() {
		t.Errorf("response token/exp do not match the mint")
	}
	now := hs.momento.Now()
	if body.Exp != now.Add(time.Hour).Unix() || body.ExpiresIn != 3600 {
		t.Errorf("exp = %d, expires_in = %d; want %d and 3600 on the fake's clock", body.Exp, body.ExpiresIn, now.Add(time.Hour).Unix())
	}
	it, ok := hs.momento.Item("pizza", "203.0.113.7-token")
	if !ok || it.TTL != 55*time.Minute {
		t.Fatalf("cached item %+v, %v; want one under 203.0.113.7-token with TTL 55m", it, ok)
	}
	var cached struct {
		Token string `json:"token"`
		Exp   int64  `json:"exp"`
	}
	if err := json.Unmarshal(it.Value, &cached); err != nil || cached.Token != body.Token || cached.Exp != body.Exp {
		t.Errorf("cached value %s holds token/exp other than the response's", it.Value)
	}
	if n := hs.secrets.Count(); n != 1 {
		t.Errorf("secret accesses = %d, want 1", n)
	}
}

func TestRepeatRequestsGetTheSameToken(t *testing.T) {
	hs := newHarness(t, nil)
	first := hs.token(t, "203.0.113.7")
	hs.momento.FastForward(10 * time.Minute)
	again := hs.token(t, "203.0.113.7")
	if again.Token != first.Token || again.Exp != first.Exp {
		t.Errorf("second request got another token or exp")
	}
	if again.ExpiresIn != 50*60 {
		t.Errorf("expires_in 10 minutes later = %d, want %d", again.ExpiresIn, 50*60)
	}
	// Entries to the left of the one Google's front end appends are the
	// caller's to write: they do not change who the client is.
	spoofed := hs.do(http.MethodGet, "", http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.7"}})
	if got := decode(t, spoofed); got.Token != first.Token {
		t.Errorf("a spoofed leftmost X-Forwarded-For entry changed the client")
	}
	other := hs.token(t, "198.51.100.23")
	if other.Token == first.Token {
		t.Errorf("another IP got the same token")
	}
	if n := len(hs.momento.Mints()); n != 2 {
		t.Errorf("mints = %d, want 2 (one per IP)", n)
	}
}

func TestExpiredCacheEntryMintsANewToken(t *testing.T) {
	hs := newHarness(t, nil)
	first := hs.token(t, "203.0.113.7")
	hs.momento.FastForward(58 * time.Minute) // the entry expired at 55m
	second := hs.token(t, "203.0.113.7")
	if second.Token == first.Token {
		t.Fatalf("token cached 58 minutes ago was served again")
	}
	if n := len(hs.momento.Mints()); n != 2 {
		t.Errorf("mints = %d, want 2", n)
	}
	if want := hs.momento.Now().Add(time.Hour).Unix(); second.Exp != want || second.ExpiresIn != 3600 {
		t.Errorf("new token exp %d, expires_in %d; want %d, 3600", second.Exp, second.ExpiresIn, want)
	}
	// A token cached by another instance 58 minutes ago is not served
	// either, though its Momento entry is still alive.
	b, _ := json.Marshal(map[string]any{"token": "stale", "exp": hs.momento.Now().Add(2 * time.Minute).Unix()})
	hs.momento.SetItem("pizza", "192.0.2.9-token", b, time.Hour)
	if got := hs.token(t, "192.0.2.9"); got.Token == "stale" {
		t.Errorf("a cached token with 2 minutes left was served")
	}
}

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

func TestBadSecretPayload(t *testing.T) {
	tests := []struct {
		name       string
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil)
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

// TestV2KeyWithoutEndpoint: a v2 key read from Secret Manager with no
// endpoint to use it with is a misconfiguration, answered 500 and logged
// naming MOMENTO_ENDPOINT; never a 503 that invites retries, and nothing is
// dialled or minted. (From MOMENTO_API_KEY, config refuses it at startup.)
func TestV2KeyWithoutEndpoint(t *testing.T) {
	hs := newHarness(t, map[string]string{"MOMENTO_EMULATOR_HOST": ""})
	w := hs.get("203.0.113.7")
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	checkErrorBody(t, w)
	lines := hs.logLines(t, logSetupFailed)
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), "MOMENTO_ENDPOINT") {
		t.Errorf("setup failure log lines %v, want one naming MOMENTO_ENDPOINT", lines)
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("minted %d tokens", n)
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

func TestMintFailure(t *testing.T) {
	hs := newHarness(t, nil)
	hs.momento.SetFault(momentotest.MethodMint, momentotest.Fault{Code: codes.Unavailable})
	w := hs.get("203.0.113.7")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	checkErrorBody(t, w)
	if _, ok := hs.momento.Item("pizza", "203.0.113.7-token"); ok {
		t.Errorf("a token is cached after the mint failed")
	}
	hs.momento.ClearFaults()
	hs.token(t, "203.0.113.7")
}

func TestUpstreamFaultsStillServeTokens(t *testing.T) {
	tests := []struct {
		name   string
		method momentotest.Method
		fault  momentotest.Fault
	}{
		{"get fails", momentotest.MethodGet, momentotest.Fault{Code: codes.Internal}},
		{"get hangs", momentotest.MethodGet, momentotest.Fault{Latency: time.Minute}},
		{"set fails", momentotest.MethodSet, momentotest.Fault{Code: codes.Unavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, map[string]string{"UPSTREAM_TIMEOUT": "200ms"})
			hs.momento.SetFault(tt.method, tt.fault)
			hs.token(t, "203.0.113.7")
			if n := len(hs.momento.Mints()); n != 1 {
				t.Errorf("mints = %d, want 1", n)
			}
		})
	}
}

func TestMintedTokenCanOnlySubscribe(t *testing.T) {
	hs := newHarness(t, nil)
	tok := hs.token(t, "203.0.113.7")
	cp, err := hs.momento.CredentialProvider(tok.Token)
	if err != nil {
		t.Fatalf("the served token is not a Momento key: %v", err)
	}
	quiet := logger.NewNoopMomentoLoggerFactory()
	cache, err := momento.NewCacheClientWithEagerConnectTimeout(config.LaptopLatestWithLogger(quiet), cp, time.Minute, 5*time.Second)
	if err != nil {
		t.Fatalf("NewCacheClient: %v", err)
	}
	defer cache.Close()
	ctx := context.Background()
	_, err = cache.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("203.0.113.7-token")})
	if got := vending.StatusCode(err); got != codes.PermissionDenied {
		t.Errorf("Get with the served token: code %v (err %v), want PermissionDenied", got, err)
	}
	_, err = cache.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.String("v")})
	if got := vending.StatusCode(err); got != codes.PermissionDenied {
		t.Errorf("Set with the served token: code %v (err %v), want PermissionDenied", got, err)
	}
	topics, err := momento.NewTopicClient(config.TopicsDefaultWithLogger(quiet), cp)
	if err != nil {
		t.Fatalf("NewTopicClient: %v", err)
	}
	// Not closed: TopicClient.Close races with its own goroutine in SDK v1.38.0.
	subCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sub, err := topics.Subscribe(subCtx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "order-42"})
	if err != nil {
		t.Fatalf("Subscribe in the token's cache: %v", err)
	}
	defer sub.Close()
	if _, err := topics.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "order-42", Value: momento.String("x")}); vending.StatusCode(err) != codes.PermissionDenied {
		t.Errorf("Publish with the served token: err %v, want PermissionDenied", err)
	}
	if _, err := topics.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "other", TopicName: "order-42"}); vending.StatusCode(err) != codes.PermissionDenied {
		t.Errorf("Subscribe in another cache: err %v, want PermissionDenied", err)
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

func TestPreflight(t *testing.T) {
	hs := newHarness(t, nil)
	w := hs.do(http.MethodOptions, "203.0.113.7", http.Header{
		"Origin":                         {"https://shop.example.com"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"x-request-id, content-type"},
	})
	if w.Code != http.StatusNoContent {
		t.Fatalf("preflight status %d, want 204", w.Code)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
		"Access-Control-Allow-Headers": "x-request-id, content-type",
		"Access-Control-Max-Age":       "7200",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("preflight header %s = %q, want %q", k, got, v)
		}
	}
	if got := w.Header().Values("Vary"); !slices.Contains(got, "Access-Control-Request-Headers") {
		t.Errorf("preflight Vary = %q, want Access-Control-Request-Headers in it", got)
	}
	// A header list that is not a list of names is not echoed.
	w = hs.do(http.MethodOptions, "203.0.113.7", http.Header{
		"Origin":                         {"https://shop.example.com"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"x-ok, bad header\r"},
	})
	if got := w.Header().Get("Access-Control-Allow-Headers"); got != "" {
		t.Errorf("preflight echoed a malformed header list: %q", got)
	}
	if n := len(hs.momento.Mints()) + hs.secrets.Count(); n != 0 {
		t.Errorf("preflights minted or read the secret (%d)", n)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	hs := newHarness(t, nil)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w := hs.do(method, "203.0.113.7", nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("%s: status %d, Allow %q; want 405 with Allow: GET, HEAD, OPTIONS", method, w.Code, w.Header().Get("Allow"))
		}
		checkErrorBody(t, w)
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("refused methods minted %d tokens", n)
	}
	w := hs.do(http.MethodHead, "203.0.113.7", nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: status %d, Content-Type %q; want 200 application/json", w.Code, w.Header().Get("Content-Type"))
	}
}

func TestAllowedOrigins(t *testing.T) {
	hs := newHarness(t, map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com, http://localhost:8081"})
	tests := []struct {
		name       string
		method     string
		origin     string
		wantStatus int
		wantACAO   string
	}{
		{"allowed origin", http.MethodGet, "https://shop.example.com", http.StatusOK, "https://shop.example.com"},
		{"allowed origin, other case", http.MethodGet, "https://SHOP.example.com", http.StatusOK, "https://SHOP.example.com"},
		{"second allowed origin", http.MethodGet, "http://localhost:8081", http.StatusOK, "http://localhost:8081"},
		{"disallowed origin", http.MethodGet, "https://evil.example", http.StatusForbidden, ""},
		{"lookalike origin", http.MethodGet, "https://shop.example.com.evil.example", http.StatusForbidden, ""},
		{"null origin", http.MethodGet, "null", http.StatusForbidden, ""},
		{"no origin: not a CORS request", http.MethodGet, "", http.StatusOK, ""},
		{"preflight from a disallowed origin", http.MethodOptions, "https://evil.example", http.StatusForbidden, ""},
		{"preflight from an allowed origin", http.MethodOptions, "https://shop.example.com", http.StatusNoContent, "https://shop.example.com"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := fmt.Sprintf("192.0.2.%d", i+1)
			header := http.Header{"Access-Control-Request-Method": {"GET"}}
			if tt.origin != "" {
				header.Set("Origin", tt.origin)
			}
			before := len(hs.momento.Mints())
			w := hs.do(tt.method, ip, header)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantACAO)
			}
			if got := w.Header().Get("Vary"); !strings.Contains(got, "Origin") {
				t.Errorf("Vary = %q, want it to name Origin", got)
			}
			minted := len(hs.momento.Mints()) - before
			if wantMint := tt.wantStatus == http.StatusOK && tt.method == http.MethodGet; (minted == 1) != wantMint {
				t.Errorf("minted %d tokens, want a mint: %v", minted, wantMint)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	hs := newHarness(t, map[string]string{"TRUSTED_PROXIES": "2"})
	// Behind a load balancer: the client's address is second from the right.
	w := hs.do(http.MethodGet, "", http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.9, 35.191.0.1"}})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if _, ok := hs.momento.Item("pizza", "198.51.100.9-token"); !ok {
		t.Errorf("token not cached under the client's address; keys %v", hs.momento.Keys("pizza"))
	}
	// One IPv6 /64 is one client.
	a := decode(t, hs.do(http.MethodGet, "", http.Header{"X-Forwarded-For": {"2001:db8:1:2::aaaa, 35.191.0.1"}}))
	b := decode(t, hs.do(http.MethodGet, "", http.Header{"X-Forwarded-For": {"2001:db8:1:2:ffff::1, 35.191.0.1"}}))
	c := decode(t, hs.do(http.MethodGet, "", http.Header{"X-Forwarded-For": {"2001:db8:1:3::1, 35.191.0.1"}}))
	if a.Token != b.Token || a.Token == c.Token {
		t.Errorf("IPv6 grouping: same /64 same token %v, other /64 other token %v", a.Token == b.Token, a.Token != c.Token)
	}
	// A junk entry is never a key: the connection's address is used, and
	// the fallback is logged without the header's text.
	w = hs.do(http.MethodGet, "", http.Header{"X-Forwarded-For": {"1.2.3.4, unknown-proxy-entry, 35.191.0.1"}})
	if w.Code != http.StatusOK {
		t.Fatalf("junk header: status %d", w.Code)
	}
	if _, ok := hs.momento.Item("pizza", "169.254.1.1-token"); !ok {
		t.Errorf("junk header: token not keyed by the connection's address; keys %v", hs.momento.Keys("pizza"))
	}
	// The request's own line says so; no line is added per request.
	lines := hs.logLines(t, logRequest)
	if last := lines[len(lines)-1]; last["forwarded_for"] == nil {
		t.Errorf("request line %v does not say the X-Forwarded-For entry was junk", last)
	}
	if strings.Contains(hs.logs.String(), "unknown-proxy-entry") {
		t.Errorf("logs quote the junk header")
	}
	for _, k := range hs.momento.Keys("pizza") {
		if k == "6.6.6.6-token" || k == "35.191.0.1-token" || strings.Contains(k, "unknown") {
			t.Errorf("cached under a key the caller or proxy chose: %q", k)
		}
	}
}

func TestExpiresInFollowsTheClock(t *testing.T) {
	hs := newHarness(t, nil)
	first := hs.token(t, "203.0.113.7")
	for _, d := range []time.Duration{time.Minute, 20 * time.Minute, 33*time.Minute + 59*time.Second} {
		hs.momento.FastForward(d)
		got := hs.token(t, "203.0.113.7")
		if got.Exp != first.Exp {
			t.Fatalf("exp changed from %d to %d for a cached token", first.Exp, got.Exp)
		}
		if want := got.Exp - hs.momento.Now().Unix(); got.ExpiresIn != want {
			t.Errorf("expires_in = %d, want exp - now = %d", got.ExpiresIn, want)
		}
		if got.ExpiresIn < 300 {
			t.Errorf("served a token with %ds left, less than the 5 minute margin", got.ExpiresIn)
		}
	}
}

func TestConcurrentRequestsFromOneIPMintOnce(t *testing.T) {
	hs := newHarness(t, nil)
	hs.momento.SetLatency(10 * time.Millisecond) // so the requests overlap
	var wg sync.WaitGroup
	tokens := make(chan string, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := hs.get("203.0.113.7")
			if w.Code != http.StatusOK {
				t.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
			var r response
			json.Unmarshal(w.Body.Bytes(), &r)
			tokens <- r.Token
		}()
	}
	wg.Wait()
	close(tokens)
	distinct := map[string]bool{}
	for tok := range tokens {
		distinct[tok] = true
	}
	if n := len(hs.momento.Mints()); n != 1 || len(distinct) != 1 {
		t.Errorf("200 concurrent requests from one IP: %d mints, %d distinct tokens; want 1 and 1", n, len(distinct))
	}
}

func TestManyIPsMintOncePerIP(t *testing.T) {
	hs := newHarness(t, map[string]string{"MINT_BURST": "1000"})
	const requests, ips, workers = 2000, 100, 64
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if w := hs.get(fmt.Sprintf("10.1.%d.%d", i%ips/250, i%ips%250)); w.Code != http.StatusOK {
					t.Errorf("status %d: %s", w.Code, w.Body)
				}
			}
		}()
	}
	for i := range requests {
		work <- i
	}
	close(work)
	wg.Wait()
	if n := len(hs.momento.Mints()); n != ips {
		t.Errorf("%d requests over %d IPs minted %d tokens, want %d", requests, ips, n, ips)
	}
}

func TestMintRateLimit(t *testing.T) {
	// Three mints per 100 s window; the clock stands on a window's start.
	hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": "6", "FLEET_MINT_RATE": "0.03"})
	cached := hs.token(t, "192.0.2.1")
	hs.token(t, "198.51.100.2")
	hs.token(t, "203.0.113.3")
	for i := 4; i <= 6; i++ {
		w := hs.get(fmt.Sprintf("192.0.2.%d", i))
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("new IP beyond the window's budget: status %d, want 429", w.Code)
		}
		if got := w.Header().Get("Retry-After"); got != "100" {
			t.Errorf("429 Retry-After = %q, want 100 (the next window)", got)
		}
		checkErrorBody(t, w)
		if got := hs.token(t, "192.0.2.1"); got.Token != cached.Token {
			t.Errorf("cached IP got another token while limited")
		}
	}
	if n := len(hs.momento.Mints()); n != 3 {
		t.Errorf("mints = %d, want 3", n)
	}
	limited := 0
	for _, l := range hs.logLines(t, logRequest) {
		if l["outcome"] == "limited" {
			limited++
		}
	}
	if limited != 3 {
		t.Errorf("%d request lines with outcome limited, want 3", limited)
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

func TestRequestsThatMintNothing(t *testing.T) {
	hs := newHarness(t, nil)
	for _, path := range []string{"/favicon.ico", "/robots.txt"} {
		w := hs.send(request{path: path, ip: "203.0.113.7"})
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, w.Code)
		}
	}
	// No X-Forwarded-For and a connection address that is not an IP: the
	// client cannot be told apart from any other, so it gets nothing.
	w := hs.send(request{remote: "@"})
	if w.Code != http.StatusBadRequest {
		t.Errorf("unidentifiable client: status %d, want 400", w.Code)
	}
	checkErrorBody(t, w)
	if n := len(hs.momento.Mints()) + hs.secrets.Count(); n != 0 {
		t.Errorf("these requests minted or read the secret (%d)", n)
	}
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
