package momentotest

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	"github.com/momentohq/client-sdk-go/utils"
	"google.golang.org/grpc/codes"
)

func increment(t *testing.T, c momento.CacheClient, key string, amount int64, ttl time.Duration) (int64, error) {
	t.Helper()
	req := &momento.IncrementRequest{CacheName: "pizza", Field: momento.String(key), Amount: amount}
	if ttl > 0 {
		req.Ttl = &utils.CollectionTtl{Ttl: ttl}
	}
	resp, err := c.Increment(context.Background(), req)
	if err != nil {
		return 0, err
	}
	return resp.(*responses.IncrementSuccess).Value(), nil
}

// TestIncrement follows the Go SDK's own scalar spec (scalar_test.go,
// "Increment"): a missing key starts at the amount, amounts may be negative or
// zero, and a value written by Set is incremented when it is a base-10 integer.
func TestIncrement(t *testing.T) {
	s := NewServerT(t, "pizza")
	c := cacheClient(t, s, s.APIKey())
	ctx := context.Background()

	for _, step := range []struct {
		amount, want int64
	}{{1, 1}, {41, 42}, {-1042, -1000}} {
		got, err := increment(t, c, "field", step.amount, 0)
		if err != nil || got != step.want {
			t.Fatalf("Increment(field, %d) = %d, %v; want %d", step.amount, got, err, step.want)
		}
	}
	if it, ok := s.Item("pizza", "field"); !ok || string(it.Value) != "-1000" {
		t.Errorf("Item(pizza, field) = %q, %v; want the base-10 string -1000", it.Value, ok)
	}

	if _, err := c.Set(ctx, &momento.SetRequest{CacheName: "pizza", Key: momento.String("set"), Value: momento.String("10")}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	for _, step := range []struct {
		amount, want int64
	}{{0, 10}, {90, 100}} {
		if got, err := increment(t, c, "set", step.amount, 0); err != nil || got != step.want {
			t.Fatalf("Increment(set, %d) = %d, %v; want %d", step.amount, got, err, step.want)
		}
	}

	tests := []struct {
		name   string
		value  string
		amount int64
	}{
		{name: "not a number", value: "monkey", amount: 1},
		{name: "padded", value: " 1", amount: 1},
		{name: "overflow", value: strconv.FormatInt(math.MaxInt64, 10), amount: 1},
		{name: "underflow", value: strconv.FormatInt(math.MinInt64, 10), amount: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetItem("pizza", tt.name, []byte(tt.value), time.Minute)
			_, err := increment(t, c, tt.name, tt.amount, 0)
			if got := grpcCode(err); got != codes.FailedPrecondition {
				t.Errorf("Increment on %q by %d: code %v (err %v), want FailedPrecondition", tt.value, tt.amount, got, err)
			}
			if it, _ := s.Item("pizza", tt.name); string(it.Value) != tt.value {
				t.Errorf("a refused Increment changed the value to %q", it.Value)
			}
		})
	}
}

func TestIncrementTTL(t *testing.T) {
	s := NewServerT(t, "pizza")
	s.SetTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	c := cacheClient(t, s, s.APIKey())

	// The first Increment creates the item with the request's TTL.
	if _, err := increment(t, c, "window", 1, 2*time.Second); err != nil {
		t.Fatalf("Increment: %v", err)
	}
	if it, _ := s.Item("pizza", "window"); it.TTL != 2*time.Second {
		t.Errorf("TTL after the first Increment = %v, want 2s", it.TTL)
	}
	// A later one sets it again: the request has no "keep the TTL" flag.
	s.FastForward(1500 * time.Millisecond)
	if got, err := increment(t, c, "window", 1, 2*time.Second); err != nil || got != 2 {
		t.Fatalf("second Increment = %d, %v; want 2", got, err)
	}
	s.FastForward(1500 * time.Millisecond)
	if _, ok := s.Item("pizza", "window"); !ok {
		t.Errorf("item expired 1.5s after an Increment with a 2s TTL")
	}
	s.FastForward(500 * time.Millisecond)
	if _, ok := s.Item("pizza", "window"); ok {
		t.Errorf("item outlived its TTL")
	}
	// Once expired, the count starts again.
	if got, err := increment(t, c, "window", 1, time.Second); err != nil || got != 1 {
		t.Errorf("Increment after expiry = %d, %v; want 1", got, err)
	}
	// Without a TTL the client's default (a minute in cacheClient) is sent.
	if _, err := increment(t, c, "default", 1, 0); err != nil {
		t.Fatalf("Increment: %v", err)
	}
	if it, _ := s.Item("pizza", "default"); it.TTL != time.Minute {
		t.Errorf("TTL with the client default = %v, want 1m", it.TTL)
	}
}

