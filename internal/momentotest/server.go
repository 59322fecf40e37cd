// Package momentotest runs an in-process fake of Momento's cache, topic,
// token and control services, for tests and for local development.
//
// The fake is a real gRPC server on a loopback port. The Momento Go SDK
// (github.com/momentohq/client-sdk-go v1.38.0) talks to it over plaintext
// gRPC once its endpoints are pointed there; [Server.CredentialProvider] does
// that. It serves the SDK's own message types, so what the SDK sends is what
// the fake reads, and any other client of Momento's protos can use it too.
//
// Start one with [NewServer] (or [NewServerT] in a test), name the caches it
// starts with in [Options].Caches, give clients [Server.APIKey], publish as
// the account with [Server.Publish], and inspect what happened with
// [Server.Mints], [Server.Item] and [Server.Count]. Time
// is the fake's own clock ([Server.Now]): it runs in real time until
// [Server.SetTime] stops it, and [Server.FastForward] moves it, so expiry
// needs no sleeping. Faults and latency are injected per method with
// [Server.SetFault] and [Server.SetLatency], [Server.EndSubscriptions]
// ends open subscriptions, cleanly or with a status, and
// [Server.OnSubscription] lets a test act the moment one opens or ends.
//
// Browsers reach the same fake over gRPC-web: [Server.ServeGRPCWeb] serves
// it on a port of its own (or mount [Server.GRPCWebHandler]), in the binary
// and the text variant (application/grpc-web-text, which @gomomento/sdk-web
// sends), unary calls and subscriptions alike, with CORS for the origins it
// is given. Point the web SDK at it with endpoint overrides holding the URL
// it returns, scheme included (the web SDK reads "http://" from the URL and
// ignores secureConnection):
//
//	CredentialProvider.fromDisposableToken({authToken, endpointOverrides:
//	    {cacheEndpoint: url, controlEndpoint: url, tokenEndpoint: url}})
//
// What it models, as Momento does:
//   - Account keys in both forms Momento issues: [Server.APIKey] (v1: base64
//     of {"api_key", "endpoint"}) and [Server.APIKeyV2] (v2: a signed JWT
//     whose claims hold "t": "g" and no endpoint). A key the fake did not
//     issue, or one it revoked ([Server.RotateAPIKey]), is Unauthenticated.
//   - Caches exist only once created, by [Options].Caches, [Server.CreateCache]
//     or the control plane's CreateCache; DeleteCache and ListCaches too. A
//     data call on any other cache answers NotFound (the SDK's
//     CacheNotFoundError), after the caller's permissions are checked.
//   - Get, Set, Delete and Increment of scalar items with TTLs. Increment
//     adds to a base-10 integer (FailedPrecondition otherwise, or on
//     overflow), creates a missing item holding the amount, and sets the
//     item's TTL to the request's on every call.
//   - GenerateDisposableToken, which mints tokens in Momento's v1 form (base64
//     of {"api_key", "endpoint"}) and records each mint's scope, expiry, token
//     ID and caller. The caller is named by the authorization header (Go SDK)
//     or, without one, the request's auth_token (Node SDK); only account keys
//     may mint.
//   - Publish and Subscribe: a heartbeat when a subscription opens and then
//     every [Options].HeartbeatInterval; sequence numbers and a sequence page;
//     publisher_id set from the publishing token's token ID; a bounded
//     history per topic ([Options].TopicHistory) from which a subscription
//     resumes at resume_at_topic_sequence_number (items from that number on);
//     a discontinuity when a resumed or slow subscriber has lost items.
//   - Calls made with a minted token are held to its scope and expiry:
//     PermissionDenied outside the scope (and for every control-plane call),
//     Unauthenticated once expired. A subscription made with a minted token
//     ends, with Unauthenticated, when the token expires on the fake's clock.
//     Account keys have every permission.
//   - Limits: TTLs up to 24 h, items (key and value) up to 5 MiB, topic
//     messages up to 4 KiB, tokens with at most 20 permissions living at
//     most 1 h.
//
// Every other RPC is recorded ([Server.Unmodelled]) and, once the caller is
// authenticated and permitted (a minted token may call no control-plane RPC,
// and a cache RPC only with a cache grant on that cache), answers
// Unimplemented, so a client calling something the fake does not know fails
// loudly rather than being told it may not.
//
// Where it differs from Momento: there is one account, whose v1 and v2 keys
// are two spellings of one key (revoked together); a v2 key's claims other
// than "t" are the fake's own; the api_key inside a
// minted token is an unsigned JWT-shaped string whose claims spell out the
// scope in plain JSON, which a real token does not promise; error messages
// are the fake's own. gRPC-web is served over plain HTTP on a port of its
// own, where Momento serves it over HTTPS on web.-prefixed hosts, and CORS
// is the fake's: a browser request from an origin not given to it is
// refused with 403. Where Momento documents a limit but not the status that
// enforces it, the status is the fake's choice: InvalidArgument for a TTL
// over 24 h, too many permissions or too long a token lifetime;
// ResourceExhausted with Momento's "err" trailer (item_size_limit_exceeded,
// request_size_limit_exceeded) for an oversized item or message. It enforces
// no rate, throughput, cache-count or subscriber-count limits, and no limit
// on key or topic-name length (Momento documents none). Whether Momento keeps
// an existing item's TTL on Increment is undocumented; the fake applies the
// request's, which the wire always carries. How Momento ends an open
// subscription whose token expires is undocumented; the fake ends it at the
// expiry with Unauthenticated, the status a new call with the token gets,
// which the web SDK hands to the subscription's onError without
// resubscribing (the Go SDK's default topic configuration resubscribes after
// any error, and so keeps failing). Heartbeats run on real time, not
// the fake's clock, and a slow subscriber is one more than 64 items behind.
package momentotest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/momentohq/client-sdk-go/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Method names an RPC of the fake, for faults and call counts.
type Method string

