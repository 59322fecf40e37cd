package idtoken_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/oidctest"
)

func TestNewFetches(t *testing.T) {
	tests := []struct {
		name          string
		useJWKSURL    bool
		wantDiscovery int
	}{
		{name: "discovery", wantDiscovery: 1},
		{name: "JWKS URL given", useJWKSURL: true, wantDiscovery: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := oidctest.NewServerT(t, oidctest.Options{})
			opts := idtoken.Options{Issuer: iss.Issuer(), Audience: iss.Audience()}
			if tc.useJWKSURL {
				opts.JWKSURL = iss.JWKSURL()
			}
			v, err := idtoken.New(context.Background(), opts)
			if err != nil {
				t.Fatalf("New() = %v", err)
			}
			if got := iss.Count(oidctest.EndpointDiscovery); got != tc.wantDiscovery {
				t.Errorf("discovery fetched %d times, want %d", got, tc.wantDiscovery)
			}
			if got := iss.Count(oidctest.EndpointJWKS); got != 1 {
				t.Errorf("JWKS fetched %d times, want 1", got)
			}
			tok, err := iss.IDToken("alice")
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Fatalf("Verify() = %v", err)
				}
			}
			if got := iss.Count(oidctest.EndpointJWKS); got != 1 {
				t.Errorf("after Verify, JWKS fetched %d times, want 1", got)
			}
		})
	}
}

func TestNewFails(t *testing.T) {
	iss := oidctest.NewServerT(t, oidctest.Options{})
	down := oidctest.NewServerT(t, oidctest.Options{})
	down.Close()
	tests := []struct {
		name string
		opts idtoken.Options
	}{
		{name: "no issuer", opts: idtoken.Options{Audience: "a"}},
		{name: "no audience", opts: idtoken.Options{Issuer: iss.Issuer()}},
		{name: "no discovery document", opts: idtoken.Options{Issuer: iss.Issuer() + "/elsewhere", Audience: "a"}},
		{name: "discovery names another issuer", opts: idtoken.Options{Issuer: iss.Issuer() + "/", Audience: "a"}},
		{name: "issuer down", opts: idtoken.Options{Issuer: down.Issuer(), Audience: "a"}},
		{name: "key set down", opts: idtoken.Options{Issuer: iss.Issuer(), Audience: "a", JWKSURL: down.JWKSURL()}},
		{name: "key set URL not a key set", opts: idtoken.Options{Issuer: iss.Issuer(), Audience: "a", JWKSURL: iss.Issuer() + string(oidctest.EndpointDiscovery)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := idtoken.New(context.Background(), tc.opts)
			if err == nil {
				t.Fatalf("New() = %v, nil; want an error", v)
			}
		})
	}
}

func TestRefetchBudget(t *testing.T) {
	const interval = time.Minute
	e := newEnv(t, oidctest.Options{}, func(o *idtoken.Options) { o.RefetchInterval = interval })
	jwks := func() int { return e.issuer.Count(oidctest.EndpointJWKS) }
	forge := func(round int) {
		t.Helper()
		for i := range 5 {
			tok := e.token(t, "alice", oidctest.WithKeyID(fmt.Sprintf("forged-%d-%d", round, i)))
			if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, idtoken.ErrUnknownKey) {
				t.Fatalf("Verify(forged kid) = %v, want %v", err, idtoken.ErrUnknownKey)
			}
		}
	}
	if got := jwks(); got != 1 {
		t.Fatalf("after New, JWKS fetched %d times, want 1", got)
	}

	forge(1)
	if got := jwks(); got != 1 {
		t.Errorf("five forged kids within the interval of New's fetch: JWKS fetched %d times, want 1", got)
	}

	e.clk.Advance(interval)
	forge(2)
	if got := jwks(); got != 2 {
		t.Errorf("five forged kids after the interval: JWKS fetched %d times, want 2", got)
	}

	// A real rotation within the interval waits for the next one.
	old := e.token(t, "alice")
	if err := e.issuer.RotateKey(); err != nil {
		t.Fatal(err)
	}
	rotated := e.token(t, "alice")
	if _, err := e.v.Verify(context.Background(), rotated); !errors.Is(err, idtoken.ErrUnknownKey) {
		t.Errorf("Verify(new key) within the interval = %v, want %v", err, idtoken.ErrUnknownKey)
	}
	if got := jwks(); got != 2 {
		t.Errorf("new key within the interval: JWKS fetched %d times, want 2", got)
	}
	e.clk.Advance(interval)
	if _, err := e.v.Verify(context.Background(), rotated); err != nil {
		t.Errorf("Verify(new key) after the interval = %v, want nil", err)
	}
	if got := jwks(); got != 3 {
		t.Errorf("new key after the interval: JWKS fetched %d times, want 3", got)
	}
	// The old key is gone from the set: its tokens now fail, without a fetch.
	if _, err := e.v.Verify(context.Background(), old); !errors.Is(err, idtoken.ErrUnknownKey) {
		t.Errorf("Verify(old key) after the rotation = %v, want %v", err, idtoken.ErrUnknownKey)
	}
	if got, want := e.v.Stats().KeyFetches, int64(3); got != want {
		t.Errorf("Stats().KeyFetches = %d, want %d", got, want)
	}
}

