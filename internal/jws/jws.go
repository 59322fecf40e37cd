// Package jws is the one pre-check of compact JSON Web Signatures (RFC
// 7515) that tickets and ID tokens pass before any key is looked up or any
// signature checked, and the one decoding of a JWT's claims (RFC 7519)
// once the signature has verified.
//
//	tok, err := jws.Parse(raw, maxLen, []string{"RS256"})
//	if err != nil {
//		// refused: jws.ErrMalformed or jws.ErrAlgorithm
//	}
//	key := keys[tok.Header.KeyID]
//	err = jwt.SigningMethodRS256.Verify(tok.SigningInput(), tok.Signature(), key)
//	payload, err := tok.Payload()  // only now
//	claims, err := jws.DecodeClaims(payload)
//
// # What a refusal costs
//
// A forged credential needs nothing secret, so refusing it must cost no
// more than refusing a malformed one plus, at most, one signature check.
// Parse therefore decodes nothing but a small, flat header, and the claims
// are decoded only after the signature verified. Parse refuses, in this
// order and each in time linear in what it has read so far:
//
//   - an empty token, or one longer than maxLen bytes;
//   - anything but three segments separated by '.', or an empty header or
//     payload segment;
//   - a header segment longer than [MaxHeaderLen] or a signature segment
//     longer than [MaxSignatureLen];
//   - a header that is not canonical unpadded base64url (a non-zero unused
//     bit or a line break too: one token must have one spelling, or each
//     spelling would be a fresh cache entry and a fresh signature check);
//   - a header that is not one flat JSON object: a member whose value is an
//     object or an array, two members whose names are equal or differ only
//     in case (Go's encoding/json would read either as the other), or a
//     "crit" member (it names extensions the verifier would have to
//     understand);
//   - an "alg" that is not a string in the caller's list (ErrAlgorithm);
//   - a signature segment that is not canonical unpadded base64url.
//
// The payload segment is decoded, under the same base64url rules, by
// [Token.Payload], which the caller calls once the signature verified.
//
// # The header rule, and why there is no allowlist of members
//
// A header is flat: every member's value is a string, number, boolean or
// null. Providers disagree on members: Google, Firebase and Auth0 send
// "alg", "kid", "typ"; Okta and Cognito "alg", "kid"; Entra ID "typ",
// "alg", "x5t", "kid" (and "nonce" in its access tokens); JWT libraries
// that sign an app's tickets add their own. An allowlist would refuse some
// of them and buy nothing: the cost of a header is bounded by its size and
// its flatness, whatever its names. Only "crit" changes what a header
// means, and it is refused by name. Headers with a JSON member ("jwk") or
// an array ("x5c") are refused; no provider above sends either in an ID
// token, and no verifier here would read them.
//
// # One meaning per claims set
//
// [DecodeClaims] refuses a claims set that two JSON parsers could read
// differently: duplicate member names, names that differ only in case
// (Go's encoding/json matches struct fields case-insensitively and keeps
// the last duplicate, so {"sub":"a","SUB":"admin"} would mean admin), and
// registered claims of the wrong type ("exp", "nbf" and "iat" numbers;
// "iss", "sub" and "jti" strings; "aud" a string or an array of strings).
// Claims are then read by their exact names.
package jws

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxHeaderLen is the longest header segment Parse decodes, in base64url
// characters (768 bytes of JSON). Real headers are 40 to 150 bytes long.
const MaxHeaderLen = 1024

// MaxSignatureLen is the longest signature segment Parse accepts, in
// base64url characters: the signature of an 8192-bit RSA key (1024 bytes).
const MaxSignatureLen = 1366

// The refusals of Parse. Each error it returns is one of them.
var (
	// ErrMalformed means the token breaks one of Parse's rules other than
	// the algorithm's.
	ErrMalformed = errors.New("jws: malformed")
	// ErrAlgorithm means the header's "alg" is missing, not a string, or
	// not one of the accepted algorithms.
	ErrAlgorithm = errors.New("jws: algorithm not accepted")
)

// Header is what Parse reads from a token's header.
type Header struct {
	// Alg is the "alg" member, one of the algorithms Parse was given.
	Alg string
	// KeyID is the "kid" member, or "" if it is absent.
	KeyID string
	// BadKeyID reports a "kid" that is present but not a string: no key has
	// such an id.
	BadKeyID bool
}

// Token is a compact JWS that passed Parse. Its signature is not verified.
type Token struct {
	// Header is the decoded header.
	Header Header

	raw     string
	payload int // index of the payload segment in raw
	sig     int // index of the signature segment in raw
	sigb    []byte
}

// strict is unpadded base64url that refuses non-zero unused bits.
var strict = base64.RawURLEncoding.Strict()

