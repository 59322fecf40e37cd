package ticket

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/scope"
)

// FuzzVerify checks Verify's contract on arbitrary input: it never panics;
// a refusal matches exactly one reason and echoes nothing of the ticket; an
// accepted ticket's claims are within every limit and survive Sign.
func FuzzVerify(f *testing.F) {
	f.Add(signWith(f, jwt.SigningMethodHS256, "k1", key1.Secret, goodClaims()))
	f.Add(signWith(f, jwt.SigningMethodHS256, "", unnamed.Secret, goodClaims()))
	f.Add(signWith(f, jwt.SigningMethodHS512, "k1", key1.Secret, goodClaims()))
	f.Add(signWith(f, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, goodClaims()))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	v := newVerifier(f)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(raw)
		check(t, v, raw, c, err)
	})
}

// FuzzVerifySigned is FuzzVerify for tickets whose header and claims are
// arbitrary JSON (or not) but whose HS256 signature with key1 is right, so
// that the fuzzer reaches the checks after the signature.
func FuzzVerifySigned(f *testing.F) {
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"aud":"momento-token-vending-machine","exp":1772366700,"sub":"ALICE#SECRET","topics":["order-42-*"]}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"aud":["x","momento-token-vending-machine"],"exp":1772366700,"sub":"a","topics":["a-*","a-b","a-b-*"]}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"aud":"momento-token-vending-machine","exp":1772366700.5,"sub":"a","topics":["ORDER#SECRET-*"]}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"aud":"momento-token-vending-machine","exp":1e300,"sub":"a","topics":["a"]}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"aud":"momento-token-vending-machine","exp":-1,"nbf":1e20,"iat":"x","sub":"a","topics":["a"]}`)
	f.Add(`{"alg":"HS256","kid":"k1","crit":[]}`, `{}`)
	f.Add(`{"alg":"HS256","kid":"SECRET#KID"}`, `{}`)
	v := newVerifier(f)
	f.Fuzz(func(t *testing.T, header, payload string) {
		signing := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(signing, key1.Secret)
		if err != nil {
			t.Fatal(err)
		}
		raw := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
		c, err := v.Verify(raw)
		check(t, v, raw, c, err)
		if err != nil {
			checkNoEcho(t, err, header)
			checkNoEcho(t, err, payload)
		}
	})
}

// check checks Verify(raw)'s result c, err against the contract.
func check(t *testing.T, v *Verifier, raw string, c Claims, err error) {
	t.Helper()
	if err != nil {
		n := 0
		for _, r := range []error{ErrMalformed, ErrSignature, ErrExpired, ErrAudience, ErrClaims} {
			if errors.Is(err, r) {
				n++
			}
		}
		if n != 1 || Reason(err) == "" {
			t.Errorf("Verify(%q) error = %v, matches %d reasons, want 1", raw, err, n)
		}
		if diff := cmp.Diff(Claims{}, c); diff != "" {
			t.Errorf("Verify(%q) returned claims with an error (-want +got):\n%s", raw, diff)
		}
		if len(err.Error()) > 200 {
			t.Errorf("Verify(%q) error is %d bytes long", raw, len(err.Error()))
		}
		for _, seg := range strings.Split(raw, ".") {
			if len(seg) >= 8 && strings.Contains(err.Error(), seg) {
				t.Errorf("Verify(%q) error = %q, holds a segment of the ticket", raw, err)
			}
		}
		return
	}
	if len(raw) > MaxLen {
		t.Errorf("Verify accepted a ticket of %d bytes", len(raw))
	}
	if !ValidSubject(c.Subject) {
		t.Errorf("Verify(%q) accepted subject %q", raw, c.Subject)
	}
	if c.Scope.IsEmpty() || c.Scope.IsAll() || c.Scope.Len() > scope.MaxSelectors {
		t.Errorf("Verify(%q) accepted scope %v", raw, c.Scope)
	}
	now := v.opts.Now()
	if c.Expires.Before(now.Add(-v.opts.Leeway)) || c.Expires.After(now.Add(v.opts.MaxTTL+v.opts.Leeway)) {
		t.Errorf("Verify(%q) accepted exp %v, now %v", raw, c.Expires, now)
	}
	key, ok := v.keys.Key(c.KeyID)
	if !ok {
		t.Fatalf("Verify(%q) accepted with key %q, not in the set", raw, c.KeyID)
	}
	again, err := Sign(key, v.opts.Audience, c)
	if err != nil {
		t.Fatalf("Sign(Verify(%q)) error = %v", raw, err)
	}
	c2, err := v.Verify(again)
	// Sign writes whole seconds.
	want := c
	want.Expires = c.Expires.Truncate(1e9)
	if err != nil || !cmp.Equal(want, c2) {
		t.Errorf("Verify(Sign(Verify(%q))) = %+v, %v; want %+v", raw, c2, err, want)
	}
}

// checkNoEcho fails if err's text holds a JSON string from doc that holds
// '#', a character no error message has: any such string there was echoed.
func checkNoEcho(t *testing.T, err error, doc string) {
	t.Helper()
	var v any
	if json.Unmarshal([]byte(doc), &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if strings.Contains(v, "#") && strings.Contains(err.Error(), v) {
				t.Errorf("error %q echoes %q from the ticket", err, v)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				walk(k)
				walk(e)
			}
		}
	}
	walk(v)
}
