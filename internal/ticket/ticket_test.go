package ticket

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/scope"
)

// now is the verifier's clock in tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	key1     = Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	key2     = Key{ID: "k2", Secret: []byte("fedcba9876543210fedcba9876543210")}
	unnamed  = Key{Secret: []byte("unnamed-key-unnamed-key-unnamed-key")}
	otherKey = Key{ID: "k1", Secret: []byte("not-the-key-not-the-key-not-the-k")}
)

// secretSub and secretTopic must never appear in an error.
const (
	secretSub   = "ALICE-SECRET-SUBJECT"
	secretTopic = "ORDER-SECRET-TOPIC-"
)

func newVerifier(t testing.TB) *Verifier {
	t.Helper()
	keys, err := NewKeySet(key1, key2, unnamed)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(keys, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// b64 encodes a segment.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// goodClaims returns the claims of a valid ticket, as a map to edit.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"aud":    DefaultAudience,
		"exp":    now.Add(5 * time.Minute).Unix(),
		"sub":    secretSub,
		"topics": []string{secretTopic + "*", "new-order"},
	}
}

// signWith signs claims with method and key, with kid if not "".
func signWith(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("SignedString: %v", err)
	}
	return s
}

// with returns goodClaims changed by edit.
func with(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := goodClaims()
	edit(c)
	return c
}

