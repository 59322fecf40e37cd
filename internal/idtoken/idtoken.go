// Package idtoken verifies OpenID Connect ID tokens from one configured issuer
// (Firebase Authentication, Google, or any issuer with discovery and a JWKS).
//
// Create a [Verifier] once per instance with [New]; it discovers the issuer's
// key set with github.com/coreos/go-oidc/v3 (unless Options.JWKSURL names it)
// and fetches the signing keys once. [Verifier.Verify] then checks a raw
// token; every call verifies: remembering verified tokens is the caller's
// (internal/credential keeps their callers in the function's one expiring
// cache).
//
// # One parse, signature first
//
// A forged ID token needs nothing secret (the issuer, the audience and a
// published key id), so refusing one must cost no more than refusing a
// malformed token plus one signature check. A token is parsed once:
// jws.Parse bounds it (MaxTokenBytes, a header of at most 1 KiB that is one
// flat JSON object, canonical base64url) and reads "alg" and "kid"; the key
// with that "kid" checks the signature over the token as it came (RS256,
// RS384 and RS512 with the key's modulus prepared when the key set was read,
// by internal/pkcs1v15; the others with golang-jwt's signing methods, with
// the key's own algorithm and curve);
// only then are the claims decoded, once, by jws.DecodeClaims, which refuses
// duplicate or case-variant names and registered claims of the wrong type.
// go-oidc's IDTokenVerifier is not used for this: it decodes the claims and
// checks them before the signature, and it and go-jose's ParseSigned each
// decode every header member, nested ones too, into interface{}. go-oidc
// earns its place in discovery, which checks that the discovery document
// names the configured issuer.
//
// # The rules
//
// Once the signature verified with one of the issuer's asymmetric keys
// (never an HMAC, never "none"):
//
//   - "iss" is the configured issuer;
//   - "aud" is or holds the configured audience, and when it holds several,
//     "azp" is present and is the configured audience (OpenID Connect Core
//     3.1.3.7);
//   - "exp" is present, not passed, and at most [MaxLifetime] (24 hours) plus
//     [ClockLeeway] ahead: providers issue ID tokens for an hour (Google,
//     Firebase, Entra ID, Okta) to at most a day (Cognito), and a verified
//     token is remembered until its "exp";
//   - "nbf" and "iat", if present, are at most ClockLeeway ahead;
//   - "sub" is 1 to MaxSubjectBytes bytes.
//
// A token whose key id the verifier does not know makes it fetch the key set
// again, at most once per Options.RefetchInterval however many unknown key ids
// arrive: forged key ids cannot make it fetch per request. A token without a
// key id is checked only when the key set holds one key for its algorithm
// (OpenID Connect Core 10.1 requires "kid" when there are several), so no
// token costs more than one signature check. The key set is also fetched
// again once it is older than Options.KeysMaxAge (10 minutes by default), by
// the first request after that, so that a key the issuer removed stops
// verifying; [Verifier.KeyCurrent] tells a caller that remembers verified
// identities whether the key behind one is still there.
//
// Every error from Verify is a refusal; [errors.Is] with the Err* sentinels
// tells the reason, for the log. The errors never hold token content.
//
// [IsIDToken] tells from a pre-checked header whether a bearer token is meant
// for this package (an asymmetric "alg") or not (for example an HS256
// ticket), so that no token is ever tried against both kinds of key; which
// issuer signed it is read only after the signature verified. [TokenID] is
// the opaque id that stands for a user in minted tokens.
package idtoken

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"

	"example.com/tokenvendingmachine/internal/jws"
)

// MaxTokenBytes is the longest raw token Verify looks at; a longer one is
// refused before any parsing. Firebase's ID tokens are about 1 KiB.
const MaxTokenBytes = 8 << 10

// MaxSubjectBytes is the longest "sub" Verify accepts (OpenID Connect allows
// 255 ASCII characters; Firebase's user ids are at most 128).
const MaxSubjectBytes = 255

// ClockLeeway is how far in the future "nbf" and "iat" may be, for clock skew
// between the issuer and this process, and how far beyond MaxLifetime "exp"
// may be. "exp" has no leeway once passed.
const ClockLeeway = time.Minute

// MaxLifetime is how far ahead of now an ID token's "exp" may be (plus
// ClockLeeway).
const MaxLifetime = 24 * time.Hour

// Defaults for Options.
const (
	DefaultRefetchInterval = time.Minute
	DefaultKeysMaxAge      = 10 * time.Minute
	DefaultFetchTimeout    = 10 * time.Second
)

// algorithms are the signature algorithms an ID token may use: the
// asymmetric ones. HMAC algorithms and "none" are never accepted.
var algorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// Algorithms returns the signature algorithms an ID token may use (RS256,
// RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA), for
// jws.Parse.
func Algorithms() []string { return append([]string(nil), algorithms...) }

