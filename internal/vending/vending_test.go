package vending

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/clientip"
	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/logbuf"
	"example.com/tokenvendingmachine/internal/lru"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/scope"
)

// env is a Vendor wired to a fake Momento through the real SDK clients.
type env struct {
	fake *momentotest.Server
	v    *Vendor
	logs *logbuf.Buffer
}

// newFake starts a fake Momento whose clock stands still unless the test
// moves it.
func newFake(t *testing.T) *momentotest.Server {
	t.Helper()
	fake := momentotest.NewServerT(t, "pizza")
	fake.SetTime(time.Date(2026, 11, 28, 12, 0, 0, 250e6, time.UTC))
	return fake
}

func testOptions(fake *momentotest.Server) Options {
	return Options{
		CacheName:    "pizza",
		TokenTTL:     time.Hour,
		CacheTTL:     55 * time.Minute,
		Margin:       5 * time.Minute,
		CallTimeout:  2 * time.Second,
		MintRate:     1000,
		MintBurst:    1000,
		L1MaxEntries: 1000,
		L1MaxBytes:   1 << 20,
		Now:          fake.Now,
		Label:        func(key string) string { return "h(" + strings.ReplaceAll(key, ".", "_") + ")" },
	}
}

// newVendor starts a Vendor on fake; modify adjusts its options.
func newVendor(t *testing.T, fake *momentotest.Server, modify func(*Options)) *env {
	t.Helper()
	logs := &logbuf.Buffer{}
	opts := testOptions(fake)
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if modify != nil {
		modify(&opts)
	}
	clients, err := Connect(context.Background(), Credentials{APIKey: fake.APIKey()}, ConnectOptions{EmulatorHost: fake.Addr(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	v, err := New(clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return &env{fake: fake, v: v, logs: logs}
}

// anon is the caller for an anonymous client key, with every topic.
func anon(key string) Caller { return Caller{Key: key, Scope: scope.All()} }

// clientOf returns the client an address names, as internal/clientip
// resolves it for a Caller.
func clientOf(addr string) netip.Prefix { return clientip.Resolve(nil, addr, 1).Client }

func (e *env) token(t *testing.T, key string) Token {
	t.Helper()
	tok, err := e.v.Token(context.Background(), anon(key))
	if err != nil {
		t.Fatalf("Token(%q): %v", key, err)
	}
	return tok
}

func TestMintThenL1ThenMomento(t *testing.T) {
	fake := newFake(t)
	a := newVendor(t, fake, nil)

	first := a.token(t, "203.0.113.7")
	if first.Source != Minted {
		t.Fatalf("first Token source = %v, want mint", first.Source)
	}
	if got := fake.Count(momentotest.MethodGet) + fake.Count(momentotest.MethodMint) + fake.Count(momentotest.MethodSet); got != 3 {
		t.Errorf("Momento calls for a mint = %d, want 3 (Get, mint, Set)", got)
	}
	mints := fake.Mints()
	if len(mints) != 1 {
		t.Fatalf("mints = %d, want 1", len(mints))
	}
	wantScope := []momentotest.Grant{{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "*"}}
	if diff := cmp.Diff(wantScope, mints[0].Grants); diff != "" || mints[0].ValidFor != time.Hour {
		t.Errorf("minted scope (-want +got):\n%s\nvalid for %v, want 1h", diff, mints[0].ValidFor)
	}
	if mints[0].Token != first.Value || !mints[0].ValidUntil.Equal(first.Expires) {
		t.Errorf("Token = %+v, does not match the mint %+v", first, mints[0])
	}
	it, ok := fake.Item("pizza", "203.0.113.7-token")
	if !ok || it.TTL != 55*time.Minute {
		t.Fatalf("cached item = %+v, %v; want one with TTL 55m", it, ok)
	}
	var stored item
	if err := json.Unmarshal(it.Value, &stored); err != nil || stored.Token != first.Value || stored.Exp != first.Expires.Unix() {
		t.Errorf("cached value %s (err %v) does not hold the token and exp", it.Value, err)
	}

	fake.ResetCounts()
	again := a.token(t, "203.0.113.7")
	if again.Source != FromL1 || again.Value != first.Value || !again.Expires.Equal(first.Expires) || again.Spread != first.Spread {
		t.Errorf("repeat Token = %v %v spread %v, want the same token from l1", again.Source, again.Expires, again.Spread)
	}
	if n := fake.TotalCount(); n != 0 {
		t.Errorf("Momento calls on an L1 hit = %d, want 0", n)
	}

	// Another instance finds the token in Momento with one Get.
	b := newVendor(t, fake, nil)
	other := b.token(t, "203.0.113.7")
	if other.Source != FromMomento || other.Value != first.Value || other.Spread != first.Spread {
		t.Errorf("other instance Token source = %v, spread %v; want the same token from momento, spread %v", other.Source, other.Spread, first.Spread)
	}
	if n, gets := fake.TotalCount(), fake.Count(momentotest.MethodGet); n != 1 || gets != 1 {
		t.Errorf("Momento calls on a Momento hit = %d (Gets %d), want 1 Get", n, gets)
	}
	if first.Spread < 0 || first.Spread >= 1 || first.Spread == a.token(t, "198.51.100.1").Spread {
		t.Errorf("spread %v: want in [0, 1), and another token's to differ", first.Spread)
	}

	if diff := a.token(t, "198.51.100.1"); diff.Value == first.Value {
		t.Errorf("another client got the same token")
	}
}

func TestExpiry(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, nil)
	first := e.token(t, "203.0.113.7")

	fake.FastForward(55*time.Minute - time.Second)
	if got := e.token(t, "203.0.113.7"); got.Source != FromL1 || got.Value != first.Value {
		t.Errorf("Token just before the cache TTL: source %v, want the cached token from l1", got.Source)
	}
	// 58 minutes after the mint the token has 2 minutes left: never served.
	fake.FastForward(3*time.Minute + time.Second)
	got := e.token(t, "203.0.113.7")
	if got.Source != Minted || got.Value == first.Value {
		t.Errorf("Token 58m after the mint: source %v, same token %v; want a new mint", got.Source, got.Value == first.Value)
	}
	if left := got.Expires.Sub(fake.Now()); left < 59*time.Minute {
		t.Errorf("new token has %v left, want about 1h", left)
	}
}

func TestCachedEntriesWithTooLittleLifeAreMisses(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, nil)
	now := fake.Now()
	seed := func(key string, v any) {
		b, _ := json.Marshal(v)
		fake.SetItem("pizza", key+"-token", b, time.Hour)
	}
	seed("192.0.2.1", item{Token: "old", Exp: now.Add(4 * time.Minute).Unix()})
	fake.SetItem("pizza", "192.0.2.2-token", []byte("not json"), time.Hour)
	seed("192.0.2.3", item{Token: "", Exp: now.Add(time.Hour).Unix()})
	seed("192.0.2.4", item{Token: "fine", Exp: now.Add(20 * time.Minute).Unix()})

	for _, key := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if got := e.token(t, key); got.Source != Minted {
			t.Errorf("Token(%s) source = %v, want mint", key, got.Source)
		}
	}
	if !strings.Contains(e.logs.String(), "does not parse") {
		t.Errorf("no log line about the unparsable cached value")
	}
	// A cached token with 20 minutes left is served, and kept in L1 only
	// until 5 minutes before it expires.
	if got := e.token(t, "192.0.2.4"); got.Source != FromMomento || got.Value != "fine" {
		t.Fatalf("Token(192.0.2.4) = %v %q, want the cached token", got.Source, got.Value)
	}
	fake.FastForward(15*time.Minute - time.Second)
	if got := e.token(t, "192.0.2.4"); got.Source != FromL1 {
		t.Errorf("Token with 5m1s left: source %v, want l1", got.Source)
	}
	fake.FastForward(time.Second)
	if got := e.token(t, "192.0.2.4"); got.Source != Minted {
		t.Errorf("Token with 5m left: source %v, want mint", got.Source)
	}
}

func TestL1NeverOutlivesTheMomentoEntry(t *testing.T) {
	fake := newFake(t)
	short := func(o *Options) { o.TokenTTL = 30 * time.Minute; o.CacheTTL = 10 * time.Minute }
	a := newVendor(t, fake, short)
	b := newVendor(t, fake, short)
	minted := a.token(t, "203.0.113.7")
	it, _ := fake.Item("pizza", "203.0.113.7-token")
	if it.TTL != 10*time.Minute {
		t.Fatalf("Set TTL = %v, want CACHE_TTL 10m", it.TTL)
	}

	fake.FastForward(4 * time.Minute)
	if got := b.token(t, "203.0.113.7"); got.Source != FromMomento || got.Value != minted.Value {
		t.Fatalf("instance b: source %v, want the token from momento", got.Source)
	}
	// b read the entry 4 minutes into its 10; its L1 copy must go when the
	// Momento entry does, not 10 minutes after b read it.
	fake.FastForward(6*time.Minute - time.Millisecond)
	if got := b.token(t, "203.0.113.7"); got.Source != FromL1 {
		t.Errorf("instance b just before the entry expires: source %v, want l1", got.Source)
	}
	fake.FastForward(time.Millisecond)
	if _, ok := fake.Item("pizza", "203.0.113.7-token"); ok {
		t.Fatalf("Momento entry still live after its TTL")
	}
	if got := b.token(t, "203.0.113.7"); got.Source != Minted {
		t.Errorf("instance b after the entry expired: source %v, want mint", got.Source)
	}
}

func TestSetTTLIsCappedByTheTokensExpiry(t *testing.T) {
	fake := newFake(t)
	// Momento's clock runs 10 minutes behind ours: its token expires 50
	// minutes from our now, so the entry may live only 45.
	ahead := func(o *Options) { o.Now = func() time.Time { return fake.Now().Add(10 * time.Minute) } }
	e := newVendor(t, fake, ahead)
	e.token(t, "203.0.113.7")
	it, _ := fake.Item("pizza", "203.0.113.7-token")
	if it.TTL != 45*time.Minute {
		t.Errorf("Set TTL = %v, want min(CACHE_TTL 55m, exp-now-margin 45m) = 45m", it.TTL)
	}
}

func TestConcurrentMissesMintOnce(t *testing.T) {
	fake := newFake(t)
	fake.SetLatency(20 * time.Millisecond) // long enough for the requests to overlap
	e := newVendor(t, fake, nil)

	var wg sync.WaitGroup
	tokens := make([]Token, 200)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := e.v.Token(context.Background(), anon("203.0.113.7"))
			if err != nil {
				t.Errorf("Token: %v", err)
			}
			tokens[i] = tok
		}()
	}
	wg.Wait()
	if n := len(fake.Mints()); n != 1 {
		t.Errorf("200 concurrent requests minted %d tokens, want 1", n)
	}
	if n := fake.Count(momentotest.MethodGet); n != 1 {
		t.Errorf("200 concurrent requests made %d Gets, want 1", n)
	}
	minted := 0
	for _, tok := range tokens {
		if tok.Value != tokens[0].Value {
			t.Fatalf("concurrent requests got different tokens")
		}
		if tok.Source == Minted {
			minted++
		}
	}
	if minted != 1 {
		t.Errorf("%d requests report source mint, want 1 (the rest shared or l1)", minted)
	}
}

