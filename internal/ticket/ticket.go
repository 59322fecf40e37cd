// Package ticket verifies and issues tickets: short-lived HS256 JSON Web
// Tokens that an app's backend signs to tell the token vending machine
// which topics one of its users may subscribe to.
//
//	keys, err := ticket.ParseKeys(payload) // the TICKET_SECRET_ID secret
//	v, err := ticket.NewVerifier(keys, ticket.Options{})
//	c, err := v.Verify(bearer)
//	if err != nil {
//		log(ticket.Reason(err)) // "expired", "audience", "signature", ...
//		// 401, the same text for every reason
//	}
//	// mint for c.Scope with TokenId c.Subject
//
// # The ticket
//
// A ticket is a compact JWS signed with HS256 (and nothing else: "none",
// HS384, HS512, RS256 and the rest are refused), with these claims:
//
//   - aud: the audience, by default "momento-token-vending-machine" (a
//     string, or an array holding it);
//   - exp: required, in the future (less a leeway, 30s by default) and at
//     most the maximum TTL (10m by default, plus the leeway) ahead;
//   - sub: required, the caller's opaque id, 1 to 64 bytes of ASCII letters,
//     digits and '.', '_', ':', '@', '-'; it becomes the token's TokenId;
//   - topics: required, 1 to 20 topic names or delimited prefixes, as
//     package scope defines them.
//
// nbf and iat are checked if present (iat not in the future). Other claims
// (jti, iss, ...) are ignored, as JWT libraries add some unasked; what a
// ticket can carry is bounded by its length, at most [MaxLen] bytes.
//
// # One reading, and cheap refusals
//
// Before any key is looked up, a ticket passes jws.Parse: at most MaxLen
// bytes, canonical base64url, a header of at most 1 KiB that is one flat
// JSON object without duplicate names or "crit". The HS256 signature is
// then checked over the ticket as it came (golang-jwt's signing method),
// and only then are the claims decoded, once (jws.DecodeClaims): a claims
// set with two members whose names are equal or equal but for case ("sub"
// and "SUB", "topics" and "Topics"), or a registered claim of the wrong
// type ("nbf":"0"), is malformed, so that every JWT parser reads a ticket
// as this one does. The registered claims are then checked with
// golang-jwt's Validator. A forged ticket thus costs one HMAC at most.
//
// # Keys and rotation
//
// Keys are chosen by the header's "kid", never by trying each key: a
// [KeySet] maps ids to keys, and the key with id "" verifies tickets
// without "kid". A secret holding one raw key is a set of one unnamed key;
// a JSON payload {"keys": {"2025-06": "...", "2025-09": "..."}} holds named
// keys (see [ParseKeys]). To rotate without a redeploy:
//
//  1. add the new key to the secret, next to the old one, as a new secret
//     version; instances pick it up when they next read the secret;
//  2. once they have, make the backend sign with the new kid;
//  3. after the maximum ticket TTL has passed, remove the old key.
//
// A ticket naming a kid the set does not hold is refused as a bad signature
// that also matches [ErrUnknownKey], so that the caller may re-read the
// secret (rate-limited) before refusing.
//
// # Refusals
//
// Verify's errors match exactly one of ErrMalformed, ErrSignature,
// ErrExpired, ErrAudience and ErrClaims with errors.Is, and [Reason] names
// it for the log. Their text never holds any part of the ticket: no
// subject, topic, header value or key id from it.
package ticket

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/tokenvendingmachine/internal/jws"
	"example.com/tokenvendingmachine/internal/scope"
)

// Algorithm is the one signature algorithm of tickets.
const Algorithm = "HS256"

// algorithms is what jws.Parse accepts for a ticket.
var algorithms = []string{Algorithm}

// Defaults for Options.
const (
	// DefaultAudience is the aud claim tickets must carry unless Options say
	// otherwise.
	DefaultAudience = "momento-token-vending-machine"
	// DefaultMaxTTL is how far ahead a ticket's exp may be.
	DefaultMaxTTL = 10 * time.Minute
	// DefaultLeeway is the clock skew allowed between the issuer and the
	// verifier, for exp, nbf, iat and the maximum TTL.
	DefaultLeeway = 30 * time.Second
)

// MaxLen is the longest ticket Verify decodes, in bytes. A ticket with 20
// topics of the longest length scope allows, a 64-byte subject and kid,
// and the usual extra claims is about 7.5 KiB.
const MaxLen = 8 << 10

// MaxSubjectLen is the longest sub claim, in bytes.
const MaxSubjectLen = 64

