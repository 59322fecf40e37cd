package momentotest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
)

// BenchmarkCall measures one Get through the Momento Go SDK on loopback,
// without and with the 2 ms of latency the load command injects: what a
// call costs beyond its injected latency (the timer's lateness, the
// goroutines woken on both sides). A true miss makes three calls in a row.
//
//	go test -run '^$' -bench Call ./internal/momentotest/
func BenchmarkCall(b *testing.B) {
	for _, latency := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("get-latency-%v", latency), func(b *testing.B) {
			s := NewServerT(b, "tvm")
			s.SetLatency(latency)
			c := cacheClient(b, s, s.APIKey())
			ctx := context.Background()
			req := &momento.GetRequest{CacheName: "tvm", Key: momento.String("k")}
			for b.Loop() {
				if _, err := c.Get(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
