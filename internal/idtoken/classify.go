package idtoken

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// IsIDToken reports whether raw, a bearer token, is meant to be an ID token
// from issuer: a compact JWS (at most MaxTokenBytes) whose header names an
// asymmetric algorithm (RS*, ES*, PS* or EdDSA) and whose "iss" claim is
// issuer. It verifies nothing; it only decides which verifier a token goes
// to, so that a token is never tried against both an HMAC key and the
// issuer's public keys. A token with an HMAC
// "alg" (such as an HS256 ticket) is never an ID token, whatever its "iss".
func IsIDToken(raw, issuer string) bool {
	if issuer == "" {
		return false
	}
	h, c, err := peek(raw)
	return err == nil && acceptedAlg(h.Alg) && c.Issuer == issuer
}

func acceptedAlg(alg string) bool {
	return slices.Contains(algorithms, alg)
}

// header is the part of a JWS header that is read before verifying.
type header struct {
	Alg string `json:"alg"`
}

// claims are the registered claims read before verifying (to route and to
// refuse early) and, once go-oidc has verified the signature over the same
// bytes, to name the reason for a refusal.
type claims struct {
	Issuer    string       `json:"iss"`
	Audience  audience     `json:"aud"`
	Expiry    *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`
}

// audience is "aud": one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

func (a audience) contains(aud string) bool { return slices.Contains(a, aud) }

// numericDate is a JWT NumericDate: seconds since the epoch, maybe fractional.
type numericDate float64

// after reports whether d is present and later than t (whole seconds).
func (d *numericDate) after(t time.Time) bool {
	return d != nil && time.Unix(int64(*d), 0).After(t)
}

// peek decodes raw's header and claims without verifying anything. It refuses
// anything but a compact JWS of at most MaxTokenBytes with JSON objects in
// both parts.
func peek(raw string) (header, claims, error) {
	var h header
	var c claims
	if len(raw) > MaxTokenBytes {
		return h, c, ErrMalformed
	}
	hb, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return h, c, ErrMalformed
	}
	cb, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return h, c, ErrMalformed
	}
	// Each part must be canonical base64url: otherwise one token would have
	// several spellings, each a fresh cache entry and signature check.
	if _, err := strictB64.DecodeString(sig); err != nil {
		return h, c, ErrMalformed
	}
	if decodePart(hb, &h) != nil || decodePart(cb, &c) != nil {
		return h, c, ErrMalformed
	}
	return h, c, nil
}

// strictB64 is base64url without padding that refuses non-zero unused bits.
var strictB64 = base64.RawURLEncoding.Strict()

func decodePart(part string, v any) error {
	b, err := strictB64.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
