// Package credential turns the bearer token a request presents into the
// caller it stands for: a ticket holder (an HS256 ticket from the app's
// backend, verified with a ticket.KeyRing) or a signed-in user (an ID token
// from the configured issuer, verified with an idtoken.Verifier and given
// the topics of its template). No scope ever comes from the request itself.
//
// A bearer token is pre-checked once (jws.Parse: bounded, canonical, a
// small flat header) and is then an ID token or a ticket by its header's
// "alg" (idtoken.IsIDToken: asymmetric, and ID tokens are accepted), never
// by trying both kinds of key, and never by its claims: those are read only
// once a signature verified them. The verifier it goes to takes the token
// as pre-checked, so nothing is parsed twice, and a forged token costs at
// most one signature check.
//
// A [Resolver] remembers the callers of verified credentials, by the
// credential's SHA-256 (never the credential), until the credential
// expires, so a repeat request verifies no signature. They are bounded by
// count and by bytes (MaxVerified, MaxVerifiedBytes), and a remembered
// sign-in is served only while the issuer's key that verified it is still
// in the issuer's key set, which is fetched again every 10 minutes.
//
// A credential that is refused after its pre-check costs a signature
// check, which is what a forged credential can make the instance spend. So
// each client (internal/clientip's: an IPv4 address, an IPv6 /64) may have
// such refusals at RefusedPerSecond after a burst of RefusedBurst, and an
// IPv6 client's /48 at NetworkRefusedPerSecond after NetworkRefusedBurst
// (one site holds 65,536 /64s; an IPv4 address is scarce enough to be
// counted alone, and the other users of its /24 are left alone); past that,
// the client's credentials that are not already verified are refused as
// Limited, with a Retry-After, before any signature check. A credential
// that is not refused (it verifies, and its subject may have a token), or
// that fails only because the issuer could not be reached, gives its
// charge back, so honest callers never meet this limit, unless they share an address (or a /48)
// with an attacker; a verified credential is served whatever its client's
// count.
//
// Every other refusal is a failure.Refusal: BadCredentials (invalid,
// expired, signed by an unknown key, ...) or Forbidden (a user whose id
// cannot stand in a topic), with a fixed reason for the log. No error holds
// credential content.
package credential

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/jws"
	"example.com/tokenvendingmachine/internal/lazy"
	"example.com/tokenvendingmachine/internal/limits"
	"example.com/tokenvendingmachine/internal/lru"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
	"example.com/tokenvendingmachine/internal/vending"
)

// Kind is the kind of a credential, as the request's log line names it.
type Kind string

// The kinds of credential.
const (
	Ticket  Kind = "ticket"
	IDToken Kind = "id_token"
)

// MaxLen is the longest bearer token looked at, in bytes: the larger of the
// two verifiers' own bounds. A longer one is refused as malformed before
// anything else reads it.
const MaxLen = max(ticket.MaxLen, idtoken.MaxTokenBytes)

// algorithms are the algorithms a bearer token may name: the tickets' and
// the ID tokens'. Each verifier accepts only its own.
var algorithms = append([]string{ticket.Algorithm}, idtoken.Algorithms()...)

// MaxVerified and MaxVerifiedBytes bound the verified callers a Resolver
// remembers: by count, and by their estimated bytes (entries with the most
// topics a credential may carry, 20 of 250 bytes, take about 6.3 KB each, so
// about 2,600 of them fill the byte bound: 16 MiB of heap, measured).
const (
	MaxVerified      = 10_000
	MaxVerifiedBytes = 16 << 20
)

// The refusals a client and its IPv6 network may have after the pre-check
// (see the package doc), and how many of each are counted at once (the
// fullest buckets are forgotten first; see limits.Keyed).
const (
	RefusedBurst            = 5
	RefusedPerSecond        = 1
	NetworkRefusedBurst     = 20
	NetworkRefusedPerSecond = 4
	MaxRefusing             = 10_000
)