// hmacRaw signs header and payload JSON as written, with HS256 and key.
func hmacRaw(t testing.TB, header, payload string, key []byte) string {
	t.Helper()
	signing := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyRefuses(t *testing.T) {
	v := newVerifier(t)
	good := signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, goodClaims())
	parts := strings.Split(good, ".")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	topics21 := make([]string, 21)
	for i := range topics21 {
		topics21[i] = fmt.Sprintf("order-%d", i)
	}
	// The last character of a 32-byte signature carries 2 bits and 4 zero
	// bits; changing only the zero bits decodes to the same signature in a
	// lenient decoder.
	sig := parts[2]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	lenient := sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])

	tests := []struct {
		name    string
		raw     string
		want    error
		wantToo error // also matched, if not nil
	}{
		{name: "tampered payload", raw: parts[0] + "." + b64(`{"aud":"momento-token-vending-machine","exp":`+fmt.Sprint(now.Add(time.Minute).Unix())+`,"sub":"mallory","topics":["order-*"]}`) + "." + parts[2], want: ErrSignature},
		{name: "tampered signature", raw: parts[0] + "." + parts[1] + "." + b64("0123456789abcdef0123456789abcdef"), want: ErrSignature},
		{name: "wrong key", raw: signWith(t, jwt.SigningMethodHS256, "k1", otherKey.Secret, goodClaims()), want: ErrSignature},
		{name: "another key's kid", raw: signWith(t, jwt.SigningMethodHS256, "k2", key1.Secret, goodClaims()), want: ErrSignature},
		{name: "unknown kid", raw: signWith(t, jwt.SigningMethodHS256, "k9", key1.Secret, goodClaims()), want: ErrSignature, wantToo: ErrUnknownKey},
		{name: "kid not a string", raw: hmacRaw(t, `{"alg":"HS256","kid":1}`, `{}`, key1.Secret), want: ErrSignature, wantToo: ErrUnknownKey},
		{name: "alg none", raw: signWith(t, jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType, goodClaims()), want: ErrSignature},
		{name: "alg none without signature", raw: b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + ".", want: ErrSignature},
		{name: "HS512", raw: signWith(t, jwt.SigningMethodHS512, "k1", key1.Secret, goodClaims()), want: ErrSignature},
		{name: "HS384", raw: signWith(t, jwt.SigningMethodHS384, "k1", key1.Secret, goodClaims()), want: ErrSignature},
		{name: "RS256", raw: signWith(t, jwt.SigningMethodRS256, "k1", rsaKey, goodClaims()), want: ErrSignature},
		{name: "RS256 header HMAC signature", raw: hmacRaw(t, `{"alg":"RS256","kid":"k1"}`, `{"aud":"momento-token-vending-machine","sub":"a","topics":["a"],"exp":`+fmt.Sprint(now.Add(time.Minute).Unix())+`}`, key1.Secret), want: ErrSignature},
		{name: "unknown alg", raw: hmacRaw(t, `{"alg":"HS256X","kid":"k1"}`, `{}`, key1.Secret), want: ErrSignature},
		{name: "no alg", raw: hmacRaw(t, `{"kid":"k1"}`, `{}`, key1.Secret), want: ErrSignature},

		{name: "expired", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), want: ErrExpired},
		{name: "wrong audience", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["aud"] = "another-service" })), want: ErrAudience},
		{name: "audience list without ours", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} })), want: ErrAudience},
		{name: "missing audience", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { delete(c, "aud") })), want: ErrAudience},
		{name: "wrong audience and expired", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["aud"] = "x"; c["exp"] = now.Add(-time.Hour).Unix() })), want: ErrAudience},

		{name: "missing exp", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { delete(c, "exp") })), want: ErrClaims},
		{name: "exp too far ahead", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(DefaultMaxTTL + DefaultLeeway + time.Second).Unix() })), want: ErrClaims},
		{name: "exp far future", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["exp"] = 1e15 })), want: ErrClaims},
		{name: "nbf in the future", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), want: ErrClaims},
		{name: "iat in the future", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), want: ErrClaims},
		{name: "missing sub", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { delete(c, "sub") })), want: ErrClaims},
		{name: "empty sub", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["sub"] = "" })), want: ErrClaims},
		{name: "sub too long", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["sub"] = secretSub + strings.Repeat("x", MaxSubjectLen) })), want: ErrClaims},
		{name: "sub with a space", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["sub"] = secretSub + " x" })), want: ErrClaims},
		{name: "missing topics", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { delete(c, "topics") })), want: ErrClaims},
		{name: "empty topics", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = []string{} })), want: ErrClaims, wantToo: scope.ErrEmpty},
		{name: "21 topics", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = topics21 })), want: ErrClaims, wantToo: scope.ErrTooMany},
		{name: "undelimited prefix", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = []string{"new-order", secretTopic + "12*"} })), want: ErrClaims, wantToo: scope.ErrUndelimited},
		{name: "all topics", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = []string{"*"} })), want: ErrClaims},
		{name: "forbidden characters", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = []string{secretTopic + " <script>"} })), want: ErrClaims, wantToo: scope.ErrCharacter},
		{name: "topic too long", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = []string{strings.Repeat("a", scope.MaxTopicLen+1)} })), want: ErrClaims, wantToo: scope.ErrTooLong},

		{name: "topics not a list", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["topics"] = secretTopic + "*" })), want: ErrMalformed},
		{name: "exp not a number", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["exp"] = "soon" })), want: ErrMalformed},
		{name: "crit header", raw: hmacRaw(t, `{"alg":"HS256","kid":"k1","crit":["b64"],"b64":false}`, `{}`, key1.Secret), want: ErrMalformed},
		{name: "non-canonical base64", raw: parts[0] + "." + parts[1] + "." + lenient, want: ErrMalformed},
		{name: "padded base64", raw: good + "=", want: ErrMalformed},
		{name: "line break in the signature", raw: parts[0] + "." + parts[1] + "." + sig[:8] + "\n" + sig[8:], want: ErrMalformed},
		{name: "empty", raw: "", want: ErrMalformed},
		{name: "two segments", raw: parts[0] + "." + parts[1], want: ErrMalformed},
		{name: "four segments", raw: good + ".x", want: ErrMalformed},
		{name: "not base64", raw: "a!.b.c", want: ErrMalformed},
		{name: "header not JSON", raw: b64("alg") + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "too long", raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", MaxLen) })), want: ErrMalformed},
	}
	reasons := []error{ErrMalformed, ErrSignature, ErrExpired, ErrAudience, ErrClaims}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify() = %+v, %v; want error %v", got, err, tt.want)
			}
			if tt.wantToo != nil && !errors.Is(err, tt.wantToo) {
				t.Errorf("Verify() error = %v, want it to match %v too", err, tt.wantToo)
			}
			if diff := cmp.Diff(Claims{}, got); diff != "" {
				t.Errorf("Verify() returned claims with an error (-want +got):\n%s", diff)
			}
			n := 0
			for _, r := range reasons {
				if errors.Is(err, r) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("Verify() error = %v matches %d reasons, want 1", err, n)
			}
			if got, want := Reason(err), tt.want.Error(); got != want {
				t.Errorf("Reason(%v) = %q, want %q", err, got, want)
			}
			checkNoLeak(t, err, tt.raw)
		})
	}
}

