package idtoken_test

import (
	"context"
	"errors"
	"fmt"

	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/oidctest"
)

// Verify an ID token from a fake login issuer, route a bearer token by its
// header and issuer, and tell refusals apart for the log.
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
	fmt.Println("ID token?", idtoken.IsIDToken(tok, v.Issuer()))
	id, err := v.Verify(ctx, tok)
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
