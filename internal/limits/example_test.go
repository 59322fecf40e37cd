package limits_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"
	"golang.org/x/time/rate"

	"example.com/tokenvendingmachine/internal/limits"
	"example.com/tokenvendingmachine/internal/momentotest"
)

// Pass a mint through the limits: the pause after ResourceExhausted, then
// the fleet's budget, or the instance's own limit while the fleet's counter
// cannot be reached.
func Example() {
	fake, err := momentotest.NewServer(momentotest.Options{Caches: []string{"tvm"}})
	if err != nil {
		panic(err)
	}
	defer fake.Close()
	cp, err := fake.CredentialProvider(fake.APIKey())
	if err != nil {
		panic(err)
	}
	cache, err := momento.NewCacheClientWithEagerConnectTimeout(
		config.InRegionLatestWithLogger(logger.NewNoopMomentoLoggerFactory()), cp, time.Hour, 5*time.Second)
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	var backoff limits.Backoff // Fail() when a mint answers ResourceExhausted
	// The example's clock stands still, so that its mints fall in one
	// window and its output is the same every run; leave Now nil for the
	// wall clock.
	start := time.Now()
	fleet, err := limits.NewFleet(limits.FleetOptions{CacheName: "tvm", Rate: 4, Burst: 20, Now: func() time.Time { return start }})
	if err != nil {
		panic(err)
	}
	// The instance's own limit, only while the fleet's counter is down.
	fallback := rate.NewLimiter(1, 5)

	mint := func(ctx context.Context, client netip.Prefix, identity string) bool {
		if ok, _ := backoff.Allow(); !ok {
			return false
		}
		a, err := fleet.Admit(ctx, cache, limits.ChainOf(client, identity))
		if errors.Is(err, limits.ErrFleetUnavailable) {
			return fallback.Allow()
		}
		if err != nil || !a.OK {
			return false
		}
		defer a.Wait() // before responding: it may top up the reserve beside the mint
		// ... mint the token here ...
		return true
	}

	// A client as internal/clientip's Result.Client holds it.
	fmt.Printf("%+v\n", limits.ChainOf(netip.MustParsePrefix("2001:db8:1:1::/64"), "user-1"))
	for _, client := range []string{"203.0.113.7/32", "203.0.113.8/32", "2001:db8:1:1::/64"} {
		fmt.Println(client, mint(context.Background(), netip.MustParsePrefix(client), ""))
	}
	fmt.Println("Increments:", fake.Count(momentotest.MethodIncrement))
	// Output:
	// {Device:2001:db8:1:1::/64 Identity:user-1 Network:2001:db8:1::/48 Provider:2001:db8::/32}
	// 203.0.113.7/32 true
	// 203.0.113.8/32 true
	// 2001:db8:1:1::/64 true
	// Increments: 3
}