func TestManyClientsMintOncePerClient(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, nil)
	const requests, clients, workers = 2000, 100, 64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= requests {
					return
				}
				if _, err := e.v.Token(context.Background(), anon(fmt.Sprintf("10.0.%d.%d", i%clients/256, i%clients%256))); err != nil {
					t.Errorf("Token: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(fake.Mints()); n != clients {
		t.Errorf("%d requests over %d clients minted %d tokens, want %d", requests, clients, n, clients)
	}
}

func TestWaitIsBoundedByTheCallersContext(t *testing.T) {
	fake := newFake(t)
	fake.SetFault(momentotest.MethodMint, momentotest.Fault{Latency: 300 * time.Millisecond})
	e := newVendor(t, fake, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.v.Token(ctx, anon("203.0.113.7")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Token with a short deadline: err %v, want DeadlineExceeded", err)
	}
	// The shared work went on: the next request joins it, or finds its
	// result in L1, and nothing is minted twice.
	got := e.token(t, "203.0.113.7")
	if got.Source == Minted || len(fake.Mints()) != 1 {
		t.Errorf("after an abandoned wait: source %v, %d mints; want the first mint's token", got.Source, len(fake.Mints()))
	}
}

func TestImplausibleExpIsAMiss(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, nil)
	now := fake.Now()
	for i, exp := range []int64{9999999999, now.Add(time.Hour + 2*time.Minute).Unix()} {
		client := fmt.Sprintf("192.0.2.%d", 70+i)
		b, _ := json.Marshal(map[string]any{"token": "planted", "exp": exp})
		fake.SetItem("pizza", client+"-token", b, time.Hour)
		if got := e.token(t, client); got.Value == "planted" || got.Source != Minted {
			t.Errorf("a cached token with exp %d was served (source %v)", exp, got.Source)
		}
	}
	// Within TOKEN_TTL plus the slack, it is served.
	b, _ := json.Marshal(map[string]any{"token": "fine", "exp": now.Add(time.Hour + 30*time.Second).Unix()})
	fake.SetItem("pizza", "192.0.2.8-token", b, time.Hour)
	if got := e.token(t, "192.0.2.8"); got.Value != "fine" {
		t.Errorf("a cached token within TOKEN_TTL and the slack was not served: %v", got.Source)
	}
}

