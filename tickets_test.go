package tokenvendingmachine

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/momentohq/client-sdk-go/momento"
	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/ticket"
	"example.com/tokenvendingmachine/internal/vending"
)

// testTicketKey is the tests' TICKET_KEY.
const testTicketKey = "test-ticket-key-0123456789abcdef-0123456789"

// ticketEnv is the environment of a function that accepts tickets, plus env.
func ticketEnv(env map[string]string) map[string]string {
	out := map[string]string{"TICKET_KEY": testTicketKey}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// signTicket signs claims with the test key, as an app's backend does.
func signTicket(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testTicketKey))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signTicketJSON signs header and payload JSON as written with the test
// key, for claims sets a JWT library would not write.
func signTicketJSON(t testing.TB, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(testTicketKey))
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// ticketJSON is the JSON of a ticket's aud and exp (5 minutes on the
// fake's clock) followed by members.
func ticketJSON(hs *harness, members string) string {
	return fmt.Sprintf(`{"aud":%q,"exp":%d,%s}`, ticket.DefaultAudience, hs.momento.Now().Add(5*time.Minute).Unix(), members)
}

// ticketClaims are valid claims for sub and topics, expiring in 5 minutes
// on the fake's clock.
func ticketClaims(hs *harness, sub string, topics ...string) jwt.MapClaims {
	return jwt.MapClaims{
		"aud":    ticket.DefaultAudience,
		"sub":    sub,
		"exp":    hs.momento.Now().Add(5 * time.Minute).Unix(),
		"topics": topics,
	}
}

// withBearer returns a header carrying credential as a bearer token.
func withBearer(credential string) http.Header {
	return http.Header{"Authorization": {"Bearer " + credential}}
}

// canSubscribe reports how Momento answers a subscription to topic in the
// cache pizza with token: nil, or the error's status code.
func canSubscribe(t *testing.T, hs *harness, token, topic string) codes.Code {
	t.Helper()
	topics := topicClient(t, hs, token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := topics.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: topic})
	if err != nil {
		return vending.StatusCode(err)
	}
	sub.Close()
	return codes.OK
}