// The reasons Verify refuses a token. Every error Verify returns matches
// exactly one of them with errors.Is.
var (
	// ErrMalformed: the token fails jws.Parse's pre-check (not a compact JWS
	// with a small, flat JSON header, or longer than MaxTokenBytes), or its
	// verified claims are not one JSON object with distinct names (also
	// regardless of case) and claims of their types.
	ErrMalformed = errors.New("idtoken: malformed token")
	// ErrAlgorithm: the header's "alg" is not asymmetric (RS256, RS384,
	// RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA), for example
	// "none" or "HS256".
	ErrAlgorithm = errors.New("idtoken: algorithm not accepted")
	// ErrUnknownKey: no key of the issuer has the header's "kid", even after
	// the refetch the budget allowed (if any); or the token has no "kid" and
	// the key set does not hold exactly one key for its algorithm, or that
	// key does not verify it.
	ErrUnknownKey = errors.New("idtoken: unknown signing key")
	// ErrSignature: the signature does not verify with the issuer's key.
	ErrSignature = errors.New("idtoken: bad signature")
	// ErrIssuer: "iss" is not the configured issuer.
	ErrIssuer = errors.New("idtoken: wrong issuer")
	// ErrAudience: "aud" does not contain the configured audience, or holds
	// several and "azp" is not the configured audience.
	ErrAudience = errors.New("idtoken: wrong audience")
	// ErrExpired: "exp" is missing or has passed.
	ErrExpired = errors.New("idtoken: expired")
	// ErrLifetime: "exp" is more than MaxLifetime plus ClockLeeway ahead.
	ErrLifetime = errors.New("idtoken: exp too far ahead")
	// ErrNotYetValid: "nbf" or "iat" is more than ClockLeeway in the future.
	ErrNotYetValid = errors.New("idtoken: not yet valid")
	// ErrSubject: "sub" is missing or longer than MaxSubjectBytes.
	ErrSubject = errors.New("idtoken: bad subject")
)

// Reason names the reason err matches, a fixed word for a log line:
// "malformed", "algorithm", "unknown key", "signature", "issuer",
// "audience", "expired", "lifetime", "not yet valid" or "subject";
// "unverified" for anything else.
func Reason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrMalformed, "malformed"}, {ErrAlgorithm, "algorithm"},
		{ErrUnknownKey, "unknown key"}, {ErrSignature, "signature"},
		{ErrIssuer, "issuer"}, {ErrAudience, "audience"},
		{ErrExpired, "expired"}, {ErrLifetime, "lifetime"},
		{ErrNotYetValid, "not yet valid"}, {ErrSubject, "subject"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "unverified"
}

// Options configures New.
type Options struct {
	// Issuer is the issuer identifier, exactly as in the tokens' "iss", e.g.
	// https://securetoken.google.com/<project-id> for Firebase. Required.
	Issuer string
	// Audience is the required "aud" (Firebase: the project id). Required.
	Audience string
	// JWKSURL is the issuer's key set URL. When set, New skips discovery;
	// when "", New reads it from Issuer + "/.well-known/openid-configuration".
	JWKSURL string
	// HTTPClient fetches the discovery document and the keys; nil means a
	// client with a DefaultFetchTimeout timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry and the refetch budget; nil means
	// time.Now.
	Now func() time.Time
	// RefetchInterval is the least time between two fetches of the key set;
	// 0 means DefaultRefetchInterval.
	RefetchInterval time.Duration
	// KeysMaxAge is how long the key set is used before a request fetches
	// it again (no goroutine runs behind the Verifier), so that a key the
	// issuer removed stops verifying; 0 means DefaultKeysMaxAge.
	KeysMaxAge time.Duration
}

// Identity is what a verified ID token says about its holder.
type Identity struct {
	// Issuer is the configured issuer.
	Issuer string
	// Subject is the token's "sub", the issuer's id for the user. It may be
	// personal data: never log it, never put it in a minted token.
	Subject string
	// TokenID is TokenID(Issuer, Subject), safe to show other users.
	TokenID string
	// Expires is the token's "exp".
	Expires time.Time
	// KeyID is the kid of the issuer's key that verified the token. See
	// Verifier.KeyCurrent.
	KeyID string
}

// Stats counts what a Verifier did, for metrics and tests.
type Stats struct {
	// SignatureChecks is how many signature verifications were run.
	SignatureChecks int64
	// KeyFetches is how many times the key set was fetched (including the
	// first, in New), successfully or not.
	KeyFetches int64
}

// Verifier verifies ID tokens from one issuer. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	now      func() time.Time
	keys     *keySet
}

// New returns a Verifier for opts.Issuer. It fetches the discovery document
// (unless opts.JWKSURL is set) and the key set, and fails if either fails.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("idtoken: issuer is required")
	}
	if opts.Audience == "" {
		return nil, errors.New("idtoken: audience is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefetchInterval <= 0 {
		opts.RefetchInterval = DefaultRefetchInterval
	}
	if opts.KeysMaxAge <= 0 {
		opts.KeysMaxAge = DefaultKeysMaxAge
	}
	jwksURL := opts.JWKSURL
	if jwksURL == "" {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, opts.HTTPClient), opts.Issuer)
		if err != nil {
			return nil, fmt.Errorf("idtoken: discovery: %w", err)
		}
		var doc struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err := p.Claims(&doc); err != nil || doc.JWKSURL == "" {
			return nil, fmt.Errorf("idtoken: discovery document names no jwks_uri")
		}
		jwksURL = doc.JWKSURL
	}
	ks := &keySet{url: jwksURL, client: opts.HTTPClient, now: opts.Now, interval: opts.RefetchInterval, maxAge: opts.KeysMaxAge}
	if err := ks.fetch(ctx); err != nil {
		return nil, err
	}
	return &Verifier{issuer: opts.Issuer, audience: opts.Audience, now: opts.Now, keys: ks}, nil
}