func TestResourceExhaustedPausesMints(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, nil)
	first := e.token(t, "192.0.2.1")
	fake.SetFault(momentotest.MethodMint, momentotest.Fault{Code: codes.ResourceExhausted})

	// Each refusal by Momento doubles the pause: 1 s, 2 s, 4 s...
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		mintsBefore := fake.Count(momentotest.MethodMint)
		_, err := e.v.Token(context.Background(), anon(fmt.Sprintf("192.0.2.%d", 10+i)))
		if kind, retry := failure.Of(err); kind != failure.Limited || retry != want {
			t.Fatalf("mint refused by Momento (%d): err %v (kind %v, retry %v), want Limited, retry %v", i+1, err, kind, retry, want)
		}
		// Within the pause, no mint reaches Momento.
		fake.FastForward(want / 2)
		_, err = e.v.Token(context.Background(), anon("192.0.2.99"))
		if kind, _ := failure.Of(err); kind != failure.Limited || fake.Count(momentotest.MethodMint) != mintsBefore+1 {
			t.Errorf("a mint within the pause: kind %v, %d mints reached Momento; want Limited and none", kind, fake.Count(momentotest.MethodMint)-mintsBefore-1)
		}
		fake.FastForward(want / 2)
	}
	// Hits are unaffected.
	if got := e.token(t, "192.0.2.1"); got.Value != first.Value {
		t.Errorf("a cached client got another token during the pause")
	}
	// A success ends it, and the next refusal pauses 1 s again.
	fake.ClearFaults()
	e.token(t, "192.0.2.50")
	fake.SetFault(momentotest.MethodMint, momentotest.Fault{Code: codes.ResourceExhausted})
	_, err := e.v.Token(context.Background(), anon("192.0.2.51"))
	if _, retry := failure.Of(err); retry != time.Second {
		t.Errorf("pause after a success and a new refusal = %v, want 1s", retry)
	}
	if !strings.Contains(e.logs.String(), LogMintsPaused) {
		t.Errorf("the pause is not logged")
	}
}