// Reasons a ticket is refused. Every error from Verify matches exactly one.
var (
	// ErrMalformed means the ticket fails jws.Parse's pre-check (it is not
	// a compact JWS with a small, flat JSON header, is empty, or is longer
	// than MaxLen), or its claims are not one JSON object with unique names
	// and claims of the expected types.
	ErrMalformed = errors.New("malformed")
	// ErrSignature means the signature does not verify, or the algorithm is
	// not HS256, or no key has the ticket's kid.
	ErrSignature = errors.New("signature")
	// ErrExpired means exp has passed, beyond the leeway.
	ErrExpired = errors.New("expired")
	// ErrAudience means aud is missing or does not hold the audience.
	ErrAudience = errors.New("audience")
	// ErrClaims means a claim is missing or invalid: exp, sub, topics,
	// nbf or iat.
	ErrClaims = errors.New("claims")
)

// ErrUnknownKey is matched, as well as ErrSignature, by the error for a
// ticket whose kid names no key in the set.
var ErrUnknownKey = errors.New("unknown key id")

// Reason returns the name of the reason err matches, for a log line:
// "malformed", "signature", "expired", "audience" or "claims"; or "" if it
// matches none.
func Reason(err error) string {
	for _, r := range []error{ErrMalformed, ErrSignature, ErrExpired, ErrAudience, ErrClaims} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return ""
}

// Claims is what a verified ticket grants.
type Claims struct {
	// Subject is the sub claim: the caller's opaque id, for the token's
	// TokenId. Log only a keyed hash of it.
	Subject string
	// Scope is the topics claim, in canonical form.
	Scope scope.Scope
	// Expires is the exp claim.
	Expires time.Time
	// KeyID is the kid of the key that verified the ticket ("" for the
	// unnamed key). It is safe to log.
	KeyID string
}