func TestDelete(t *testing.T) {
	s := NewServerT(t, "pizza")
	c := cacheClient(t, s, s.APIKey())
	ctx := context.Background()
	s.SetItem("pizza", "k", []byte("v"), time.Minute)

	for range 2 { // deleting a missing key succeeds too
		if _, err := c.Delete(ctx, &momento.DeleteRequest{CacheName: "pizza", Key: momento.String("k")}); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	resp, err := c.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	if _, ok := resp.(*responses.GetMiss); err != nil || !ok {
		t.Errorf("Get after Delete = %#v, %v; want a miss", resp, err)
	}
	if got := s.Count(MethodDelete); got != 2 {
		t.Errorf("Count(Delete) = %d, want 2", got)
	}
}

// TestNotPermittedBeforeNotImplemented: a subscribe-only token is refused
// every cache write and control-plane call with PermissionDenied, whether the
// fake models the call or not.
func TestNotPermittedBeforeNotImplemented(t *testing.T) {
	s := NewServerT(t, "pizza")
	tok := mintSubscribeOnly(t, authClient(t, s, s.APIKey()), "pizza", 600)
	c := cacheClient(t, s, tok.ApiKey)
	ctx := context.Background()
	key := momento.String("k")

	tests := []struct {
		name string
		call func() error
	}{
		{"Delete", func() error {
			_, err := c.Delete(ctx, &momento.DeleteRequest{CacheName: "pizza", Key: key})
			return err
		}},
		{"Increment", func() error {
			_, err := c.Increment(ctx, &momento.IncrementRequest{CacheName: "pizza", Field: key, Amount: 1})
			return err
		}},
		{"SetIfAbsent", func() error {
			_, err := c.SetIfAbsent(ctx, &momento.SetIfAbsentRequest{CacheName: "pizza", Key: key, Value: key})
			return err
		}},
		{"SetIfPresentAndNotEqual", func() error {
			_, err := c.SetIfPresentAndNotEqual(ctx, &momento.SetIfPresentAndNotEqualRequest{CacheName: "pizza", Key: key, Value: key, NotEqual: key})
			return err
		}},
		{"ItemGetType", func() error {
			_, err := c.ItemGetType(ctx, &momento.ItemGetTypeRequest{CacheName: "pizza", Key: key})
			return err
		}},
		{"CreateCache", func() error {
			_, err := c.CreateCache(ctx, &momento.CreateCacheRequest{CacheName: "other"})
			return err
		}},
		{"ListCaches", func() error {
			_, err := c.ListCaches(ctx, &momento.ListCachesRequest{})
			return err
		}},
		{"DeleteCache", func() error {
			_, err := c.DeleteCache(ctx, &momento.DeleteCacheRequest{CacheName: "pizza"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := grpcCode(tt.call()); got != codes.PermissionDenied {
				t.Errorf("%s with a subscribe-only token: code %v, want PermissionDenied", tt.name, got)
			}
		})
	}
	if n := len(s.Keys("pizza")); n != 0 {
		t.Errorf("refused calls stored %d items", n)
	}
}
