package limits

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/momentohq/client-sdk-go/momento"

	"example.com/tokenvendingmachine/internal/clientip"
	"example.com/tokenvendingmachine/internal/momentotest"
)

func TestChainOf(t *testing.T) {
	tests := []struct {
		client   netip.Prefix
		identity string
		want     Chain
	}{
		{netip.MustParsePrefix("203.0.113.7/32"), "", Chain{Device: "203.0.113.7", Network: "203.0.113.0/24", Provider: "203.0.0.0/16"}},
		{netip.MustParsePrefix("2001:db8:1:2::/64"), "u-1", Chain{Device: "2001:db8:1:2::/64", Identity: "u-1", Network: "2001:db8:1::/48", Provider: "2001:db8::/32"}},
		{netip.MustParsePrefix("2001:db8:1:ffff::/64"), "", Chain{Device: "2001:db8:1:ffff::/64", Network: "2001:db8:1::/48", Provider: "2001:db8::/32"}},
		// Wider than a network: a device, but no network or provider it
		// could be charged to alone.
		{netip.MustParsePrefix("2001:db8::/32"), "", Chain{Device: "2001:db8::/32"}},
		{netip.MustParsePrefix("203.0.0.0/16"), "", Chain{Device: "203.0.0.0/16"}},
		{netip.MustParsePrefix("::ffff:203.0.113.7/128"), "", Chain{Device: "::ffff:203.0.113.7/128"}},
		{netip.Prefix{}, "u-2", Chain{Identity: "u-2"}},
	}
	for _, tt := range tests {
		if got := ChainOf(tt.client, tt.identity); got != tt.want {
			t.Errorf("ChainOf(%v, %q) = %+v, want %+v", tt.client, tt.identity, got, tt.want)
		}
	}
}

func TestDefaultShares(t *testing.T) {
	got := DefaultShares(10)
	want := Shares{Pressure: 5, Device: 1, Identity: 1, Network: 2, Provider: 3, Contended: 5, Newcomers: 3, Tolerance: 0, ContendPeriod: time.Minute}
	if got != want {
		t.Errorf("DefaultShares(10) = %+v, want %+v", got, want)
	}
	// The shares nest, one provider fits in the contended pool, and the
	// newcomers' reserve is only reached past the pressure, at every
	// capacity.
	for _, c := range []int64{1, 2, 10, 11, 99, 1000, 500_000} {
		s := DefaultShares(c)
		if !(s.Device < s.Network && s.Network < s.Provider && (s.Provider <= s.Contended || c < s.Provider)) {
			t.Errorf("DefaultShares(%d) = %+v: want device < network < provider <= contended", c, s)
		}
	}
	for c := range int64(1000) {
		if s := DefaultShares(c); s.Newcomers > 0 && c-s.Newcomers <= s.Pressure {
			t.Errorf("DefaultShares(%d) = %+v: want C − newcomers past the pressure", c, s)
		}
	}
}

// TestNewFleetBoundsTheNewcomersReserve: a reserve that would refuse
// callers before the pressure shows is lowered below C − Pressure.
func TestNewFleetBoundsTheNewcomersReserve(t *testing.T) {
	s := newFleetSetup(t)
	shares := DefaultShares(10)
	shares.Newcomers = 10
	f := s.newFleetWith(t, FleetOptions{Rate: 4, Burst: 20, Shares: &shares})
	if got, want := f.shares.Newcomers, int64(4); got != want {
		t.Errorf("newcomers' reserve %d of C = 10 with pressure past 5, want it lowered to %d", got, want)
	}
}

// sharesSetup is a setup of Fleets with the default budget (C = 10 per
// 2.5 s) put under pressure.
type sharesSetup struct {
	*fleetSetup
	fleets []*Fleet
	client momento.CacheClient
}

func newSharesSetup(t *testing.T, instances int) *sharesSetup {
	t.Helper()
	s := &sharesSetup{fleetSetup: newFleetSetup(t), client: nil}
	for range instances {
		s.fleets = append(s.fleets, s.newFleet(t, 4, 20))
	}
	s.client = newCacheClient(t, s.fake)
	// Start on a window's edge.
	w := int64(s.fleets[0].Window())
	s.advance(time.Duration(w - s.clock.Now().UnixNano()%w))
	return s
}