// Options configure a Resolver.
type Options struct {
	// TicketKeys reads the payload of the keys that verify tickets, in
	// ticket.ParseKeys's form; nil means tickets are not accepted.
	TicketKeys func(context.Context) ([]byte, error)
	// TicketKeysFrom names where TicketKeys reads, for errors: the
	// variable, TICKET_KEY or TICKET_SECRET_ID.
	TicketKeysFrom string
	// TicketKeysChange reports whether the keys may change while the
	// instance runs (a secret): then they are read again for an unknown
	// key id, and when old (see ticket.KeyRing).
	TicketKeysChange bool
	// TicketAudience and TicketMaxTTL are the tickets' aud and the
	// furthest ahead their exp may be.
	TicketAudience string
	TicketMaxTTL   time.Duration

	// Issuer is the issuer whose ID tokens sign users in; "" means ID
	// tokens are not accepted. Audience is the aud they must carry, and
	// JWKSURL, if set, the issuer's key set, to skip discovery.
	Issuer, Audience, JWKSURL string
	// HTTPClient fetches the issuer's discovery document and keys.
	HTTPClient *http.Client
	// Topics is what a signed-in user's token may subscribe to, {sub}
	// standing for the user; Publish what it may also publish to.
	Topics, Publish scope.Template
	// IssuerRetryDelay is how long after a failed discovery sign-ins are
	// refused before it is tried again; IssuerTimeout bounds one.
	IssuerRetryDelay, IssuerTimeout time.Duration

	// Now is the clock for credentials' expiry; nil means time.Now.
	Now func() time.Time
	// Log is where the Resolver logs what it does on its own: failed
	// re-reads of the ticket keys, an issuer it cannot reach.
	Log *slog.Logger
}

// ErrIssuer wraps the error of an issuer whose keys could not be fetched:
// sign-ins are refused (Unavailable) until a later request succeeds. It is
// logged once, as LogIssuerFailed, when it happens.
var ErrIssuer = errors.New("OIDC_ISSUER's keys unreachable")

// LogIssuerFailed is the message of the line logged when the issuer's keys
// cannot be fetched.
const LogIssuerFailed = "could not reach OIDC_ISSUER's keys; sign-ins are refused until a later request succeeds"

// Resolver resolves bearer tokens to callers. Its methods are safe for
// concurrent use.
type Resolver struct {
	opts     Options
	tickets  *ticket.KeyRing               // nil: tickets are not accepted
	idTokens lazy.Value[*idtoken.Verifier] // built on the first ID token
	verified *lru.Cache[[sha256.Size]byte, verified]
	// refused and networkRefused are the buckets of refusals by client and
	// by IPv6 /48.
	refused, networkRefused *limits.Keyed[netip.Prefix]
}

// verified is a verified credential's caller, as remembered.
type verified struct {
	caller vending.Caller
	kind   Kind
	keyID  string // for an ID token, the kid of the issuer's key that verified it
}

// size estimates the bytes an entry of the verified callers costs: its
// strings, its scopes' topics, and a fixed overhead for the entry, its list
// element, map slot and the scopes' slices.
func (v verified) size() int {
	n := verifiedOverhead + len(v.caller.Key) + len(v.caller.TokenID) + len(v.keyID)
	for _, s := range []scope.Scope{v.caller.Scope, v.caller.Publish} {
		n += s.Bytes() + s.Len()*selectorOverhead
	}
	return n
}

// selectorOverhead is what a scope's selector costs beyond its topic's
// bytes: its slot in the slice and the string's allocation rounding.
const selectorOverhead = 48

// verifiedOverhead is the bytes an entry costs beyond its strings and
// topics; TestVerifiedCallersBytes checks it against the heap.
const verifiedOverhead = 320