// The RPCs the fake models.
const (
	MethodGet       Method = "Get"
	MethodSet       Method = "Set"
	MethodDelete    Method = "Delete"
	MethodIncrement Method = "Increment"
	MethodMint      Method = "GenerateDisposableToken"
	MethodPublish   Method = "Publish"
	MethodSubscribe Method = "Subscribe"

	MethodCreateCache Method = "CreateCache"
	MethodDeleteCache Method = "DeleteCache"
	MethodListCaches  Method = "ListCaches"
)

// DefaultEndpoint is the Momento endpoint named in keys and minted tokens when
// Options.Endpoint is empty. The .invalid domain never resolves, so a token
// from the fake cannot reach real Momento by accident.
const DefaultEndpoint = "momentotest.invalid"

// Tester is the part of testing.TB that NewServerT uses.
type Tester interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Options configures NewServer. The zero value is ready to use.
type Options struct {
	// Addr is the address to listen on; "" means "127.0.0.1:0".
	Addr string
	// Now is the base of the fake's clock; nil means time.Now.
	// FastForward and SetTime move the clock relative to it.
	Now func() time.Time
	// Endpoint is the Momento endpoint named in keys and minted tokens;
	// "" means DefaultEndpoint.
	Endpoint string
	// Caches are created when the fake starts. No other cache exists until
	// CreateCache (or the control plane's CreateCache) makes it.
	Caches []string
	// HeartbeatInterval is how often an open subscription receives a
	// heartbeat; 0 means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// TopicHistory is how many of its newest items each topic keeps for
	// subscribers that resume; 0 means DefaultTopicHistory, negative none.
	TopicHistory int
}

// DefaultHeartbeatInterval is how often subscriptions receive a heartbeat
// unless Options.HeartbeatInterval says otherwise. The SDKs expect one within
// 10 seconds.
const DefaultHeartbeatInterval = 5 * time.Second

// DefaultTopicHistory is how many items each topic keeps for resuming
// subscribers unless Options.TopicHistory says otherwise. Momento leaves the
// amount unspecified.
const DefaultTopicHistory = 256

