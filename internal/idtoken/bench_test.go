package idtoken_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/jws"
	"example.com/tokenvendingmachine/internal/oidctest"
)

// BenchmarkVerify measures an ID token that verifies and the refusal of
// each shape of forged token, which needs nothing secret: the issuer, the
// audience and a published key id. A forgery may cost one signature check
// more than a malformed token, and nothing more, however it is built:
//
//	go test -run '^$' -bench Verify -benchmem ./internal/idtoken/
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b, oidctest.Options{}, nil)
	good := e.token(b, "alice")
	parts := strings.Split(good, ".")
	for _, bc := range []struct {
		name  string
		raw   string
		valid bool
	}{
		{name: "valid", raw: good, valid: true},
		// Right header and claims, a signature that does not verify.
		{name: "forged-known-kid", raw: parts[0] + "." + parts[1] + "." + flip(parts[2])},
		// As long as a token may be, most of it a deeply nested header
		// member: what go-jose's header decoding pays for.
		{name: "nested-header-8k", raw: nestedHeader(`{"alg":"RS256","kid":"`+e.issuer.KeyID()+`","typ":"JWT","x":`, parts[1], parts[2], idtoken.MaxTokenBytes)},
		{name: "malformed", raw: "not-a-token"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			before := e.v.Stats().SignatureChecks
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := e.v.Verify(ctx, bc.raw); (err == nil) != bc.valid {
					b.Fatalf("Verify() = %v", err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(e.v.Stats().SignatureChecks-before)/float64(b.N), "sigchecks/op")
		})
	}
}

// nestedHeader returns a compact JWS of at most maxLen bytes whose header
// is prefix followed by as many nested arrays as fit, then payload and
// signature (base64url segments).
func nestedHeader(prefix, payload, sig string, maxLen int) string {
	room := (maxLen-len(payload)-len(sig)-2)/4*3 - len(prefix) - 1
	depth := room / 2
	header := prefix + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + payload + "." + sig
}

// BenchmarkRoute is the pre-check and routing decision made for every
// bearer token that is not a verified callers' hit.
func BenchmarkRoute(b *testing.B) {
	e := newEnv(b, oidctest.Options{}, nil)
	tok := e.token(b, "alice")
	algs := idtoken.Algorithms()
	b.ReportAllocs()
	for b.Loop() {
		t, err := jws.Parse(tok, idtoken.MaxTokenBytes, algs)
		if err != nil || !idtoken.IsIDToken(t.Header) {
			b.Fatalf("Parse() = %v; IsIDToken false", err)
		}
	}
}
