// Package idtoken verifies OpenID Connect ID tokens from one configured issuer
// (Firebase Authentication, Google, or any issuer with discovery and a JWKS).
//
// Create a [Verifier] once per instance with [New]; it discovers the issuer's
// key set (unless Options.JWKSURL names it) and fetches the signing keys once.
// [Verifier.Verify] then checks a raw token with github.com/coreos/go-oidc/v3:
// the signature with one of the issuer's asymmetric keys (never an HMAC, never
// "none"), the issuer, the audience and the expiry, plus "nbf" and "iat" not in
// the future and a subject present. Every call verifies: remembering
// verified tokens is the caller's (internal/credential keeps their callers
// in the function's one expiring cache).
//
// A token whose key id the verifier does not know makes it fetch the key set
// again, at most once per Options.RefetchInterval however many unknown key ids
// arrive: forged key ids cannot make it fetch per request.
//
// Every error from Verify is a refusal; [errors.Is] with the Err* sentinels
// tells the reason, for the log. The errors never hold token content.
//
// [IsIDToken] tells, without verifying, whether a bearer token is meant for
// this package (an asymmetric "alg" and the configured "iss") or not (for
// example an HS256 ticket), so that no token is ever tried against both kinds
// of key. [TokenID] is the opaque id that stands for a user in minted tokens.
package idtoken

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// MaxTokenBytes is the longest raw token Verify and IsIDToken look at; a
// longer one is refused before any parsing. Firebase's ID tokens are about
// 1 KiB.
const MaxTokenBytes = 8 << 10

// MaxSubjectBytes is the longest "sub" Verify accepts (OpenID Connect allows
// 255 ASCII characters; Firebase's user ids are at most 128).
const MaxSubjectBytes = 255

// ClockLeeway is how far in the future "nbf" and "iat" may be, for clock skew
// between the issuer and this process. "exp" has no leeway.
const ClockLeeway = time.Minute

// Defaults for Options.
const (
	DefaultRefetchInterval = time.Minute
	DefaultFetchTimeout    = 10 * time.Second
)

// algorithms are the signature algorithms an ID token may use: the
// asymmetric ones go-oidc supports. HMAC algorithms and "none" are never
// accepted.
var algorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// The reasons Verify refuses a token. Every error Verify returns matches
// exactly one of them with errors.Is.
var (
	// ErrMalformed: not a compact JWS with a JSON header and claims, longer
	// than MaxTokenBytes, or a claim of the wrong type.
	ErrMalformed = errors.New("idtoken: malformed token")
	// ErrAlgorithm: the header's "alg" is not asymmetric (RS256, RS384,
	// RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA), for example
	// "none" or "HS256".
	ErrAlgorithm = errors.New("idtoken: algorithm not accepted")
	// ErrUnknownKey: no key of the issuer has the header's "kid", even after
	// the refetch the budget allowed (if any).
	ErrUnknownKey = errors.New("idtoken: unknown signing key")
	// ErrSignature: the signature does not verify with the issuer's key.
	ErrSignature = errors.New("idtoken: bad signature")
	// ErrIssuer: "iss" is not the configured issuer.
	ErrIssuer = errors.New("idtoken: wrong issuer")
	// ErrAudience: "aud" does not contain the configured audience.
	ErrAudience = errors.New("idtoken: wrong audience")
	// ErrExpired: "exp" is missing or has passed.
	ErrExpired = errors.New("idtoken: expired")
	// ErrNotYetValid: "nbf" or "iat" is more than ClockLeeway in the future.
	ErrNotYetValid = errors.New("idtoken: not yet valid")
	// ErrSubject: "sub" is missing or longer than MaxSubjectBytes.
	ErrSubject = errors.New("idtoken: bad subject")
)

// Reason names the reason err matches, a fixed word for a log line:
// "malformed", "algorithm", "unknown key", "signature", "issuer",
// "audience", "expired", "not yet valid" or "subject"; "unverified" for
// anything else.
func Reason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrMalformed, "malformed"}, {ErrAlgorithm, "algorithm"},
		{ErrUnknownKey, "unknown key"}, {ErrSignature, "signature"},
		{ErrIssuer, "issuer"}, {ErrAudience, "audience"},
		{ErrExpired, "expired"}, {ErrNotYetValid, "not yet valid"},
		{ErrSubject, "subject"},
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
	oidc     *oidc.IDTokenVerifier
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
	ks := &keySet{url: jwksURL, client: opts.HTTPClient, now: opts.Now, interval: opts.RefetchInterval}
	if err := ks.fetch(ctx); err != nil {
		return nil, err
	}
	v := &Verifier{
		issuer:   opts.Issuer,
		audience: opts.Audience,
		now:      opts.Now,
		keys:     ks,
		oidc: oidc.NewVerifier(opts.Issuer, ks, &oidc.Config{
			ClientID:             opts.Audience,
			SupportedSigningAlgs: algorithms,
			Now:                  opts.Now,
		}),
	}
	return v, nil
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
	if len(raw) > MaxTokenBytes {
		return Identity{}, ErrMalformed
	}
	now := v.now()
	h, c, err := peek(raw)
	if err != nil {
		return Identity{}, err
	}
	if !acceptedAlg(h.Alg) {
		return Identity{}, ErrAlgorithm
	}
	// Refuse what the claims alone refuse before spending a signature check
	// or a key fetch on it. go-oidc checks all of it again once verified.
	if err := v.checkClaims(c, now); err != nil {
		return Identity{}, err
	}

	tr := &trace{}
	tok, err := v.oidc.Verify(context.WithValue(ctx, traceKey{}, tr), raw)
	if err != nil {
		return Identity{}, v.reason(err, tr, c, now)
	}
	if tok.Subject == "" || len(tok.Subject) > MaxSubjectBytes {
		return Identity{}, ErrSubject
	}
	id := Identity{
		Issuer:  v.issuer,
		Subject: tok.Subject,
		TokenID: TokenID(v.issuer, tok.Subject),
		Expires: tok.Expiry,
	}
	return id, nil
}

// checkClaims refuses claims with the wrong issuer or audience, expired, or
// not yet valid. go-oidc allows "nbf" five minutes ahead and ignores "iat";
// this allows ClockLeeway for both.
func (v *Verifier) checkClaims(c claims, now time.Time) error {
	switch {
	case c.Issuer != v.issuer:
		return ErrIssuer
	case !c.Audience.contains(v.audience):
		return ErrAudience
	case c.Expiry == nil || time.Unix(int64(*c.Expiry), 0).Before(now):
		return ErrExpired
	case c.NotBefore.after(now.Add(ClockLeeway)) || c.IssuedAt.after(now.Add(ClockLeeway)):
		return ErrNotYetValid
	}
	return nil
}

// reason maps a go-oidc refusal to a sentinel. go-oidc's own errors quote the
// token's claims, so they are never returned. c holds the claims, which are
// the verified ones once tr says the signature is good.
func (v *Verifier) reason(err error, tr *trace, c claims, now time.Time) error {
	var expired *oidc.TokenExpiredError
	switch {
	case tr.err != nil:
		return tr.err
	case !tr.verified:
		// go-jose refused to parse it, before any key was tried.
		return ErrMalformed
	case errors.As(err, &expired):
		return ErrExpired
	}
	if err := v.checkClaims(c, now); err != nil {
		return err
	}
	// go-oidc could not read the verified claims (e.g. "sub" not a string).
	return ErrMalformed
}

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
