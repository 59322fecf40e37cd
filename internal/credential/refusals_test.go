package credential

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
)

// refusalsFixture is a Resolver that takes tickets and ID tokens, on a
// clock the test moves.
type refusalsFixture struct {
	r      *Resolver
	issuer *oidctest.Server
	now    time.Time
}

func newRefusalsFixture(t *testing.T) *refusalsFixture {
	f := &refusalsFixture{now: t0}
	clock := func() time.Time { return f.now }
	f.issuer = oidctest.NewServerT(t, oidctest.Options{Now: clock})
	topics, err := scope.ParseTemplate("user-{sub}-*")
	if err != nil {
		t.Fatal(err)
	}
	f.r = newResolver(t, Options{
		TicketKeysFrom: "TICKET_KEY",
		TicketKeys:     func(context.Context) ([]byte, error) { return benchTicketKey.Secret, nil },
		Issuer:         f.issuer.Issuer(), Audience: f.issuer.Audience(), Topics: topics,
		Now: clock,
	})
	return f
}

// forgedIDToken is an ID token for sub under the issuer's published kid,
// with a signature of nobody's: only a signature check refuses it.
func (f *refusalsFixture) forgedIDToken(t *testing.T, sub string) string {
	t.Helper()
	raw, err := f.issuer.IDToken(sub)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(raw, ".")
	return p[0] + "." + p[1] + "." + flip(p[2])
}