// Server is a fake Momento. Its methods are safe for concurrent use.
type Server struct {
	lis       net.Listener
	srv       *grpc.Server
	endpoint  string
	base      func() time.Time
	heartbeat time.Duration
	history   int // items kept per topic
	stop      sync.Once
	serveDone chan struct{} // closed when srv.Serve has returned

	mu sync.Mutex // guards the fields below
	// offset is added to base to give the fake's clock, unless frozen.
	offset time.Duration
	// frozen is the clock's time once SetTime has stopped it; zero means
	// the clock runs.
	frozen time.Time
	// moved is closed, and replaced, whenever FastForward or SetTime moves
	// the clock, to wake those waiting for a time on it (waitUntil).
	moved chan struct{}
	// keys maps what a client sends as authorization for an account key
	// (the api_key inside a v1 key, or a whole v2 key) to the key's ID.
	keys     map[string]string
	apiKey   string   // the newest account key, in v1 form
	apiKeyV2 string   // the newest account key, in v2 form
	issued   []string // every account key issued, in both forms
	keyCount int      // account keys issued
	items    map[itemKey]Item
	mints    []Mint
	// minted maps a minted token's secret to its index in mints.
	minted     map[string]int
	faults     map[Method]Fault
	latency    time.Duration
	counts     map[Method]int
	unmodelled []string
	caches     map[string]struct{}
	topics     map[topicKey]*topic
	pages      uint64 // the newest topic sequence page handed out
	// onSubscription is what OnSubscription was last given.
	onSubscription func(cache, topic string, open bool)
	// webServers are the gRPC-web servers ServeGRPCWeb started; Close
	// closes them.
	webServers []*http.Server
}

type itemKey struct{ cache, key string }

// NewServer starts a fake Momento listening on opts.Addr.
func NewServer(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("momentotest: listen: %w", err)
	}
	s := &Server{
		lis:       lis,
		endpoint:  opts.Endpoint,
		base:      opts.Now,
		heartbeat: opts.HeartbeatInterval,
		history:   opts.TopicHistory,
		keys:      make(map[string]string),
		items:     make(map[itemKey]Item),
		minted:    make(map[string]int),
		faults:    make(map[Method]Fault),
		counts:    make(map[Method]int),
		caches:    make(map[string]struct{}),
		topics:    make(map[topicKey]*topic),
		moved:     make(chan struct{}),
	}
	if s.endpoint == "" {
		s.endpoint = DefaultEndpoint
	}
	if s.base == nil {
		s.base = time.Now
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeatInterval
	}
	switch {
	case s.history == 0:
		s.history = DefaultTopicHistory
	case s.history < 0:
		s.history = 0
	}
	s.mu.Lock()
	s.newAPIKeyLocked()
	for _, name := range opts.Caches {
		if err := s.createCacheLocked(name); err != nil {
			s.mu.Unlock()
			lis.Close()
			return nil, fmt.Errorf("momentotest: create cache %q: %w", name, err)
		}
	}
	s.mu.Unlock()

	s.srv = grpc.NewServer(
		// The SDK pings every 10 s, even between calls; the default policy
		// (5 min) would answer with GOAWAY "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.UnknownServiceHandler(s.unknown),
		// Room for an item of Momento's maximum size, so that the fake
		// answers an oversized one as Momento does, not as gRPC does.
		grpc.MaxRecvMsgSize(maxItemSize+64<<10),
	)
	s.register()
	s.registerControl()
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		s.srv.Serve(lis) //nolint:errcheck // Serve returns when Close stops it.
	}()
	return s, nil
}

// NewServerT starts a fake Momento with the given caches for a test and
// closes it when the test ends.
func NewServerT(t Tester, caches ...string) *Server {
	t.Helper()
	s, err := NewServer(Options{Caches: caches})
	if err != nil {
		t.Fatalf("momentotest.NewServer: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addr returns the host:port the fake listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops the fake, ending every call and subscription in progress. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.stop.Do(func() {
		s.mu.Lock()
		web := s.webServers
		s.mu.Unlock()
		for _, srv := range web {
			srv.Close()
		}
		s.srv.Stop()
		<-s.serveDone // Serve has returned: nothing of the fake runs on
	})
	return nil
}

// CredentialProvider returns a Momento credential provider for key with every
// endpoint pointed at the fake over plaintext.
func (s *Server) CredentialProvider(key string) (auth.CredentialProvider, error) {
	cp, err := auth.FromString(key)
	if err != nil {
		return nil, err
	}
	ep := auth.Endpoint{Endpoint: s.Addr(), InsecureConnection: true}
	return cp.WithEndpoints(auth.AllEndpoints{ControlEndpoint: ep, CacheEndpoint: ep, TokenEndpoint: ep, StorageEndpoint: ep})
}

// Now returns the time on the fake's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

// nowLocked returns the time on the fake's clock. s.mu must be held.
func (s *Server) nowLocked() time.Time {
	if !s.frozen.IsZero() {
		return s.frozen
	}
	return s.base().Add(s.offset)
}

// FastForward moves the fake's clock d ahead.
func (s *Server) FastForward(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen.IsZero() {
		s.offset += d
	} else {
		s.frozen = s.frozen.Add(d)
	}
	s.clockMovedLocked()
}

