package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/utils"

	"example.com/tokenvendingmachine/internal/momentotest"
)

func main() {
	fake, err := momentotest.NewServer(momentotest.Options{Caches: []string{"tvm"}})
	if err != nil {
		panic(err)
	}
	cp, _ := fake.CredentialProvider(fake.APIKey())
	cfg := config.InRegionLatestWithLogger(logger.NewNoopMomentoLoggerFactory())
	cache, err := momento.NewCacheClientWithEagerConnectTimeout(cfg, cp, time.Hour, 5*time.Second)
	if err != nil {
		panic(err)
	}
	authc, err := momento.NewAuthClient(config.AuthDefaultWithLogger(logger.NewNoopMomentoLoggerFactory()), cp)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, lat := range []time.Duration{0, 2 * time.Millisecond} {
		fake.SetLatency(lat)
		for _, name := range []string{"get", "set", "mint"} {
			var ds []time.Duration
			for i := 0; i < 300; i++ {
				s := time.Now()
				switch name {
				case "get":
					_, err = cache.Get(ctx, &momento.GetRequest{CacheName: "tvm", Key: momento.String(fmt.Sprint("k", i))})
				case "set":
					_, err = cache.Set(ctx, &momento.SetRequest{CacheName: "tvm", Key: momento.String(fmt.Sprint("k", i)), Value: momento.String("v")})
				case "mint":
					_, err = authc.GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
						ExpiresIn: utils.ExpiresInMinutes(60),
						Scope:     momento.TopicSubscribeOnly(momento.CacheName{Name: "tvm"}, momento.TopicName{Name: "t"}),
					})
				}
				if err != nil {
					panic(err)
				}
				ds = append(ds, time.Since(s))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			fmt.Println(lat, name, "p50", ds[150], "p90", ds[270], "p99", ds[297])
		}
	}
}