func TestTicketScopesTheToken(t *testing.T) {
	hs := newHarness(t, ticketEnv(map[string]string{"TOPICS": "none"}))
	tkt := signTicket(t, ticketClaims(hs, "customer-7", "order-42-*"))
	w := hs.do(http.MethodGet, "203.0.113.7", withBearer(tkt))
	if w.Code != http.StatusOK {
		t.Fatalf("GET with a ticket: status %d, body %s", w.Code, w.Body)
	}
	tok := decode(t, w)
	mints := hs.momento.Mints()
	if len(mints) != 1 {
		t.Fatalf("mints = %d, want 1", len(mints))
	}
	want := []momentotest.Grant{{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "order-42-*"}}
	if diff := cmpGrants(want, mints[0].Grants); diff != "" {
		t.Errorf("minted scope (-want +got):\n%s", diff)
	}
	for topic, want := range map[string]codes.Code{
		"order-42-status-updated":  codes.OK,
		"order-43-status-updated":  codes.PermissionDenied,
		"order-421-status-updated": codes.PermissionDenied,
		"new-order":                codes.PermissionDenied,
	} {
		if got := canSubscribe(t, hs, tok.Token, topic); got != want {
			t.Errorf("subscribe to %s with the ticket's token: %v, want %v", topic, got, want)
		}
	}

	// A fresh ticket for the same sub and scope, from another address,
	// gets the cached token: the cache key is the caller, not the IP.
	hs.momento.FastForward(time.Minute)
	again := decode(t, hs.do(http.MethodGet, "198.51.100.9", withBearer(signTicket(t, ticketClaims(hs, "customer-7", "order-42-*")))))
	if again.Token != tok.Token || len(hs.momento.Mints()) != 1 {
		t.Errorf("a fresh ticket for the same scope minted again (%d mints)", len(hs.momento.Mints()))
	}
	// Another scope is another token.
	other := decode(t, hs.do(http.MethodGet, "203.0.113.7", withBearer(signTicket(t, ticketClaims(hs, "customer-7", "order-43-*")))))
	if other.Token == tok.Token {
		t.Errorf("a ticket for another order got the same token")
	}
	// Anonymous callers are refused with TOPICS=none.
	w = hs.get("192.0.2.1")
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("anonymous with TOPICS=none: status %d, WWW-Authenticate %q; want 401, Bearer", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	checkErrorBody(t, w)
	if n := len(hs.momento.Mints()); n != 2 {
		t.Errorf("mints = %d, want 2", n)
	}
	hs.secretsInLogs(t, tkt, "customer-7")
}

func TestTicketTokenID(t *testing.T) {
	hs := newHarness(t, ticketEnv(nil))
	tok := decode(t, hs.do(http.MethodGet, "203.0.113.7", withBearer(signTicket(t, ticketClaims(hs, "kitchen-1", "new-order", "order-*")))))
	m, ok := hs.momento.MintOf(tok.Token)
	if !ok {
		t.Fatal("the served token was not minted by the fake")
	}
	if m.TokenID != "kitchen-1" {
		t.Errorf("minted with tokenId %q, want the ticket's sub", m.TokenID)
	}
	want := []momentotest.Grant{
		{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "new-order"},
		{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "order-*"},
	}
	if diff := cmpGrants(want, m.Grants); diff != "" {
		t.Errorf("minted scope (-want +got):\n%s", diff)
	}
}

func TestAnonymousTopics(t *testing.T) {
	hs := newHarness(t, map[string]string{"TOPICS": "menu-*"})
	tok := hs.token(t, "203.0.113.7")
	if got := canSubscribe(t, hs, tok.Token, "menu-today"); got != codes.OK {
		t.Errorf("subscribe to menu-today with TOPICS=menu-*: %v, want OK", got)
	}
	if got := canSubscribe(t, hs, tok.Token, "order-42-status-updated"); got != codes.PermissionDenied {
		t.Errorf("subscribe to order-42-status-updated with TOPICS=menu-*: %v, want PermissionDenied", got)
	}
	// The scope is part of the cache key, so a token cached under another
	// TOPICS is never served for this one.
	for _, k := range hs.momento.Keys("pizza") {
		if k == "203.0.113.7-token" {
			t.Errorf("a scoped anonymous token is cached under the all-topics key")
		}
	}
}

func TestBadTicketsAreRefused(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		ticket func(hs *harness) string
		reason string
	}{
		{"tampered payload", func(hs *harness) string {
			parts := strings.Split(signTicket(t, ticketClaims(hs, "alice", "order-42-*")), ".")
			claims := ticketClaims(hs, "alice", "order-*")
			parts[1] = encodeSegment(t, claims)
			return strings.Join(parts, ".")
		}, "signature"},
		{"wrong key", func(hs *harness) string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, ticketClaims(hs, "alice", "order-42-*")).SignedString([]byte(strings.Repeat("x", 40)))
			return tok
		}, "signature"},
		{"expired", func(hs *harness) string {
			c := ticketClaims(hs, "alice", "order-42-*")
			c["exp"] = hs.momento.Now().Add(-time.Hour).Unix()
			return signTicket(t, c)
		}, "expired"},
		{"wrong audience", func(hs *harness) string {
			c := ticketClaims(hs, "alice", "order-42-*")
			c["aud"] = "another-service"
			return signTicket(t, c)
		}, "audience"},
		{"alg none", func(hs *harness) string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, ticketClaims(hs, "alice", "order-42-*")).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return tok
		}, "signature"},
		{"HS512", func(hs *harness) string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, ticketClaims(hs, "alice", "order-42-*")).SignedString([]byte(testTicketKey))
			return tok
		}, "signature"},
		{"RS256 header", func(hs *harness) string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, ticketClaims(hs, "alice", "order-42-*")).SignedString(rsaKey)
			return tok
		}, "signature"},
		{"missing sub", func(hs *harness) string {
			c := ticketClaims(hs, "alice", "order-42-*")
			delete(c, "sub")
			return signTicket(t, c)
		}, "claims"},
		{"21 topics", func(hs *harness) string {
			topics := make([]string, 21)
			for i := range topics {
				topics[i] = fmt.Sprintf("order-%d-status", i)
			}
			return signTicket(t, ticketClaims(hs, "alice", topics...))
		}, "claims"},
		{"undelimited prefix", func(hs *harness) string { return signTicket(t, ticketClaims(hs, "alice", "order-42*")) }, "claims"},
		{"forbidden characters", func(hs *harness) string { return signTicket(t, ticketClaims(hs, "alice", "order 42\n")) }, "claims"},
		{"exp too far ahead", func(hs *harness) string {
			c := ticketClaims(hs, "alice", "order-42-*")
			c["exp"] = hs.momento.Now().Add(24 * time.Hour).Unix()
			return signTicket(t, c)
		}, "claims"},
		{"not a JWT", func(*harness) string { return "not-a-ticket" }, "malformed"},
		{"oversized", func(*harness) string { return strings.Repeat("A", 9000) }, "malformed"},
		// One meaning: Go's JSON would read sub as SUB, topics as Topics,
		// and the string "0" as a time; another parser would not.
		{"sub then SUB", func(hs *harness) string {
			return signTicketJSON(t, `{"alg":"HS256","typ":"JWT"}`, ticketJSON(hs, `"sub":"alice","SUB":"admin","topics":["order-42-*"]`))
		}, "malformed"},
		{"topics then Topics", func(hs *harness) string {
			return signTicketJSON(t, `{"alg":"HS256","typ":"JWT"}`, ticketJSON(hs, `"sub":"alice","topics":["order-42-*"],"Topics":["order-*"]`))
		}, "malformed"},
		{"nbf a string", func(hs *harness) string {
			return signTicketJSON(t, `{"alg":"HS256","typ":"JWT"}`, ticketJSON(hs, `"sub":"alice","topics":["order-42-*"],"nbf":"0"`))
		}, "malformed"},
		// A header is small and flat before any key is tried.
		{"8 KB header nested deeply", func(hs *harness) string {
			parts := strings.Split(signTicket(t, ticketClaims(hs, "alice", "order-42-*")), ".")
			nested := strings.Repeat("[", 2800) + strings.Repeat("]", 2800)
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","x":`+nested+`}`)) + "." + parts[1] + "." + parts[2]
		}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, ticketEnv(map[string]string{"TOPICS": "none"}))
			raw := tt.ticket(hs)
			w := hs.do(http.MethodGet, "203.0.113.7", withBearer(raw))
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, body %s; want 401", w.Code, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer", got)
			}
			checkErrorBody(t, w)
			if body := w.Body.String(); !strings.Contains(body, answers[failure.BadCredentials].message) {
				t.Errorf("body %s: every refused ticket gets the same message", body)
			}
			if n := len(hs.momento.Mints()); n != 0 {
				t.Errorf("a refused ticket minted %d tokens", n)
			}
			lines := hs.logLines(t, logRequest)
			// An oversized credential is refused before it is looked at.
			wantCredential := any("ticket")
			if tt.name == "oversized" {
				wantCredential = nil
			}
			if len(lines) != 1 || lines[0]["reason"] != tt.reason || lines[0]["credential"] != wantCredential {
				t.Errorf("request line %v, want credential %v, reason %q", lines, wantCredential, tt.reason)
			}
			hs.secretsInLogs(t, raw, "alice")
		})
	}
}

