package credential

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/limits"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
)

// benchTicketKey is the ticket key of the benchmarks.
var benchTicketKey = ticket.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// BenchmarkCaller measures what a bearer token costs a request: a repeat
// of a verified one (from the verified callers) and the refusal of each
// shape of forged ticket and ID token. A refusal should cost no more than a
// hit plus one signature check:
//
//	go test -run '^$' -bench Caller -benchmem ./internal/credential/
func BenchmarkCaller(b *testing.B) {
	now := t0
	clock := func() time.Time { return now }
	issuer := oidctest.NewServerT(b, oidctest.Options{Now: clock})
	topics, err := scope.ParseTemplate("user-{sub}-*")
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(context.Background(), Options{
		TicketKeysFrom: "TICKET_KEY",
		TicketKeys:     func(context.Context) ([]byte, error) { return benchTicketKey.Secret, nil },
		Issuer:         issuer.Issuer(), Audience: issuer.Audience(), Topics: topics,
		Now: clock,
	})
	if err != nil {
		b.Fatal(err)
	}
	sc, err := scope.New([]string{"order-42-*"})
	if err != nil {
		b.Fatal(err)
	}
	tkt, err := ticket.Sign(ticket.Key{Secret: benchTicketKey.Secret}, ticket.DefaultAudience, ticket.Claims{Subject: "alice", Scope: sc, Expires: now.Add(5 * time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	forgedTkt, err := ticket.Sign(ticket.Key{Secret: []byte(strings.Repeat("x", 32))}, ticket.DefaultAudience, ticket.Claims{Subject: "alice", Scope: sc, Expires: now.Add(5 * time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	idt, err := issuer.IDToken("alice")
	if err != nil {
		b.Fatal(err)
	}
	tp, ip := strings.Split(tkt, "."), strings.Split(idt, ".")
	for _, bc := range []struct {
		name  string
		raw   string
		valid bool
	}{
		{name: "ticket-hit", raw: tkt, valid: true},
		{name: "id-token-hit", raw: idt, valid: true},
		{name: "forged-ticket", raw: forgedTkt},
		{name: "forged-id-token-known-kid", raw: ip[0] + "." + ip[1] + "." + flip(ip[2])},
		{name: "nested-header-ticket-8k", raw: nestedHeader(`{"alg":"HS256","typ":"JWT","x":`, tp[1], tp[2], MaxLen)},
		{name: "nested-header-id-token-8k", raw: nestedHeader(`{"alg":"RS256","kid":"`+issuer.KeyID()+`","typ":"JWT","x":`, ip[1], flip(ip[2]), MaxLen)},
		{name: "malformed", raw: "not-a-token"},
		// As long as the nested-header tokens, and like them not of a
		// JWS's shape: neither is hashed for the verified-callers lookup.
		{name: "malformed-8k", raw: strings.Repeat("A", MaxLen)},
		// Of a JWS's shape, with an 8 KB payload: hashed and looked up,
		// then refused by its signature.
		{name: "forged-ticket-8k", raw: tp[0] + "." + strings.Repeat("A", MaxLen-len(tp[0])-len(tp[2])-2) + "." + flip(tp[2])},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			// Every refusal the signature check's: no refusal limit, so that
			// one client can be refused b.N times.
			r.refused, r.networkRefused = unlimitedRefusals(b), unlimitedRefusals(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := r.Caller(ctx, bc.raw, benchClient); (err == nil) != bc.valid {
					b.Fatalf("Caller() = %v", err)
				}
			}
		})
	}
}

// BenchmarkRefusedTooOften measures a forged ID token from a client past
// its refusals (RefusedBurst; the clock stands still): refused before the
// signature check, so it costs about what a malformed token does.
//
//	go test -run '^$' -bench RefusedTooOften -benchmem ./internal/credential/
func BenchmarkRefusedTooOften(b *testing.B) {
	issuer := oidctest.NewServerT(b, oidctest.Options{Now: func() time.Time { return t0 }})
	topics, err := scope.ParseTemplate("user-{sub}-*")
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(context.Background(), Options{
		Issuer: issuer.Issuer(), Audience: issuer.Audience(), Topics: topics,
		Now: func() time.Time { return t0 },
	})
	if err != nil {
		b.Fatal(err)
	}
	idt, err := issuer.IDToken("mallory")
	if err != nil {
		b.Fatal(err)
	}
	p := strings.Split(idt, ".")
	forged := p[0] + "." + p[1] + "." + flip(p[2])
	ctx := context.Background()
	for range RefusedBurst {
		if _, _, err := r.Caller(ctx, forged, benchClient); failure.ReasonOf(err) != "signature" {
			b.Fatalf("Caller() = %v, want a signature refusal", err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Caller(ctx, forged, benchClient); failure.ReasonOf(err) != "refused too often" {
			b.Fatalf("Caller() = %v, want refused too often", err)
		}
	}
}

// benchClient is the client the benchmarks' requests come from.
var benchClient = netip.MustParsePrefix("203.0.113.7/32")

// unlimitedRefusals returns refusal buckets that never refuse.
func unlimitedRefusals(b *testing.B) *limits.Keyed[netip.Prefix] {
	k, err := limits.NewKeyed[netip.Prefix](limits.KeyedOptions{Rate: 1e9, Burst: 1 << 30, MaxKeys: 16})
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// flip changes the first character of a base64url signature.
func flip(sig string) string {
	c := byte('A')
	if sig[0] == 'A' {
		c = 'B'
	}
	return string(c) + sig[1:]
}

// nestedHeader returns a compact JWS of at most maxLen bytes whose header
// is prefix followed by as many nested arrays as fit, then payload and
// signature (base64url segments).
func nestedHeader(prefix, payload, sig string, maxLen int) string {
	room := (maxLen-len(payload)-len(sig)-2)/4*3 - len(prefix) - 1
	depth := room / 2
	header := prefix + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + payload + "." + sig
}