// Options configure a Verifier. A zero field takes its default.
type Options struct {
	// Audience is the aud claim required; DefaultAudience if "".
	Audience string
	// MaxTTL is how far ahead exp may be; DefaultMaxTTL if 0.
	MaxTTL time.Duration
	// Leeway is the clock skew allowed; DefaultLeeway if 0.
	Leeway time.Duration
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

// Verifier verifies tickets. It is safe for concurrent use.
type Verifier struct {
	keys      KeySet
	opts      Options
	validator *jwt.Validator
}

// NewVerifier returns a Verifier of tickets signed with keys. It returns an
// error if keys is empty or an option is negative.
func NewVerifier(keys KeySet, opts Options) (*Verifier, error) {
	if keys.Len() == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeys)
	}
	if opts.MaxTTL < 0 || opts.Leeway < 0 {
		return nil, fmt.Errorf("ticket: negative MaxTTL %v or Leeway %v", opts.MaxTTL, opts.Leeway)
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.MaxTTL == 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// A Validator is only read once made, so one serves every goroutine.
	val := jwt.NewValidator(
		jwt.WithAudience(opts.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
	)
	return &Verifier{keys: keys, opts: opts, validator: val}, nil
}

// refuse returns the error for a ticket refused for reason, with a detail
// that must hold nothing from the ticket.
func refuse(reason error, detail string) error {
	return fmt.Errorf("ticket refused: %w: %s", reason, detail)
}

// Verify checks the ticket raw and returns its claims, or an error that
// matches one of ErrMalformed, ErrSignature, ErrExpired, ErrAudience and
// ErrClaims and holds nothing from raw.
func (v *Verifier) Verify(raw string) (Claims, error) {
	tok, err := jws.Parse(raw, MaxLen, algorithms)
	if err != nil {
		return Claims{}, Refusal(err)
	}
	return v.VerifyToken(tok)
}

// Refusal returns Verify's error for a ticket that jws.Parse refused with
// err: ErrSignature for an algorithm other than HS256, else ErrMalformed.
func Refusal(err error) error {
	if errors.Is(err, jws.ErrAlgorithm) {
		return refuse(ErrSignature, "algorithm is not HS256")
	}
	return refuse(ErrMalformed, fmt.Sprintf("not a compact JWS of at most %d bytes with a small, flat JSON header", MaxLen))
}

// VerifyToken is Verify for a ticket that passed jws.Parse (with a list of
// algorithms that may hold others than HS256).
func (v *Verifier) VerifyToken(tok jws.Token) (Claims, error) {
	h := tok.Header
	switch {
	case len(tok.Raw()) > MaxLen:
		return Claims{}, refuse(ErrMalformed, fmt.Sprintf("longer than %d bytes", MaxLen))
	case h.Alg != Algorithm:
		return Claims{}, refuse(ErrSignature, "algorithm is not HS256")
	}
	key, ok := v.keys.keys[h.KeyID]
	if !ok || h.BadKeyID {
		return Claims{}, fmt.Errorf("ticket refused: %w: %w", ErrSignature, ErrUnknownKey)
	}
	if jwt.SigningMethodHS256.Verify(tok.SigningInput(), tok.Signature(), key) != nil {
		return Claims{}, refuse(ErrSignature, "signature does not verify")
	}

	// Signed: now, and only now, the claims.
	payload, err := tok.Payload()
	if err != nil {
		return Claims{}, refuse(ErrMalformed, "claims are not base64url")
	}
	c, err := jws.DecodeClaims(payload)
	if err != nil {
		return Claims{}, refuse(ErrMalformed, "claims are not one JSON object of distinct names and claims of their types")
	}
	topics, hasTopics, err := c.Strings("topics")
	if err != nil {
		return Claims{}, refuse(ErrMalformed, "topics is not a list of strings")
	}
	if err := v.validator.Validate(c.RegisteredClaims); err != nil {
		return Claims{}, classify(err, c.RegisteredClaims)
	}

	if !ValidSubject(c.Subject) {
		return Claims{}, refuse(ErrClaims, fmt.Sprintf("sub is not 1 to %d bytes of [A-Za-z0-9._:@-]", MaxSubjectLen))
	}
	if !hasTopics {
		return Claims{}, refuse(ErrClaims, "topics is missing")
	}
	sc, err := scope.New(topics)
	if err != nil {
		// scope.New's errors name an entry by index, never by content.
		return Claims{}, fmt.Errorf("ticket refused: %w: %w", ErrClaims, err)
	}
	exp := c.ExpiresAt.Time
	if exp.Sub(v.opts.Now()) > v.opts.MaxTTL+v.opts.Leeway {
		return Claims{}, refuse(ErrClaims, fmt.Sprintf("exp is more than %v ahead", v.opts.MaxTTL))
	}
	return Claims{Subject: c.Subject, Scope: sc, Expires: exp, KeyID: h.KeyID}, nil
}

// classify maps an error from the claims validator to a refusal. A ticket
// that is both for another audience and expired is reported as the former.
func classify(err error, rc jwt.RegisteredClaims) error {
	switch {
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refuse(ErrAudience, "aud does not hold the audience")
	case len(rc.Audience) == 0 || len(rc.Audience) == 1 && rc.Audience[0] == "":
		return refuse(ErrAudience, "aud is missing")
	case rc.ExpiresAt == nil:
		return refuse(ErrClaims, "exp is missing")
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(ErrExpired, "exp has passed")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse(ErrClaims, "nbf is in the future")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse(ErrClaims, "iat is in the future")
	}
	return refuse(ErrClaims, "invalid registered claims")
}

// ValidSubject reports whether sub is a valid sub claim: 1 to MaxSubjectLen
// bytes of ASCII letters, digits and '.', '_', ':', '@', '-'.
func ValidSubject(sub string) bool {
	if sub == "" || len(sub) > MaxSubjectLen {
		return false
	}
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// Sign returns a ticket for c signed with key: header alg HS256, typ JWT
// and kid key.ID (omitted if ""); claims aud audience, exp c.Expires (whole
// seconds), sub c.Subject and topics c.Scope's selectors. It is for tests
// and cmd/ticket; an app's backend does the same with its own JWT library.
// It refuses what Verify would refuse for the claims, except times: a
// short key, an invalid subject, an empty audience, a zero Expires, and a
// scope that is empty or All.
func Sign(key Key, audience string, c Claims) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	switch {
	case audience == "":
		return "", errors.New("ticket: empty audience")
	case !ValidSubject(c.Subject):
		return "", fmt.Errorf("ticket: subject is not 1 to %d bytes of [A-Za-z0-9._:@-]", MaxSubjectLen)
	case c.Scope.IsEmpty() || c.Scope.IsAll():
		return "", fmt.Errorf("ticket: scope %v is not a list of topics", c.Scope)
	case c.Expires.IsZero():
		return "", errors.New("ticket: zero Expires")
	}
	sels := c.Scope.Selectors()
	topics := make([]string, len(sels))
	for i, s := range sels {
		topics[i] = s.String()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"aud":    audience,
		"exp":    c.Expires.Unix(),
		"sub":    c.Subject,
		"topics": topics,
	})
	if key.ID != "" {
		t.Header["kid"] = key.ID
	}
	return t.SignedString(key.Secret)
}
