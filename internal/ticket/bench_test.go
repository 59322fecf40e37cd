package ticket

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures a ticket that verifies and the refusal of each
// shape of forged ticket. A forgery may cost one signature check more than
// a malformed ticket, and nothing more, however it is built:
//
//	go test -run '^$' -bench Verify -benchmem ./internal/ticket/
func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b)
	good := signWith(b, jwt.SigningMethodHS256, "k1", key1.Secret, goodClaims())
	parts := strings.Split(good, ".")
	for _, bc := range []struct {
		name  string
		raw   string
		valid bool
	}{
		{name: "valid", raw: good, valid: true},
		// Right header and claims, signed with another key.
		{name: "forged", raw: signWith(b, jwt.SigningMethodHS256, "k1", otherKey.Secret, goodClaims())},
		// As long as a ticket may be, most of it a deeply nested header
		// member: what a parser that decodes the header into a map pays for.
		{name: "nested-header-8k", raw: nestedHeader(`{"alg":"HS256","kid":"k1","typ":"JWT","x":`, parts[1], parts[2], MaxLen)},
		{name: "malformed", raw: "not-a-ticket"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(bc.raw); (err == nil) != bc.valid {
					b.Fatalf("Verify() = %v", err)
				}
			}
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
