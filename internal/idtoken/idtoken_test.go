package idtoken_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/fakeclock"
	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/oidctest"
)

func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
}

type env struct {
	clk    *fakeclock.Clock
	issuer *oidctest.Server
	v      *idtoken.Verifier
}

// newEnv starts a fake issuer and a verifier for it, sharing one clock.
// change, if not nil, edits the verifier's options.
func newEnv(t testing.TB, issuerOpts oidctest.Options, change func(*idtoken.Options)) *env {
	t.Helper()
	clk := newClock()
	issuerOpts.Now = clk.Now
	iss := oidctest.NewServerT(t, issuerOpts)
	opts := idtoken.Options{
		Issuer:   iss.Issuer(),
		Audience: iss.Audience(),
		Now:      clk.Now,
	}
	if change != nil {
		change(&opts)
	}
	v, err := idtoken.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("idtoken.New: %v", err)
	}
	return &env{clk: clk, issuer: iss, v: v}
}

func (e *env) token(t testing.TB, sub string, opts ...oidctest.TokenOption) string {
	t.Helper()
	tok, err := e.issuer.IDToken(sub, opts...)
	if err != nil {
		t.Fatalf("IDToken: %v", err)
	}
	return tok
}

func TestVerifyAccepts(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, oidctest.Options{Algorithm: alg}, nil)
			now := e.clk.Now()
			tests := []struct {
				name string
				sub  string
				opts []oidctest.TokenOption
			}{
				{name: "fresh", sub: "alice"},
				{name: "audience list with azp", sub: "alice", opts: []oidctest.TokenOption{
					oidctest.WithClaim("aud", []string{"other", e.issuer.Audience()}), oidctest.WithClaim("azp", e.issuer.Audience()),
				}},
				// Google's ID tokens for an Android app name it in azp and
				// the server's client id in aud: azp is checked only for
				// several audiences.
				{name: "one audience, azp another client", sub: "alice", opts: []oidctest.TokenOption{oidctest.WithClaim("azp", "android-client")}},
				{name: "exp at the lifetime cap", sub: "alice", opts: []oidctest.TokenOption{oidctest.WithExpiry(now.Add(idtoken.MaxLifetime + idtoken.ClockLeeway))}},
				{name: "no kid, one key", sub: "alice", opts: []oidctest.TokenOption{oidctest.WithKeyID("")}},
				{name: "case variant of a claim beside it", sub: "alice", opts: []oidctest.TokenOption{oidctest.WithClaim("Email", "a@example.com")}},
				{name: "nbf and iat within the leeway", sub: "alice", opts: []oidctest.TokenOption{
					oidctest.WithNotBefore(now.Add(idtoken.ClockLeeway)), oidctest.WithIssuedAt(now.Add(idtoken.ClockLeeway)),
				}},
				{name: "expires this second", sub: "alice", opts: []oidctest.TokenOption{oidctest.WithExpiry(now)}},
				// Whether a subject fits a topic name is the scope template's
				// business; the verifier hands it over as it is.
				{name: "subject not a topic fragment", sub: "a/b* c"},
				{name: "longest subject", sub: strings.Repeat("s", idtoken.MaxSubjectBytes)},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					tok := e.token(t, tc.sub, tc.opts...)
					got, err := e.v.Verify(context.Background(), tok)
					if err != nil {
						t.Fatalf("Verify() = %v, want nil", err)
					}
					want := idtoken.Identity{
						Issuer:  e.issuer.Issuer(),
						Subject: tc.sub,
						TokenID: idtoken.TokenID(e.issuer.Issuer(), tc.sub),
						Expires: expiry(t, tok),
						KeyID:   e.issuer.KeyID(),
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// expiry reads "exp" from tok without verifying it.
func expiry(t testing.TB, tok string) time.Time {
	t.Helper()
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := jsonPart(strings.Split(tok, ".")[1], &c); err != nil {
		t.Fatalf("reading exp: %v", err)
	}
	return time.Unix(c.Exp, 0)
}

func TestVerifyRefuses(t *testing.T) {
	e := newEnv(t, oidctest.Options{}, nil)
	other := oidctest.NewServerT(t, oidctest.Options{Now: e.clk.Now})
	now := e.clk.Now()
	good := e.token(t, "alice")
	parts := strings.Split(good, ".")

	tests := []struct {
		name string
		tok  string
		want error
		// checks is how many signature verifications the refusal costs:
		// none for what the pre-check or the key ids refuse, one for a
		// token that reaches a key, whatever its claims say, as claims are
		// read only once the signature verified.
		checks int64
	}{
		{name: "wrong issuer", tok: e.token(t, "alice", oidctest.WithClaim("iss", "https://evil.example")), want: idtoken.ErrIssuer, checks: 1},
		{name: "no issuer", tok: e.token(t, "alice", oidctest.WithClaim("iss", nil)), want: idtoken.ErrIssuer, checks: 1},
		{name: "wrong audience", tok: e.token(t, "alice", oidctest.WithClaim("aud", "someone-else")), want: idtoken.ErrAudience, checks: 1},
		{name: "audience list without ours", tok: e.token(t, "alice", oidctest.WithClaim("aud", []string{"a", "b"})), want: idtoken.ErrAudience, checks: 1},
		{name: "no audience", tok: e.token(t, "alice", oidctest.WithClaim("aud", nil)), want: idtoken.ErrAudience, checks: 1},
		{name: "expired", tok: e.token(t, "alice", oidctest.WithExpiry(now.Add(-time.Second))), want: idtoken.ErrExpired, checks: 1},
		{name: "no exp", tok: e.token(t, "alice", oidctest.WithClaim("exp", nil)), want: idtoken.ErrExpired, checks: 1},
		{name: "nbf in the future", tok: e.token(t, "alice", oidctest.WithNotBefore(now.Add(idtoken.ClockLeeway+time.Second))), want: idtoken.ErrNotYetValid, checks: 1},
		{name: "nbf far in the future", tok: e.token(t, "alice", oidctest.WithNotBefore(now.Add(time.Hour))), want: idtoken.ErrNotYetValid, checks: 1},
		{name: "iat in the future", tok: e.token(t, "alice", oidctest.WithIssuedAt(now.Add(idtoken.ClockLeeway+time.Second))), want: idtoken.ErrNotYetValid, checks: 1},
		{name: "alg none", tok: unsigned(t, e.issuer.Issuer(), e.issuer.Audience(), now), want: idtoken.ErrAlgorithm},
		{name: "HS256 signed with the public key (PKIX PEM)", tok: hmacWithPublicKey(t, e, "pem"), want: idtoken.ErrAlgorithm},
		{name: "HS256 signed with the public key (PKIX DER)", tok: hmacWithPublicKey(t, e, "der"), want: idtoken.ErrAlgorithm},
		{name: "HS256 signed with the public key (JWK n)", tok: hmacWithPublicKey(t, e, "n"), want: idtoken.ErrAlgorithm},
		{name: "unknown key id", tok: e.token(t, "alice", oidctest.WithKeyID("forged")), want: idtoken.ErrUnknownKey},
		{name: "no key id, another issuer's key", tok: signedBy(t, other, e.issuer.Issuer(), e.issuer.Audience(), oidctest.WithKeyID("")), want: idtoken.ErrUnknownKey, checks: 1},
		{name: "known key id, another issuer's key", tok: signedBy(t, other, e.issuer.Issuer(), e.issuer.Audience()), want: idtoken.ErrSignature, checks: 1},
		{name: "bad signature", tok: parts[0] + "." + parts[1] + "." + flip(parts[2]), want: idtoken.ErrSignature, checks: 1},
		{name: "claims changed after signing", tok: parts[0] + "." + reencode(t, parts[1], "alice", "mallory") + "." + parts[2], want: idtoken.ErrSignature, checks: 1},
		{name: "empty subject", tok: e.token(t, ""), want: idtoken.ErrSubject, checks: 1},
		{name: "no subject", tok: e.token(t, "x", oidctest.WithClaim("sub", nil)), want: idtoken.ErrSubject, checks: 1},
		{name: "subject too long", tok: e.token(t, strings.Repeat("s", idtoken.MaxSubjectBytes+1)), want: idtoken.ErrSubject, checks: 1},
		{name: "subject not a string", tok: e.token(t, "x", oidctest.WithClaim("sub", 42)), want: idtoken.ErrMalformed, checks: 1},
		{name: "exp not a number", tok: e.token(t, "x", oidctest.WithClaim("exp", "tomorrow")), want: idtoken.ErrMalformed, checks: 1},

		// Several audiences: azp must be ours (OpenID Connect Core 3.1.3.7).
		{name: "audience list without azp", tok: e.token(t, "alice", oidctest.WithClaim("aud", []string{"other", e.issuer.Audience()})), want: idtoken.ErrAudience, checks: 1},
		{name: "audience list, azp another", tok: e.token(t, "alice", oidctest.WithClaim("aud", []string{e.issuer.Audience(), "other"}), oidctest.WithClaim("azp", "other")), want: idtoken.ErrAudience, checks: 1},
		{name: "azp not a string", tok: e.token(t, "alice", oidctest.WithClaim("azp", []string{e.issuer.Audience()})), want: idtoken.ErrMalformed, checks: 1},
		// exp at most MaxLifetime (plus the leeway) ahead.
		{name: "exp ten years ahead", tok: e.token(t, "alice", oidctest.WithExpiry(now.AddDate(10, 0, 0))), want: idtoken.ErrLifetime, checks: 1},
		{name: "exp just beyond the lifetime cap", tok: e.token(t, "alice", oidctest.WithExpiry(now.Add(idtoken.MaxLifetime+idtoken.ClockLeeway+time.Second))), want: idtoken.ErrLifetime, checks: 1},

		// One meaning: claims another parser could read otherwise.
		{name: "sub then SUB", tok: signRaw(t, e, `"sub":"alice","SUB":"admin"`), want: idtoken.ErrMalformed, checks: 1},
		{name: "sub twice", tok: signRaw(t, e, `"sub":"alice","sub":"admin"`), want: idtoken.ErrMalformed, checks: 1},
		{name: "sub then a long-s sub", tok: signRaw(t, e, `"sub":"alice","ſub":"admin"`), want: idtoken.ErrMalformed, checks: 1},
		{name: "aud then Aud", tok: signRaw(t, e, `"sub":"alice","Aud":"another-app"`), want: idtoken.ErrMalformed, checks: 1},
		{name: "SUB alone is not sub", tok: e.token(t, "x", oidctest.WithClaim("sub", nil), oidctest.WithClaim("SUB", "admin")), want: idtoken.ErrSubject, checks: 1},
		{name: "nbf a string", tok: e.token(t, "alice", oidctest.WithClaim("nbf", "0")), want: idtoken.ErrMalformed, checks: 1},
		{name: "iat a string", tok: e.token(t, "alice", oidctest.WithClaim("iat", fmt.Sprint(now.Unix()))), want: idtoken.ErrMalformed, checks: 1},
		{name: "iss a list", tok: e.token(t, "alice", oidctest.WithClaim("iss", []string{e.issuer.Issuer()})), want: idtoken.ErrMalformed, checks: 1},
		{name: "aud a list with a number", tok: e.token(t, "alice", oidctest.WithClaim("aud", []any{e.issuer.Audience(), 1})), want: idtoken.ErrMalformed, checks: 1},
		{name: "claims not JSON", tok: rawSigned(t, e, "alice"), want: idtoken.ErrMalformed, checks: 1},

		// The header: small and flat, or no key is looked up.
		{name: "nested header member", tok: withHeader(`{"alg":"RS256","kid":"`+e.issuer.KeyID()+`","x":[[[]]]}`, parts[1], parts[2]), want: idtoken.ErrMalformed},
		{name: "deeply nested header member", tok: withHeader(`{"alg":"RS256","kid":"`+e.issuer.KeyID()+`","x":`+strings.Repeat("[", 2500)+strings.Repeat("]", 2500)+`}`, parts[1], parts[2]), want: idtoken.ErrMalformed},
		{name: "header longer than 1 KiB", tok: withHeader(`{"alg":"RS256","kid":"`+e.issuer.KeyID()+`","p":"`+strings.Repeat("p", 800)+`"}`, parts[1], parts[2]), want: idtoken.ErrMalformed},
		{name: "header alg twice", tok: withHeader(`{"alg":"HS256","alg":"RS256","kid":"`+e.issuer.KeyID()+`"}`, parts[1], parts[2]), want: idtoken.ErrMalformed},
		{name: "header kid and KID", tok: withHeader(`{"alg":"RS256","kid":"`+e.issuer.KeyID()+`","KID":"forged"}`, parts[1], parts[2]), want: idtoken.ErrMalformed},
		{name: "header crit", tok: withHeader(`{"alg":"RS256","kid":"`+e.issuer.KeyID()+`","crit":"exp"}`, parts[1], parts[2]), want: idtoken.ErrMalformed},
		{name: "kid not a string", tok: withHeader(`{"alg":"RS256","kid":1}`, parts[1], parts[2]), want: idtoken.ErrUnknownKey},
		{name: "empty", tok: "", want: idtoken.ErrMalformed},
		{name: "one part", tok: "abc", want: idtoken.ErrMalformed},
		{name: "two parts", tok: parts[0] + "." + parts[1], want: idtoken.ErrMalformed},
		{name: "four parts", tok: good + ".x", want: idtoken.ErrMalformed},
		{name: "header not base64url", tok: "!!." + parts[1] + "." + parts[2], want: idtoken.ErrMalformed},
		{name: "header not JSON", tok: b64("alg") + "." + parts[1] + "." + parts[2], want: idtoken.ErrMalformed},
		{name: "JSON serialization", tok: `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, want: idtoken.ErrMalformed},
		{name: "too long", tok: e.token(t, "alice", oidctest.WithClaim("pad", strings.Repeat("p", idtoken.MaxTokenBytes))), want: idtoken.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.v.Stats()
			got, err := e.v.Verify(context.Background(), tc.tok)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify() = %+v, %v; want %v", got, err, tc.want)
			}
			if diff := cmp.Diff(idtoken.Identity{}, got); diff != "" {
				t.Errorf("Verify() identity on refusal (-want +got):\n%s", diff)
			}
			after := e.v.Stats()
			if n := after.SignatureChecks - before.SignatureChecks; n != tc.checks {
				t.Errorf("Verify() ran %d signature checks, want %d", n, tc.checks)
			}
			if after.KeyFetches != before.KeyFetches {
				t.Errorf("Verify() fetched the key set %d times within the refetch interval, want 0", after.KeyFetches-before.KeyFetches)
			}
			// The refusal is not cached: a second try is refused the same way.
			if _, err := e.v.Verify(context.Background(), tc.tok); !errors.Is(err, tc.want) {
				t.Errorf("second Verify() = %v, want %v", err, tc.want)
			}
		})
	}
}

// signRaw returns a token signed by e's issuer whose claims are the
// usual ones (iss, aud, iat, exp) and then members, written as given.
func signRaw(t testing.TB, e *env, members string) string {
	t.Helper()
	now := e.clk.Now()
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":%d,"exp":%d,%s}`, e.issuer.Issuer(), e.issuer.Audience(), now.Unix(), now.Add(time.Hour).Unix(), members)
	tok, err := e.issuer.SignRaw([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawSigned returns a token signed by e's issuer whose payload is not JSON.
func rawSigned(t testing.TB, e *env, payload string) string {
	t.Helper()
	tok, err := e.issuer.SignRaw([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// withHeader returns header (JSON) with payload and signature segments.
func withHeader(header, payload, sig string) string {
	return b64(header) + "." + payload + "." + sig
}

// unsigned returns an otherwise valid token with "alg": "none".
func unsigned(t testing.TB, iss, aud string, now time.Time) string {
	t.Helper()
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","iat":%d,"exp":%d}`, iss, aud, now.Unix(), now.Add(time.Hour).Unix())
	return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(claims) + "."
}

// hmacWithPublicKey returns an otherwise valid token signed with HS256 using
// a serialization of the issuer's public key as the secret: the classic
// algorithm confusion attack.
func hmacWithPublicKey(t testing.TB, e *env, form string) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(e.issuer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	var secret []byte
	switch form {
	case "der":
		secret = der
	case "pem":
		secret = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	case "n":
		b, err := (&jose.JSONWebKey{Key: e.issuer.PublicKey()}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		secret = b
	}
	now := e.clk.Now()
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","iat":%d,"exp":%d}`, e.issuer.Issuer(), e.issuer.Audience(), now.Unix(), now.Add(time.Hour).Unix())
	return hs256(t, secret, claims, e.issuer.KeyID())
}

// signedBy returns a token for iss and aud signed by other's key, under
// other's key id, which is also the id of iss's key (both fakes number their
// keys from 1).
func signedBy(t testing.TB, other *oidctest.Server, iss, aud string, opts ...oidctest.TokenOption) string {
	t.Helper()
	opts = append([]oidctest.TokenOption{oidctest.WithClaim("iss", iss), oidctest.WithClaim("aud", aud)}, opts...)
	tok, err := other.IDToken("alice", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jsonPart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// flip changes the first character of a base64url signature.
func flip(sig string) string {
	c := byte('A')
	if sig[0] == 'A' {
		c = 'B'
	}
	return string(c) + sig[1:]
}

// reencode replaces old with new in a base64url claims part.
func reencode(t testing.TB, part, old, new string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	return b64(strings.Replace(string(b), old, new, 1))
}
