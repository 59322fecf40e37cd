package tokenvendingmachine

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
	"example.com/tokenvendingmachine/internal/vending"
)

// Who a request is for. A caller is anonymous (known by its client IP, with
// the TOPICS scope), a ticket holder (Authorization: Bearer <ticket> from the
// app's backend: the ticket's sub and topics), or a signed-in user
// (Authorization: Bearer <ID token> from OIDC_ISSUER: OIDC_TOPICS for its
// subject). A bearer token is an ID token or a ticket by its header and
// issuer (idtoken.IsIDToken), never by trying both kinds of key. No scope
// ever comes from the request itself.

// errNoCredentials refuses an anonymous caller when TOPICS is none.
var errNoCredentials = failure.New(failure.Unauthenticated, "credentials required")

// refusal returns the error for a credential refused for reason, a fixed
// word for the log ("expired", "signature", ...).
func refusal(kind failure.Kind, reason string) error {
	return &failure.Error{Kind: kind, Err: errors.New(reason)}
}

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

// maxBearerLen bounds a bearer token before anything else looks at it:
// above both verifiers' limits.
const maxBearerLen = 8 << 10

// credentialCaller resolves a bearer token to its caller: from the cache
// of verified credentials, or by verifying it. The error is BadCredentials
// or Forbidden, with the reason in le.reason; or a setup error.
func (h *handler) credentialCaller(ctx context.Context, inst *instance, raw string, le *logEntry) (vending.Caller, error) {
	if len(raw) > maxBearerLen {
		le.reason = "malformed"
		return vending.Caller{}, refusal(failure.BadCredentials, "malformed")
	}
	sum := sha256.Sum256([]byte(raw))
	now := h.now()
	if c, kind, ok := h.verified.get(sum, now); ok {
		le.credential = kind
		return c, nil
	}
	var c vending.Caller
	var exp time.Time
	var err error
	if h.cfg.OIDCIssuer != "" && idtoken.IsIDToken(raw, h.cfg.OIDCIssuer) {
		c, exp, err = h.idTokenCaller(ctx, raw, le)
	} else {
		c, exp, err = h.ticketCaller(ctx, inst, raw, le)
	}
	if err != nil {
		return vending.Caller{}, err
	}
	h.verified.put(sum, c, le.credential, exp)
	return c, nil
}

// ticketCaller verifies a ticket.
func (h *handler) ticketCaller(ctx context.Context, inst *instance, raw string, le *logEntry) (vending.Caller, time.Time, error) {
	le.credential = "ticket"
	if inst.tickets == nil {
		le.reason = "tickets not configured"
		return vending.Caller{}, time.Time{}, refusal(failure.BadCredentials, le.reason)
	}
	claims, err := inst.tickets.verify(ctx, raw)
	if err != nil {
		le.reason = ticket.Reason(err)
		return vending.Caller{}, time.Time{}, refusal(failure.BadCredentials, le.reason)
	}
	c := vending.Caller{
		Key:     "ticket:" + claims.Subject + ":" + claims.Scope.Key(),
		Scope:   claims.Scope,
		TokenID: claims.Subject,
	}
	return c, claims.Expires, nil
}

// idTokenCaller verifies an ID token from OIDC_ISSUER and expands
// OIDC_TOPICS (and OIDC_PUBLISH) for its subject.
func (h *handler) idTokenCaller(ctx context.Context, raw string, le *logEntry) (vending.Caller, time.Time, error) {
	le.credential = "id_token"
	v, err := h.oidc.Get(ctx)
	if err != nil {
		return vending.Caller{}, time.Time{}, err
	}
	id, err := v.Verify(ctx, raw)
	if err != nil {
		le.reason = idtoken.Reason(err)
		return vending.Caller{}, time.Time{}, refusal(failure.BadCredentials, le.reason)
	}
	sub, err := h.cfg.OIDCTopics.Expand(id.Subject)
	if err != nil {
		le.reason = "subject does not fit OIDC_TOPICS"
		return vending.Caller{}, time.Time{}, refusal(failure.Forbidden, le.reason)
	}
	var pub scope.Scope
	if !h.cfg.OIDCPublish.IsZero() {
		if pub, err = h.cfg.OIDCPublish.Expand(id.Subject); err != nil {
			le.reason = "subject does not fit OIDC_PUBLISH"
			return vending.Caller{}, time.Time{}, refusal(failure.Forbidden, le.reason)
		}
	}
	c := vending.Caller{
		Key:     "oidc:" + id.TokenID + ":" + sub.Key() + ":" + pub.Key(),
		Scope:   sub,
		Publish: pub,
		TokenID: id.TokenID,
	}
	return c, id.Expires, nil
}

// newIDTokenVerifier discovers OIDC_ISSUER's keys: the Build of h.oidc.
func (h *handler) newIDTokenVerifier(ctx context.Context) (*idtoken.Verifier, error) {
	v, err := idtoken.New(ctx, idtoken.Options{
		Issuer: h.cfg.OIDCIssuer, Audience: h.cfg.OIDCAudience, JWKSURL: h.cfg.OIDCJWKSURL, Now: h.now,
		HTTPClient: &http.Client{Timeout: h.cfg.UpstreamTimeout},
		// The edge remembers verified callers itself.
		CacheMaxEntries: -1,
	})
	if err != nil {
		h.log.Error(logIssuerFailed, "error", err.Error())
		return nil, fmt.Errorf("%w: %w", errIssuer, failure.Wrap(failure.Unavailable, err))
	}
	return v, nil
}

// verifiedCache remembers the callers of verified credentials, by the
// SHA-256 of the credential, until the credential expires, so that a
// repeat request verifies no signature. It holds at most maxVerified
// entries, evicting the least recently used; every operation is O(1).
type verifiedCache struct {
	mu    sync.Mutex // guards the fields below
	m     map[[sha256.Size]byte]*list.Element
	order list.List // of *verifiedEntry, most recently used first
}

type verifiedEntry struct {
	sum    [sha256.Size]byte
	caller vending.Caller
	kind   string // the credential's kind, for the log line
	exp    time.Time
}

const maxVerified = 10_000

func (vc *verifiedCache) get(sum [sha256.Size]byte, now time.Time) (c vending.Caller, kind string, ok bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	el, ok := vc.m[sum]
	if !ok {
		return vending.Caller{}, "", false
	}
	e := el.Value.(*verifiedEntry)
	if !now.Before(e.exp) {
		vc.order.Remove(el)
		delete(vc.m, sum)
		return vending.Caller{}, "", false
	}
	vc.order.MoveToFront(el)
	return e.caller, e.kind, true
}

func (vc *verifiedCache) put(sum [sha256.Size]byte, c vending.Caller, kind string, exp time.Time) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.m == nil {
		vc.m = make(map[[sha256.Size]byte]*list.Element)
	}
	if el, ok := vc.m[sum]; ok {
		e := el.Value.(*verifiedEntry)
		e.caller, e.kind, e.exp = c, kind, exp
		vc.order.MoveToFront(el)
		return
	}
	if vc.order.Len() >= maxVerified {
		oldest := vc.order.Back()
		vc.order.Remove(oldest)
		delete(vc.m, oldest.Value.(*verifiedEntry).sum)
	}
	vc.m[sum] = vc.order.PushFront(&verifiedEntry{sum: sum, caller: c, kind: kind, exp: exp})
}
