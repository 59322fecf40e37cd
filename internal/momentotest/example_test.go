package momentotest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"

	"example.com/tokenvendingmachine/internal/momentotest"
)

// Mint a subscribe-only token through the real Momento SDK, then see what
// the fake recorded and what the token may do.
func Example() {
	fake, err := momentotest.NewServer(momentotest.Options{Caches: []string{"pizza"}})
	if err != nil {
		panic(err)
	}
	defer fake.Close()

	cp, err := fake.CredentialProvider(fake.APIKey())
	if err != nil {
		panic(err)
	}
	quiet := logger.NewNoopMomentoLoggerFactory()
	auth, err := momento.NewAuthClient(config.AuthDefaultWithLogger(quiet), cp)
	if err != nil {
		panic(err)
	}
	defer auth.Close()

	ctx := context.Background()
	resp, err := auth.GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(3600),
		Scope:     momento.TopicSubscribeOnly(momento.CacheName{Name: "pizza"}, momento.AllTopics{}),
	})
	if err != nil {
		panic(err)
	}
	token := resp.(*authresp.GenerateDisposableTokenSuccess).ApiKey

	mint, _ := fake.MintOf(token)
	fmt.Printf("minted by %s for %v: %+v\n", mint.Caller, mint.ValidFor, mint.Grants)

	// The token may not read the cache.
	tokenCP, _ := fake.CredentialProvider(token)
	cache, err := momento.NewCacheClientWithEagerConnectTimeout(config.LaptopLatestWithLogger(quiet), tokenCP, time.Minute, 5*time.Second)
	if err != nil {
		panic(err)
	}
	defer cache.Close()
	_, err = cache.Get(ctx, &momento.GetRequest{CacheName: "pizza", Key: momento.String("k")})
	fmt.Println("Get with the token:", err.(momento.MomentoError).Code())
	fmt.Println("calls:", fake.Count(momentotest.MethodMint), "mint,", fake.Count(momentotest.MethodGet), "get")
	// Output:
	// minted by key-1 for 1h0m0s: [{Kind:topic Role:TopicReadOnly Cache:pizza Topic:* Item:}]
	// Get with the token: PermissionError
	// calls: 1 mint, 1 get
}
