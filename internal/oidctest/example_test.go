package oidctest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"

	"example.com/tokenvendingmachine/internal/oidctest"
)

// Start a fake issuer, sign in as alice through its token endpoint (as the
// local demo page does), and verify the ID token with go-oidc.
func Example() {
	issuer, err := oidctest.NewServer(oidctest.Options{Audience: "my-project"})
	if err != nil {
		panic(err)
	}
	defer issuer.Close()

	resp, err := http.Get(issuer.Issuer() + string(oidctest.EndpointToken) + "?sub=alice")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		panic(err)
	}

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer.Issuer())
	if err != nil {
		panic(err)
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: "my-project"}).Verify(ctx, body.IDToken)
	if err != nil {
		panic(err)
	}
	fmt.Println("signed in as", tok.Subject)
	fmt.Println("fetches:", issuer.Count(oidctest.EndpointDiscovery), "discovery,", issuer.Count(oidctest.EndpointJWKS), "jwks")
	// Output:
	// signed in as alice
	// fetches: 1 discovery, 1 jwks
}