// Issuer is the configured issuer.
func (v *Verifier) Issuer() string { return v.issuer }

// Stats returns the counts so far.
func (v *Verifier) Stats() Stats {
	return Stats{
		SignatureChecks: v.keys.checks.Load(),
		KeyFetches:      v.keys.fetches.Load(),
	}
}

// Verify checks raw, a compact-serialized ID token, and returns who it
// identifies. Every error is a refusal and matches one of the Err* sentinels;
// it holds no token content, so it may be logged.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	tok, err := jws.Parse(raw, MaxTokenBytes, algorithms)
	if err != nil {
		return Identity{}, Refusal(err)
	}
	return v.VerifyToken(ctx, tok)
}

// Refusal returns Verify's error for a token that jws.Parse refused with
// err: ErrAlgorithm or ErrMalformed.
func Refusal(err error) error {
	if errors.Is(err, jws.ErrAlgorithm) {
		return ErrAlgorithm
	}
	return ErrMalformed
}

// VerifyToken is Verify for a token that passed jws.Parse (with a list of
// algorithms that may hold others than Algorithms).
func (v *Verifier) VerifyToken(ctx context.Context, tok jws.Token) (Identity, error) {
	switch {
	case len(tok.Raw()) > MaxTokenBytes:
		return Identity{}, ErrMalformed
	case !IsIDToken(tok.Header):
		return Identity{}, ErrAlgorithm
	}
	kid, err := v.keys.verify(ctx, tok)
	if err != nil {
		return Identity{}, err
	}

	// Signed by the issuer's key: now, and only now, the claims.
	payload, err := tok.Payload()
	if err != nil {
		return Identity{}, ErrMalformed
	}
	c, err := jws.DecodeClaims(payload)
	if err != nil {
		return Identity{}, ErrMalformed
	}
	azp, _, err := c.String("azp")
	if err != nil {
		return Identity{}, ErrMalformed
	}
	if err := v.checkClaims(c, azp, v.now()); err != nil {
		return Identity{}, err
	}
	return Identity{
		Issuer:  v.issuer,
		Subject: c.Subject,
		TokenID: TokenID(v.issuer, c.Subject),
		Expires: c.ExpiresAt.Time,
		KeyID:   kid,
	}, nil
}

// KeyCurrent reports whether the key that verified an identity (its KeyID)
// is still in the issuer's key set, fetching the set again first if it is
// older than Options.KeysMaxAge: a caller that remembers verified
// identities asks before serving one, so that a key the issuer removed
// stops them.
func (v *Verifier) KeyCurrent(ctx context.Context, kid string) bool {
	v.keys.refreshIfOld(ctx)
	return v.keys.has(kid)
}

// checkClaims applies the rules of the package comment to verified claims.
func (v *Verifier) checkClaims(c jws.Claims, azp string, now time.Time) error {
	switch {
	case c.Issuer != v.issuer:
		return ErrIssuer
	case !slices.Contains(c.Audience, v.audience):
		return ErrAudience
	case len(c.Audience) > 1 && azp != v.audience:
		return ErrAudience
	case c.ExpiresAt == nil || c.ExpiresAt.Before(now):
		return ErrExpired
	case c.ExpiresAt.Sub(now) > MaxLifetime+ClockLeeway:
		return ErrLifetime
	case after(c.NotBefore, now.Add(ClockLeeway)) || after(c.IssuedAt, now.Add(ClockLeeway)):
		return ErrNotYetValid
	case c.Subject == "" || len(c.Subject) > MaxSubjectBytes:
		return ErrSubject
	}
	return nil
}

// after reports whether d is present and later than t.
func after(d *jwt.NumericDate, t time.Time) bool { return d != nil && d.After(t) }

// TokenID returns the opaque id that stands for the user (issuer, subject) in
// minted tokens (Momento's tokenId, which every subscriber of a topic sees as
// the publisher). It is stable, 45 bytes, URL-safe, and reveals neither the
// issuer nor the subject:
//
//	"u-" + base64url_nopad(SHA-256(issuer + "\x00" + subject))
//
// An app maps it back by computing the same for its own users, e.g. in
// Node.js:
//
//	"u-" + crypto.createHash("sha256").update(issuer + "\0" + uid).digest("base64url")
//
// The hash is not keyed: anyone who knows a user's issuer and subject (a
// Firebase uid is a random 28-character string) can compute the id, but
// nobody can get the subject back from it.
func TokenID(issuer, subject string) string {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	var sum [sha256.Size]byte
	return "u-" + base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0]))
}