// pressure fills a window past the pressure threshold from every instance
// and moves to the next window.
func (s *sharesSetup) pressure(t *testing.T) {
	t.Helper()
	for _, f := range s.fleets {
		for range 6 {
			allow(f, s.client)
		}
		if !f.Pressured() {
			t.Fatalf("an instance that saw its window's count past %d is not under pressure", f.shares.Pressure)
		}
	}
	s.advance(s.fleets[0].Window())
}

// admit asks instance i for a mint for c.
func (s *sharesSetup) admit(t *testing.T, i int, c Chain) Admission {
	t.Helper()
	a, err := s.fleets[i%len(s.fleets)].Admit(context.Background(), s.client, c)
	if err != nil {
		t.Fatalf("Admit(%+v) = %v", c, err)
	}
	a.Wait()
	return a
}

func TestNoSharesWithoutPressure(t *testing.T) {
	s := newSharesSetup(t, 1)
	device := chainOf("203.0.113.7", "")
	for i := range 5 {
		if a := s.admit(t, 0, device); !a.OK {
			t.Fatalf("mint %d of one device without pressure refused: %+v", i+1, a)
		}
	}
	for _, k := range s.fake.Keys(testCache) {
		if strings.Contains(k, ":") {
			t.Errorf("a share counter %q exists without pressure", k)
		}
	}
	if n := s.fake.Count(momentotest.MethodIncrement); n != 5 {
		t.Errorf("%d Increments for 5 mints without pressure, want 5 (the budget's only)", n)
	}
}

// TestOneDeviceCannotSpendItsProvidersShare is the bystanders' statement:
// while one device attacks from two instances with a new identity each
// time, its provider's other users outside its network still mint
// Provider − Device times a window, those of its network Network − Device,
// and the device itself Device.
func TestOneDeviceCannotSpendItsProvidersShare(t *testing.T) {
	s := newSharesSetup(t, 2)
	s.pressure(t)
	shares := s.fleets[0].shares
	const windows = 8
	for w := range windows {
		incs := s.fake.Count(momentotest.MethodIncrement)
		attacker := 0
		for i := range 40 {
			if s.admit(t, i, chainOf("198.51.7.7", fmt.Sprintf("free-%d-%d", w, i))).OK {
				attacker++
			}
		}
		attackerCalls := s.fake.Count(momentotest.MethodIncrement) - incs
		sameNetwork, others := 0, 0
		for i := range 4 {
			if s.admit(t, i, chainOf(fmt.Sprintf("198.51.7.%d", 100+i+10*w), "")).OK {
				sameNetwork++
			}
		}
		for i := range 6 {
			if s.admit(t, i, chainOf(fmt.Sprintf("198.51.%d.%d", 20+i, 1+w), "")).OK {
				others++
			}
		}
		if attacker != int(shares.Device) {
			t.Errorf("window %d: the attacking device minted %d times, want its share, %d", w, attacker, shares.Device)
		}
		if want := int(shares.Network - shares.Device); sameNetwork != want {
			t.Errorf("window %d: its network's other users minted %d times, want network − device = %d", w, sameNetwork, want)
		}
		if want := int(shares.Provider - shares.Network); others != want {
			// The network's users took Network − Device of the provider's
			// Provider − Device.
			t.Errorf("window %d: the provider's users in other networks minted %d times, want %d", w, others, want)
		}
		// Once each instance saw the device spent, its attempts cost no call:
		// at most the stages of one admitted and one refused attempt per
		// instance, the permit's Increments, and the first window's
		// attempt to learn of the provider.
		if attackerCalls > 2*(6+2) {
			t.Errorf("window %d: 40 attempts from one spent device cost %d Increments", w, attackerCalls)
		}
		s.advance(s.fleets[0].Window())
	}
}

// TestBystandersOfTheProviderMintWithoutTheAttackersNetwork checks the
// bystanders' statement where they share no network with the attacker:
// Provider − Device a window.
func TestBystandersOfTheProviderMintWithoutTheAttackersNetwork(t *testing.T) {
	s := newSharesSetup(t, 2)
	s.pressure(t)
	shares := s.fleets[0].shares
	for w := range 6 {
		for i := range 30 {
			s.admit(t, i, chainOf("198.51.7.7", fmt.Sprintf("free-%d-%d", w, i)))
		}
		served := 0
		for i := range 6 {
			if s.admit(t, i, chainOf(fmt.Sprintf("198.51.%d.%d", 20+i, 1+w), "")).OK {
				served++
			}
		}
		if want := int(shares.Provider - shares.Device); served != want {
			t.Errorf("window %d: the provider's users in other networks minted %d times, want provider − device = %d", w, served, want)
		}
		s.advance(s.fleets[0].Window())
	}
}