func TestMalformedAuthorizationIsRefused(t *testing.T) {
	hs := newHarness(t, ticketEnv(nil))
	for _, h := range []http.Header{
		{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}},
		{"Authorization": {"Bearer"}},
		{"Authorization": {"Bearer a", "Bearer b"}},
	} {
		w := hs.do(http.MethodGet, "203.0.113.7", h)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h["Authorization"], w.Code)
		}
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("malformed Authorization headers minted %d tokens", n)
	}
}

func TestTicketKeyFromSecretManagerRotates(t *testing.T) {
	const ticketSecret = "projects/test-project/secrets/tickets"
	hs := newHarnessFunc(t, func(hs *harness) map[string]string {
		hs.secrets.AddVersion(ticketSecret, []byte(`{"keys": {"2026-10": "`+testTicketKey+`"}}`))
		return map[string]string{"TICKET_SECRET_ID": ticketSecret}
	})
	sign := func(kid, key string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, ticketClaims(hs, "alice", "order-42-*"))
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(sign("2026-10", testTicketKey))); w.Code != http.StatusOK {
		t.Fatalf("ticket with the first key: status %d", w.Code)
	}
	// The app adds a key and signs with it; no redeploy.
	newKey := strings.Repeat("n", 40)
	hs.secrets.AddVersion(ticketSecret, []byte(`{"keys": {"2026-10": "`+testTicketKey+`", "2026-11": "`+newKey+`"}}`))
	reads := hs.secrets.Count()
	if w := hs.do(http.MethodGet, "203.0.113.8", withBearer(sign("2026-11", newKey))); w.Code != http.StatusOK {
		t.Fatalf("ticket with the added key: status %d, body %s", w.Code, w.Body)
	}
	// Forged key ids do not make it read the secret per request.
	for i := range 5 {
		hs.do(http.MethodGet, "203.0.113.9", withBearer(sign(fmt.Sprintf("forged-%d", i), newKey)))
	}
	if n := hs.secrets.Count() - reads; n != 1 {
		t.Errorf("secret reads for one added key and five forged key ids = %d, want 1", n)
	}
}

