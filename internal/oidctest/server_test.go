package oidctest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/oidctest"
)

func getJSON(t *testing.T, u string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decoding: %v", u, err)
	}
	return resp
}

func TestDiscoveryAndKeys(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			s := oidctest.NewServerT(t, oidctest.Options{Algorithm: alg})
			var doc map[string]any
			getJSON(t, s.Issuer()+string(oidctest.EndpointDiscovery), &doc)
			want := map[string]any{
				"issuer":                                s.Issuer(),
				"jwks_uri":                              s.JWKSURL(),
				"response_types_supported":              []any{"id_token"},
				"subject_types_supported":               []any{"public"},
				"id_token_signing_alg_values_supported": []any{alg},
			}
			if diff := cmp.Diff(want, doc); diff != "" {
				t.Errorf("discovery document (-want +got):\n%s", diff)
			}

			first := s.KeyID()
			if err := s.RotateKey(); err != nil {
				t.Fatal(err)
			}
			var set jose.JSONWebKeySet
			getJSON(t, s.JWKSURL(), &set)
			if len(set.Keys) != 1 || set.Keys[0].KeyID != s.KeyID() || s.KeyID() == first {
				t.Fatalf("JWKS after RotateKey = %+v, want only the new key %q (old %q)", set.Keys, s.KeyID(), first)
			}
			k := set.Keys[0]
			if !k.IsPublic() || k.Algorithm != alg || k.Use != "sig" {
				t.Errorf("JWKS key: public %v, alg %q, use %q; want public, %q, sig", k.IsPublic(), k.Algorithm, k.Use, alg)
			}

			tok, err := s.IDToken("alice")
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("ParseSigned(IDToken()) = %v", err)
			}
			if _, err := jws.Verify(&k); err != nil {
				t.Errorf("IDToken() does not verify with the published key: %v", err)
			}
			if got := s.Count(oidctest.EndpointDiscovery) + s.Count(oidctest.EndpointJWKS); got != 2 {
				t.Errorf("Count(discovery) + Count(jwks) = %d, want 2", got)
			}
		})
	}
}

func TestIDTokenClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := oidctest.NewServerT(t, oidctest.Options{Now: func() time.Time { return now }, Lifetime: 10 * time.Minute, Audience: "proj"})
	tests := []struct {
		name string
		opts []oidctest.TokenOption
		want map[string]any
	}{
		{
			name: "defaults",
			want: map[string]any{"iss": s.Issuer(), "aud": "proj", "sub": "alice", "iat": 1.8e9, "auth_time": 1.8e9, "exp": 1.8e9 + 600},
		},
		{
			name: "options",
			opts: []oidctest.TokenOption{
				oidctest.WithClaim("aud", nil), oidctest.WithClaim("email", "a@example.com"),
				oidctest.WithIssuedAt(now.Add(time.Second)), oidctest.WithNotBefore(now), oidctest.WithExpiry(now.Add(time.Minute)),
			},
			want: map[string]any{"iss": s.Issuer(), "sub": "alice", "email": "a@example.com", "iat": 1.8e9 + 1, "auth_time": 1.8e9 + 1, "nbf": 1.8e9, "exp": 1.8e9 + 60},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := s.IDToken("alice", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("IDToken claims (-want +got):\n%s", diff)
			}
			if kid := jws.Signatures[0].Header.KeyID; kid != s.KeyID() {
				t.Errorf("kid = %q, want %q", kid, s.KeyID())
			}
		})
	}

	forged, err := s.Sign(map[string]string{"sub": "x"}, oidctest.WithKeyID("forged"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(forged, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != "forged" {
		t.Errorf("Sign(WithKeyID(forged)) kid = %q, want forged", kid)
	}
	if _, err := s.Sign([]int{1}); err == nil {
		t.Errorf("Sign([1]) = nil error, want one: claims must be an object")
	}
}

func TestSignRaw(t *testing.T) {
	s := oidctest.NewServerT(t, oidctest.Options{})
	payload := `{"sub":"a","sub":"b"}`
	tok, err := s.SignRaw([]byte(payload), oidctest.WithKeyID("k9"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	got, err := jws.Verify(s.PublicKey())
	if err != nil || string(got) != payload {
		t.Errorf("SignRaw(%s) verifies to %q, %v; want the payload as given", payload, got, err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != "k9" {
		t.Errorf("SignRaw(WithKeyID(k9)) kid = %q, want k9", kid)
	}
}

func TestTokenEndpoint(t *testing.T) {
	s := oidctest.NewServerT(t, oidctest.Options{})
	tests := []struct {
		name     string
		sub      string
		wantCode int
	}{
		{name: "alice", sub: "alice", wantCode: http.StatusOK},
		{name: "longest", sub: strings.Repeat("a", oidctest.MaxSubjectBytes), wantCode: http.StatusOK},
		{name: "empty", sub: "", wantCode: http.StatusBadRequest},
		{name: "too long", sub: strings.Repeat("a", oidctest.MaxSubjectBytes+1), wantCode: http.StatusBadRequest},
		{name: "control character", sub: "a\nb", wantCode: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body struct {
				IDToken   string `json:"id_token"`
				TokenType string `json:"token_type"`
				ExpiresIn int    `json:"expires_in"`
			}
			resp := getJSON(t, s.Issuer()+string(oidctest.EndpointToken)+"?sub="+url.QueryEscape(tc.sub), &body)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("GET /token?sub=%q: status %d, want %d", tc.sub, resp.StatusCode, tc.wantCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			if tc.wantCode != http.StatusOK {
				return
			}
			if body.TokenType != "Bearer" || body.ExpiresIn != 3600 || strings.Count(body.IDToken, ".") != 2 {
				t.Errorf("GET /token = %+v, want a Bearer ID token for 3600 s", body)
			}
		})
	}
}

// fakeTester records what NewServerT does to its Tester.
type fakeTester struct {
	fatal    bool
	cleanups []func()
}

func (*fakeTester) Helper()                 {}
func (f *fakeTester) Fatalf(string, ...any) { f.fatal = true }
func (f *fakeTester) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }

func TestNewServerT(t *testing.T) {
	ft := &fakeTester{}
	s := oidctest.NewServerT(ft, oidctest.Options{})
	if ft.fatal || len(ft.cleanups) != 1 {
		t.Fatalf("NewServerT: fatal %v, %d cleanups; want no fatal, 1 cleanup", ft.fatal, len(ft.cleanups))
	}
	ft.cleanups[0]()
	s.Close() // a second Close is harmless
	if _, err := http.Get(s.JWKSURL()); err == nil {
		t.Errorf("GET after Close succeeded, want an error")
	}

	for _, opts := range []oidctest.Options{{Algorithm: "HS256"}, {Addr: "256.0.0.1:0"}} {
		ft := &fakeTester{}
		if s := oidctest.NewServerT(ft, opts); !ft.fatal || s != nil {
			t.Errorf("NewServerT(%+v) = %v, fatal %v; want nil, fatal", opts, s, ft.fatal)
		}
	}
}