// SetTime stops the fake's clock at t: from then on only FastForward and
// SetTime move it, so tests can expire items to the millisecond.
func (s *Server) SetTime(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = t
	s.clockMovedLocked()
}

// clockMovedLocked wakes everything waiting for a time on the fake's clock.
// s.mu must be held.
func (s *Server) clockMovedLocked() {
	close(s.moved)
	s.moved = make(chan struct{})
}

// waitUntil returns a channel that is closed once the fake's clock reads t
// or later, and a function that stops the wait. It looks at the clock when
// the real time left until t has passed and whenever the clock is moved.
func (s *Server) waitUntil(t time.Time) (reached <-chan struct{}, stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			s.mu.Lock()
			now, moved, running := s.nowLocked(), s.moved, s.frozen.IsZero()
			s.mu.Unlock()
			if !now.Before(t) {
				close(done)
				return
			}
			var tick <-chan time.Time
			if running {
				timer.Reset(t.Sub(now))
				tick = timer.C
			}
			select {
			case <-tick:
			case <-moved:
			case <-quit:
				return
			}
		}
	}()
	return done, sync.OnceFunc(func() { close(quit) })
}

// APIKey returns the account key the fake accepts now, in Momento's v1 form:
// base64 of {"api_key", "endpoint"}, the endpoint being Options.Endpoint.
func (s *Server) APIKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiKey
}

// APIKeyV2 returns the account key the fake accepts now in the v2 form that
// Momento issues since December 2025: a signed JWT whose claims hold
// "t": "g" and no endpoint. Clients take it with an endpoint of their own
// (pointed at the fake, as [Server.CredentialProvider] does). It is the
// same account key as [Server.APIKey], so both are revoked together by
// [Server.RotateAPIKey]; a v2 key the fake did not issue is Unauthenticated.
func (s *Server) APIKeyV2() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiKeyV2
}

// APIKeys returns every account key the fake has issued, in both forms,
// revoked ones included, oldest first: for tests that check no key leaked.
func (s *Server) APIKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// RotateAPIKey issues a new account key and revokes every older one: calls
// made with them fail with Unauthenticated. Tokens minted earlier stay valid
// until they expire. It returns the new key in v1 form; [Server.APIKeyV2]
// returns it in v2 form.
func (s *Server) RotateAPIKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.keys)
	return s.newAPIKeyLocked()
}

// newAPIKeyLocked issues an account key, in both forms, and returns its v1
// form. s.mu must be held.
func (s *Server) newAPIKeyLocked() string {
	s.keyCount++
	id := fmt.Sprintf("key-%d", s.keyCount)
	secret := "momentotest-account-" + randomHex(16)
	s.apiKey = v1Token(secret, s.endpoint)
	s.apiKeyV2 = v2Key(id, s.nowLocked())
	s.keys[secret] = id
	s.keys[s.apiKeyV2] = id
	s.issued = append(s.issued, s.apiKey, s.apiKeyV2)
	return s.apiKey
}

// begin counts a call of m and applies any latency and fault injected for it.
// A non-nil error is the status the call must fail with.
func (s *Server) begin(ctx context.Context, m Method) error {
	s.mu.Lock()
	s.counts[m]++
	f, faulty := s.faults[m]
	if faulty && f.Times > 0 {
		if f.Times == 1 {
			delete(s.faults, m)
		} else {
			g := f
			g.Times--
			s.faults[m] = g
		}
	}
	wait := s.latency + f.Latency
	s.mu.Unlock()

	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if faulty && f.Code != codes.OK {
		msg := f.Message
		if msg == "" {
			msg = "momentotest: injected fault"
		}
		return status.Error(f.Code, msg)
	}
	return nil
}

// unknown answers every RPC the fake does not model. Like Momento, it
// authenticates the caller and checks its permissions first: only a call the
// caller could make gets Unimplemented.
func (s *Server) unknown(_ any, stream grpc.ServerStream) error {
	name, _ := grpc.MethodFromServerStream(stream)
	ctx := stream.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unmodelled = append(s.unmodelled, name)
	c, err := s.authenticateLocked(ctx)
	if err != nil {
		return err
	}
	if !c.mayCall(name, cacheHeader(ctx)) {
		return status.Errorf(codes.PermissionDenied, "momentotest: token may not call %s", name)
	}
	return status.Errorf(codes.Unimplemented, "momentotest: %s is not modelled by the fake", name)
}
