package limits_test

import (
	"context"
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

// Pass a mint through the limits from the most specific to the most shared,
// giving back what earlier stages took when a later one refuses.
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

	networks, err := limits.NewKeyed[netip.Prefix](limits.KeyedOptions{Rate: 0.5, Burst: 2, MaxKeys: 10000})
	if err != nil {
		panic(err)
	}
	instance := rate.NewLimiter(4, 20)
	var backoff limits.Backoff // Fail() when a mint answers ResourceExhausted
	fleet, err := limits.NewFleet(limits.FleetOptions{CacheName: "tvm", Rate: 4, Burst: 20})
	if err != nil {
		panic(err)
	}

	mayMint := func(ctx context.Context, clientKey string) (bool, time.Duration) {
		network, ok := limits.NetworkOfKey(clientKey)
		if !ok {
			return false, 0
		}
		if ok, wait := networks.Allow(network); !ok {
			return false, wait
		}
		r := instance.Reserve()
		refuse := func(wait time.Duration) (bool, time.Duration) {
			r.Cancel()
			networks.Refund(network)
			return false, wait
		}
		if d := r.Delay(); d > 0 {
			return refuse(d)
		}
		if ok, wait := backoff.Allow(); !ok {
			return refuse(wait)
		}
		ok, wait, err := fleet.Allow(ctx, cache)
		if err != nil {
			return true, 0 // the fleet budget is down: the instance limit holds
		}
		if !ok {
			return refuse(wait)
		}
		return true, 0
	}

	for _, key := range []string{"2001:db8:1:1::/64", "2001:db8:1:2::/64", "2001:db8:1:3::/64", "203.0.113.7"} {
		ok, _ := mayMint(context.Background(), key)
		fmt.Println(key, ok)
	}
	fmt.Println("Increments:", fake.Count(momentotest.MethodIncrement))
	// Output:
	// 2001:db8:1:1::/64 true
	// 2001:db8:1:2::/64 true
	// 2001:db8:1:3::/64 false
	// 203.0.113.7 true
	// Increments: 3
}
