package floor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"

	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/vending"
)

// MissEntryPoint is the name of the floor of a miss, for FUNCTION_TARGET.
const MissEntryPoint = "MissFloor"

func init() {
	functions.HTTP(MissEntryPoint, ServeMiss)
}

// ServeMiss is the floor of a miss: the three Momento calls a caller new to
// the whole fleet costs, one after the other (Get, GenerateDisposableToken,
// Set), and nothing else. A client, named by X-Forwarded-For as sent, is
// answered from memory once it has a token; until then, every request of
// it makes the three calls. Its latency is what three round trips cost
// under a load, through the framework and the SDK: the latency a function
// that must make them cannot beat.
//
// It reads MOMENTO_API_KEY and MOMENTO_EMULATOR_HOST, and answers 502 if a
// call fails.
func ServeMiss(w http.ResponseWriter, r *http.Request) {
	client := r.Header.Get("X-Forwarded-For")
	a, ok := miss.answers.Load(client)
	if !ok {
		c, err := miss.clients()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fresh, err := threeCalls(r.Context(), c, client)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		a, _ = miss.answers.LoadOrStore(client, newAnswer(fresh))
	}
	write(w, a.(*answer))
}

// missInstance is what an instance of the floor of a miss holds.
type missInstance struct {
	answers sync.Map                         // the answer to each client, with its token, by client
	clients func() (*vending.Clients, error) // connects to Momento once
}

func newMissInstance() *missInstance {
	return &missInstance{clients: sync.OnceValues(func() (*vending.Clients, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		creds := vending.Credentials{APIKey: os.Getenv("MOMENTO_API_KEY")}
		return vending.Connect(ctx, creds, vending.ConnectOptions{EmulatorHost: os.Getenv("MOMENTO_EMULATOR_HOST"), Timeout: 5 * time.Second})
	})}
}

// miss is this process's instance; a test starts another.
var miss = newMissInstance()

// threeCalls looks the client's token up in the cache, and if it is not
// there mints one that may subscribe to one topic and stores it.
func threeCalls(ctx context.Context, c *vending.Clients, client string) (string, error) {
	cache := config.DefaultCacheName
	key := momento.String("miss-floor:" + client)
	got, err := c.Cache.Get(ctx, &momento.GetRequest{CacheName: cache, Key: key})
	if err != nil {
		return "", err
	}
	if hit, ok := got.(*responses.GetHit); ok {
		return hit.ValueString(), nil
	}
	perm := momento.TopicPermission{Role: momento.SubscribeOnly, Cache: momento.CacheName{Name: cache}, Topic: momento.TopicName{Name: "orders-" + strings.ReplaceAll(client, ".", "-")}}
	minted, err := c.Auth.GenerateDisposableToken(ctx, &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(3600),
		Scope:     momento.Permissions{Permissions: []momento.Permission{perm}},
	})
	if err != nil {
		return "", err
	}
	success, _ := minted.(*authresp.GenerateDisposableTokenSuccess)
	if success == nil {
		return "", fmt.Errorf("unexpected response %T", minted)
	}
	tok := success.ApiKey
	if _, err := c.Cache.Set(ctx, &momento.SetRequest{CacheName: cache, Key: key, Value: momento.String(tok), Ttl: 55 * time.Minute}); err != nil {
		return "", err
	}
	return tok, nil
}
