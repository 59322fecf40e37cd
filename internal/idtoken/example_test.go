package idtoken_test

import (
	"context"
	"errors"
	"fmt"

	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/jws"
	"example.com/tokenvendingmachine/internal/oidctest"
)

// Pre-check a bearer token once, route it by its header, verify it as an
// ID token from a fake login issuer, and tell refusals apart for the log.
func Example() {
	issuer, err := oidctest.NewServer(oidctest.Options{Audience: "my-project"})
	if err != nil {
		panic(err)
	}
	defer issuer.Close()

	ctx := context.Background()
	v, err := idtoken.New(ctx, idtoken.Options{Issuer: issuer.Issuer(), Audience: "my-project"})
	if err != nil {
		panic(err)
	}

	tok, err := issuer.IDToken("alice")
	if err != nil {
		panic(err)
	}
	parsed, err := jws.Parse(tok, idtoken.MaxTokenBytes, idtoken.Algorithms())
	if err != nil {
		panic(err) // a refusal: idtoken.Refusal(err) names it
	}
	fmt.Println("ID token?", idtoken.IsIDToken(parsed.Header))
	id, err := v.VerifyToken(ctx, parsed)
	if err != nil {
		panic(err)
	}
	fmt.Println("subject:", id.Subject, "tokenId is", len(id.TokenID), "bytes")

	fmt.Printf("%+v\n", v.Stats())

	forged, _ := issuer.IDToken("alice", oidctest.WithKeyID("forged"))
	_, err = v.Verify(ctx, forged)
	fmt.Println("refused:", err, errors.Is(err, idtoken.ErrUnknownKey))
	// Output:
	// ID token? true
	// subject: alice tokenId is 45 bytes
	// {SignatureChecks:1 KeyFetches:1}
	// refused: idtoken: unknown signing key true
}
