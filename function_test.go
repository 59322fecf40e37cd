package tokenvendingmachine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// TestResponseSaysWhenToRefresh checks refresh_in: a point in the first
// half of the token's last 5 minutes, the same point in every answer that
// carries the token, from which a fetch gets the next token. With the
// emulator's short lifetimes the margin shrinks with TOKEN_TTL.
func TestResponseSaysWhenToRefresh(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		margin time.Duration
	}{
		{"deployed lifetimes", nil, 5 * time.Minute},
		{"12s tokens", map[string]string{"TOKEN_TTL": "12s"}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.env)
			first := hs.token(t, "203.0.113.7")
			exp := time.Unix(first.Exp, 0)
			at := hs.momento.Now().Add(time.Duration(first.RefreshIn * float64(time.Second)))
			if earliest, latest := exp.Add(-tt.margin), exp.Add(-tt.margin/2); at.Before(earliest) || at.After(latest) {
				t.Fatalf("refresh_in %v refreshes at %v, want from %v to %v (exp %v)", first.RefreshIn, at, earliest, latest, exp)
			}
			// Halfway there, the same token names the same point.
			half := time.Duration(first.RefreshIn*float64(time.Second)) / 2
			hs.momento.FastForward(half)
			again := hs.token(t, "203.0.113.7")
			if got := hs.momento.Now().Add(time.Duration(again.RefreshIn * float64(time.Second))); again.Token != first.Token || got.Sub(at).Abs() > time.Millisecond {
				t.Errorf("halfway, refresh at %v (same token %v), want %v", got, again.Token == first.Token, at)
			}
			// At that point the next fetch gets the next token.
			hs.momento.SetTime(at)
			next := hs.token(t, "203.0.113.7")
			if next.Token == first.Token || len(hs.momento.Mints()) != 2 {
				t.Errorf("a fetch at refresh_in got the same token (mints %d), want a new one", len(hs.momento.Mints()))
			}
			// Another caller's token names another point (in 150,000
			// milliseconds; the 500 of 12s tokens could coincide).
			other := hs.token(t, "198.51.100.23")
			if tt.margin >= time.Minute && other.RefreshIn == next.RefreshIn {
				t.Errorf("two tokens minted together refresh at the same moment, %v s", other.RefreshIn)
			}
		})
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
