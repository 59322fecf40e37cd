// Package oidctest runs a fake OpenID Connect login issuer on loopback, for
// tests and for local development ("sign in as alice").
//
// The fake is a real HTTP server. It serves what a relying party reads from an
// issuer: the discovery document at /.well-known/openid-configuration and the
// signing keys (a JWKS) at /jwks, so a relying party (go-oidc's discovery,
// internal/idtoken) verifies its ID tokens through the same code path as
// Firebase's or Google's. It signs with
// one RSA (RS256, the default) or ECDSA P-256 (ES256) key, generated at start.
//
// Start one with [NewServer] (or [NewServerT] in a test), configure the
// verifier with [Server.Issuer] and [Server.Audience], and mint ID tokens with
// [Server.IDToken] (or sign any claims with [Server.Sign], or any bytes with
// [Server.SignRaw]). [Server.Count]
// tells how often each endpoint was fetched, [Server.RotateKey] replaces the
// signing key, and the clock is Options.Now, so expiry needs no sleeping.
//
// For a browser (the local demo page), GET /token?sub=alice answers
// {"id_token", "token_type", "expires_in"} with an ID token for subject alice,
// with Access-Control-Allow-Origin: *. That endpoint is the fake's own: a real
// issuer hands out ID tokens only after a login. It lets anyone on the machine
// sign in as anyone, so the fake listens on loopback only.
//
// Where it differs from a real issuer: no authorization, token or userinfo
// endpoint (the discovery document names none); one signing key at a time
// (RotateKey drops the old one at once instead of publishing both for a while);
// every answer is Cache-Control: no-store.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Endpoint names a path the fake serves, for Count.
type Endpoint string

// The endpoints the fake serves.
const (
	// EndpointDiscovery is the OpenID Connect discovery document.
	EndpointDiscovery Endpoint = "/.well-known/openid-configuration"
	// EndpointJWKS is the JSON Web Key Set with the public signing key.
	EndpointJWKS Endpoint = "/jwks"
	// EndpointToken hands out an ID token for ?sub=... (the fake's own).
	EndpointToken Endpoint = "/token"
)

// DefaultAudience is the audience of the fake's ID tokens when
// Options.Audience is empty.
const DefaultAudience = "tvm-local"

// MaxSubjectBytes is the longest subject EndpointToken accepts (Firebase's
// limit for a user id).
const MaxSubjectBytes = 128

// Tester is the part of testing.TB that NewServerT uses.
type Tester interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Options configures NewServer. The zero value is ready to use.
type Options struct {
	// Addr is the address to listen on; "" means "127.0.0.1:0".
	Addr string
	// Audience is the "aud" of ID tokens from IDToken and EndpointToken;
	// "" means DefaultAudience.
	Audience string
	// Algorithm is the signing algorithm: "RS256" (the default when "") or
	// "ES256".
	Algorithm string
	// Lifetime is how long ID tokens from IDToken and EndpointToken are valid;
	// 0 means one hour, as Firebase's.
	Lifetime time.Duration
	// Now is the fake's clock for "iat" and "exp"; nil means time.Now.
	Now func() time.Time
}

// Server is a running fake issuer. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	url    string
	server *http.Server

	mu sync.Mutex
	// key is the signing key, published in the JWKS. Guarded by mu.
	key *jose.JSONWebKey
	// keys counts the keys generated, to name the next one. Guarded by mu.
	keys int
	// counts is the number of requests per endpoint. Guarded by mu.
	counts map[Endpoint]int
	// closed reports that Close ran. Guarded by mu.
	closed bool
}

// NewServer starts a fake issuer on opts.Addr. Close it when done.
func NewServer(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.Algorithm == "" {
		opts.Algorithm = string(jose.RS256)
	}
	if opts.Algorithm != string(jose.RS256) && opts.Algorithm != string(jose.ES256) {
		return nil, fmt.Errorf("oidctest: algorithm %q: want RS256 or ES256", opts.Algorithm)
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, counts: make(map[Endpoint]int)}
	if err := s.RotateKey(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("oidctest: listen: %w", err)
	}
	s.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+string(EndpointDiscovery), s.serveDiscovery)
	mux.HandleFunc("GET "+string(EndpointJWKS), s.serveJWKS)
	mux.HandleFunc("GET "+string(EndpointToken), s.serveToken)
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.server.Serve(ln)
	return s, nil
}

// NewServerT starts a fake issuer that is closed when the test ends, and fails
// the test if it cannot start.
func NewServerT(t Tester, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("oidctest.NewServer: %v", err)
		return nil
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.server.Close()
}

// Issuer is the issuer identifier ("iss" and discovery's "issuer"): the
// server's base URL, http://127.0.0.1:port.
func (s *Server) Issuer() string { return s.url }

// JWKSURL is the URL of the key set (discovery's "jwks_uri").
func (s *Server) JWKSURL() string { return s.url + string(EndpointJWKS) }

// Audience is the "aud" of the fake's ID tokens.
func (s *Server) Audience() string { return s.opts.Audience }

// Algorithm is the signing algorithm ("RS256" or "ES256").
func (s *Server) Algorithm() string { return s.opts.Algorithm }

// KeyID is the "kid" of the current signing key.
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.KeyID
}

