package momentotest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var quiet = logger.NewNoopMomentoLoggerFactory()

func cacheClient(t testing.TB, s *Server, key string) momento.CacheClient {
	t.Helper()
	cp, err := s.CredentialProvider(key)
	if err != nil {
		t.Fatalf("CredentialProvider: %v", err)
	}
	c, err := momento.NewCacheClientWithEagerConnectTimeout(config.LaptopLatestWithLogger(quiet), cp, time.Minute, 5*time.Second)
	if err != nil {
		t.Fatalf("NewCacheClient: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func authClient(t *testing.T, s *Server, key string) momento.AuthClient {
	t.Helper()
	cp, err := s.CredentialProvider(key)
	if err != nil {
		t.Fatalf("CredentialProvider: %v", err)
	}
	c, err := momento.NewAuthClient(config.AuthDefaultWithLogger(quiet), cp)
	if err != nil {
		t.Fatalf("NewAuthClient: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func topicClient(t *testing.T, s *Server, key string) momento.TopicClient {
	t.Helper()
	cp, err := s.CredentialProvider(key)
	if err != nil {
		t.Fatalf("CredentialProvider: %v", err)
	}
	c, err := momento.NewTopicClient(config.TopicsDefaultWithLogger(quiet), cp)
	if err != nil {
		t.Fatalf("NewTopicClient: %v", err)
	}
	// Not closed: in SDK v1.38.0 TopicClient.Close closes a channel that its
	// pool goroutine may still be sending on (a data race, and a possible
	// panic). The process ends with the test binary anyway.
	return c
}

func mintSubscribeOnly(t *testing.T, a momento.AuthClient, cache string, seconds int64) *authresp.GenerateDisposableTokenSuccess {
	t.Helper()
	resp, err := a.GenerateDisposableToken(context.Background(), &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(seconds),
		Scope:     momento.TopicSubscribeOnly(momento.CacheName{Name: cache}, momento.AllTopics{}),
	})
	if err != nil {
		t.Fatalf("GenerateDisposableToken: %v", err)
	}
	return resp.(*authresp.GenerateDisposableTokenSuccess)
}

// grpcCode digs the gRPC status code out of an SDK error, which may wrap it
// more than once (OriginalErr). A nil error is OK.
func grpcCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	for err != nil {
		if st, ok := status.FromError(err); ok {
			return st.Code()
		}
		var me momento.MomentoError
		if !errors.As(err, &me) || me.OriginalErr() == nil {
			break
		}
		err = me.OriginalErr()
	}
	return codes.Unknown
}

func TestGetSetTTL(t *testing.T) {
	s := NewServerT(t, "pizza")
	c := cacheClient(t, s, s.APIKey())
	ctx := context.Background()

	if _, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.String("v"), Ttl: 55 * time.Minute}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	it, ok := s.Item("pizza", "k")
	if !ok || string(it.Value) != "v" || it.TTL != 55*time.Minute {
		t.Fatalf("Item(pizza, k) = %+v, %v; want v with TTL 55m", it, ok)
	}
	resp, err := c.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if hit, ok := resp.(*responses.GetHit); !ok || hit.ValueString() != "v" {
		t.Fatalf("Get = %#v, want hit v", resp)
	}
	if _, ok := s.Item("other", "k"); ok {
		t.Errorf("caches are not separate: item visible in another cache")
	}

	s.FastForward(55*time.Minute - time.Second)
	if _, ok := s.Item("pizza", "k"); !ok {
		t.Fatalf("item expired before its TTL")
	}
	s.FastForward(time.Second)
	resp, err = c.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, ok := resp.(*responses.GetMiss); !ok {
		t.Fatalf("Get after TTL = %#v, want miss", resp)
	}
	if got, want := s.Count(MethodGet), 2; got != want {
		t.Errorf("Count(Get) = %d, want %d", got, want)
	}
	if got, want := s.Count(MethodSet), 1; got != want {
		t.Errorf("Count(Set) = %d, want %d", got, want)
	}
}

func TestMintRecordsScope(t *testing.T) {
	s := NewServerT(t, "pizza")
	a := authClient(t, s, s.APIKey())
	before := s.Now()
	tok := mintSubscribeOnly(t, a, "pizza", 3600)

	mints := s.Mints()
	if len(mints) != 1 {
		t.Fatalf("len(Mints()) = %d, want 1", len(mints))
	}
	m := mints[0]
	want := []Grant{{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "*"}}
	if diff := cmp.Diff(want, m.Grants); diff != "" {
		t.Errorf("mint grants (-want +got):\n%s", diff)
	}
	if m.ValidFor != time.Hour || m.Caller != "key-1" || m.SuperUser {
		t.Errorf("mint = %+v, want ValidFor 1h by key-1", m)
	}
	if m.Token != tok.ApiKey {
		t.Errorf("recorded token differs from the one the SDK returned")
	}
	if got, want := int64(tok.ValidUntil), before.Add(time.Hour).Unix(); got < want || got > want+1 {
		t.Errorf("ValidUntil = %d, want about %d", got, want)
	}
	if got, ok := s.MintOf(tok.ApiKey); !ok || got.ID != 1 {
		t.Errorf("MintOf(token) = %+v, %v", got, ok)
	}
}

func TestMintedTokenIsHeldToItsScope(t *testing.T) {
	s := NewServerT(t, "pizza")
	tok := mintSubscribeOnly(t, authClient(t, s, s.APIKey()), "pizza", 3600)
	ctx := context.Background()

	c := cacheClient(t, s, tok.ApiKey)
	_, err := c.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if got := grpcCode(err); got != codes.PermissionDenied {
		t.Errorf("Get with subscribe-only token: code %v (err %v), want PermissionDenied", got, err)
	}
	_, err = c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.String("v")})
	if got := grpcCode(err); got != codes.PermissionDenied {
		t.Errorf("Set with subscribe-only token: code %v (err %v), want PermissionDenied", got, err)
	}

	tc := topicClient(t, s, tok.ApiKey)
	if _, err := tc.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "orders", Value: momento.String("x")}); grpcCode(err) != codes.PermissionDenied {
		t.Errorf("Publish with subscribe-only token: err %v, want PermissionDenied", err)
	}
	if _, err := tc.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "other", TopicName: "orders"}); grpcCode(err) != codes.PermissionDenied {
		t.Errorf("Subscribe in another cache: err %v, want PermissionDenied", err)
	}

	subCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sub, err := tc.Subscribe(subCtx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "orders"})
	if err != nil {
		t.Fatalf("Subscribe in scope: %v", err)
	}
	owner := topicClient(t, s, s.APIKey())
	if _, err := owner.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "orders", Value: momento.String("order 7 is ready")}); err != nil {
		t.Fatalf("Publish with account key: %v", err)
	}
	item, err := sub.Item(subCtx)
	if err != nil {
		t.Fatalf("subscription Item: %v", err)
	}
	if got, ok := item.(momento.String); !ok || string(got) != "order 7 is ready" {
		t.Errorf("subscription Item = %#v, want the published text", item)
	}

	// A disposable token may not mint, and an expired one is refused.
	_, err = authClient(t, s, tok.ApiKey).GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(60),
		Scope:     momento.TopicSubscribeOnly(momento.AllCaches{}, momento.AllTopics{}),
	})
	if got := grpcCode(err); got != codes.PermissionDenied {
		t.Errorf("mint by a disposable token: code %v (err %v), want PermissionDenied", got, err)
	}
	if n := len(s.Mints()); n != 1 {
		t.Errorf("len(Mints()) = %d after a refused mint, want 1", n)
	}
	s.FastForward(time.Hour)
	_, err = tc.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "orders"})
	if got := grpcCode(err); got != codes.Unauthenticated {
		t.Errorf("Subscribe with expired token: code %v (err %v), want Unauthenticated", got, err)
	}
}

