package jws

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

var asymmetric = []string{"RS256", "ES256", "EdDSA"}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sig is a base64url signature segment (an RS256 signature's length).
var sig = b64(strings.Repeat("s", 256))

func TestParseAccepts(t *testing.T) {
	payload := b64(`{"iss":"https://issuer.example","sub":"alice"}`)
	tests := []struct {
		name   string
		header string
		want   Header
	}{
		{name: "Google and Firebase", header: `{"alg":"RS256","kid":"a1b2","typ":"JWT"}`, want: Header{Alg: "RS256", KeyID: "a1b2"}},
		{name: "Okta", header: `{"kid":"k-9","alg":"RS256"}`, want: Header{Alg: "RS256", KeyID: "k-9"}},
		{name: "Entra ID", header: `{"typ":"JWT","alg":"RS256","x5t":"nOo3ZDrODXEK1jKWhXslHR_KXEg","kid":"nOo3ZDrODXEK1jKWhXslHR_KXEg"}`, want: Header{Alg: "RS256", KeyID: "nOo3ZDrODXEK1jKWhXslHR_KXEg"}},
		{name: "Entra ID access token nonce", header: `{"typ":"JWT","nonce":"abc","alg":"RS256","x5t":"x","kid":"x"}`, want: Header{Alg: "RS256", KeyID: "x"}},
		{name: "no kid", header: `{"alg":"ES256"}`, want: Header{Alg: "ES256"}},
		{name: "kid not a string", header: `{"alg":"RS256","kid":7}`, want: Header{Alg: "RS256", BadKeyID: true}},
		{name: "kid null", header: `{"alg":"RS256","kid":null}`, want: Header{Alg: "RS256", BadKeyID: true}},
		{name: "scalar members of every type", header: `{"alg":"EdDSA","n":1.5e3,"t":true,"f":false,"z":null,"s":"x"}`, want: Header{Alg: "EdDSA"}},
		{name: "whitespace", header: " {\n\"alg\" : \"RS256\" }\t", want: Header{Alg: "RS256"}},
		{name: "escaped names", header: `{"\u0061lg":"RS256","k\u0069d":"k"}`, want: Header{Alg: "RS256", KeyID: "k"}},
		{name: "header at the bound", header: `{"alg":"RS256","p":"` + strings.Repeat("p", MaxHeaderLen/4*3-22) + `"}`, want: Header{Alg: "RS256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := b64(tc.header) + "." + payload + "." + sig
			tok, err := Parse(raw, 8<<10, asymmetric)
			if err != nil {
				t.Fatalf("Parse(%s) = %v", tc.header, err)
			}
			if diff := cmp.Diff(tc.want, tok.Header); diff != "" {
				t.Errorf("Parse(%s).Header (-want +got):\n%s", tc.header, diff)
			}
			if got, want := tok.SigningInput(), b64(tc.header)+"."+payload; got != want {
				t.Errorf("SigningInput() = %q, want %q", got, want)
			}
			if got := tok.Raw(); got != raw {
				t.Errorf("Raw() = %q, want %q", got, raw)
			}
			if got, want := string(tok.Signature()), strings.Repeat("s", 256); got != want {
				t.Errorf("Signature() = %q, want %q", got, want)
			}
			p, err := tok.Payload()
			if err != nil || string(p) != `{"iss":"https://issuer.example","sub":"alice"}` {
				t.Errorf("Payload() = %q, %v", p, err)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	good := b64(`{"alg":"RS256","kid":"k"}`)
	payload := b64(`{}`)
	// A 32-byte signature's last character carries 2 bits and 4 zero bits.
	sig32 := b64(strings.Repeat("s", 32))
	lenient := sig32[:len(sig32)-1] + string(sig32[len(sig32)-1]+1)

	tests := []struct {
		name string
		raw  string
		want error
	}{
		{name: "empty", raw: "", want: ErrMalformed},
		{name: "too long", raw: good + "." + b64(strings.Repeat("p", 8<<10)) + "." + sig, want: ErrMalformed},
		{name: "one segment", raw: good, want: ErrMalformed},
		{name: "two segments", raw: good + "." + payload, want: ErrMalformed},
		{name: "four segments", raw: good + "." + payload + "." + sig + ".x", want: ErrMalformed},
		{name: "empty header", raw: "." + payload + "." + sig, want: ErrMalformed},
		{name: "empty payload", raw: good + ".." + sig, want: ErrMalformed},
		{name: "header too long", raw: b64(`{"alg":"RS256","p":"`+strings.Repeat("p", MaxHeaderLen)+`"}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "signature too long", raw: good + "." + payload + "." + strings.Repeat("A", MaxSignatureLen+1), want: ErrMalformed},
		{name: "header not base64url", raw: "e!." + payload + "." + sig, want: ErrMalformed},
		{name: "header padded", raw: b64(`{"alg":"RS256"}`) + "=." + payload + "." + sig, want: ErrMalformed},
		{name: "header standard base64", raw: strings.NewReplacer("-", "+", "_", "/").Replace(b64(`{"alg":"RS256","kid":"?>?"}`)) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "header not JSON", raw: b64("alg") + "." + payload + "." + sig, want: ErrMalformed},
		{name: "header an array", raw: b64(`["alg","RS256"]`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "header truncated", raw: b64(`{"alg":"RS256"`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "header trailing data", raw: b64(`{"alg":"RS256"}{}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "nested object", raw: b64(`{"alg":"RS256","jwk":{"kty":"RSA"}}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "nested array", raw: b64(`{"alg":"RS256","x5c":["MIIC"]}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "deeply nested", raw: b64(`{"alg":"RS256","x":`+strings.Repeat("[", 300)+strings.Repeat("]", 300)+`}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "duplicate alg", raw: b64(`{"alg":"RS256","alg":"HS256"}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "case-variant alg", raw: b64(`{"alg":"RS256","ALG":"HS256"}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "case-variant kid", raw: b64(`{"alg":"RS256","kid":"a","Kid":"b"}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "escaped duplicate", raw: b64(`{"alg":"RS256","\u006bid":"a","kid":"b"}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "crit", raw: b64(`{"alg":"RS256","crit":"exp"}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "crit list", raw: b64(`{"alg":"RS256","crit":["b64"],"b64":false}`) + "." + payload + "." + sig, want: ErrMalformed},
		{name: "no alg", raw: b64(`{"kid":"k"}`) + "." + payload + "." + sig, want: ErrAlgorithm},
		{name: "alg none", raw: b64(`{"alg":"none"}`) + "." + payload + ".", want: ErrAlgorithm},
		{name: "alg HS256", raw: b64(`{"alg":"HS256"}`) + "." + payload + "." + sig, want: ErrAlgorithm},
		{name: "alg in another case", raw: b64(`{"alg":"rs256"}`) + "." + payload + "." + sig, want: ErrAlgorithm},
		{name: "alg not a string", raw: b64(`{"alg":256}`) + "." + payload + "." + sig, want: ErrAlgorithm},
		{name: "signature not base64url", raw: good + "." + payload + ".s!g", want: ErrMalformed},
		{name: "signature padded", raw: good + "." + payload + "." + sig32 + "=", want: ErrMalformed},
		{name: "signature non-canonical", raw: good + "." + payload + "." + lenient, want: ErrMalformed},
		// Go's base64 decoders skip line breaks.
		{name: "signature with a line break", raw: good + "." + payload + "." + sig32[:8] + "\n" + sig32[8:], want: ErrMalformed},
		{name: "signature with a carriage return", raw: good + "." + payload + "." + sig32[:8] + "\r" + sig32[8:], want: ErrMalformed},
		{name: "header with a line break", raw: good[:4] + "\n" + good[4:] + "." + payload + "." + sig, want: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.raw, 8<<10, asymmetric)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%.40q) = %+v, %v; want %v", tc.raw, tok.Header, err, tc.want)
			}
			if diff := cmp.Diff(Token{}, tok, cmp.AllowUnexported(Token{})); diff != "" {
				t.Errorf("Parse(%.40q) returned a token with an error (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

func TestShaped(t *testing.T) {
	good := b64(`{"alg":"RS256","kid":"k"}`)
	payload := b64(`{}`)
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{name: "a token", raw: good + "." + payload + "." + sig, want: true},
		// Shaped decodes nothing.
		{name: "segments not base64url", raw: "!.!.!", want: true},
		{name: "no signature", raw: good + "." + payload + ".", want: true},
		{name: "empty", raw: ""},
		{name: "too long", raw: good + "." + b64(strings.Repeat("p", 8<<10)) + "." + sig},
		{name: "one segment", raw: good},
		{name: "two segments", raw: good + "." + payload},
		{name: "four segments", raw: good + "." + payload + "." + sig + ".x"},
		{name: "empty header", raw: "." + payload + "." + sig},
		{name: "empty payload", raw: good + ".." + sig},
		{name: "header too long", raw: strings.Repeat("h", MaxHeaderLen+1) + "." + payload + "." + sig},
		{name: "signature too long", raw: good + "." + payload + "." + strings.Repeat("A", MaxSignatureLen+1)},
	}
	for _, tc := range tests {
		if got := Shaped(tc.raw, 8<<10); got != tc.want {
			t.Errorf("Shaped(%.40q) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestPayloadRefusesNonCanonical(t *testing.T) {
	p := b64(`{"a":1}`) // 7 bytes: the last character carries 2 bits
	lenient := p[:len(p)-1] + string(p[len(p)-1]+1)
	tok, err := Parse(b64(`{"alg":"RS256"}`)+"."+lenient+"."+sig, 8<<10, asymmetric)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if _, err := tok.Payload(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Payload() of a non-canonical segment = %v, want %v", err, ErrMalformed)
	}
	tok, err = Parse(b64(`{"alg":"RS256"}`)+"."+p[:2]+"\r\n"+p[2:]+"."+sig, 8<<10, asymmetric)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if _, err := tok.Payload(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Payload() of a segment with a line break = %v, want %v", err, ErrMalformed)
	}
}

func TestDecodeClaims(t *testing.T) {
	exp := time.Unix(1772366700, 0)
	tests := []struct {
		name    string
		payload string
		want    jwt.RegisteredClaims
	}{
		{name: "all registered", payload: `{"iss":"i","sub":"s","aud":"a","exp":1772366700,"nbf":1772366000,"iat":1772366000,"jti":"j"}`, want: jwt.RegisteredClaims{
			Issuer: "i", Subject: "s", Audience: jwt.ClaimStrings{"a"}, ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(time.Unix(1772366000, 0)), IssuedAt: jwt.NewNumericDate(time.Unix(1772366000, 0)), ID: "j",
		}},
		{name: "audience list", payload: `{"aud":["a","b"]}`, want: jwt.RegisteredClaims{Audience: jwt.ClaimStrings{"a", "b"}}},
		{name: "empty audience list", payload: `{"aud":[]}`, want: jwt.RegisteredClaims{Audience: jwt.ClaimStrings{}}},
		{name: "fractional and exponent dates", payload: `{"exp":1772366700.75,"iat":1.7723667e9}`, want: jwt.RegisteredClaims{
			ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Unix(1772366700, 0)),
		}},
		{name: "other claims of any type", payload: `{"topics":["a"],"x":{"y":[1,{"z":null}]},"email_verified":true}`},
		{name: "names differing by more than case", payload: `{"sub":"a","subs":"b","su":"c"}`, want: jwt.RegisteredClaims{Subject: "a"}},
		// Names are exact: a case variant alone is another claim.
		{name: "case variant alone", payload: `{"SUB":"admin"}`},
		{name: "empty", payload: `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeClaims([]byte(tc.payload))
			if err != nil {
				t.Fatalf("DecodeClaims(%s) = %v", tc.payload, err)
			}
			if diff := cmp.Diff(tc.want, c.RegisteredClaims); diff != "" {
				t.Errorf("DecodeClaims(%s) (-want +got):\n%s", tc.payload, diff)
			}
		})
	}
}

func TestDecodeClaimsRefuses(t *testing.T) {
	for _, payload := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"sub":"a"`, `{"sub":"a"}{}`, `{"sub":"a"} x`, `{"sub" "a"}`, `{sub:"a"}`,
		// One meaning: no duplicates, no names equal but for case.
		`{"sub":"extra4","sub":"admin"}`,
		`{"sub":"extra4","SUB":"admin"}`,
		`{"topics":["a"],"Topics":["*"]}`,
		`{"exp":1,"\u0065xp":2}`,
		`{"sub":"a","ſub":"admin"}`,  // U+017F folds with s
		`{"kid":"a","\u212aid":"b"}`, // the Kelvin sign folds with k
		`{"x":{},"X":{}}`,
		// Registered claims of the wrong type.
		`{"nbf":"0"}`, `{"exp":"1772366700"}`, `{"iat":true}`, `{"exp":null}`, `{"exp":[1]}`,
		`{"exp":1e300}`, `{"exp":-1e300}`, `{"exp":9007199254740993}`,
		`{"iss":1}`, `{"iss":null}`, `{"sub":["a"]}`, `{"sub":null}`, `{"jti":7}`,
		`{"aud":1}`, `{"aud":null}`, `{"aud":[1]}`, `{"aud":["a",null]}`, `{"aud":[["a"]]}`, `{"aud":{"a":1}}`,
	} {
		if c, err := DecodeClaims([]byte(payload)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeClaims(%s) = %+v, %v; want %v", payload, c.RegisteredClaims, err, ErrMalformed)
		}
	}
}

func TestClaimsStringAndStrings(t *testing.T) {
	c, err := DecodeClaims([]byte(`{"azp":"a","n":1,"topics":["x","y"],"mixed":["x",1],"nul":null,"one":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok, err := c.String("azp"); s != "a" || !ok || err != nil {
		t.Errorf(`String("azp") = %q, %v, %v; want "a", true, nil`, s, ok, err)
	}
	if _, ok, err := c.String("absent"); ok || err != nil {
		t.Errorf(`String("absent") = _, %v, %v; want false, nil`, ok, err)
	}
	for _, name := range []string{"n", "topics", "nul"} {
		if _, ok, err := c.String(name); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("String(%q) = _, %v, %v; want true, %v", name, ok, err, ErrMalformed)
		}
	}
	if l, ok, err := c.Strings("topics"); !cmp.Equal(l, []string{"x", "y"}) || !ok || err != nil {
		t.Errorf(`Strings("topics") = %q, %v, %v`, l, ok, err)
	}
	for _, name := range []string{"mixed", "nul", "one", "n"} {
		if _, ok, err := c.Strings(name); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("Strings(%q) = _, %v, %v; want true, %v", name, ok, err, ErrMalformed)
		}
	}
	if !c.Has("nul") || c.Has("NUL") {
		t.Errorf(`Has("nul"), Has("NUL") = %v, %v; want true, false`, c.Has("nul"), c.Has("NUL"))
	}
}
