package idtoken_test

import (
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/jws"
	"example.com/tokenvendingmachine/internal/oidctest"
)

func TestIsIDToken(t *testing.T) {
	rs := newEnv(t, oidctest.Options{}, nil)
	es := oidctest.NewServerT(t, oidctest.Options{Algorithm: "ES256", Now: rs.clk.Now})
	iss := rs.issuer.Issuer()
	esTok, err := es.IDToken("alice", oidctest.WithClaim("iss", iss))
	if err != nil {
		t.Fatal(err)
	}
	now := rs.clk.Now()
	// A ticket: HS256 with the app's key, whatever its claims say.
	ticket := hs256(t, []byte("0123456789abcdef0123456789abcdef"), `{"iss":"`+iss+`","sub":"alice","topics":["a"]}`, "")
	other := oidctest.NewServerT(t, oidctest.Options{Now: rs.clk.Now})

	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{name: "RS256 from the issuer", tok: rs.token(t, "alice"), want: true},
		{name: "ES256 from the issuer", tok: esTok, want: true},
		{name: "expired still goes to the ID token path", tok: rs.token(t, "alice", oidctest.WithExpiry(now.Add(-24*time.Hour))), want: true},
		// The issuer is read only once the signature verified, so another
		// issuer's token is an ID token, refused by the issuer's keys.
		{name: "another issuer", tok: signedBy(t, other, other.Issuer(), other.Audience()), want: true},
		{name: "no iss claim", tok: rs.token(t, "alice", oidctest.WithClaim("iss", nil)), want: true},
		{name: "HS256 ticket naming the issuer", tok: ticket},
		{name: "HS256 signed with the public key", tok: hmacWithPublicKey(t, rs, "pem")},
		{name: "alg none", tok: unsigned(t, iss, "aud", now)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Route with every algorithm a bearer token may have.
			tok, err := jws.Parse(tc.tok, idtoken.MaxTokenBytes, append(idtoken.Algorithms(), "HS256", "none"))
			if err != nil {
				t.Fatalf("jws.Parse(%q) = %v", short(tc.tok), err)
			}
			if got := idtoken.IsIDToken(tok.Header); got != tc.want {
				t.Errorf("IsIDToken(%+v) = %v, want %v", tok.Header, got, tc.want)
			}
		})
	}
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// hs256 returns claims signed with HS256 under key, with kid in the header
// unless it is "".
func hs256(t testing.TB, key []byte, claims, kid string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenID(t *testing.T) {
	// Golden values, computed outside Go (Python's hashlib and Node's crypto)
	// from the documented formula: apps compute the same, so it must never
	// change.
	tests := []struct {
		name            string
		issuer, subject string
		want            string
	}{
		{name: "firebase", issuer: "https://securetoken.google.com/my-project", subject: "Xk3aP9q2LbT7wR1mN5vC8yZ0dE4f", want: "u-k5mAewdYeo0IacJVLRm57PxQrt-RBZBtBzVuxHp3ncA"},
		{name: "local", issuer: "http://127.0.0.1:9099", subject: "alice", want: "u-u91sPz38r87bpV7oxzQ1ij75MWkI-1NRjMJE_gWzqDI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := idtoken.TokenID(tc.issuer, tc.subject)
			if got != tc.want {
				t.Errorf("TokenID(%q, %q) = %q, want %q", tc.issuer, tc.subject, got, tc.want)
			}
			if len(got) > 64 || strings.Contains(got, tc.subject) {
				t.Errorf("TokenID(%q, %q) = %q: longer than 64 bytes or holds the subject", tc.issuer, tc.subject, got)
			}
		})
	}
	// The separator keeps (issuer, subject) pairs apart.
	if a, b := idtoken.TokenID("https://a", "bc"), idtoken.TokenID("https://ab", "c"); a == b {
		t.Errorf("TokenID(https://a, bc) == TokenID(https://ab, c) = %q", a)
	}
}