// New returns a Resolver for opts. It reads the ticket keys now (an error
// reading them is returned as TicketKeys returned it; keys that do not
// parse are failure.Misconfigured); the issuer is reached on the first ID
// token, so that an issuer that is down refuses only sign-ins.
func New(ctx context.Context, opts Options) (*Resolver, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{opts: opts, verified: lru.New[[sha256.Size]byte, verified](MaxVerified, MaxVerifiedBytes)}
	var err error
	if r.refused, err = limits.NewKeyed[netip.Prefix](limits.KeyedOptions{
		Rate: RefusedPerSecond, Burst: RefusedBurst, MaxKeys: MaxRefusing, Now: opts.Now,
	}); err != nil {
		return nil, err
	}
	if r.networkRefused, err = limits.NewKeyed[netip.Prefix](limits.KeyedOptions{
		Rate: NetworkRefusedPerSecond, Burst: NetworkRefusedBurst, MaxKeys: MaxRefusing, Now: opts.Now,
	}); err != nil {
		return nil, err
	}
	r.idTokens = lazy.Value[*idtoken.Verifier]{
		Build: r.newIDTokenVerifier, RetryDelay: opts.IssuerRetryDelay, Timeout: opts.IssuerTimeout, Now: opts.Now,
	}
	if opts.TicketKeys != nil {
		src := ticket.Source{Name: opts.TicketKeysFrom, Read: opts.TicketKeys, Rereads: opts.TicketKeysChange}
		topts := ticket.Options{Audience: opts.TicketAudience, MaxTTL: opts.TicketMaxTTL, Now: opts.Now}
		if r.tickets, err = ticket.NewKeyRing(ctx, src, topts, opts.Log); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// newIDTokenVerifier discovers the issuer's keys: the Build of r.idTokens.
func (r *Resolver) newIDTokenVerifier(ctx context.Context) (*idtoken.Verifier, error) {
	v, err := idtoken.New(ctx, idtoken.Options{
		Issuer: r.opts.Issuer, Audience: r.opts.Audience, JWKSURL: r.opts.JWKSURL,
		Now: r.opts.Now, HTTPClient: r.opts.HTTPClient,
	})
	if err != nil {
		r.opts.Log.Error(LogIssuerFailed, "error", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrIssuer, failure.Wrap(failure.Unavailable, err))
	}
	return v, nil
}

// IDTokenStats returns the ID-token verifier's counts, and false if it has
// not been built.
func (r *Resolver) IDTokenStats() (idtoken.Stats, bool) {
	v, ok := r.idTokens.Peek()
	if !ok {
		return idtoken.Stats{}, false
	}
	return v.Stats(), true
}

// Caller returns the caller raw stands for, presented by client (an IPv4
// address as its /32, an IPv6 /64: internal/clientip's Result.Client), and
// raw's kind (also with an error, when it is known). A refusal is a
// failure.Refusal, or a Limited failure.Error when client or its network
// has had too many (see the package doc); any other error wraps ErrIssuer.
func (r *Resolver) Caller(ctx context.Context, raw string, client netip.Prefix) (vending.Caller, Kind, error) {
	if len(raw) > MaxLen {
		return vending.Caller{}, "", failure.Refusal(failure.BadCredentials, "malformed")
	}
	now := r.opts.Now()
	// Only a token that passed jws.Parse can have been verified: one
	// without its shape costs no hash (8 KB of it, for the longest).
	var sum [sha256.Size]byte
	if jws.Shaped(raw, MaxLen) {
		sum = sumOf(raw)
		if v, ok := r.verified.Get(sum, now); ok {
			if v.kind != IDToken || r.keyCurrent(ctx, v.keyID) {
				return v.caller, v.kind, nil
			}
			// The issuer removed the key that verified it: verify again,
			// which refuses it.
			r.verified.Remove(sum)
		}
	}
	var (
		v   verified
		exp time.Time
		err error
	)
	tok, perr := jws.Parse(raw, MaxLen, algorithms)
	isIDToken := perr == nil && r.opts.Issuer != "" && idtoken.IsIDToken(tok.Header)
	if perr == nil {
		// From here a refusal costs a signature check: charge it first.
		if err := r.chargeRefusal(client); err != nil {
			return vending.Caller{}, kindOf(isIDToken), err
		}
	}
	if isIDToken {
		v, exp, err = r.idTokenCaller(ctx, tok)
	} else {
		v, exp, err = r.ticketCaller(ctx, tok, perr)
	}
	if perr == nil && (err == nil || errors.Is(err, ErrIssuer)) {
		// Not refused: not the client's to pay.
		r.refundRefusal(client)
	}
	if err != nil {
		return vending.Caller{}, v.kind, err
	}
	r.verified.Put(sum, v, v.size(), now, exp)
	return v.caller, v.kind, nil
}

// errRefusedTooOften is the cause of a Limited refusal for a client whose
// credentials were refused too often.
var errRefusedTooOften = errors.New("credentials refused too often from this client or its network")

// chargeRefusal takes one refusal from the buckets of client and its
// IPv6 network, or returns a Limited error without taking any.
func (r *Resolver) chargeRefusal(client netip.Prefix) error {
	ok, wait := r.refused.Allow(client)
	if ok && client.Addr().Is6() {
		if ok, wait = r.networkRefused.Allow(limits.Network(client.Addr())); !ok {
			r.refused.Refund(client)
		}
	}
	if !ok {
		return &failure.Error{Kind: failure.Limited, Retry: max(wait, time.Second), Err: errRefusedTooOften, Reason: "refused too often"}
	}
	return nil
}

// refundRefusal gives back what chargeRefusal took.
func (r *Resolver) refundRefusal(client netip.Prefix) {
	r.refused.Refund(client)
	if client.Addr().Is6() {
		r.networkRefused.Refund(limits.Network(client.Addr()))
	}
}

// kindOf names the kind of a token that jws.Parse accepted.
func kindOf(isIDToken bool) Kind {
	if isIDToken {
		return IDToken
	}
	return Ticket
}

// sumOf returns the SHA-256 of raw, a token of at most MaxLen bytes,
// hashed from a pooled copy, cleared after: []byte(raw) would allocate one
// of its length on every request.
func sumOf(raw string) [sha256.Size]byte {
	bp := tokenBufs.Get().(*[]byte)
	b := append((*bp)[:0], raw...)
	sum := sha256.Sum256(b)
	clear(b)
	*bp = b[:0]
	tokenBufs.Put(bp)
	return sum
}

// tokenBufs are sumOf's buffers, of MaxLen at most.
var tokenBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// keyCurrent reports whether the issuer's key kid is still in its key set.
func (r *Resolver) keyCurrent(ctx context.Context, kid string) bool {
	ver, ok := r.idTokens.Peek()
	return ok && ver.KeyCurrent(ctx, kid)
}

// ticketCaller verifies a ticket: tok and perr are what jws.Parse made of
// it.
func (r *Resolver) ticketCaller(ctx context.Context, tok jws.Token, perr error) (verified, time.Time, error) {
	if r.tickets == nil {
		return verified{kind: Ticket}, time.Time{}, failure.Refusal(failure.BadCredentials, "tickets not configured")
	}
	var claims ticket.Claims
	var err error
	if perr != nil {
		err = ticket.Refusal(perr)
	} else {
		claims, err = r.tickets.VerifyToken(ctx, tok)
	}
	if err != nil {
		return verified{kind: Ticket}, time.Time{}, failure.Refusal(failure.BadCredentials, ticket.Reason(err))
	}
	c := vending.Caller{
		Key:     "ticket:" + claims.Subject + ":" + claims.Scope.Key(),
		Scope:   claims.Scope,
		TokenID: claims.Subject,
	}
	return verified{caller: c, kind: Ticket}, claims.Expires, nil
}

// idTokenCaller verifies a pre-checked ID token and expands Topics (and
// Publish) for its subject.
func (r *Resolver) idTokenCaller(ctx context.Context, tok jws.Token) (verified, time.Time, error) {
	v, err := r.idTokens.Get(ctx)
	if err != nil {
		return verified{kind: IDToken}, time.Time{}, err
	}
	id, err := v.VerifyToken(ctx, tok)
	if err != nil {
		return verified{kind: IDToken}, time.Time{}, failure.Refusal(failure.BadCredentials, idtoken.Reason(err))
	}
	sub, err := r.opts.Topics.Expand(id.Subject)
	if err != nil {
		return verified{kind: IDToken}, time.Time{}, failure.Refusal(failure.Forbidden, "subject does not fit OIDC_TOPICS")
	}
	var pub scope.Scope
	if !r.opts.Publish.IsZero() {
		if pub, err = r.opts.Publish.Expand(id.Subject); err != nil {
			return verified{kind: IDToken}, time.Time{}, failure.Refusal(failure.Forbidden, "subject does not fit OIDC_PUBLISH")
		}
	}
	c := vending.Caller{
		Key:     "oidc:" + id.TokenID + ":" + sub.Key() + ":" + pub.Key(),
		Scope:   sub,
		Publish: pub,
		TokenID: id.TokenID,
	}
	return verified{caller: c, kind: IDToken, keyID: id.KeyID}, id.Expires, nil
}
