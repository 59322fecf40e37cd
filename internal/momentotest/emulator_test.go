package momentotest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sdkCode returns the Momento SDK's error code for err ("" if none).
func sdkCode(err error) string {
	var me momento.MomentoError
	if errors.As(err, &me) {
		return me.Code()
	}
	return ""
}

func TestUnknownCacheIsNotFound(t *testing.T) {
	s := NewServerT(t, "pizza")
	key := s.APIKey()
	c := cacheClient(t, s, key)
	tc := topicClient(t, s, key)
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error {
			_, err := c.Get(ctx, &momento.GetRequest{CacheName: "piza", Key: momento.String("k")})
			return err
		}},
		{"Set", func() error {
			_, err := c.Set(ctx, &momento.SetRequest{CacheName: "piza", Key: momento.String("k"), Value: momento.String("v")})
			return err
		}},
		{"Delete", func() error {
			_, err := c.Delete(ctx, &momento.DeleteRequest{CacheName: "piza", Key: momento.String("k")})
			return err
		}},
		{"Increment", func() error {
			_, err := c.Increment(ctx, &momento.IncrementRequest{CacheName: "piza", Field: momento.String("k"), Amount: 1})
			return err
		}},
		{"Publish", func() error {
			_, err := tc.Publish(ctx, &momento.TopicPublishRequest{CacheName: "piza", TopicName: "t", Value: momento.String("v")})
			return err
		}},
		{"Subscribe", func() error {
			_, err := tc.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "piza", TopicName: "t"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := grpcCode(err); got != codes.NotFound {
				t.Errorf("%s in a cache never created: code %v (err %v), want NotFound", tt.name, got, err)
			}
			if got := sdkCode(err); got != momento.CacheNotFoundError {
				t.Errorf("%s in a cache never created: SDK code %q, want %q", tt.name, got, momento.CacheNotFoundError)
			}
		})
	}
	if err := s.SetItem("piza", "k", []byte("v"), time.Minute); status.Code(err) != codes.NotFound {
		t.Errorf("SetItem in a cache never created = %v, want NotFound", err)
	}
	if _, err := NewServer(Options{Caches: []string{"a", "a"}}); status.Code(errors.Unwrap(err)) != codes.AlreadyExists {
		t.Errorf("NewServer with a cache twice = %v, want AlreadyExists", err)
	}
}

// TestControlPlane follows the Go SDK's control spec (control_test.go,
// "creates, lists, and deletes caches").
func TestControlPlane(t *testing.T) {
	s := NewServerT(t)
	c := cacheClient(t, s, s.APIKey())
	ctx := context.Background()

	for _, name := range []string{"b", "a"} {
		resp, err := c.CreateCache(ctx, &momento.CreateCacheRequest{CacheName: name})
		if _, ok := resp.(*responses.CreateCacheSuccess); err != nil || !ok {
			t.Fatalf("CreateCache(%s) = %#v, %v; want success", name, resp, err)
		}
		resp, err = c.CreateCache(ctx, &momento.CreateCacheRequest{CacheName: name})
		if _, ok := resp.(*responses.CreateCacheAlreadyExists); err != nil || !ok {
			t.Errorf("CreateCache(%s) again = %#v, %v; want already exists", name, resp, err)
		}
	}
	list := func() []string {
		t.Helper()
		resp, err := c.ListCaches(ctx, &momento.ListCachesRequest{})
		if err != nil {
			t.Fatalf("ListCaches: %v", err)
		}
		var names []string
		for _, info := range resp.(*responses.ListCachesSuccess).Caches() {
			names = append(names, info.Name())
		}
		return names
	}
	if diff := cmp.Diff([]string{"a", "b"}, list()); diff != "" {
		t.Errorf("ListCaches (-want +got):\n%s", diff)
	}
	if _, err := c.Set(ctx, &momento.SetRequest{CacheName: "a", Key: momento.String("k"), Value: momento.String("v")}); err != nil {
		t.Fatalf("Set in a created cache: %v", err)
	}

	// A subscription ends with NotFound when its cache is deleted. (Seen on
	// the wire: the SDK v1.38.0 reconnects forever, whatever the status.)
	recv := rawSubscribe(t, s, s.APIKey(), "a", "t")

	resp, err := c.DeleteCache(ctx, &momento.DeleteCacheRequest{CacheName: "a"})
	if _, ok := resp.(*responses.DeleteCacheSuccess); err != nil || !ok {
		t.Fatalf("DeleteCache(a) = %#v, %v; want success", resp, err)
	}
	if err := recv(); status.Code(err) != codes.NotFound {
		t.Errorf("subscription after DeleteCache: err %v, want NotFound", err)
	}
	// The SDK reports deleting a missing cache as a success; the fake
	// answers NotFound, as Momento does, which the Go API shows.
	if err := s.DeleteCache("a"); status.Code(err) != codes.NotFound {
		t.Errorf("DeleteCache(a) again = %v, want NotFound", err)
	}
	if _, err := c.Get(ctx, &momento.GetRequest{CacheName: "a", Key: momento.String("k")}); grpcCode(err) != codes.NotFound {
		t.Errorf("Get in a deleted cache: err %v, want NotFound", err)
	}
	if err := s.CreateCache("a"); err != nil {
		t.Fatalf("CreateCache(a) after delete: %v", err)
	}
	if _, ok := s.Item("a", "k"); ok {
		t.Errorf("a cache made anew kept the items of the deleted one")
	}
	if diff := cmp.Diff([]string{"a", "b"}, s.Caches()); diff != "" {
		t.Errorf("Caches() (-want +got):\n%s", diff)
	}
	if got := s.Count(MethodCreateCache); got != 4 {
		t.Errorf("Count(CreateCache) = %d, want 4 (the Go API is not counted)", got)
	}
}

