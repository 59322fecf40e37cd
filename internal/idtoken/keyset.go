package idtoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // RS256's hash
	_ "crypto/sha512" // RS384's and RS512's
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"

	"example.com/tokenvendingmachine/internal/jws"
	"example.com/tokenvendingmachine/internal/pkcs1v15"
)

// maxJWKSBytes bounds the key set document read from the issuer.
const maxJWKSBytes = 1 << 20

// maxKeys bounds how many keys of a key set are kept (Google publishes 2 or 3).
const maxKeys = 32

// keySet is the issuer's key set, fetched at most once per interval.
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
	maxAge   time.Duration // how long keys are used before they are fetched again

	refreshing sync.Mutex // held by the one caller refreshing keys past maxAge

	flight singleflight.Group

	mu sync.Mutex
	// keys are the usable public keys of the last successful fetch. Guarded by mu.
	keys []key
	// gen counts the successful fetches. Guarded by mu.
	gen int
	// lastFetch is when the last fetch started, successful or not. Guarded by mu.
	lastFetch time.Time
	// fetchedAt is when keys were fetched. Guarded by mu.
	fetchedAt time.Time

	checks  atomic.Int64 // signature verifications run
	fetches atomic.Int64 // fetches started
}

// verify checks tok's signature with the issuer's key that its "kid" names,
// fetching the key set again for an unknown one if the budget allows. It
// returns nil, ErrUnknownKey or ErrSignature, having run at most one
// signature check.
// It returns the kid of the key that verified tok.
func (ks *keySet) verify(ctx context.Context, tok jws.Token) (string, error) {
	if tok.Header.BadKeyID {
		return "", ErrUnknownKey
	}
	ks.refreshIfOld(ctx)
	ks.mu.Lock()
	keys, gen := ks.keys, ks.gen
	ks.mu.Unlock()
	kid, err := ks.verifyWith(tok, keys)
	if !errors.Is(err, ErrUnknownKey) {
		return kid, err
	}
	keys, ok := ks.refetch(ctx, gen)
	if !ok {
		return "", ErrUnknownKey
	}
	return ks.verifyWith(tok, keys)
}

// refreshIfOld fetches the key set again if its keys are older than maxAge
// and the fetch budget allows, so that a key the issuer removed stops
// verifying without a redeploy. One caller fetches, within
// DefaultFetchTimeout; the others go on with the keys they have. A failed
// fetch keeps the keys, and is tried again after the fetch interval.
func (ks *keySet) refreshIfOld(ctx context.Context) {
	ks.mu.Lock()
	old := ks.now().Sub(ks.fetchedAt) >= ks.maxAge && ks.now().Sub(ks.lastFetch) >= ks.interval
	ks.mu.Unlock()
	if !old || !ks.refreshing.TryLock() {
		return
	}
	defer ks.refreshing.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultFetchTimeout)
	defer cancel()
	ks.fetch(fctx) //nolint:errcheck // the keys are kept; the next interval tries again
}

// has reports whether the current keys hold one with key id kid.
func (ks *keySet) has(kid string) bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return slices.ContainsFunc(ks.keys, func(k key) bool { return k.KeyID == kid })
}

// verifyWith verifies tok with the key its "kid" names among keys, or, for a
// token without "kid", with the one key usable with its algorithm, and
// returns that key's kid. It returns ErrUnknownKey when there is no such
// key, or when the token has no "kid" and the key does not verify it.
func (ks *keySet) verifyWith(tok jws.Token, keys []key) (string, error) {
	alg, kid := tok.Header.Alg, tok.Header.KeyID
	if kid == "" {
		// OpenID Connect Core 10.1: a key set of several keys needs "kid".
		var only *key
		for i := range keys {
			if fits(&keys[i].JSONWebKey, alg) {
				if only != nil {
					return "", ErrUnknownKey
				}
				only = &keys[i]
			}
		}
		if only == nil {
			return "", ErrUnknownKey
		}
		ks.checks.Add(1)
		if !only.verifies(tok) {
			return "", ErrUnknownKey
		}
		return only.KeyID, nil
	}
	known := false
	for i := range keys {
		k := &keys[i]
		if k.KeyID != kid {
			continue
		}
		known = true
		if !fits(&k.JSONWebKey, alg) {
			continue
		}
		ks.checks.Add(1)
		if !k.verifies(tok) {
			return "", ErrSignature
		}
		return kid, nil
	}
	if known {
		return "", ErrSignature // the kid's key is for another algorithm
	}
	return "", ErrUnknownKey
}

// key is a usable key of a key set; an RSA key comes with its modulus
// prepared for RS256, RS384 and RS512 checks.
type key struct {
	jose.JSONWebKey
	rsa *pkcs1v15.PublicKey // nil for other keys, and for an RSA key pkcs1v15 does not prepare
}

// verifies reports whether k verifies tok's signature, made with the
// algorithm tok names, which fits k: with the prepared modulus for RS256,
// RS384 and RS512, and with golang-jwt's signing method otherwise.
func (k *key) verifies(tok jws.Token) bool {
	method := jwt.GetSigningMethod(tok.Header.Alg)
	if rs, ok := method.(*jwt.SigningMethodRSA); ok && k.rsa != nil { // RS256, RS384, RS512
		h := rs.Hash.New()
		io.WriteString(h, tok.SigningInput())
		return k.rsa.Verify(rs.Hash, h.Sum(nil), tok.Signature()) == nil
	}
	return method != nil && method.Verify(tok.SigningInput(), tok.Signature(), k.Key) == nil
}

// fits reports whether k may verify a signature made with alg: a key that
// names its algorithm is used only with it, and the key's type (and curve)
// must be alg's.
func fits(k *jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// refetch returns keys newer than generation gen: the keys another caller
// has fetched since, or those of a new fetch if the budget allows one.
// Concurrent callers share one fetch. ok is false when there are no newer
// keys.
func (ks *keySet) refetch(ctx context.Context, gen int) (keys []key, ok bool) {
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
func (ks *keySet) newer(gen int) ([]key, bool) {
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
	ks.fetchedAt = ks.now()
	ks.mu.Unlock()
	return nil
}

func (ks *keySet) get(ctx context.Context) ([]key, error) {
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
// no usable key is an error. RSA keys have their modulus prepared.
func parseKeySet(body []byte) ([]key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	var keys []key
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Algorithm != "" && !slices.Contains(algorithms, k.Algorithm) {
			continue
		}
		usable := key{JSONWebKey: k}
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			// nil for a key NewPublicKey does not prepare: its tokens are
			// then checked by golang-jwt, with crypto/rsa, as before.
			usable.rsa, _ = pkcs1v15.NewPublicKey(pub)
		}
		keys = append(keys, usable)
		if len(keys) == maxKeys {
			break
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("key set has no usable signing key")
	}
	return keys, nil
}
