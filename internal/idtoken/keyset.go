package idtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// maxJWKSBytes bounds the key set document read from the issuer.
const maxJWKSBytes = 1 << 20

// maxKeys bounds how many keys of a key set are kept (Google publishes 2 or 3).
const maxKeys = 32

// keySet is the issuer's key set: an oidc.KeySet that fetches the JWKS at
// most once per interval.
//
// go-oidc's RemoteKeySet fetches the JWKS again whenever a token fails to
// verify with the cached keys, an unknown "kid" or a bad signature alike, so
// every forged token would cost a fetch (concurrent ones share it, sequential
// ones do not). This one fetches only for a "kid" it does not know (or a token
// without "kid" that no key verifies), and only if no fetch started within
// interval; otherwise it refuses with ErrUnknownKey at once.
type keySet struct {
	url      string
	client   *http.Client
	now      func() time.Time
	interval time.Duration

	flight singleflight.Group

	mu sync.Mutex
	// keys are the usable public keys of the last successful fetch. Guarded by mu.
	keys []jose.JSONWebKey
	// gen counts the successful fetches. Guarded by mu.
	gen int
	// lastFetch is when the last fetch started, successful or not. Guarded by mu.
	lastFetch time.Time

	checks  atomic.Int64 // signature verifications run
	fetches atomic.Int64 // fetches started
}

// joseAlgorithms is algorithms for go-jose.
var joseAlgorithms = func() []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(algorithms))
	for i, a := range algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	return algs
}()

// traceKey is the context key of a *trace.
type traceKey struct{}

// trace records, for one Verify, what the key set found: go-oidc reports key
// set failures as text only.
type trace struct {
	// verified reports that a signature verified.
	verified bool
	// err is ErrUnknownKey or ErrSignature when verification failed.
	err error
}

// VerifySignature implements oidc.KeySet. go-oidc has already checked the
// algorithm against algorithms.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	tr, _ := ctx.Value(traceKey{}).(*trace)
	if tr == nil {
		tr = &trace{}
	}
	payload, err := ks.verify(ctx, jwt)
	if err != nil {
		tr.err = err
		return nil, err
	}
	tr.verified = true
	return payload, nil
}

func (ks *keySet) verify(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, joseAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	kid := jws.Signatures[0].Header.KeyID

	ks.mu.Lock()
	keys, gen := ks.keys, ks.gen
	ks.mu.Unlock()
	payload, err := ks.verifyWith(jws, kid, keys)
	if !errors.Is(err, ErrUnknownKey) {
		return payload, err
	}
	keys, ok := ks.refetch(ctx, gen)
	if !ok {
		return nil, ErrUnknownKey
	}
	return ks.verifyWith(jws, kid, keys)
}

// verifyWith verifies jws with the key named kid, or with every key when kid
// is "". It returns ErrUnknownKey when no key has that kid, or when kid is ""
// and no key verifies.
func (ks *keySet) verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, error) {
	alg := jws.Signatures[0].Header.Algorithm
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.KeyID != kid {
			continue
		}
		// A key that names its algorithm is used only with it.
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		ks.checks.Add(1)
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
		if kid != "" {
			return nil, ErrSignature
		}
	}
	if kid != "" && slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid }) {
		return nil, ErrSignature // the kid's key is for another algorithm
	}
	return nil, ErrUnknownKey
}

// refetch returns keys newer than generation gen: the keys another caller
// has fetched since, or those of a new fetch if the budget allows one.
// Concurrent callers share one fetch. ok is false when there are no newer
// keys.
func (ks *keySet) refetch(ctx context.Context, gen int) (keys []jose.JSONWebKey, ok bool) {
	if keys, ok := ks.newer(gen); ok {
		return keys, true
	}
	// Join a fetch in flight even when the budget is spent: it is the fetch
	// that spent it.
	ch := ks.flight.DoChan("", func() (any, error) {
		if !ks.due() {
			return nil, nil
		}
		// The fetch serves every waiter: it must not end with one caller's
		// request.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultFetchTimeout)
		defer cancel()
		return nil, ks.fetch(fctx)
	})
	select {
	case <-ctx.Done():
		return nil, false
	case <-ch:
	}
	return ks.newer(gen)
}

// newer returns the keys if a fetch since generation gen replaced them.
func (ks *keySet) newer(gen int) ([]jose.JSONWebKey, bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.keys, ks.gen != gen
}

// due reports whether the budget allows a fetch now.
func (ks *keySet) due() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.now().Sub(ks.lastFetch) >= ks.interval
}

// fetch gets the key set and, if it holds a usable key, replaces ks.keys. It
// counts as a fetch for the budget whether or not it succeeds.
func (ks *keySet) fetch(ctx context.Context) error {
	ks.mu.Lock()
	ks.lastFetch = ks.now()
	ks.mu.Unlock()
	ks.fetches.Add(1)

	keys, err := ks.get(ctx)
	if err != nil {
		return fmt.Errorf("idtoken: fetch key set: %w", err)
	}
	ks.mu.Lock()
	ks.keys = keys
	ks.gen++
	ks.mu.Unlock()
	return nil
}

func (ks *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("key set longer than %d bytes", maxJWKSBytes)
	}
	return parseKeySet(body)
}

// parseKeySet returns the usable signing keys of a JWKS: public keys of an
// accepted type, not marked for encryption, whose "alg" (if any) is one of
// algorithms. Keys it cannot use are skipped, as RFC 7517 asks; a set with
// no usable key is an error.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Algorithm != "" && !acceptedAlg(k.Algorithm) {
			continue
		}
		keys = append(keys, k)
		if len(keys) == maxKeys {
			break
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("key set has no usable signing key")
	}
	return keys, nil
}
