package idtoken_test

import (
	"context"
	"testing"

	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/oidctest"
)

// BenchmarkVerifyFirst is a token's verification: parsing, one RS256
// signature check and the claim checks. (A repeat is remembered by the
// function's verified-callers cache, not here.)
func BenchmarkVerifyFirst(b *testing.B) {
	e := newEnv(b, oidctest.Options{}, nil)
	benchmarkVerify(b, e)
}

func benchmarkVerify(b *testing.B, e *env) {
	tok := e.token(b, "alice")
	ctx := context.Background()
	if _, err := e.v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	before := e.v.Stats().SignatureChecks
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := e.v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.v.Stats().SignatureChecks-before)/float64(b.N), "sigchecks/op")
}

// BenchmarkIsIDToken is the routing decision made for every bearer token.
func BenchmarkIsIDToken(b *testing.B) {
	e := newEnv(b, oidctest.Options{}, nil)
	tok := e.token(b, "alice")
	iss := e.issuer.Issuer()
	b.ReportAllocs()
	for range b.N {
		if !idtoken.IsIDToken(tok, iss) {
			b.Fatal("IsIDToken = false")
		}
	}
}