// ticket is a valid ticket for sub, or one signed with another key.
func (f *refusalsFixture) ticket(t *testing.T, sub string, forged bool) string {
	t.Helper()
	sc, err := scope.New([]string{"order-42-*"})
	if err != nil {
		t.Fatal(err)
	}
	secret := benchTicketKey.Secret
	if forged {
		secret = []byte(strings.Repeat("x", 32))
	}
	raw, err := ticket.Sign(ticket.Key{Secret: secret}, ticket.DefaultAudience, ticket.Claims{Subject: sub, Scope: sc, Expires: f.now.Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checks returns how many ID-token signature checks have run.
func (f *refusalsFixture) checks() int64 {
	st, _ := f.r.IDTokenStats()
	return st.SignatureChecks
}

// refusedTooOften reports whether err is the refusal limit's: Limited,
// with a Retry-After of at least a second.
func refusedTooOften(err error) bool {
	var fe *failure.Error
	return errors.As(err, &fe) && fe.Kind == failure.Limited && fe.Retry >= time.Second && fe.Reason == "refused too often"
}

// TestRefusedTooOften: forged credentials from one client each cost a
// signature check until the client has had RefusedBurst refusals; then its
// next credential is refused before any check, and it gets one check a
// second after that. Another client's forgeries are still checked.
func TestRefusedTooOften(t *testing.T) {
	f := newRefusalsFixture(t)
	ctx := context.Background()
	attacker := netip.MustParsePrefix("203.0.113.7/32")
	for i := range RefusedBurst {
		before := f.checks()
		_, kind, err := f.r.Caller(ctx, f.forgedIDToken(t, fmt.Sprint("mallory-", i)), attacker)
		if failure.ReasonOf(err) != "signature" || kind != IDToken || f.checks() != before+1 {
			t.Fatalf("forgery %d: kind %q, %v after %d checks; want a signature refusal after one check", i, kind, err, f.checks()-before)
		}
	}
	before := f.checks()
	_, kind, err := f.r.Caller(ctx, f.forgedIDToken(t, "mallory-x"), attacker)
	if !refusedTooOften(err) || kind != IDToken {
		t.Fatalf("forgery past the burst: kind %q, %v; want Limited, refused too often, Retry-After ≥ 1 s", kind, err)
	}
	if _, _, err := f.r.Caller(ctx, f.ticket(t, "mallory-y", true), attacker); !refusedTooOften(err) {
		t.Errorf("forged ticket past the burst: %v; want refused too often", err)
	}
	if f.checks() != before {
		t.Errorf("refusals past the burst ran %d signature checks, want none", f.checks()-before)
	}
	// Malformed tokens cost no signature check, and are not limited.
	if _, _, err := f.r.Caller(ctx, "not-a-token", attacker); failure.ReasonOf(err) != "malformed" {
		t.Errorf("malformed token past the burst: %v; want refused as malformed", err)
	}
	// Another /24 is checked as before.
	if _, _, err := f.r.Caller(ctx, f.forgedIDToken(t, "mallory-z"), netip.MustParsePrefix("198.51.100.7/32")); failure.ReasonOf(err) != "signature" {
		t.Errorf("a forgery from another network: %v; want a signature refusal", err)
	}
	// A second later the attacker gets one more check.
	f.now = f.now.Add(time.Second)
	if _, _, err := f.r.Caller(ctx, f.forgedIDToken(t, "mallory-w"), attacker); failure.ReasonOf(err) != "signature" {
		t.Errorf("a second later: %v; want one more signature check", err)
	}
	if _, _, err := f.r.Caller(ctx, f.forgedIDToken(t, "mallory-v"), attacker); !refusedTooOften(err) {
		t.Errorf("then: %v; want refused too often", err)
	}
}

// TestRefusedTooOftenByNetwork: an IPv6 attacker cannot multiply its checks
// by rotating /64s: its /48 has NetworkRefusedBurst refusals in all. An
// IPv4 address is counted alone: its neighbours in the /24 still sign in,
// and a verified credential from the attacked /48 is still served.
func TestRefusedTooOftenByNetwork(t *testing.T) {
	f := newRefusalsFixture(t)
	ctx := context.Background()
	alice, err := f.issuer.IDToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	aliceAt := netip.MustParsePrefix("2001:db8:5:ffff::/64")
	if _, _, err := f.r.Caller(ctx, alice, aliceAt); err != nil {
		t.Fatalf("alice's sign-in: %v", err)
	}
	checked := 0
	for i := range 2 * NetworkRefusedBurst {
		client := netip.MustParsePrefix(fmt.Sprintf("2001:db8:5:%x::/64", i))
		_, _, err := f.r.Caller(ctx, f.forgedIDToken(t, fmt.Sprint("m", i)), client)
		switch {
		case failure.ReasonOf(err) == "signature":
			checked++
		case !refusedTooOften(err):
			t.Fatalf("forgery from %v: %v; want a signature refusal or refused too often", client, err)
		}
	}
	if checked != NetworkRefusedBurst {
		t.Errorf("%d forgeries from %d /64s of one /48 were checked, want %d (the network's burst)", checked, 2*NetworkRefusedBurst, NetworkRefusedBurst)
	}
	if _, _, err := f.r.Caller(ctx, alice, aliceAt); err != nil {
		t.Errorf("alice's verified sign-in during the attack: %v; want served", err)
	}

	// IPv4: the attacker's address is spent, its neighbour's is not.
	attacker := netip.MustParsePrefix("203.0.113.66/32")
	for i := range RefusedBurst + 1 {
		f.r.Caller(ctx, f.forgedIDToken(t, fmt.Sprint("m4-", i)), attacker)
	}
	if _, _, err := f.r.Caller(ctx, f.forgedIDToken(t, "m4-x"), attacker); !refusedTooOften(err) {
		t.Errorf("the IPv4 attacker past its burst: %v; want refused too often", err)
	}
	bob, err := f.issuer.IDToken("bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.r.Caller(ctx, bob, netip.MustParsePrefix("203.0.113.67/32")); err != nil {
		t.Errorf("a neighbour's new sign-in in the attacker's /24: %v; want verified", err)
	}
}

// TestVerifiedCredentialsAreNotChargedRefusals: honest callers are not
// refused, so they never meet the limit: many new valid credentials from
// one address all verify.
func TestVerifiedCredentialsAreNotChargedRefusals(t *testing.T) {
	f := newRefusalsFixture(t)
	ctx := context.Background()
	nat := netip.MustParsePrefix("100.64.0.1/32") // carrier NAT: many users, one address
	for i := range 4 * NetworkRefusedBurst {
		if _, _, err := f.r.Caller(ctx, f.ticket(t, fmt.Sprint("customer-", i), false), nat); err != nil {
			t.Fatalf("ticket %d: %v", i, err)
		}
		idt, err := f.issuer.IDToken(fmt.Sprint("u", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.r.Caller(ctx, idt, nat); err != nil {
			t.Fatalf("ID token %d: %v", i, err)
		}
	}
	// A new valid credential from a client past its refusals waits for
	// the Retry-After like any other, then verifies.
	for i := range RefusedBurst {
		f.r.Caller(ctx, f.forgedIDToken(t, fmt.Sprint("mallory-", i)), nat)
	}
	late := f.ticket(t, "customer-late", false)
	if _, _, err := f.r.Caller(ctx, late, nat); !refusedTooOften(err) {
		t.Fatalf("a new ticket from a client past its refusals: %v; want refused too often", err)
	}
	f.now = f.now.Add(time.Second)
	if _, _, err := f.r.Caller(ctx, late, nat); err != nil {
		t.Errorf("the same ticket after Retry-After: %v; want verified", err)
	}
}