func TestHeartbeats(t *testing.T) {
	s, err := NewServer(Options{Caches: []string{"pizza"}, HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sub, err := topicClient(t, s, s.APIKey()).Subscribe(context.Background(), &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "idle"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		ev, err := sub.Event(ctx)
		if _, ok := ev.(momento.TopicHeartbeat); err != nil || !ok {
			t.Fatalf("Event %d on an idle subscription = %#v, %v; want a heartbeat", i, ev, err)
		}
	}

	// Heartbeats are what let an idle Item see its deadline: the SDK checks
	// it only between messages.
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	done := make(chan error, 1)
	go func() {
		_, err := sub.Item(short)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Item past its deadline: err %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Item on an idle subscription never returned after its deadline")
	}
}

// events reads n events from sub.
func events(t *testing.T, sub momento.TopicSubscription, n int) []momento.TopicEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []momento.TopicEvent
	for len(out) < n {
		ev, err := sub.Event(ctx)
		if err != nil {
			t.Fatalf("Event after %d events: %v", len(out), err)
		}
		if _, ok := ev.(momento.TopicHeartbeat); !ok {
			out = append(out, ev)
		}
	}
	return out
}

// summary describes topic events as text, for diffs.
func summary(evs []momento.TopicEvent) []string {
	var out []string
	for _, ev := range evs {
		switch e := ev.(type) {
		case momento.TopicItem:
			out = append(out, fmt.Sprintf("item %d %v from %q", e.GetTopicSequenceNumber(), e.GetValue(), e.GetPublisherId()))
		case momento.TopicDiscontinuity:
			out = append(out, fmt.Sprintf("discontinuity %d..%d", e.GetLastKnownSequenceNumber(), e.GetNewSequenceNumber()))
		}
	}
	return out
}

func publishN(t *testing.T, tc momento.TopicClient, topic string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := tc.Publish(context.Background(), &momento.TopicPublishRequest{CacheName: "pizza", TopicName: topic, Value: momento.String(fmt.Sprint(i))}); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
}

func TestResume(t *testing.T) {
	s, err := NewServer(Options{Caches: []string{"pizza"}, TopicHistory: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tc := topicClient(t, s, s.APIKey())
	ctx := context.Background()
	subscribe := func(resumeAt, page uint64) momento.TopicSubscription {
		t.Helper()
		sub, err := tc.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "t", ResumeAtTopicSequenceNumber: resumeAt, SequencePage: page})
		if err != nil {
			t.Fatalf("Subscribe(resume at %d, page %d): %v", resumeAt, page, err)
		}
		t.Cleanup(sub.Close)
		return sub
	}

	first := subscribe(0, 0)
	publishN(t, tc, "t", 1, 2)
	got := events(t, first, 2)
	page := got[1].(momento.TopicItem).GetTopicSequencePage()
	if page == 0 {
		t.Fatal("items carry no sequence page")
	}
	publishN(t, tc, "t", 3, 4) // published while "reconnecting"

	tests := []struct {
		name     string
		resumeAt uint64
		page     uint64
		publish  int // published after resubscribing, next in sequence
		want     []string
	}{
		{
			name: "from the next item", resumeAt: 3, page: page,
			want: []string{`item 3 3 from ""`, `item 4 4 from ""`},
		},
		{
			name: "without a page", resumeAt: 4,
			want: []string{`item 4 4 from ""`},
		},
		{
			name: "from the oldest kept", resumeAt: 1, page: page, publish: 1,
			want: []string{`item 1 1 from ""`, `item 2 2 from ""`, `item 3 3 from ""`, `item 4 4 from ""`, `item 5 5 from ""`},
		},
		{
			// 4 items are kept: 2 to 5; item 1 is gone.
			name: "lost to the bounded history", resumeAt: 1, page: page,
			want: []string{"discontinuity 0..1", `item 2 2 from ""`, `item 3 3 from ""`, `item 4 4 from ""`, `item 5 5 from ""`},
		},
		{
			name: "of another page", resumeAt: 2, page: page + 100,
			want: []string{"discontinuity 1..5", `item 6 6 from ""`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subscribe(tt.resumeAt, tt.page)
			if tt.publish > 0 {
				publishN(t, tc, "t", 5, 4+tt.publish)
			}
			if tt.name == "of another page" {
				publishN(t, tc, "t", 6, 6)
			}
			if diff := cmp.Diff(tt.want, summary(events(t, sub, len(tt.want)))); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlowSubscriberGetsDiscontinuity(t *testing.T) {
	s := NewServerT(t, "pizza")
	tc := topicClient(t, s, s.APIKey())
	sub, err := tc.Subscribe(context.Background(), &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "t"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	// Nobody reads while far more is published than the transport's flow
	// control window and the fake's per-subscriber buffer hold.
	big := strings.Repeat("x", maxTopicValue)
	const n = 2000
	for i := range n {
		if _, err := tc.Publish(context.Background(), &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "t", Value: momento.String(big)}); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last uint64
	var gaps int
	for last < n && gaps < n {
		ev, err := sub.Event(ctx)
		if err != nil {
			t.Fatalf("Event after item %d: %v", last, err)
		}
		switch e := ev.(type) {
		case momento.TopicDiscontinuity:
			if e.GetLastKnownSequenceNumber() != last || e.GetNewSequenceNumber() <= last {
				t.Fatalf("discontinuity %d..%d after item %d", e.GetLastKnownSequenceNumber(), e.GetNewSequenceNumber(), last)
			}
			gaps++
			last = e.GetNewSequenceNumber()
		case momento.TopicItem:
			if got := e.GetTopicSequenceNumber(); got != last+1 {
				t.Fatalf("item %d after %d with no discontinuity between", got, last)
			}
			last = e.GetTopicSequenceNumber()
		}
	}
	if gaps == 0 {
		t.Errorf("a subscriber that lost items got no discontinuity")
	}
}

func TestPublisherID(t *testing.T) {
	s := NewServerT(t, "pizza")
	ctx := context.Background()
	tokenID := "user-7"
	resp, err := authClient(t, s, s.APIKey()).GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(60),
		Scope:     momento.TopicPublishSubscribe(momento.CacheName{Name: "pizza"}, momento.AllTopics{}),
		Props:     momento.DisposableTokenProps{TokenId: &tokenID},
	})
	if err != nil {
		t.Fatalf("GenerateDisposableToken: %v", err)
	}
	tc := topicClient(t, s, resp.(*authresp.GenerateDisposableTokenSuccess).ApiKey)
	sub, err := tc.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "t"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	publishN(t, tc, "t", 1, 1)
	publishN(t, topicClient(t, s, s.APIKey()), "t", 2, 2)
	want := []string{`item 1 1 from "user-7"`, `item 2 2 from ""`}
	if diff := cmp.Diff(want, summary(events(t, sub, 2))); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestSubscriptionEndsWhenItsTokenExpires: an open subscription made with a
// minted token ends with Unauthenticated once the token expires on the
// fake's clock, whether real time or FastForward takes it there; one made
// with the account key goes on. (The stream is read without the SDK: the Go
// SDK's default topic configuration resubscribes after any error, forever.)
func TestSubscriptionEndsWhenItsTokenExpires(t *testing.T) {
	tests := []struct {
		name    string
		seconds int64
		expire  func(s *Server)
	}{
		{"FastForward", 60, func(s *Server) { s.FastForward(time.Minute) }},
		{"RealTime", 1, func(*Server) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServerT(t, "pizza")
			tok := mintSubscribeOnly(t, authClient(t, s, s.APIKey()), "pizza", tt.seconds)
			recv := rawSubscribe(t, s, tok.ApiKey, "pizza", "t")
			recvKey := rawSubscribe(t, s, s.APIKey(), "pizza", "t")
			tt.expire(s)
			if err := recv(); status.Code(err) != codes.Unauthenticated {
				t.Errorf("the token's subscription ended with %v, want Unauthenticated", err)
			}
			ended := make(chan error, 1)
			go func() { ended <- recvKey() }()
			select {
			case err := <-ended:
				t.Errorf("the account key's subscription ended with %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// rawSubscribe subscribes with key (a v1 account key or minted token)
// without the SDK, and returns a function that reads the stream until it
// ends and returns its status.
func rawSubscribe(t *testing.T, s *Server, key, cache, topic string) func() error {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", secretOf(t, key))
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/cache_client.pubsub.Pubsub/Subscribe")
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	req := messageType("cache_client.pubsub._SubscriptionRequest").New()
	set(req, "cache_name", protoreflect.ValueOfString(cache))
	set(req, "topic", protoreflect.ValueOfString(topic))
	if err := stream.SendMsg(req.Interface()); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	// The first heartbeat says the subscription is registered.
	if err := stream.RecvMsg(messageType("cache_client.pubsub._SubscriptionItem").New().Interface()); err != nil {
		t.Fatalf("first RecvMsg: %v", err)
	}
	return func() error {
		for {
			if err := stream.RecvMsg(messageType("cache_client.pubsub._SubscriptionItem").New().Interface()); err != nil {
				return err
			}
		}
	}
}

// rawMint calls GenerateDisposableToken without the SDK, as another client
// (the Node SDK) does: req is the request in protojson, md the call's
// metadata.
func rawMint(t *testing.T, s *Server, req string, md ...string) error {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer conn.Close()
	in := messageType("token._GenerateDisposableTokenRequest").New().Interface()
	if err := protojson.Unmarshal([]byte(req), in); err != nil {
		t.Fatalf("request %s: %v", req, err)
	}
	out := messageType("token._GenerateDisposableTokenResponse").New().Interface()
	ctx := metadata.AppendToOutgoingContext(context.Background(), md...)
	return conn.Invoke(ctx, "/token.Token/GenerateDisposableToken", in, out)
}

// secretOf returns the api_key inside a v1 key.
func secretOf(t *testing.T, key string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.APIKey
}

// mintRequest is a GenerateDisposableToken request in protojson with
// authToken in its body, valid for seconds, with n topic permissions.
func mintRequest(authToken string, seconds, n int) string {
	perms := make([]string, n)
	for i := range perms {
		perms[i] = fmt.Sprintf(`{"topic_permissions": {"role": "TopicReadOnly", "cache_selector": {"cache_name": "pizza"}, "topic_selector": {"topic_name": "t%d"}}}`, i)
	}
	return fmt.Sprintf(`{"expires": {"valid_for_seconds": %d}, "auth_token": %q, "permissions": {"explicit": {"permissions": [%s]}}}`,
		seconds, authToken, strings.Join(perms, ","))
}

func TestMintAuthentication(t *testing.T) {
	s := NewServerT(t, "pizza")
	secret := secretOf(t, s.APIKey())
	minted := secretOf(t, mintSubscribeOnly(t, authClient(t, s, s.APIKey()), "pizza", 60).ApiKey)

	tests := []struct {
		name      string
		authToken string
		header    string
		want      codes.Code
	}{
		{name: "body only, as the Node SDK sends", authToken: secret, want: codes.OK},
		{name: "header only", header: secret, want: codes.OK},
		{name: "header and body agree", authToken: secret, header: secret, want: codes.OK},
		{name: "neither", want: codes.Unauthenticated},
		{name: "unknown key in the body", authToken: "not-a-key", want: codes.Unauthenticated},
		{name: "body disagrees with header", authToken: "not-a-key", header: secret, want: codes.Unauthenticated},
		{name: "disposable token in the body", authToken: minted, want: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var md []string
			if tt.header != "" {
				md = []string{"authorization", tt.header}
			}
			before := len(s.Mints())
			err := rawMint(t, s, mintRequest(tt.authToken, 60, 1), md...)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("mint: code %v (err %v), want %v", got, err, tt.want)
			}
			wantMints := before
			if tt.want == codes.OK {
				wantMints++
			}
			if got := len(s.Mints()); got != wantMints {
				t.Errorf("len(Mints()) = %d, want %d", got, wantMints)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	s := NewServerT(t, "pizza")
	c := cacheClient(t, s, s.APIKey())
	tc := topicClient(t, s, s.APIKey())
	ctx := context.Background()
	secret := secretOf(t, s.APIKey())

	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"TTL of 24h", func() error {
			_, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.String("v"), Ttl: 24 * time.Hour})
			return err
		}, codes.OK},
		{"TTL over 24h", func() error {
			_, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.String("v"), Ttl: 24*time.Hour + time.Millisecond})
			return err
		}, codes.InvalidArgument},
		{"Increment TTL over 24h", func() error {
			_, err := c.Increment(ctx, &momento.IncrementRequest{CacheName: "pizza", Field: momento.String("n"), Amount: 1, Ttl: &utils.CollectionTtl{Ttl: 25 * time.Hour}})
			return err
		}, codes.InvalidArgument},
		{"item of 5 MiB", func() error {
			_, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.Bytes(make([]byte, maxItemSize-1))})
			return err
		}, codes.OK},
		{"item over 5 MiB", func() error {
			_, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("k"), Value: momento.Bytes(make([]byte, maxItemSize))})
			return err
		}, codes.ResourceExhausted},
		{"message of 4 KiB", func() error {
			_, err := tc.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "t", Value: momento.Bytes(make([]byte, maxTopicValue))})
			return err
		}, codes.OK},
		{"message over 4 KiB", func() error {
			_, err := tc.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "t", Value: momento.String(strings.Repeat("x", maxTopicValue+1))})
			return err
		}, codes.ResourceExhausted},
		{"20 permissions", func() error { return rawMint(t, s, mintRequest(secret, 60, 20)) }, codes.OK},
		{"21 permissions", func() error { return rawMint(t, s, mintRequest(secret, 60, 21)) }, codes.InvalidArgument},
		{"token for 1h", func() error { return rawMint(t, s, mintRequest(secret, 3600, 1)) }, codes.OK},
		{"token for over 1h", func() error { return rawMint(t, s, mintRequest(secret, 3601, 1)) }, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := grpcCode(tt.call()); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEndSubscriptions ends open subscriptions as a server would: cleanly,
// or with a status; later subscriptions are served as usual.
func TestEndSubscriptions(t *testing.T) {
	s := NewServerT(t, "pizza")
	if n := s.EndSubscriptions(nil); n != 0 {
		t.Errorf("EndSubscriptions with none open = %d, want 0", n)
	}
	clean, failed := rawSubscribe(t, s, s.APIKey(), "pizza", "a"), rawSubscribe(t, s, s.APIKey(), "pizza", "b")
	if n := s.EndSubscriptions(nil); n != 2 {
		t.Errorf("EndSubscriptions(nil) = %d, want 2", n)
	}
	if err := clean(); err != io.EOF {
		t.Errorf("a subscription ended cleanly: %v, want io.EOF (status OK)", err)
	}
	if err := failed(); err != io.EOF {
		t.Errorf("the other: %v, want io.EOF", err)
	}
	again := rawSubscribe(t, s, s.APIKey(), "pizza", "a")
	if n := s.EndSubscriptions(status.Error(codes.Unavailable, "draining")); n != 1 {
		t.Errorf("EndSubscriptions(Unavailable) = %d, want 1", n)
	}
	if err := again(); status.Code(err) != codes.Unavailable {
		t.Errorf("a subscription ended with Unavailable: %v", err)
	}
}

// TestOnSubscription publishes from the hook as a subscription ends and as
// its successor opens: the first item reaches neither, the second comes
// straight after the new one's first heartbeat.
func TestOnSubscription(t *testing.T) {
	s := NewServerT(t, "pizza")
	type event struct {
		cache, topic string
		open         bool
	}
	var (
		mu     sync.Mutex
		events []event
	)
	published := make(chan uint64, 2)
	s.OnSubscription(func(cache, topic string, open bool) {
		mu.Lock()
		events = append(events, event{cache, topic, open})
		n := len(events)
		mu.Unlock()
		if n == 2 || n == 3 { // the first subscription's end, and the second's start
			seq, err := s.Publish(cache, topic, fmt.Sprint("published as ", n))
			if err != nil {
				t.Errorf("Publish from the hook: %v", err)
			}
			published <- seq
		}
	})
	first := rawSubscribe(t, s, s.APIKey(), "pizza", "orders")
	if n := s.EndSubscriptions(status.Error(codes.Unavailable, "draining")); n != 1 {
		t.Fatalf("EndSubscriptions = %d, want 1", n)
	}
	if err := first(); status.Code(err) != codes.Unavailable {
		t.Fatalf("the first subscription: %v, want Unavailable", err)
	}
	if seq := <-published; seq != 1 {
		t.Fatalf("published as the first ended: %d, want 1", seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := topicClient(t, s, s.APIKey()).Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "orders"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if seq := <-published; seq != 2 {
		t.Fatalf("published as the second opened: %d, want 2", seq)
	}
	ev, err := sub.Event(ctx)
	if item, ok := ev.(momento.TopicItem); err != nil || !ok || item.GetTopicSequenceNumber() != 2 || item.GetValue() != momento.String("published as 3") {
		t.Fatalf("the second subscription's first event = %#v, %v; want item 2, published as it opened", ev, err)
	}
	s.OnSubscription(nil)
	sub.Close()
	want := []event{{"pizza", "orders", true}, {"pizza", "orders", false}, {"pizza", "orders", true}}
	mu.Lock()
	got := events[:3]
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("hook calls %v, want %v", got, want)
	}
}

// TestPublish publishes through the Go API and receives through the SDK:
// numbered as over the wire, refused for a missing cache or an oversized
// message.
func TestPublish(t *testing.T) {
	s := NewServerT(t, "pizza")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := topicClient(t, s, s.APIKey()).Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "orders"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for i, text := range []string{"placed", "in the oven"} {
		if seq, err := s.Publish("pizza", "orders", text); err != nil || seq != uint64(i+1) {
			t.Fatalf("Publish(%q) = %d, %v; want %d", text, seq, err, i+1)
		}
	}
	for _, want := range []string{"placed", "in the oven"} {
		item, err := sub.Item(ctx)
		if err != nil || item != momento.String(want) {
			t.Fatalf("Item = %v, %v; want %q", item, err, want)
		}
	}
	if _, err := s.Publish("piza", "orders", "x"); status.Code(err) != codes.NotFound {
		t.Errorf("Publish to a missing cache: %v, want NotFound", err)
	}
	if _, err := s.Publish("pizza", "orders", strings.Repeat("x", 4<<10+1)); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("Publish of 4 KiB + 1: %v, want ResourceExhausted", err)
	}
}