// TestContendingProvidersLeaveTheRestOfAWindow: sixteen providers flood,
// each from a new address every time, through four instances. Once each
// has been refused, they take at most the contended pool of a window
// between them, and a new visitor finds the rest, even from a provider
// block that sends one every window.
func TestContendingProvidersLeaveTheRestOfAWindow(t *testing.T) {
	s := newSharesSetup(t, 4)
	s.pressure(t)
	shares := s.fleets[0].shares
	const windows = 12
	visitors := 0
	for w := range windows {
		flood := 0
		for i := range 200 {
			p := i % 16 // each provider through every instance in turn
			if s.admit(t, i/16, chainOf(fmt.Sprintf("100.%d.%d.%d", 64+p, i/16, 1+w), "")).OK {
				flood++
			}
		}
		visitor := s.admit(t, w, chainOf(fmt.Sprintf("192.0.%d.1", w), "")).OK
		if visitor {
			visitors++
		}
		// A provider contends once refused after passing its share in the
		// window: the instances see that by the third window.
		if w >= 3 {
			if flood > int(shares.Contended) {
				t.Errorf("window %d: sixteen flooding providers minted %d times, want at most the contended pool, %d", w, flood, shares.Contended)
			}
			if !visitor {
				t.Errorf("window %d: a new visitor from elsewhere was refused", w)
			}
		}
		s.advance(s.fleets[0].Window())
	}
	t.Logf("%d of %d new visitors minted during the flood", visitors, windows)
}

// TestNewcomersReserve: ten providers each ask for one mint a window on
// one instance, within their shares. In the first window each is new and
// they take all C. From the second on they repeat: they take the C −
// Newcomers everyone may, the rest of them are refused with no Momento
// call, and the reserve serves as many new visitors, each from a /16 of
// its own; one more is refused.
func TestNewcomersReserve(t *testing.T) {
	s := newSharesSetup(t, 1)
	f := s.fleets[0]
	shares := f.shares
	if shares.Newcomers != 3 {
		t.Fatalf("newcomers' reserve %d, want 3 of C = 10", shares.Newcomers)
	}
	repeaters := func(w int) (served, calls int) {
		for p := range 10 {
			before := s.fake.Count(momentotest.MethodIncrement) + s.fake.Count(momentotest.MethodGet)
			a := s.admit(t, 0, chainOf(fmt.Sprintf("100.%d.%d.1", 64+p, w), ""))
			if a.OK {
				served++
			} else if a.Share != "" || a.RetryAfter <= 0 {
				t.Errorf("window %d: provider %d refused with %+v, want for the window's budget, with a retry", w, p, a)
			} else {
				calls += s.fake.Count(momentotest.MethodIncrement) + s.fake.Count(momentotest.MethodGet) - before
			}
		}
		return served, calls
	}
	if served, _ := repeaters(0); served != int(f.Capacity()) {
		t.Errorf("first window: ten providers new to the instance minted %d times, want the window's %d", served, f.Capacity())
	}
	for w := 1; w <= 4; w++ {
		s.advance(f.Window())
		served, calls := repeaters(w)
		if want := int(f.Capacity() - shares.Newcomers); served != want {
			t.Errorf("window %d: ten providers that asked before minted %d times, want C − newcomers = %d", w, served, want)
		}
		if calls != 0 {
			t.Errorf("window %d: refusing repeaters for the reserve cost %d Momento calls, want 0", w, calls)
		}
		visitors := 0
		for i := range shares.Newcomers + 1 {
			if s.admit(t, 0, chainOf(fmt.Sprintf("%d.88.1.9", 10*w+int(i)), "")).OK {
				visitors++
			}
		}
		if visitors != int(shares.Newcomers) {
			t.Errorf("window %d: %d of %d new visitors minted, want the reserve's %d", w, visitors, shares.Newcomers+1, shares.Newcomers)
		}
	}
}

