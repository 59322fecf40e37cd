package tokenvendingmachine

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
)

// Who a bearer token stands for, at the edge: each test tries something an
// attacker would (a crafted sub, a refused or expired credential replayed,
// concurrent callers, re-encoded signatures) and shows it refused or kept
// apart, with nothing minted for another caller and nothing leaked.

// An attacker tries this: a ticket sub may hold ':', so a backend that puts a user-chosen
// name in sub lets a user pick "alice:<scope key of alice's scope>". The
// cache key "ticket:<sub>:<scope key>" must still never equal alice's, and
// an OIDC user and a ticket whose sub is that user's tokenId must not share
// a token either.
func TestCacheKeysDoNotCollide(t *testing.T) {
	hs, issuer := oidcHarness(t, ticketEnv(nil))
	aliceScope, err := scope.New([]string{"order-42-*"})
	if err != nil {
		t.Fatal(err)
	}
	alice := decode(t, hs.do(http.MethodGet, "203.0.113.7", withBearer(signTicket(t, ticketClaims(hs, "alice", "order-42-*")))))

	// sub "alice:<K>" with another scope: key "ticket:alice:<K>:<K2>".
	mallory := "alice:" + aliceScope.Key()
	w := hs.do(http.MethodGet, "203.0.113.8", withBearer(signTicket(t, ticketClaims(hs, mallory, "order-43-*"))))
	if w.Code != http.StatusOK {
		t.Fatalf("ticket with a colon in sub: status %d, body %s", w.Code, w.Body)
	}
	got := decode(t, w)
	if got.Token == alice.Token {
		t.Fatalf("a ticket for sub %q got alice's token", mallory)
	}
	if m, _ := hs.momento.MintOf(got.Token); m.TokenID != mallory {
		t.Errorf("tokenId = %q, want %q", m.TokenID, mallory)
	}

	// A ticket whose sub is a signed-in user's tokenId, for the user's own
	// scope, is another caller: another token.
	userTok := decode(t, hs.do(http.MethodGet, "203.0.113.9", withBearer(idToken(t, issuer, "bob"))))
	bobID := idtoken.TokenID(issuer.Issuer(), "bob")
	w = hs.do(http.MethodGet, "203.0.113.10", withBearer(signTicket(t, ticketClaims(hs, bobID, "announcements", "user-bob-*"))))
	if w.Code != http.StatusOK {
		t.Fatalf("ticket with a tokenId as sub: status %d, body %s", w.Code, w.Body)
	}
	if decode(t, w).Token == userTok.Token {
		t.Errorf("a ticket whose sub is bob's tokenId got bob's own token")
	}
	if n := len(hs.momento.Mints()); n != 4 {
		t.Errorf("mints = %d, want 4 (one per caller)", n)
	}
}

// An attacker tries this: get a broader scope than entitled by asking for it: a topics
// claim in an ID token, "*" in a ticket, query parameters and headers.
func TestScopeComesOnlyFromTheCredential(t *testing.T) {
	t.Run("ID token with extra claims and parameters", func(t *testing.T) {
		hs, issuer := oidcHarness(t, ticketEnv(nil))
		raw := idToken(t, issuer, "carol", oidctest.WithClaim("topics", []string{"*", "order-*"}), oidctest.WithClaim("scope", "*"))
		w := hs.send(request{path: "/?topics=*&scope=*", ip: "203.0.113.7", header: http.Header{
			"Authorization": {"Bearer " + raw},
			"X-Topics":      {"*"},
		}})
		if w.Code != http.StatusOK {
			t.Fatalf("status %d, body %s", w.Code, w.Body)
		}
		m, _ := hs.momento.MintOf(decode(t, w).Token)
		want := []momentotest.Grant{
			{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "announcements"},
			{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "user-carol-*"},
		}
		if diff := cmpGrants(want, m.Grants); diff != "" {
			t.Errorf("minted scope (-want +got):\n%s", diff)
		}
	})
	for _, topics := range [][]string{{"*"}, {"order-42-*", "*"}, {""}, {"order-*-x"}, {"order-42*"}, {"*-"}} {
		t.Run(fmt.Sprintf("ticket topics %q", topics), func(t *testing.T) {
			hs := newHarness(t, ticketEnv(map[string]string{"TOPICS": "none"}))
			w := hs.do(http.MethodGet, "203.0.113.7", withBearer(signTicket(t, ticketClaims(hs, "alice", topics...))))
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, body %s; want 401", w.Code, w.Body)
			}
			if n := len(hs.momento.Mints()); n != 0 {
				t.Errorf("minted %d tokens", n)
			}
		})
	}
}