func TestRefetchBudgetConcurrent(t *testing.T) {
	const interval = time.Minute
	e := newEnv(t, oidctest.Options{}, func(o *idtoken.Options) { o.RefetchInterval = interval })
	if err := e.issuer.RotateKey(); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(interval)
	toks := make([]string, 20)
	for i := range toks {
		if i%2 == 0 {
			toks[i] = e.token(t, "alice", oidctest.WithKeyID(fmt.Sprintf("forged-%d", i)))
		} else {
			toks[i] = e.token(t, fmt.Sprintf("user-%d", i))
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(toks))
	for i, tok := range toks {
		wg.Go(func() { _, errs[i] = e.v.Verify(context.Background(), tok) })
	}
	wg.Wait()
	if got := e.issuer.Count(oidctest.EndpointJWKS); got != 2 {
		t.Errorf("20 concurrent unknown kids: JWKS fetched %d times, want 2", got)
	}
	for i, err := range errs {
		want := error(nil)
		if i%2 == 0 {
			want = idtoken.ErrUnknownKey
		}
		if !errors.Is(err, want) {
			t.Errorf("Verify(token %d) = %v, want %v", i, err, want)
		}
	}
}

// A key set that fails to fetch keeps the keys it had, and the failed fetch
// counts against the budget.
func TestRefetchFailureKeepsKeys(t *testing.T) {
	const interval = time.Minute
	clk := newClock()
	iss := oidctest.NewServerT(t, oidctest.Options{Now: clk.Now})
	fails := &flaky{next: http.DefaultTransport}
	v, err := idtoken.New(context.Background(), idtoken.Options{
		Issuer: iss.Issuer(), Audience: iss.Audience(), JWKSURL: iss.JWKSURL(),
		Now: clk.Now, RefetchInterval: interval, HTTPClient: &http.Client{Transport: fails},
	})
	if err != nil {
		t.Fatal(err)
	}
	good, err := iss.IDToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := iss.IDToken("alice", oidctest.WithKeyID("forged"))
	if err != nil {
		t.Fatal(err)
	}
	fails.set(true)
	clk.Advance(interval)
	for range 3 {
		if _, err := v.Verify(context.Background(), forged); !errors.Is(err, idtoken.ErrUnknownKey) {
			t.Errorf("Verify(forged) with the key set down = %v, want %v", err, idtoken.ErrUnknownKey)
		}
	}
	if got := fails.count(); got != 2 {
		t.Errorf("requests to the key set = %d, want 2 (New's and one refetch)", got)
	}
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Errorf("Verify(good) after a failed refetch = %v, want nil", err)
	}
}

// flaky is a RoundTripper that counts requests and fails them when told.
type flaky struct {
	next http.RoundTripper
	mu   sync.Mutex
	fail bool
	n    int
}

func (f *flaky) set(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return nil, errors.New("flaky: injected failure")
	}
	return f.next.RoundTrip(r)
}

// TestEveryVerifyChecks: the Verifier remembers nothing; a repeat of a token
// is verified again, and refused once it has expired.
func TestEveryVerifyChecks(t *testing.T) {
	e := newEnv(t, oidctest.Options{Lifetime: time.Hour}, nil)
	ctx := context.Background()
	tok := e.token(t, "alice")
	first, err := e.v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	before := e.v.Stats()
	e.clk.Advance(time.Hour) // exactly exp: still valid
	again, err := e.v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("repeat Verify() = %v", err)
	}
	if again != first {
		t.Errorf("repeat Verify() = %+v, want %+v", again, first)
	}
	if n := e.v.Stats().SignatureChecks - before.SignatureChecks; n != 1 {
		t.Errorf("repeat Verify() ran %d signature checks, want 1", n)
	}
	e.clk.Advance(time.Second)
	if _, err := e.v.Verify(ctx, tok); !errors.Is(err, idtoken.ErrExpired) {
		t.Errorf("Verify() after exp = %v, want %v", err, idtoken.ErrExpired)
	}
}

// TestKeySetRefreshedWhenOld: the key set is fetched again once it is older
// than KeysMaxAge, by the first request after that, so that a key the
// issuer removed stops verifying, and KeyCurrent says so.
func TestKeySetRefreshedWhenOld(t *testing.T) {
	e := newEnv(t, oidctest.Options{Lifetime: time.Hour}, nil)
	ctx := context.Background()
	tok := e.token(t, "alice")
	id, err := e.v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if err := e.issuer.RotateKey(); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(idtoken.DefaultKeysMaxAge - time.Second)
	if !e.v.KeyCurrent(ctx, id.KeyID) {
		t.Errorf("KeyCurrent before the keys are old = false, want true (no fetch yet)")
	}
	if n := e.issuer.Count(oidctest.EndpointJWKS); n != 1 {
		t.Errorf("key set fetched %d times before it was old, want 1", n)
	}
	e.clk.Advance(time.Second)
	if e.v.KeyCurrent(ctx, id.KeyID) {
		t.Errorf("KeyCurrent after the issuer removed the key and the set grew old = true, want false")
	}
	if n := e.issuer.Count(oidctest.EndpointJWKS); n != 2 {
		t.Errorf("key set fetched %d times, want 2", n)
	}
	if _, err := e.v.Verify(ctx, tok); !errors.Is(err, idtoken.ErrUnknownKey) {
		t.Errorf("Verify() with the removed key = %v, want %v", err, idtoken.ErrUnknownKey)
	}
	if id2, err := e.v.Verify(ctx, e.token(t, "alice")); err != nil || !e.v.KeyCurrent(ctx, id2.KeyID) {
		t.Errorf("a token signed with the new key: %v, key current %v; want accepted", err, e.v.KeyCurrent(ctx, id2.KeyID))
	}
}