// Parse pre-checks raw, a compact JWS of at most maxLen bytes whose "alg"
// is one of algs, as the package comment says. Its errors are ErrMalformed
// or ErrAlgorithm, and hold nothing from raw.
func Parse(raw string, maxLen int, algs []string) (Token, error) {
	d1, d2, ok := segments(raw, maxLen)
	if !ok {
		return Token{}, ErrMalformed
	}
	h, s := raw[:d1], raw[d2+1:]
	hb, err := decode(h)
	if err != nil {
		return Token{}, ErrMalformed
	}
	hdr, err := parseHeader(hb)
	if err != nil {
		return Token{}, err
	}
	if !slices.Contains(algs, hdr.Alg) {
		return Token{}, ErrAlgorithm
	}
	sig, err := decode(s)
	if err != nil {
		return Token{}, ErrMalformed
	}
	return Token{Header: hdr, raw: raw, payload: d1 + 1, sig: d2 + 1, sigb: sig}, nil
}

// Shaped reports whether raw passes the first of Parse's rules, those of
// its length and segments: at most maxLen bytes, three segments, the
// header and payload not empty, the header and signature within
// MaxHeaderLen and MaxSignatureLen. It decodes nothing and costs a scan
// for '.': a token it refuses, Parse refuses too, so a caller may skip
// what only a token that passes Parse needs, such as a lookup by its hash.
func Shaped(raw string, maxLen int) bool {
	_, _, ok := segments(raw, maxLen)
	return ok
}

// segments returns the indexes of the two '.' of raw, and whether raw has
// the length and segments Shaped requires.
func segments(raw string, maxLen int) (d1, d2 int, ok bool) {
	if raw == "" || len(raw) > maxLen {
		return 0, 0, false
	}
	d1 = strings.IndexByte(raw, '.')
	if d1 < 0 {
		return 0, 0, false
	}
	d2 = strings.IndexByte(raw[d1+1:], '.')
	if d2 < 0 {
		return 0, 0, false
	}
	d2 += d1 + 1
	h, p, s := raw[:d1], raw[d1+1:d2], raw[d2+1:]
	switch {
	case strings.IndexByte(s, '.') >= 0, h == "", p == "":
		return 0, 0, false
	case len(h) > MaxHeaderLen, len(s) > MaxSignatureLen:
		return 0, 0, false
	}
	return d1, d2, true
}

// parseHeader reads a flat JSON object.
func parseHeader(b []byte) (Header, error) {
	var h Header
	// A header of at most 768 bytes has few members: a slice beats a map.
	var buf [8]string
	seen := buf[:0]
	err := members(b, true, func(name string, v []byte) error {
		key := foldName(name)
		if slices.Contains(seen, key) {
			return ErrMalformed
		}
		seen = append(seen, key)
		switch name {
		case "alg":
			h.Alg, _ = scalarString(v)
		case "kid":
			s, ok := scalarString(v)
			h.KeyID, h.BadKeyID = s, !ok
		case "crit":
			return ErrMalformed
		}
		return nil
	})
	if err != nil {
		return Header{}, err
	}
	return h, nil
}

// scalarString returns v, a valid JSON scalar, if it is a string.
func scalarString(v []byte) (string, bool) {
	if v[0] != '"' {
		return "", false
	}
	return unquote(v), true
}

// Raw returns the token as given to Parse.
func (t Token) Raw() string { return t.raw }

// SigningInput returns what the signature signs: the header and payload
// segments and the '.' between them.
func (t Token) SigningInput() string { return t.raw[:t.sig-1] }

// Signature returns the decoded signature. The caller must not change it.
func (t Token) Signature() []byte { return t.sigb }

// Payload decodes the payload segment; call it only once the signature has
// verified. Its error is ErrMalformed.
func (t Token) Payload() ([]byte, error) {
	return decode(t.raw[t.payload : t.sig-1])
}

// decode decodes a segment of canonical unpadded base64url. Go's decoders
// skip '\r' and '\n' (Strict too), which would give one signature many
// spellings: they are refused first.
func decode(seg string) ([]byte, error) {
	if strings.IndexByte(seg, '\n') >= 0 || strings.IndexByte(seg, '\r') >= 0 {
		return nil, ErrMalformed
	}
	b, err := strict.DecodeString(seg)
	if err != nil {
		return nil, ErrMalformed
	}
	return b, nil
}

// foldName returns a key equal for two names exactly when encoding/json
// would match one against the other (bytes.EqualFold): ASCII letters upper
// case, any other rune the smallest of its Unicode case folding orbit (so
// the long s and the Kelvin sign fold with S and K).
func foldName(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= utf8.RuneSelf {
			ascii = false
			break
		} else if 'a' <= c && c <= 'z' {
			ascii = false
			break
		}
	}
	if ascii {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteByte(byte(r))
			continue
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune of r's case folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