func TestRotateAPIKey(t *testing.T) {
	s := NewServerT(t, "pizza")
	old := s.APIKey()
	tok := mintSubscribeOnly(t, authClient(t, s, old), "pizza", 600)
	fresh := s.RotateAPIKey()
	if fresh == old {
		t.Fatal("RotateAPIKey returned the old key")
	}
	ctx := context.Background()
	_, err := cacheClient(t, s, old).Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if got := grpcCode(err); got != codes.Unauthenticated {
		t.Errorf("Get with revoked key: code %v, want Unauthenticated", got)
	}
	if _, err := cacheClient(t, s, fresh).Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")}); err != nil {
		t.Errorf("Get with new key: %v", err)
	}
	m := mintSubscribeOnly(t, authClient(t, s, fresh), "pizza", 60)
	if got, _ := s.MintOf(m.ApiKey); got.Caller != "key-2" {
		t.Errorf("mint with rotated key recorded caller %q, want key-2", got.Caller)
	}
	sub, err := topicClient(t, s, tok.ApiKey).Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "t"})
	if err != nil {
		t.Errorf("token minted before rotation stopped working: %v", err)
	} else {
		sub.Close()
	}
}

func TestFaults(t *testing.T) {
	s := NewServerT(t, "pizza")
	c := cacheClient(t, s, s.APIKey())
	ctx := context.Background()
	get := func(ctx context.Context) error {
		_, err := c.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
		return err
	}

	s.SetFault(MethodGet, Fault{Code: codes.ResourceExhausted, Times: 1})
	if got := grpcCode(get(ctx)); got != codes.ResourceExhausted {
		t.Errorf("Get with fault: code %v, want ResourceExhausted", got)
	}
	if err := get(ctx); err != nil {
		t.Errorf("Get after a one-time fault: %v", err)
	}

	s.SetFault(MethodGet, Fault{Latency: time.Minute})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if got := grpcCode(get(short)); got != codes.DeadlineExceeded {
		t.Errorf("Get slower than its deadline: code %v, want DeadlineExceeded", got)
	}
	s.ClearFaults()
	if err := get(ctx); err != nil {
		t.Errorf("Get after ClearFaults: %v", err)
	}

	// Unmodelled calls fail loudly and are recorded.
	_, err := c.ItemGetType(ctx, &momento.ItemGetTypeRequest{CacheName: "pizza", Key: momento.String("k")})
	if got := grpcCode(err); got != codes.Unimplemented {
		t.Errorf("ItemGetType: code %v, want Unimplemented", got)
	}
	if diff := cmp.Diff([]string{"/cache_client.Scs/ItemGetType"}, s.Unmodelled()); diff != "" {
		t.Errorf("Unmodelled() (-want +got):\n%s", diff)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewServerT(t, "pizza")
	c := cacheClient(t, s, s.APIKey())
	a := authClient(t, s, s.APIKey())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			key := momento.String(string(rune('a' + i)))
			if _, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: key, Value: key}); err != nil {
				t.Errorf("Set: %v", err)
			}
			if _, err := c.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: key}); err != nil {
				t.Errorf("Get: %v", err)
			}
			if _, err := a.GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
				ExpiresIn: utils.ExpiresInSeconds(60),
				Scope:     momento.TopicSubscribeOnly(momento.CacheName{Name: "pizza"}, momento.AllTopics{}),
			}); err != nil {
				t.Errorf("GenerateDisposableToken: %v", err)
			}
			s.FastForward(time.Millisecond)
			_ = s.Mints()
		}()
	}
	wg.Wait()
	if got := len(s.Keys("pizza")); got != 20 {
		t.Errorf("len(Keys(pizza)) = %d, want 20", got)
	}
	if got := s.TotalCount(); got != 60 {
		t.Errorf("TotalCount() = %d, want 60", got)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseStopsServing(t *testing.T) {
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	select {
	case <-s.serveDone:
	default:
		t.Errorf("Close returned before Serve did")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the fake still accepts connections after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

// TestV2APIKey: the key form Momento issues since December 2025 works through
// the real SDK as the v1 form does, and is revoked with it.
func TestV2APIKey(t *testing.T) {
	s := NewServerT(t, "pizza")
	v2 := s.APIKeyV2()
	if v2 == "" || v2 == s.APIKey() {
		t.Fatalf("APIKeyV2() = %q, want a key of its own", v2)
	}
	ctx := context.Background()
	if _, err := cacheClient(t, s, v2).Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.String("v")}); err != nil {
		t.Fatalf("Set with the v2 key: %v", err)
	}
	tok := mintSubscribeOnly(t, authClient(t, s, v2), "pizza", 600)
	if got, _ := s.MintOf(tok.ApiKey); got.Caller != "key-1" {
		t.Errorf("mint with the v2 key recorded caller %q, want key-1 (the same account key as APIKey)", got.Caller)
	}
	// The token it mints is a v1 token naming the fake's endpoint, as a
	// real one names the cell.
	if tok.Endpoint != DefaultEndpoint {
		t.Errorf("token minted with the v2 key names endpoint %q, want %q", tok.Endpoint, DefaultEndpoint)
	}

	s.RotateAPIKey()
	if s.APIKeyV2() == v2 {
		t.Fatal("RotateAPIKey kept the v2 key")
	}
	_, err := cacheClient(t, s, v2).Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if got := grpcCode(err); got != codes.Unauthenticated {
		t.Errorf("Get with a revoked v2 key: code %v, want Unauthenticated", got)
	}
	if _, err := cacheClient(t, s, s.APIKeyV2()).Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")}); err != nil {
		t.Errorf("Get with the new v2 key: %v", err)
	}
}

// TestForeignV2APIKey: a well-formed v2 key that this fake did not issue
// (another account's) is Unauthenticated, for data calls and mints alike.
func TestForeignV2APIKey(t *testing.T) {
	s := NewServerT(t, "pizza")
	other := NewServerT(t, "pizza")
	foreign := other.APIKeyV2()
	ctx := context.Background()
	_, err := cacheClient(t, s, foreign).Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if got := grpcCode(err); got != codes.Unauthenticated {
		t.Errorf("Get with a foreign v2 key: code %v (err %v), want Unauthenticated", got, err)
	}
	_, err = authClient(t, s, foreign).GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(60),
		Scope:     momento.TopicSubscribeOnly(momento.AllCaches{}, momento.AllTopics{}),
	})
	if got := grpcCode(err); got != codes.Unauthenticated {
		t.Errorf("mint with a foreign v2 key: code %v (err %v), want Unauthenticated", got, err)
	}
	if n := len(s.Mints()); n != 0 {
		t.Errorf("len(Mints()) = %d after a foreign key's mint, want 0", n)
	}
}
