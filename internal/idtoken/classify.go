package idtoken

import (
	"slices"

	"example.com/tokenvendingmachine/internal/jws"
)

// IsIDToken reports whether a bearer token with header h, as jws.Parse read
// it, is meant to be an ID token: its "alg" is asymmetric (RS*, ES*, PS* or
// EdDSA). It verifies nothing; it only decides which verifier a token goes
// to, so that a token is never tried against both an HMAC key and the
// issuer's public keys. A token with an HMAC "alg" (such as an HS256
// ticket) is never an ID token. Which issuer a token names is not read
// here: claims are read only once the issuer's key has verified them.
func IsIDToken(h jws.Header) bool {
	return slices.Contains(algorithms, h.Alg)
}
