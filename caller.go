package tokenvendingmachine

import (
	"net/http"
	"strings"

	"example.com/tokenvendingmachine/internal/clientip"
	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/vending"
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

// caller returns who r is for, and the instance that serves them: an
// anonymous caller by its client address and TOPICS, or the holder of a
// bearer token as internal/credential resolves it.
func (h *handler) caller(r *http.Request, le *logEntry) (*instance, vending.Caller, error) {
	client := clientip.Resolve(r.Header.Values("X-Forwarded-For"), r.RemoteAddr, h.cfg.TrustedProxies)
	le.forwardedJunk = client.Rejected
	if client.Source == clientip.None {
		return nil, vending.Caller{}, errUnidentified
	}
	raw, ok := bearer(r)
	switch {
	case !ok:
		return nil, vending.Caller{}, errMalformedAuthorization
	case raw == "" && h.cfg.Topics.IsEmpty():
		return nil, vending.Caller{}, errNoCredentials
	}

	inst, err := h.inst.Get(r.Context())
	if err != nil {
		return nil, vending.Caller{}, err
	}
	var caller vending.Caller
	if raw == "" {
		caller = vending.Caller{Key: client.Key + h.topicsKey, Scope: h.cfg.Topics, Client: client.Client}
	} else {
		var kind credential.Kind
		caller, kind, err = inst.credentials.Caller(r.Context(), raw, client.Client)
		le.credential = string(kind)
		if err != nil {
			return nil, vending.Caller{}, err
		}
		caller.Client = client.Client
	}
	le.client = h.label(caller.Key)
	return inst, caller, nil
}