func TestUpstreamFaults(t *testing.T) {
	tests := []struct {
		name       string
		method     momentotest.Method
		fault      momentotest.Fault
		wantErr    error
		wantCached bool
		wantLog    string
	}{
		{name: "get fails", method: momentotest.MethodGet, fault: momentotest.Fault{Code: codes.Unavailable}, wantCached: true, wantLog: "Momento Get failed"},
		{name: "get hangs", method: momentotest.MethodGet, fault: momentotest.Fault{Latency: time.Minute}, wantCached: true, wantLog: "Momento Get failed"},
		{name: "set fails", method: momentotest.MethodSet, fault: momentotest.Fault{Code: codes.Internal}, wantLog: "Momento Set failed"},
		{name: "mint fails", method: momentotest.MethodMint, fault: momentotest.Fault{Code: codes.Unavailable}, wantErr: ErrUnavailable},
		{name: "mint hangs", method: momentotest.MethodMint, fault: momentotest.Fault{Latency: time.Minute}, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.SetFault(tt.method, tt.fault)
			e := newVendor(t, fake, func(o *Options) { o.CallTimeout = 200 * time.Millisecond })
			tok, err := e.v.Token(context.Background(), anon("203.0.113.7"))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Token: err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if _, ok := fake.Item("pizza", "203.0.113.7-token"); ok {
					t.Errorf("a token is cached after a failed mint")
				}
				if strings.Contains(err.Error(), "203.0.113.7") {
					t.Errorf("error %q names the client's IP", err)
				}
				return
			}
			if tok.Source != Minted || tok.Value == "" {
				t.Errorf("Token = %v %q, want a minted token", tok.Source, tok.Value)
			}
			if _, ok := fake.Item("pizza", "203.0.113.7-token"); ok != tt.wantCached {
				t.Errorf("token cached in Momento = %v, want %v", ok, tt.wantCached)
			}
			if logs := e.logs.String(); !strings.Contains(logs, tt.wantLog) || strings.Contains(logs, "203.0.113.7") || strings.Contains(logs, tok.Value) {
				t.Errorf("logs = %s\nwant a line with %q and neither the IP nor the token", logs, tt.wantLog)
			}
		})
	}
}