// cmpGrants compares grants in any order.
func cmpGrants(want, got []momentotest.Grant) string {
	less := func(a, b momentotest.Grant) bool { return a.Topic < b.Topic }
	return cmp.Diff(want, got, cmpopts.SortSlices(less))
}

func TestTicketKeyRemovedFromTheSecretStopsWorking(t *testing.T) {
	const ticketSecret = "projects/test-project/secrets/tickets"
	oldKey, newKey := testTicketKey, strings.Repeat("n", 40)
	hs := newHarnessFunc(t, func(hs *harness) map[string]string {
		hs.secrets.AddVersion(ticketSecret, []byte(`{"keys": {"old": "`+oldKey+`", "new": "`+newKey+`"}}`))
		return map[string]string{"TICKET_SECRET_ID": ticketSecret}
	})
	sign := func(kid, key, sub string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, ticketClaims(hs, sub, "order-42-*"))
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(sign("old", oldKey, "a"))); w.Code != http.StatusOK {
		t.Fatalf("ticket with the old key: status %d", w.Code)
	}
	// The old key leaked: the app removes it from the secret.
	hs.secrets.AddVersion(ticketSecret, []byte(`{"keys": {"new": "`+newKey+`"}}`))
	hs.momento.FastForward(6 * time.Minute)
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(sign("old", oldKey, "b"))); w.Code != http.StatusUnauthorized {
		t.Errorf("ticket with the removed key, 6 minutes later: status %d, want 401", w.Code)
	}
	if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(sign("new", newKey, "c"))); w.Code != http.StatusOK {
		t.Errorf("ticket with the remaining key: status %d, want 200", w.Code)
	}
}

// encodeSegment returns claims as a JWS payload segment.
func encodeSegment(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	s, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(s, ".")[1]
}

// secretsInLogs fails t if the logs hold any of secrets: credentials,
// subjects, emails.
func (hs *harness) secretsInLogs(t *testing.T, secrets ...string) {
	t.Helper()
	logs := hs.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %.20q", s)
		}
		if enc := base64.RawURLEncoding.EncodeToString([]byte(s)); len(s) > 8 && strings.Contains(logs, enc) {
			t.Errorf("logs contain %.20q, base64-encoded", s)
		}
	}
}

func TestRepeatCredentialIsNamedInTheLog(t *testing.T) {
	hs := newHarness(t, ticketEnv(nil))
	tkt := signTicket(t, ticketClaims(hs, "customer-7", "order-42-*"))
	for range 2 {
		if w := hs.do(http.MethodGet, "203.0.113.7", withBearer(tkt)); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	for i, l := range hs.logLines(t, logRequest) {
		if l["credential"] != "ticket" {
			t.Errorf("request line %d: credential = %v, want ticket (the second from the verified cache)", i, l["credential"])
		}
	}
}
