package tokenvendingmachine

import (
	"net/http"
	"strings"

	"example.com/tokenvendingmachine/internal/failure"
)

// Who a request is for. A caller is anonymous (known by its client IP, with
// the TOPICS scope), or the holder of a bearer token (Authorization: Bearer
// <ticket or ID token>), which internal/credential resolves to a ticket
// holder or a signed-in user. No scope ever comes from the request itself.

// The refusals of who a request is for that the edge makes itself;
// internal/credential makes those of a credential.
var (
	// errNoCredentials refuses an anonymous caller when TOPICS is none.
	errNoCredentials = failure.Refusal(failure.Unauthenticated, "no credentials")
	// errMalformedAuthorization refuses an Authorization header that is
	// not one "Bearer <token>".
	errMalformedAuthorization = failure.Refusal(failure.BadCredentials, "malformed authorization")
)

// bearer returns the token of an "Authorization: Bearer <token>" header, ""
// if there is no Authorization header, and ok false if there is one of
// another form.
func bearer(r *http.Request) (token string, ok bool) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", true
	case len(h) > 1:
		return "", false
	}
	scheme, token, found := strings.Cut(h[0], " ")
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
