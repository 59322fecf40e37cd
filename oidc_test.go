package tokenvendingmachine

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/vending"
)

// oidcHarness is the function with sign-in through a fake login issuer on
// the fake Momento's clock, and env on top.
func oidcHarness(t testing.TB, env map[string]string) (*harness, *oidctest.Server) {
	t.Helper()
	var issuer *oidctest.Server
	hs := newHarnessFunc(t, func(hs *harness) map[string]string {
		issuer = oidctest.NewServerT(t, oidctest.Options{Now: hs.momento.Now})
		vars := map[string]string{
			"OIDC_ISSUER":   issuer.Issuer(),
			"OIDC_AUDIENCE": issuer.Audience(),
			"OIDC_TOPICS":   "user-{sub}-*,announcements",
			"TOPICS":        "none",
		}
		for k, v := range env {
			vars[k] = v
		}
		return vars
	})
	return hs, issuer
}

func idToken(t testing.TB, issuer *oidctest.Server, sub string, opts ...oidctest.TokenOption) string {
	t.Helper()
	tok, err := issuer.IDToken(sub, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestIDTokenScopesTheToken(t *testing.T) {
	hs, issuer := oidcHarness(t, nil)
	raw := idToken(t, issuer, "alice")
	w := hs.do(http.MethodGet, "203.0.113.7", withBearer(raw))
	if w.Code != http.StatusOK {
		t.Fatalf("GET with an ID token: status %d, body %s", w.Code, w.Body)
	}
	tok := decode(t, w)
	m, ok := hs.momento.MintOf(tok.Token)
	if !ok {
		t.Fatal("the served token was not minted by the fake")
	}
	if want := idtoken.TokenID(issuer.Issuer(), "alice"); m.TokenID != want || strings.Contains(m.TokenID, "alice") {
		t.Errorf("tokenId = %q, want the opaque %q", m.TokenID, want)
	}
	want := []momentotest.Grant{
		{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "announcements"},
		{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "user-alice-*"},
	}
	if diff := cmpGrants(want, m.Grants); diff != "" {
		t.Errorf("minted scope (-want +got):\n%s", diff)
	}
	for topic, want := range map[string]codes.Code{
		"user-alice-inbox": codes.OK,
		"announcements":    codes.OK,
		"user-bob-inbox":   codes.PermissionDenied,
		"user-alice2-x":    codes.PermissionDenied,
	} {
		if got := canSubscribe(t, hs, tok.Token, topic); got != want {
			t.Errorf("subscribe to %s with alice's token: %v, want %v", topic, got, want)
		}
	}
	// A repeat request with the same ID token verifies no signature and
	// gets the cached token.
	again := decode(t, hs.do(http.MethodGet, "198.51.100.1", withBearer(raw)))
	if again.Token != tok.Token || len(hs.momento.Mints()) != 1 {
		t.Errorf("a repeat request minted again")
	}
	if n := issuer.Count(oidctest.EndpointJWKS); n != 1 {
		t.Errorf("key set fetched %d times, want once", n)
	}
	inst, _ := hs.h.inst.Peek()
	if st, ok := inst.credentials.IDTokenStats(); !ok || st.SignatureChecks != 1 {
		t.Errorf("signature checks for two requests with one ID token: %+v, want 1", st)
	}
	hs.secretsInLogs(t, raw, "alice")
}

func TestBadIDTokensAreRefused(t *testing.T) {
	tests := []struct {
		name       string
		token      func(hs *harness, issuer *oidctest.Server) string
		wantStatus int
		credential string
		reason     string
	}{
		{"wrong issuer", func(hs *harness, _ *oidctest.Server) string {
			other := oidctest.NewServerT(t, oidctest.Options{Now: hs.momento.Now})
			return idToken(t, other, "alice")
		}, http.StatusUnauthorized, "id_token", "signature"}, // an asymmetric token is an ID token; iss is read only once our key verified it, and the other issuer's key has our key's id
		{"issuer claim forged", func(hs *harness, issuer *oidctest.Server) string {
			other := oidctest.NewServerT(t, oidctest.Options{Now: hs.momento.Now})
			return idToken(t, other, "alice", oidctest.WithClaim("iss", issuer.Issuer()))
		}, http.StatusUnauthorized, "id_token", "signature"}, // the other issuer's key has our key's id
		{"wrong audience", func(_ *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithClaim("aud", "another-app"))
		}, http.StatusUnauthorized, "id_token", "audience"},
		{"expired", func(hs *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithExpiry(hs.momento.Now().Add(-time.Minute)))
		}, http.StatusUnauthorized, "id_token", "expired"},
		{"not yet valid", func(hs *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithNotBefore(hs.momento.Now().Add(10*time.Minute)))
		}, http.StatusUnauthorized, "id_token", "not yet valid"},
		{"alg none", func(hs *harness, issuer *oidctest.Server) string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
				"iss": issuer.Issuer(), "aud": issuer.Audience(), "sub": "alice", "exp": hs.momento.Now().Add(time.Hour).Unix(),
			}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return tok
		}, http.StatusUnauthorized, "ticket", "signature"},
		{"HS256 signed with the public key", func(hs *harness, issuer *oidctest.Server) string {
			der, err := x509.MarshalPKIXPublicKey(issuer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"iss": issuer.Issuer(), "aud": issuer.Audience(), "sub": "alice", "exp": hs.momento.Now().Add(time.Hour).Unix(),
			})
			tok.Header["kid"] = issuer.KeyID()
			s, _ := tok.SignedString(pemKey)
			return s
		}, http.StatusUnauthorized, "ticket", "signature"},
		{"unknown key id", func(_ *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithKeyID("forged"))
		}, http.StatusUnauthorized, "id_token", "unknown key"},
		// One meaning: Go's JSON would read sub as SUB, and "0" as a time.
		{"sub then SUB", func(hs *harness, issuer *oidctest.Server) string {
			now := hs.momento.Now()
			tok, err := issuer.SignRaw([]byte(fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d,"sub":"alice","SUB":"admin"}`,
				issuer.Issuer(), issuer.Audience(), now.Add(time.Hour).Unix())))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, http.StatusUnauthorized, "id_token", "malformed"},
		{"nbf a string", func(_ *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithClaim("nbf", "0"))
		}, http.StatusUnauthorized, "id_token", "malformed"},
		// ID tokens as OpenID Connect defines them.
		{"several audiences without azp", func(_ *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithClaim("aud", []string{issuer.Audience(), "another-app"}))
		}, http.StatusUnauthorized, "id_token", "audience"},
		{"exp ten years ahead", func(hs *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice", oidctest.WithExpiry(hs.momento.Now().AddDate(10, 0, 0)))
		}, http.StatusUnauthorized, "id_token", "lifetime"},
		// A header is small and flat before any key is tried; what fails
		// the pre-check goes to the ticket verifier, which refuses it too.
		{"8 KB header nested deeply", func(_ *harness, issuer *oidctest.Server) string {
			parts := strings.Split(idToken(t, issuer, "alice"), ".")
			nested := strings.Repeat("[", 2500) + strings.Repeat("]", 2500)
			header := `{"alg":"RS256","kid":"` + issuer.KeyID() + `","x":` + nested + `}`
			return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1] + "." + parts[2]
		}, http.StatusUnauthorized, "ticket", "malformed"},
		{"subject that is not a topic fragment", func(_ *harness, issuer *oidctest.Server) string {
			return idToken(t, issuer, "alice-*")
		}, http.StatusForbidden, "id_token", "subject does not fit OIDC_TOPICS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Tickets are accepted too: a token that is not an ID token
			// for this issuer goes to the ticket key, and fails there.
			hs, issuer := oidcHarness(t, ticketEnv(nil))
			raw := tt.token(hs, issuer)
			w := hs.do(http.MethodGet, "203.0.113.7", withBearer(raw))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, body %s; want %d", w.Code, w.Body, tt.wantStatus)
			}
			if got := w.Header().Get("WWW-Authenticate"); tt.wantStatus == http.StatusUnauthorized && got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate = %q, want Bearer error=\"invalid_token\"", got)
			}
			checkErrorBody(t, w)
			if n := len(hs.momento.Mints()); n != 0 {
				t.Errorf("a refused ID token minted %d tokens", n)
			}
			lines := hs.logLines(t, logRequest)
			if len(lines) != 1 || lines[0]["reason"] != tt.reason || lines[0]["credential"] != tt.credential {
				t.Errorf("request line %v, want credential %s, reason %q", lines, tt.credential, tt.reason)
			}
			hs.secretsInLogs(t, raw, "alice")
		})
	}
}

func TestForgedKeyIDsFetchKeysAtMostOncePerInterval(t *testing.T) {
	hs, issuer := oidcHarness(t, nil)
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(idToken(t, issuer, "alice"))); w.Code != http.StatusOK {
		t.Fatalf("sign-in: status %d", w.Code)
	}
	forge := func() {
		for i := range 5 {
			w := hs.do(http.MethodGet, "203.0.113.7", withBearer(idToken(t, issuer, "alice", oidctest.WithKeyID(strings.Repeat("f", i+1)))))
			if w.Code != http.StatusUnauthorized {
				t.Errorf("forged key id: status %d, want 401", w.Code)
			}
		}
	}
	forge()
	if n := issuer.Count(oidctest.EndpointJWKS); n != 1 {
		t.Errorf("key set fetched %d times after five forged key ids, want 1 (the first)", n)
	}
	hs.momento.FastForward(2 * time.Minute)
	forge()
	if n := issuer.Count(oidctest.EndpointJWKS); n != 2 {
		t.Errorf("key set fetched %d times after five more forged key ids a refetch interval later, want 2", n)
	}
	if n := len(hs.momento.Mints()); n != 1 {
		t.Errorf("mints = %d, want 1", n)
	}
}

func TestSignedInUserPublishesUnderTheirVerifiedID(t *testing.T) {
	hs, issuer := oidcHarness(t, map[string]string{"OIDC_TOPICS": "user-{sub}-*", "OIDC_PUBLISH": "user-{sub}-chat"})
	alice := decode(t, hs.do(http.MethodGet, "203.0.113.7", withBearer(idToken(t, issuer, "alice"))))
	m, _ := hs.momento.MintOf(alice.Token)
	want := []momentotest.Grant{
		{Kind: "topic", Role: "TopicReadWrite", Cache: "pizza", Topic: "user-alice-chat"},
		{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "user-alice-*"},
	}
	if diff := cmpGrants(want, m.Grants); diff != "" {
		t.Errorf("minted scope (-want +got):\n%s", diff)
	}

	// A subscriber (the app's backend, with the account's key) listens on
	// alice's topic; alice publishes with her token.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listener := topicClient(t, hs, hs.momento.APIKey())
	sub, err := listener.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: "user-alice-chat"})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	publisher := topicClient(t, hs, alice.Token)
	if _, err := publisher.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "user-alice-chat", Value: momento.String("hi")}); err != nil {
		t.Fatalf("alice publishes to her own topic: %v", err)
	}
	if _, err := publisher.Publish(ctx, &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "user-bob-chat", Value: momento.String("hi")}); vending.StatusCode(err) != codes.PermissionDenied {
		t.Errorf("alice publishes to bob's topic: %v, want PermissionDenied", err)
	}
	for {
		ev, err := sub.Event(ctx)
		if err != nil {
			t.Fatalf("waiting for alice's message: %v", err)
		}
		if item, ok := ev.(momento.TopicItem); ok {
			if got, want := string(item.GetPublisherId()), idtoken.TokenID(issuer.Issuer(), "alice"); got != want {
				t.Errorf("publisher_id = %q, want alice's verified tokenId %q", got, want)
			}
			break
		}
	}
}

// topicClient returns a topic client for key, pointed at the fake. It is
// not closed: TopicClient.Close races with its own goroutine in SDK v1.38.0.
func topicClient(t *testing.T, hs *harness, key string) momento.TopicClient {
	t.Helper()
	cp, err := hs.momento.CredentialProvider(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := momento.NewTopicClient(config.TopicsDefaultWithLogger(logger.NewNoopMomentoLoggerFactory()), cp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRemovedKeyStopsCachedSignIns: a verified ID token is remembered until
// its exp, but once the issuer removes the key that signed it (and the key
// set, older than its maximum age, is fetched again) the same token is
// refused, with nothing minted for it.
func TestRemovedKeyStopsCachedSignIns(t *testing.T) {
	hs, issuer := oidcHarness(t, nil)
	raw := idToken(t, issuer, "alice")
	if w := hs.do(http.MethodGet, "198.51.100.1", withBearer(raw)); w.Code != http.StatusOK {
		t.Fatalf("first sign-in: status %d, want 200", w.Code)
	}
	if err := issuer.RotateKey(); err != nil {
		t.Fatal(err)
	}
	hs.momento.FastForward(idtoken.DefaultKeysMaxAge)
	mints := len(hs.momento.Mints())
	w := hs.do(http.MethodGet, "198.51.100.1", withBearer(raw))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("the same ID token after its key was removed: status %d, want 401", w.Code)
	}
	if n := len(hs.momento.Mints()); n != mints {
		t.Errorf("minted %d tokens for a refused ID token", n-mints)
	}
	if n := issuer.Count(oidctest.EndpointJWKS); n != 2 {
		t.Errorf("key set fetched %d times, want 2 (setup, then once it was old)", n)
	}
	hs.secretsInLogs(t, raw, "alice")
}

// OIDC_TOPICS and OIDC_PUBLISH each hold at most 20 entries, but together
// they make one permission per entry, and a token carries at most 20: a
// configuration whose lists make more is refused at startup, naming both
// variables, not at every sign-in's mint.
func TestOIDCPermissionsOverflowIsRefusedAtStartup(t *testing.T) {
	var topics, publish []string
	for i := range 11 {
		topics = append(topics, fmt.Sprintf("user-{sub}-feed%d", i))
		publish = append(publish, fmt.Sprintf("user-{sub}-chat%d", i))
	}
	hs, issuer := oidcHarness(t, map[string]string{
		"OIDC_TOPICS":  strings.Join(topics, ","),
		"OIDC_PUBLISH": strings.Join(publish, ","),
	})
	if hs.h.cfgErr == nil {
		t.Errorf("OIDC_TOPICS and OIDC_PUBLISH making 22 permissions were accepted at startup")
	}
	w := hs.do(http.MethodGet, "203.0.113.7", withBearer(idToken(t, issuer, "alice")))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("sign-in: status %d, want 500", w.Code)
	}
	if n := hs.momento.Count(momentotest.MethodGet); n != 0 {
		t.Errorf("a sign-in that can never be served made %d Momento Gets", n)
	}
}

// TestForgeriesAreRefusedBeforeTheirCheckOnceTooMany: an attacker sends
// ID tokens under the issuer's published kid with signatures of nobody's,
// each new, from one address. The first few cost a signature check each
// (401); past credential.RefusedBurst the address is refused before any
// check (429 with Retry-After), at about the cost of a hit. Nothing is
// minted, and no log line holds a token; another address is unaffected.
func TestForgeriesAreRefusedBeforeTheirCheckOnceTooMany(t *testing.T) {
	hs, issuer := oidcHarness(t, nil)
	checks := func() int64 {
		inst, _ := hs.h.inst.Peek()
		st, _ := inst.credentials.IDTokenStats()
		return st.SignatureChecks
	}
	var sent []string
	forge := func(i int) http.Header {
		p := strings.Split(idToken(t, issuer, fmt.Sprint("mallory", i)), ".")
		raw := p[0] + "." + p[1] + "." + forgedSignature(p[2])
		sent = append(sent, raw)
		return withBearer(raw)
	}
	for i := range credential.RefusedBurst {
		if w := hs.do(http.MethodGet, "203.0.113.66", forge(i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("forgery %d: status %d, want 401", i, w.Code)
		}
	}
	before := checks()
	for i := range 20 {
		w := hs.do(http.MethodGet, "203.0.113.66", forge(100+i))
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
			t.Fatalf("forgery past the burst: status %d, Retry-After %q; want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
		checkErrorBody(t, w)
	}
	if n := checks() - before; n != 0 {
		t.Errorf("20 forgeries past the burst ran %d signature checks, want 0", n)
	}
	if w := hs.do(http.MethodGet, "198.51.100.66", forge(200)); w.Code != http.StatusUnauthorized {
		t.Errorf("a forgery from another network: status %d, want 401 after its check", w.Code)
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("forgeries minted %d tokens", n)
	}
	limited := 0
	for _, l := range hs.logLines(t, logRequest) {
		if l["reason"] == "refused too often" && l["credential"] == "id_token" {
			limited++
		}
	}
	if limited != 20 {
		t.Errorf("%d request lines say refused too often for an id_token, want 20", limited)
	}
	hs.secretsInLogs(t, sent...)
}