// TestNewcomersReserveIsNotHeldByAFleet: the flood's instances cannot
// hold the reserve. Sixteen providers flood through four instances, each
// from a new address every time, with instances that reserve permits in
// batches (C = 100); new visitors, each from a /16 of its own, arrive at
// a fifth instance once the flood spent what everyone may take, and the
// reserve serves them.
func TestNewcomersReserveIsNotHeldByAFleet(t *testing.T) {
	s := newFleetSetup(t)
	var fleets []*Fleet
	for range 5 {
		fleets = append(fleets, s.newFleet(t, 40, 200)) // C = 100 a 2.5 s window
	}
	client := newCacheClient(t, s.fake)
	w := int64(fleets[0].Window())
	s.advance(time.Duration(w - s.clock.Now().UnixNano()%w))
	newcomers := fleets[0].shares.Newcomers
	for window := range 3 {
		flood := 0
		for round := range 4 {
			for i := range 200 {
				p := (i + round) % 16
				a, err := fleets[i%4].Admit(context.Background(), client, chainOf(fmt.Sprintf("100.%d.%d.%d", 64+p, i/16, 1+round+4*window), ""))
				if err != nil {
					t.Fatalf("Admit() = %v", err)
				}
				a.Wait()
				if a.OK {
					flood++
				}
			}
		}
		visitors := 0
		for i := range newcomers {
			a, err := fleets[4].Admit(context.Background(), client, chainOf(fmt.Sprintf("%d.88.1.9", 100*window+int(i)), ""))
			if err != nil {
				t.Fatalf("Admit() = %v", err)
			}
			if a.OK {
				visitors++
			}
		}
		if flood+visitors > 100 {
			t.Errorf("window %d: %d mints, want at most C = 100", window, flood+visitors)
		}
		if window > 0 && visitors != int(newcomers) {
			t.Errorf("window %d: %d of %d new visitors minted after the flood, want all", window, visitors, newcomers)
		}
		t.Logf("window %d: the flood minted %d, %d of %d visitors", window, flood, visitors, newcomers)
		s.advance(fleets[0].Window())
	}
}

// TestSpentShareIsRememberedForTheWindow: once an instance saw a device's
// share spent, the device's attempts cost no Momento call until the next
// window, where it mints again.
func TestSpentShareIsRememberedForTheWindow(t *testing.T) {
	s := newSharesSetup(t, 1)
	s.pressure(t)
	device := chainOf("203.0.113.7", "")
	if a := s.admit(t, 0, device); !a.OK {
		t.Fatalf("first mint of a device under pressure refused: %+v", a)
	}
	if a := s.admit(t, 0, device); a.OK || a.Share != ShareDevice || a.RetryAfter <= 0 {
		t.Fatalf("second mint of the device in the window = %+v, want refused for its device share with a retry", a)
	}
	before := s.fake.Count(momentotest.MethodIncrement)
	for range 10 {
		if a := s.admit(t, 0, device); a.OK || a.Share != ShareDevice {
			t.Fatalf("a spent device's attempt = %+v, want refused", a)
		}
	}
	if n := s.fake.Count(momentotest.MethodIncrement) - before; n != 0 {
		t.Errorf("a spent device's 10 attempts cost %d Increments, want 0", n)
	}
	s.advance(s.fleets[0].Window())
	if a := s.admit(t, 0, device); !a.OK {
		t.Errorf("the device in the next window: %+v, want admitted", a)
	}
}

// TestPressureEnds: PressureHold windows after the last sign of pressure,
// shares are no longer charged.
func TestPressureEnds(t *testing.T) {
	s := newSharesSetup(t, 1)
	s.pressure(t) // a sign in the window before this one
	f := s.fleets[0]
	s.advance((PressureHold - 1) * f.Window())
	if !f.Pressured() {
		t.Errorf("Pressured() = false %d windows after the sign, want true through the hold", PressureHold)
	}
	s.advance(f.Window())
	if f.Pressured() {
		t.Errorf("Pressured() = true after the hold")
	}
	device := chainOf("203.0.113.7", "")
	for range 3 {
		if a := s.admit(t, 0, device); !a.OK {
			t.Errorf("a device after the pressure ended: %+v, want admitted", a)
		}
	}
}

// chainOf is ChainOf for a client named by its key (an IPv4 address), as
// internal/clientip resolves it.
func chainOf(key, identity string) Chain {
	return ChainOf(clientip.Resolve(nil, key, 1).Client, identity)
}