// TestUpstreamErrorsKeepUpstreamAddresses checks what an upstream error's
// text says once what names the caller is taken out: the item key and the
// token id the call sent become neutral placeholders, and an upstream's
// address stays as it is, even when it is the client's IP too (127.0.0.1
// for both, locally). Neither is ever the caller's label: a label in place
// of an address reads as a host that was dialled.
func TestUpstreamErrorsKeepUpstreamAddresses(t *testing.T) {
	const (
		client = "127.0.0.1"
		label  = "h(127_0_0_1)" // testOptions' Label of client
		sub    = "alice.smith@example.com"
	)
	tests := []struct {
		name   string
		method momentotest.Method
		caller Caller
		text   string // the fault's message
		want   string // in the logged or returned error
		gone   string // in neither
	}{
		{"get fails dialling the client's own address", momentotest.MethodGet, anon(client),
			"dial tcp 127.0.0.1:443: connect: connection refused", "dial tcp 127.0.0.1:443: connect: connection refused", ""},
		{"set fails dialling the client's own address", momentotest.MethodSet, anon(client),
			"dial tcp 127.0.0.1:443: connect: connection refused", "dial tcp 127.0.0.1:443: connect: connection refused", ""},
		{"get quotes the item key", momentotest.MethodGet, anon(client),
			"bad key 127.0.0.1-token from 127.0.0.1:443", "bad key [item key] from 127.0.0.1:443", "127.0.0.1-token"},
		{"mint quotes the token id", momentotest.MethodMint, Caller{Key: "ticket:" + sub + ":k", Scope: scope.All(), TokenID: sub, Client: clientOf(client)},
			"invalid token_id " + sub + " from 127.0.0.1:443", "invalid token_id [token id] from 127.0.0.1:443", sub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.SetFault(tt.method, momentotest.Fault{Code: codes.Unavailable, Message: tt.text})
			e := newVendor(t, fake, nil)
			_, err := e.v.Token(context.Background(), tt.caller)
			text := e.logs.String()
			if err != nil {
				text += err.Error()
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("logs and error:\n%s\nwant %q", text, tt.want)
			}
			if strings.Contains(text, label+":443") || (tt.gone != "" && strings.Contains(text, tt.gone)) {
				t.Errorf("logs and error:\n%s\nhold the label in an address, or %q", text, tt.gone)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	fake := newFake(t)
	var reconnects atomic.Int32
	e := newVendor(t, fake, func(o *Options) {
		o.Reconnect = func(ctx context.Context) (*Clients, error) {
			reconnects.Add(1)
			return Connect(ctx, Credentials{APIKey: fake.APIKey()}, ConnectOptions{EmulatorHost: fake.Addr(), Timeout: time.Second})
		}
	})
	e.token(t, "192.0.2.1") // connect with the first key
	fake.RotateAPIKey()

	got := e.token(t, "192.0.2.2")
	if got.Source != Minted {
		t.Fatalf("Token after rotation: source %v, want mint", got.Source)
	}
	if n := reconnects.Load(); n != 1 {
		t.Errorf("reconnects = %d, want 1", n)
	}
	if m, _ := fake.MintOf(got.Value); m.Caller != "key-2" {
		t.Errorf("token minted by %q, want the rotated key-2", m.Caller)
	}
	if _, ok := fake.Item("pizza", "192.0.2.2-token"); !ok {
		t.Errorf("token minted after rotation was not cached with the new clients")
	}

	// Rejected again within 30s: the key is not re-read again, and the
	// caller is told to come back when it may be (a rotation may be under
	// way), not that the deploy is broken.
	fake.RotateAPIKey()
	fake.FastForward(10 * time.Second)
	_, err := e.v.Token(context.Background(), anon("192.0.2.3"))
	if kind, retry := failure.Of(err); !errors.Is(err, ErrUnavailable) || kind != failure.Unavailable || retry != 20*time.Second {
		t.Errorf("Token rejected again within 30s: err %v (kind %v, retry %v), want Unavailable, retry 20s", err, kind, retry)
	}
	if n := reconnects.Load(); n != 1 {
		t.Errorf("reconnects = %d after a second rejection within 30s, want 1", n)
	}
	fake.FastForward(30 * time.Second)
	if got := e.token(t, "192.0.2.3"); got.Source != Minted {
		t.Errorf("Token 40s after the last re-read: source %v, want mint", got.Source)
	}
	if n := reconnects.Load(); n != 2 {
		t.Errorf("reconnects = %d, want 2", n)
	}
}

func TestMintRateLimit(t *testing.T) {
	fake := newFake(t)
	now := fake.Now()
	clock := func() time.Time { return now }
	e := newVendor(t, fake, func(o *Options) { o.MintRate = 1; o.MintBurst = 3; o.Now = clock })

	for i := range 3 {
		e.token(t, fmt.Sprintf("192.0.2.%d", i))
	}
	_, err := e.v.Token(context.Background(), anon("192.0.2.99"))
	if kind, wait := failure.Of(err); kind != failure.Limited || wait <= 0 || wait > time.Second {
		t.Fatalf("Token beyond the burst: err %v (kind %v, retry %v), want Limited with a retry in (0, 1s]", err, kind, wait)
	}
	if got := e.token(t, "192.0.2.0"); got.Source != FromL1 {
		t.Errorf("cached client while limited: source %v, want l1", got.Source)
	}
	if n := len(fake.Mints()); n != 3 {
		t.Errorf("mints = %d, want 3", n)
	}
	now = now.Add(time.Second)
	if got := e.token(t, "192.0.2.99"); got.Source != Minted {
		t.Errorf("Token a second later: source %v, want mint", got.Source)
	}
}

// putL1 caches tok as the Vendor does.
func putL1(c *lru.Cache[string, token], key string, tok token, until time.Time) {
	c.Put(key, tok, l1Size(key, tok), time.Time{}, until)
}

func TestL1Bound(t *testing.T) {
	c := newL1(100, 100*(entryOverhead+64))
	now := time.Now()
	for i := range 100_000 {
		key := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
		putL1(c, key, token{value: strings.Repeat("t", 40), exp: now.Add(time.Hour)}, now.Add(time.Hour))
		if n, b := c.Len(); n > 100 || b > 100*(entryOverhead+64) {
			t.Fatalf("after %d puts: %d entries, %d bytes; bound is 100 entries, %d bytes", i+1, n, b, 100*(entryOverhead+64))
		}
	}
	if _, ok := c.Get("10.1.134.159", now); !ok { // the most recent put
		t.Errorf("most recent entry was evicted")
	}
	if _, ok := c.Get("10.0.0.0", now); ok {
		t.Errorf("oldest entry was kept")
	}
	byBytes := newL1(1000, 3*(entryOverhead+50))
	for i := range 10 {
		putL1(byBytes, fmt.Sprintf("k%d", i), token{value: strings.Repeat("t", 40)}, now.Add(time.Hour))
	}
	if n, b := byBytes.Len(); n != 3 || b > 3*(entryOverhead+50) {
		t.Errorf("byte-bounded L1 holds %d entries, %d bytes; want 3 within %d", n, b, 3*(entryOverhead+50))
	}
}

// TestL1DefaultBound fills an L1 with the function's default bounds from
// 100,000 distinct clients, with tokens the size Momento's are.
func TestL1DefaultBound(t *testing.T) {
	const maxEntries, maxBytes = 10_000, 8 << 20 // config.DefaultL1MaxEntries, DefaultL1MaxBytes
	c := newL1(maxEntries, maxBytes)
	base := strings.Repeat("t", 422) // a v1 disposable token is about 430 bytes
	now := time.Now()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100_000 {
		tok := fmt.Sprintf("%s%08d", base, i) // each token its own string, as in life
		putL1(c, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), token{value: tok, exp: now.Add(time.Hour)}, now.Add(55*time.Minute))
		if n, b := c.Len(); n > maxEntries || b > maxBytes {
			t.Fatalf("after %d clients: %d entries, %d bytes; bound is %d entries, %d bytes", i+1, n, b, maxEntries, maxBytes)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	n, b := c.Len()
	t.Logf("after 100,000 clients: %d entries, %d estimated bytes, heap grew %.1f MiB", n, b, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
	if n != maxEntries {
		t.Errorf("L1 holds %d entries, want it full at %d", n, maxEntries)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > int64(b)*115/100 {
		t.Errorf("heap grew %d bytes for %d estimated bytes: the estimate, and so L1_MAX_BYTES, is too low", grew, b)
	}
}

func TestReconnectFailure(t *testing.T) {
	fake := newFake(t)
	var calls atomic.Int32
	var secretDown atomic.Bool
	secretDown.Store(true)
	e := newVendor(t, fake, func(o *Options) {
		o.Reconnect = func(ctx context.Context) (*Clients, error) {
			calls.Add(1)
			if secretDown.Load() {
				return nil, errors.New("secret manager: Unavailable")
			}
			return Connect(ctx, Credentials{APIKey: fake.APIKey()}, ConnectOptions{EmulatorHost: fake.Addr(), Timeout: time.Second})
		}
	})
	e.token(t, "192.0.2.1")
	fake.RotateAPIKey()

	// The key is rejected and cannot be re-read: that may pass, so it is
	// ErrUnavailable (503), not ErrRejected (500).
	for i := range 2 {
		if _, err := e.v.Token(context.Background(), anon(fmt.Sprintf("192.0.2.%d", 10+i))); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Token with the key rejected and the secret down: err %v, want ErrUnavailable", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Reconnect called %d times within 5s of a failure, want 1", n)
	}
	secretDown.Store(false)
	fake.FastForward(5 * time.Second)
	if got := e.token(t, "192.0.2.20"); got.Source != Minted {
		t.Errorf("Token once the secret is back: source %v, want mint", got.Source)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("Reconnect called %d times, want 2", n)
	}
}

func TestLookupRateLimit(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, func(o *Options) { o.LookupRate = 1; o.LookupBurst = 2 })
	first := e.token(t, "192.0.2.1")
	e.token(t, "192.0.2.2")
	_, err := e.v.Token(context.Background(), anon("192.0.2.3"))
	if kind, wait := failure.Of(err); kind != failure.Limited || wait != time.Second {
		t.Fatalf("third new client within a second: err %v (kind %v, retry %v), want Limited with a retry of 1s", err, kind, wait)
	}
	if n := fake.Count(momentotest.MethodGet); n != 2 {
		t.Errorf("Momento Gets = %d, want 2: the limited request must not cost one", n)
	}
	if got := e.token(t, "192.0.2.1"); got.Source != FromL1 || got.Value != first.Value {
		t.Errorf("an L1 hit while lookups are limited: source %v, want l1", got.Source)
	}
	fake.FastForward(time.Second)
	if got := e.token(t, "192.0.2.3"); got.Source != Minted {
		t.Errorf("a second later: source %v, want mint", got.Source)
	}
}

// TestLookupBucketsNest: one device asking with ever new identities spends
// its own lookup bucket, not its /16's: users in other /24s of the /16
// still get their lookups.
func TestLookupBucketsNest(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, func(o *Options) { o.KeyLookupRate = 5; o.KeyLookupBurst = 100 })
	device := func(i int) Caller {
		return Caller{Key: fmt.Sprintf("ticket:free-%d", i), Scope: scope.All(), TokenID: fmt.Sprintf("free-%d", i), Client: clientOf("198.51.7.7")}
	}
	served := 0
	for i := range 100 {
		if _, err := e.v.Token(context.Background(), device(i)); err == nil {
			served++
		}
	}
	// The device's bucket holds 2/5 of the /16's burst of 100.
	if served != 40 {
		t.Errorf("one device with 100 identities got %d lookups, want its bucket's 40", served)
	}
	for i := range 50 {
		c := Caller{Key: fmt.Sprintf("198.51.%d.9", 20+i), Scope: scope.All(), Client: clientOf(fmt.Sprintf("198.51.%d.9", 20+i))}
		if _, err := e.v.Token(context.Background(), c); err != nil {
			t.Fatalf("user %d of the /16 in another /24, after the device spent its bucket: %v", i+1, err)
		}
	}
}

// TestLookupReserveForQuietProviders: providers that spent more than half
// their lookup bucket take the instance's bucket only down to its last
// tenth; callers from other providers still get those lookups.
func TestLookupReserveForQuietProviders(t *testing.T) {
	fake := newFake(t)
	// The instance: 30 lookups at once, 3 of them kept. A provider: 10,
	// its networks 6, its devices 4.
	e := newVendor(t, fake, func(o *Options) {
		o.LookupRate, o.LookupBurst = 0.001, 30
		o.KeyLookupRate, o.KeyLookupBurst = 0.001, 10
	})
	caller := func(ip string) Caller { return Caller{Key: ip, Scope: scope.All(), Client: clientOf(ip)} }
	flood := 0
	for p := range 3 {
		for i := range 10 { // a new network every time
			if _, err := e.v.Token(context.Background(), caller(fmt.Sprintf("100.%d.%d.1", 64+p, i))); err == nil {
				flood++
			}
		}
	}
	// Two providers' 10 each, and 7 of the third's: it is refused once
	// below half its bucket with the instance's down to the kept 3.
	if flood != 27 {
		t.Errorf("three providers of 10 lookups each got %d of the instance's 30, want 27", flood)
	}
	if _, err := e.v.Token(context.Background(), caller("100.64.99.1")); err == nil {
		t.Errorf("a provider that spent its bucket got one of the kept lookups")
	}
	for i := range 3 {
		if _, err := e.v.Token(context.Background(), caller(fmt.Sprintf("%d.88.1.9", 10+i))); err != nil {
			t.Errorf("visitor %d from a provider of its own: %v, want a kept lookup", i+1, err)
		}
	}
	_, err := e.v.Token(context.Background(), caller("20.88.1.9"))
	if kind, _ := failure.Of(err); kind != failure.Limited {
		t.Errorf("a fourth visitor with the instance's bucket spent: err %v, want Limited", err)
	}
}

// TestInstanceMintLimitStandsInForTheFleet: with a fleet budget, the
// instance's own mint bucket applies only while the fleet's counter cannot
// be reached.
func TestInstanceMintLimitStandsInForTheFleet(t *testing.T) {
	fake := newFake(t)
	e := newVendor(t, fake, func(o *Options) {
		o.MintRate, o.MintBurst = 0.001, 1
		o.FleetMintRate, o.FleetMintBurst = 1000, 2000
	})
	for i := range 5 {
		e.token(t, fmt.Sprintf("192.0.2.%d", i+1)) // the fleet decides: more than the instance's burst
	}
	fake.SetFault(momentotest.MethodIncrement, momentotest.Fault{Code: codes.Unavailable})
	fake.FastForward(time.Minute) // a new window: the reserve must be refilled
	e.token(t, "192.0.2.10")      // the instance's burst
	_, err := e.v.Token(context.Background(), anon("192.0.2.11"))
	if kind, _ := failure.Of(err); kind != failure.Limited {
		t.Errorf("a second mint with the fleet's counter down and an instance burst of 1: err %v, want Limited", err)
	}
}

// TestSpreadIsFNV1a checks that a token's spread is the 64-bit FNV-1a hash
// of its value, as hash/fnv computes it, as a fraction in [0, 1).
func TestSpreadIsFNV1a(t *testing.T) {
	for _, v := range []string{"", "a", "eyJhcGlfa2V5IjoiZXlKaGJHY2lPaUp1YjI1bElpd2lkSGx3SWpvaVNsZFVJbjAifQ==", strings.Repeat("\xff", 1000)} {
		h := fnv.New64a()
		h.Write([]byte(v))
		want := float64(h.Sum64()>>11) / (1 << 53)
		if got := newToken(v, time.Time{}).spread; got != want || got < 0 || got >= 1 {
			t.Errorf("spread of %q = %v, want %v", v, got, want)
		}
	}
}