// PublicKey is the current signing key's public half (*rsa.PublicKey or
// *ecdsa.PublicKey).
func (s *Server) PublicKey() crypto.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.Public().Key
}

// RotateKey replaces the signing key with a new one under a new key id. The
// JWKS lists only the new key from then on.
func (s *Server) RotateKey() error {
	var priv crypto.Signer
	var err error
	switch s.opts.Algorithm {
	case string(jose.ES256):
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return fmt.Errorf("oidctest: generate key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys++
	s.key = &jose.JSONWebKey{
		Key:       priv,
		KeyID:     fmt.Sprintf("oidctest-%d", s.keys),
		Algorithm: s.opts.Algorithm,
		Use:       "sig",
	}
	return nil
}

// Count is how many requests endpoint e has answered.
func (s *Server) Count(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[e]
}

// TokenOption changes an ID token made by IDToken or a signature made by Sign.
type TokenOption func(*tokenSpec)

type tokenSpec struct {
	claims map[string]any
	kid    *string
}

// WithClaim sets claim name to value (any JSON value); a nil value removes
// the claim.
func WithClaim(name string, value any) TokenOption {
	return func(t *tokenSpec) {
		if value == nil {
			delete(t.claims, name)
			return
		}
		t.claims[name] = value
	}
}

// WithExpiry sets "exp" to t.
func WithExpiry(t time.Time) TokenOption { return WithClaim("exp", t.Unix()) }

// WithIssuedAt sets "iat" (and "auth_time") to t.
func WithIssuedAt(t time.Time) TokenOption {
	return func(s *tokenSpec) {
		s.claims["iat"] = t.Unix()
		s.claims["auth_time"] = t.Unix()
	}
}

// WithNotBefore sets "nbf" to t.
func WithNotBefore(t time.Time) TokenOption { return WithClaim("nbf", t.Unix()) }

// WithKeyID puts kid in the token's header instead of the signing key's id
// (the signature is still the current key's), to forge an unknown key id.
func WithKeyID(kid string) TokenOption {
	return func(t *tokenSpec) { t.kid = &kid }
}

// IDToken returns an ID token for subject sub signed with the current key:
// "iss" Issuer, "aud" Audience, "iat" and "auth_time" now, "exp" now plus
// Options.Lifetime, as Firebase's, unless opts say otherwise.
func (s *Server) IDToken(sub string, opts ...TokenOption) (string, error) {
	now := s.opts.Now()
	claims := map[string]any{
		"iss":       s.url,
		"aud":       s.opts.Audience,
		"sub":       sub,
		"iat":       now.Unix(),
		"auth_time": now.Unix(),
		"exp":       now.Add(s.opts.Lifetime).Unix(),
	}
	return s.sign(claims, opts)
}

// Sign signs claims (any JSON value, usually a map) with the current key, as
// a compact JWS with the key's "alg" and "kid".
func (s *Server) Sign(claims any, opts ...TokenOption) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidctest: claims: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("oidctest: claims must be a JSON object: %w", err)
	}
	return s.sign(m, opts)
}

// SignRaw signs payload exactly as given (which need not be JSON, or may
// be JSON that encoding/json would not write, such as duplicate member
// names) with the current key, as a compact JWS with the key's "alg" and
// "kid". Of opts, only WithKeyID applies.
func (s *Server) SignRaw(payload []byte, opts ...TokenOption) (string, error) {
	spec := tokenSpec{claims: map[string]any{}}
	for _, o := range opts {
		o(&spec)
	}
	return s.signBytes(payload, spec.kid)
}

func (s *Server) sign(claims map[string]any, opts []TokenOption) (string, error) {
	spec := tokenSpec{claims: claims}
	for _, o := range opts {
		o(&spec)
	}
	payload, err := json.Marshal(spec.claims)
	if err != nil {
		return "", fmt.Errorf("oidctest: claims: %w", err)
	}
	return s.signBytes(payload, spec.kid)
}

func (s *Server) signBytes(payload []byte, kid *string) (string, error) {
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	so := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID)
	if kid != nil {
		so = so.WithHeader("kid", *kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key.Key}, so)
	if err != nil {
		return "", fmt.Errorf("oidctest: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidctest: sign: %w", err)
	}
	return jws.CompactSerialize()
}

func (s *Server) count(e Endpoint) {
	s.mu.Lock()
	s.counts[e]++
	s.mu.Unlock()
}

func (s *Server) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	s.count(EndpointDiscovery)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.url,
		"jwks_uri":                              s.JWKSURL(),
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{s.opts.Algorithm},
	})
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	s.count(EndpointJWKS)
	s.mu.Lock()
	pub := s.key.Public()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointToken)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	sub := r.URL.Query().Get("sub")
	if err := checkSubject(sub); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	tok, err := s.IDToken(sub)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id_token":   tok,
		"token_type": "Bearer",
		"expires_in": int64(s.opts.Lifetime / time.Second),
	})
}

func checkSubject(sub string) error {
	switch {
	case sub == "":
		return errors.New("oidctest: sub is required")
	case len(sub) > MaxSubjectBytes:
		return fmt.Errorf("oidctest: sub is longer than %d bytes", MaxSubjectBytes)
	case strings.ContainsFunc(sub, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("oidctest: sub has control characters")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