// checkNoLeak fails if err's text holds any part of the ticket raw.
func checkNoLeak(t *testing.T, err error, raw string) {
	t.Helper()
	msg := err.Error()
	for _, s := range []string{secretSub, secretTopic, "SECRET", "mallory", "<script>", "k9", "HS512", "RS256"} {
		if strings.Contains(msg, s) {
			t.Errorf("error %q holds %q from the ticket", msg, s)
		}
	}
	for _, seg := range strings.Split(raw, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Errorf("error %q holds a segment of the ticket", msg)
		}
	}
}

// TestVerifyReadsOneMeaning: a ticket, correctly signed, whose claims
// another JSON parser could read differently from Go's case-insensitive,
// last-duplicate-wins decoding is malformed; so is a header that is not a
// small, flat object. Claims are read by their exact names.
func TestVerifyReadsOneMeaning(t *testing.T) {
	v := newVerifier(t)
	exp := fmt.Sprint(now.Add(5 * time.Minute).Unix())
	const header = `{"alg":"HS256","kid":"k1"}`
	const aud = `"aud":"momento-token-vending-machine",`
	tests := []struct {
		name            string
		header, payload string
		want            error
	}{
		{name: "sub then SUB", payload: `{` + aud + `"exp":` + exp + `,"sub":"extra4","SUB":"admin","topics":["a"]}`, want: ErrMalformed},
		{name: "sub twice", payload: `{` + aud + `"exp":` + exp + `,"sub":"extra4","sub":"admin","topics":["a"]}`, want: ErrMalformed},
		{name: "sub and a long-s sub", payload: `{` + aud + `"exp":` + exp + `,"sub":"extra4","ſub":"admin","topics":["a"]}`, want: ErrMalformed},
		{name: "topics then Topics", payload: `{` + aud + `"exp":` + exp + `,"sub":"a","topics":["a"],"Topics":["` + secretTopic + `*"]}`, want: ErrMalformed},
		{name: "aud then AUD", payload: `{"aud":"another-service","AUD":"momento-token-vending-machine","exp":` + exp + `,"sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "nbf a string", payload: `{` + aud + `"exp":` + exp + `,"nbf":"0","sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "exp a string", payload: `{` + aud + `"exp":"` + exp + `","sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "iat a boolean", payload: `{` + aud + `"exp":` + exp + `,"iat":true,"sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "iss a number", payload: `{` + aud + `"exp":` + exp + `,"iss":1,"sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "sub a number", payload: `{` + aud + `"exp":` + exp + `,"sub":7,"topics":["a"]}`, want: ErrMalformed},
		{name: "sub null", payload: `{` + aud + `"exp":` + exp + `,"sub":null,"topics":["a"]}`, want: ErrMalformed},
		{name: "aud a number", payload: `{"aud":1,"exp":` + exp + `,"sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "aud a list with a number", payload: `{"aud":["momento-token-vending-machine",1],"exp":` + exp + `,"sub":"a","topics":["a"]}`, want: ErrMalformed},
		{name: "topics with null", payload: `{` + aud + `"exp":` + exp + `,"sub":"a","topics":["a",null]}`, want: ErrMalformed},
		{name: "claims not an object", payload: `["sub","a"]`, want: ErrMalformed},
		{name: "trailing data", payload: `{` + aud + `"exp":` + exp + `,"sub":"a","topics":["a"]} {}`, want: ErrMalformed},
		// A name in another case alone is another claim, not sub.
		{name: "SUB without sub", payload: `{` + aud + `"exp":` + exp + `,"SUB":"admin","topics":["a"]}`, want: ErrClaims},
		{name: "Topics without topics", payload: `{` + aud + `"exp":` + exp + `,"sub":"a","Topics":["a"]}`, want: ErrClaims},
		{name: "AUD without aud", payload: `{"AUD":"momento-token-vending-machine","exp":` + exp + `,"sub":"a","topics":["a"]}`, want: ErrAudience},
		{name: "EXP without exp", payload: `{` + aud + `"EXP":` + exp + `,"sub":"a","topics":["a"]}`, want: ErrClaims},

		{name: "header nested member", header: `{"alg":"HS256","kid":"k1","x":[[[]]]}`, want: ErrMalformed},
		{name: "header nested deeply", header: `{"alg":"HS256","kid":"k1","x":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}`, want: ErrMalformed},
		{name: "header alg twice", header: `{"alg":"none","alg":"HS256","kid":"k1"}`, want: ErrMalformed},
		{name: "header kid and KID", header: `{"alg":"HS256","kid":"k1","KID":"k2"}`, want: ErrMalformed},
		{name: "header longer than 1 KiB", header: `{"alg":"HS256","kid":"k1","p":"` + strings.Repeat("p", 800) + `"}`, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p := tt.header, tt.payload
			if h == "" {
				h = header
			}
			if p == "" {
				p = `{` + aud + `"exp":` + exp + `,"sub":"a","topics":["a"]}`
			}
			raw := hmacRaw(t, h, p, key1.Secret)
			got, err := v.Verify(raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify() = %+v, %v; want %v", got, err, tt.want)
			}
			if got, want := Reason(err), tt.want.Error(); got != want {
				t.Errorf("Reason(%v) = %q, want %q", err, got, want)
			}
			checkNoLeak(t, err, raw)
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	v := newVerifier(t)
	exp := now.Add(5 * time.Minute)
	wantScope, err := scope.New([]string{"new-order", secretTopic + "*"})
	if err != nil {
		t.Fatal(err)
	}
	long := make([]string, scope.MaxSelectors)
	for i := range long {
		long[i] = fmt.Sprintf("%03d", i) + strings.Repeat("x", scope.MaxTopicLen-4) + "-*"
	}
	longScope, err := scope.New(long)
	if err != nil {
		t.Fatal(err)
	}
	longSub := strings.Repeat("s", MaxSubjectLen)
	longKey := Key{ID: strings.Repeat("k", maxKeyIDLen), Secret: key1.Secret}
	longKeys, err := NewKeySet(longKey)
	if err != nil {
		t.Fatal(err)
	}
	longVerifier, err := NewVerifier(longKeys, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		v    *Verifier
		raw  string
		want Claims
	}{
		{
			name: "named key",
			raw:  signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, goodClaims()),
			want: Claims{Subject: secretSub, Scope: wantScope, Expires: exp, KeyID: "k1"},
		},
		{
			name: "second named key",
			raw:  signWith(t, jwt.SigningMethodHS256, "k2", key2.Secret, goodClaims()),
			want: Claims{Subject: secretSub, Scope: wantScope, Expires: exp, KeyID: "k2"},
		},
		{
			name: "unnamed key without kid",
			raw:  signWith(t, jwt.SigningMethodHS256, "", unnamed.Secret, goodClaims()),
			want: Claims{Subject: secretSub, Scope: wantScope, Expires: exp},
		},
		{
			name: "audience in a list, extra claims ignored",
			raw: signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) {
				c["aud"] = []string{"other", DefaultAudience}
				c["iat"] = now.Unix()
				c["nbf"] = now.Unix()
				c["jti"] = "8c1f"
				c["iss"] = "https://shop.example"
			})),
			want: Claims{Subject: secretSub, Scope: wantScope, Expires: exp, KeyID: "k1"},
		},
		{
			name: "expired within the leeway",
			raw:  signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-DefaultLeeway + time.Second).Unix() })),
			want: Claims{Subject: secretSub, Scope: wantScope, Expires: now.Add(-DefaultLeeway + time.Second), KeyID: "k1"},
		},
		{
			name: "max TTL plus leeway",
			raw:  signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(DefaultMaxTTL + DefaultLeeway).Unix() })),
			want: Claims{Subject: secretSub, Scope: wantScope, Expires: now.Add(DefaultMaxTTL + DefaultLeeway), KeyID: "k1"},
		},
		{
			name: "largest ticket",
			v:    longVerifier,
			raw: signWith(t, jwt.SigningMethodHS256, longKey.ID, key1.Secret, jwt.MapClaims{
				"aud": DefaultAudience, "exp": exp.Unix(), "sub": longSub, "topics": long,
				"iat": now.Unix(), "nbf": now.Unix(), "jti": "0b7e4c8a-3f0e-4d55-9a61-5a2f1d7c9e10", "iss": "https://shop.example",
			}),
			want: Claims{Subject: longSub, Scope: longScope, Expires: exp, KeyID: longKey.ID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.v == nil {
				tt.v = v
			}
			got, err := tt.v.Verify(tt.raw)
			if err != nil {
				t.Fatalf("Verify() error = %v (%d bytes)", err, len(tt.raw))
			}
			t.Logf("%d bytes", len(tt.raw))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	v := newVerifier(t)
	sc, err := scope.Parse("order-42-*, new-order")
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Subject: "alice@shop", Scope: sc, Expires: now.Add(time.Minute), KeyID: "k2"}
	raw, err := Sign(key2, DefaultAudience, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(raw)
	if err != nil {
		t.Fatalf("Verify(Sign()) error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify(Sign()) (-want +got):\n%s", diff)
	}
	// The header is exactly what the package comment promises.
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k2"}, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
}

func TestSignRefuses(t *testing.T) {
	sc, err := scope.Parse("a")
	if err != nil {
		t.Fatal(err)
	}
	good := Claims{Subject: "alice", Scope: sc, Expires: now}
	tests := []struct {
		name string
		key  Key
		aud  string
		c    Claims
	}{
		{name: "short key", key: Key{Secret: []byte("short")}, aud: DefaultAudience, c: good},
		{name: "bad kid", key: Key{ID: "k 1", Secret: key1.Secret}, aud: DefaultAudience, c: good},
		{name: "empty audience", key: key1, c: good},
		{name: "bad subject", key: key1, aud: DefaultAudience, c: Claims{Subject: "a b", Scope: sc, Expires: now}},
		{name: "empty scope", key: key1, aud: DefaultAudience, c: Claims{Subject: "a", Expires: now}},
		{name: "all topics", key: key1, aud: DefaultAudience, c: Claims{Subject: "a", Scope: scope.All(), Expires: now}},
		{name: "zero expiry", key: key1, aud: DefaultAudience, c: Claims{Subject: "a", Scope: sc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if raw, err := Sign(tt.key, tt.aud, tt.c); err == nil {
				t.Errorf("Sign() = %q, want an error", raw)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	keys, err := NewKeySet(key1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(KeySet{}, Options{}); !errors.Is(err, ErrKeys) {
		t.Errorf("NewVerifier(no keys) error = %v, want %v", err, ErrKeys)
	}
	if _, err := NewVerifier(keys, Options{Leeway: -time.Second}); err == nil {
		t.Error("NewVerifier(negative leeway) succeeded")
	}
	// A custom audience, max TTL and leeway are the ones enforced.
	v, err := NewVerifier(keys, Options{Audience: "shop", MaxTTL: time.Minute, Leeway: time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := scope.Parse("a")
	for _, tt := range []struct {
		aud  string
		exp  time.Time
		want error
	}{
		{"shop", now.Add(time.Minute), nil},
		{DefaultAudience, now.Add(time.Minute), ErrAudience},
		{"shop", now.Add(time.Minute + 2*time.Second), ErrClaims},
		{"shop", now.Add(-2 * time.Second), ErrExpired},
	} {
		raw, err := Sign(key1, tt.aud, Claims{Subject: "a", Scope: sc, Expires: tt.exp})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(raw); !errors.Is(err, tt.want) {
			t.Errorf("Verify(aud %q, exp now%+v) error = %v, want %v", tt.aud, tt.exp.Sub(now), err, tt.want)
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t)
	good := signWith(t, jwt.SigningMethodHS256, "k1", key1.Secret, goodClaims())
	bad := signWith(t, jwt.SigningMethodHS256, "k1", otherKey.Secret, goodClaims())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Verify(good); err != nil {
					t.Errorf("Verify(good) = %v", err)
				}
				if _, err := v.Verify(bad); !errors.Is(err, ErrSignature) {
					t.Errorf("Verify(bad) = %v", err)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerifyRefusedMaxLen(b *testing.B) {
	v := newVerifier(b)
	raw := strings.Repeat("a", MaxLen/2) + "." + strings.Repeat("b", MaxLen/2-2) + ".c"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(raw); err == nil {
			b.Fatal("accepted")
		}
	}
}