// An attacker tries this: with anonymous callers allowed (TOPICS=*), a refused credential
// must be refused, not served as anonymous; and a credential of one kind
// must never be tried with the other kind's key.
func TestRefusedCredentialDoesNotFallBackToAnonymous(t *testing.T) {
	hs, issuer := oidcHarness(t, ticketEnv(map[string]string{"TOPICS": "*"}))
	// An HS256 token signed with the ticket key but claiming the issuer: it
	// is a ticket (HMAC alg), verified as one, and needs ticket claims.
	hsIssuer := signTicket(t, jwt.MapClaims{
		"iss": issuer.Issuer(), "aud": issuer.Audience(), "sub": "alice",
		"exp": hs.momento.Now().Add(5 * time.Minute).Unix(),
	})
	for _, raw := range []string{
		signTicket(t, ticketClaims(hs, "alice", "order-42-*"))[:40] + "x",
		idToken(t, issuer, "alice", oidctest.WithClaim("aud", "another-app")),
		idToken(t, issuer, "alice", oidctest.WithExpiry(hs.momento.Now().Add(-time.Second))),
		hsIssuer,
		"",
	} {
		w := hs.send(request{ip: "203.0.113.7", header: http.Header{"Authorization": {"Bearer " + raw}}})
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("refused credential %.30q with TOPICS=*: status %d, want 401", raw, w.Code)
		}
		checkErrorBody(t, w)
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("refused credentials minted %d tokens", n)
	}
	hs.secretsInLogs(t, hsIssuer, "alice")
}

// An attacker tries this: replay a credential after it expired, hoping the cache of
// verified credentials (caller.go) still serves it.
func TestExpiredCredentialIsNotServedFromTheVerifiedCache(t *testing.T) {
	hs, issuer := oidcHarness(t, ticketEnv(nil))
	tkt := signTicket(t, ticketClaims(hs, "alice", "order-42-*")) // 5 minutes
	idt := idToken(t, issuer, "bob")                              // 1 hour
	for _, raw := range []string{tkt, idt} {
		if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(raw)); w.Code != http.StatusOK {
			t.Fatalf("fresh credential: status %d", w.Code)
		}
	}
	// Past the ticket's exp plus its 30 s leeway.
	hs.momento.FastForward(5*time.Minute + ticket.DefaultLeeway + time.Second)
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(tkt)); w.Code != http.StatusUnauthorized {
		t.Errorf("expired ticket replayed: status %d, want 401", w.Code)
	}
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(idt)); w.Code != http.StatusOK {
		t.Errorf("ID token still valid: status %d, want 200", w.Code)
	}
	hs.momento.FastForward(time.Hour)
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(idt)); w.Code != http.StatusUnauthorized {
		t.Errorf("expired ID token replayed: status %d, want 401", w.Code)
	}
}

// Attack (concurrency): many callers at once, tickets for a few subs and
// anonymous visitors sharing flights, caches and limit buckets; every
// served token must carry its own caller's tokenId. Run with -race.
func TestConcurrentCallersGetTheirOwnTokens(t *testing.T) {
	hs := newHarness(t, ticketEnv(nil))
	subs := []string{"a", "a:b", "b", "a.b"}
	tickets := make([]string, len(subs))
	for i, s := range subs {
		tickets[i] = signTicket(t, ticketClaims(hs, s, "order-1-*"))
	}
	var wg sync.WaitGroup
	type result struct {
		sub   string // "" for anonymous
		token string
		code  int
	}
	results := make(chan result, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rq := request{ip: fmt.Sprintf("203.0.113.%d", i%7+1)}
			sub := ""
			if i%3 != 0 {
				k := i % len(subs)
				sub = subs[k]
				rq.header = withBearer(tickets[k])
			}
			w := hs.send(rq)
			r := result{sub: sub, code: w.Code}
			if w.Code == http.StatusOK {
				if tok, err := functest.DecodeToken(w.Body.Bytes()); err == nil {
					r.token = tok.Token
				}
			}
			results <- r
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.code != http.StatusOK {
			t.Errorf("caller %q: status %d", r.sub, r.code)
			continue
		}
		m, ok := hs.momento.MintOf(r.token)
		if !ok || m.TokenID != r.sub {
			t.Errorf("caller %q got a token with tokenId %q", r.sub, m.TokenID)
		}
	}
	if n := len(hs.momento.Mints()); n != len(subs)+7 {
		t.Errorf("mints = %d, want one per caller, %d", n, len(subs)+7)
	}
}

// A credential whose signature segment is re-encoded non-canonically (the
// unused low bits of its last base64url character set) is the same
// signature but a different string: accepted, each valid credential would
// have up to 16 spellings, each a fresh entry and a fresh signature check in
// the verified callers. Both kinds of credential refuse them as malformed.
func TestNonCanonicalCredentialsAreRefused(t *testing.T) {
	hs, issuer := oidcHarness(t, ticketEnv(nil))
	tkt := signTicket(t, ticketClaims(hs, "alice", "order-42-*"))
	idt := idToken(t, issuer, "alice")
	for _, tt := range []struct{ name, raw string }{{"ticket", tkt}, {"ID token", idt}} {
		variant := nonCanonical(t, tt.raw)
		if variant == tt.raw {
			t.Fatalf("%s: the signature segment has no unused bits", tt.name)
		}
		if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(variant)); w.Code != http.StatusUnauthorized {
			t.Errorf("%s with a non-canonical signature encoding: status %d, want 401", tt.name, w.Code)
		}
		hs.secretsInLogs(t, tt.raw, variant)
	}
	hs.secretsInLogs(t, "alice")
}

// nonCanonical returns raw with the last character of its signature segment
// replaced by one that decodes to the same bytes, if there is one.
func nonCanonical(t *testing.T, raw string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := raw[strings.LastIndexByte(raw, '.')+1:]
	unused := map[int]int{2: 4, 3: 2}[len(sig)%4] // bits of the last character no byte uses
	if unused == 0 {
		return raw
	}
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	return raw[:len(raw)-1] + string(alphabet[last|1])
}
