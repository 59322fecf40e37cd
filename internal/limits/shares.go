package limits

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/momentohq/client-sdk-go/momento"
	"github.com/momentohq/client-sdk-go/responses"
)

// A Chain names what one caller's mints are charged to while the fleet
// budget is under pressure: its device, its identity if it has one, and the
// networks around its device. Build one with [ChainOf].
type Chain struct {
	// Device is the client key: an IPv4 address, or an IPv6 /64.
	Device string
	// Identity is the caller's identity (a ticket's sub, a signed-in
	// user's id); "" for an anonymous caller.
	Identity string
	// Network is the device's /24 (IPv6: /48); "" if unknown.
	Network string
	// Provider is the device's /16 (IPv6: /32), often one provider's
	// block: carrier NAT, an ISP; "" if unknown.
	Provider string
}

// ChainOf returns the chain of a caller whose client (internal/clientip's
// Result.Client: an IPv4 address as its /32, an IPv6 /64) is client, with
// identity ("" if anonymous). The device is named as clientip names it
// ("203.0.113.7", "2001:db8:1:2::/64"). A client that is not a valid /32
// or an IPv6 prefix of at least 48 bits gets only its name as the device.
func ChainOf(client netip.Prefix, identity string) Chain {
	c := Chain{Identity: identity}
	if !client.IsValid() {
		return c
	}
	addr := client.Addr()
	if addr.Is4() && client.Bits() == addr.BitLen() {
		c.Device = addr.String()
	} else {
		c.Device = client.String()
	}
	network, bits := Network(addr), IPv4ProviderBits
	if addr.Is6() {
		bits = IPv6ProviderBits
	}
	if client.Bits() < network.Bits() || addr.Is4In6() {
		return c
	}
	provider, _ := addr.Prefix(bits) // cannot fail: addr is valid and zoneless
	c.Network, c.Provider = network.String(), provider.String()
	return c
}

// Shares are how much of the fleet budget one caller's chain may take per
// window while the budget is under pressure. The instance sees pressure in
// the replies to its own Increments: a window's count past Pressure, or
// full, or a share refused; it charges shares from then until PressureHold
// windows after the last such sign. Without pressure no share is charged,
// so nobody is refused for a share they do not contend for.
//
// # Charging
//
// Under pressure a mint is charged, in Momento, to one counter per window
// for each key of its chain, and its permit is taken only if every count
// is within its share. The keys are charged from the finest to the
// coarsest, each stage only if the ones before passed:
//
//  1. the device and the identity;
//  2. the network (/24, /48);
//  3. the provider (/16, /32);
//  4. the contended pool, if the provider is contending (below).
//
// A mint this instance admitted in the window before it saw pressure is
// added to its keys' counters with their next charge, so the shares count
// the whole window, not only its pressured part.
//
// So a counter counts only attempts that passed every finer share. That is
// what makes the shares nest: in any window, one device adds at most Device
// to its network's and its provider's counters, and one network at most
// Network to its provider's, however many attempts they make and however
// many identities they bring. A refused key is remembered for the rest of
// the window, so its later attempts cost no Momento call.
//
// # Contending providers and the contended pool
//
// A provider is contending if, more than Tolerance times in the last
// ContendPeriod, one of its networks was refused for its network share, or
// it was refused for its provider share, in the contended pool or for the
// window's budget when another attempt of it had passed its provider share
// in that window before: it wants more than a window holds for it. Each
// provider's refusals count once per window and instance. A provider's
// first attempt in a window, a new visitor's, never counts, so a provider
// that asks once a window is not kept contending by its own refusals; nor
// do refusals for a device's or an identity's share, so one device's attack
// does not make its provider contend. One counter per provider, renewed
// by each such refusal, holds that; it is read beside stage 1. Contending
// providers' mints also share one counter per window, capped at Contended;
// other providers' do not. So however many providers flood, once each has
// been refused a few times they take at most Contended of a window between
// them, and the rest, C − Contended, is left to everyone else: new
// visitors, and busy providers that want no more than a window holds.
//
// # The newcomers' reserve
//
// Contending takes refusals, and a flood's first window has none: a flood
// from more providers than that window holds mints for spends it before
// any of them has been refused, and the next one too, so new visitors are
// refused with it. So Newcomers of every window's C permits are kept for
// newcomers, in a counter of their own (see [Fleet]): the other C −
// Newcomers are everyone's, and only once those are spent may a newcomer
// take one of its own, one Increment for one permit. A newcomer is a
// caller whose provider block (or, without one, its device) has asked this
// instance for no other mint in this window or the one before, and, once
// charged, whose provider is not contending and counted no other attempt
// in the window, fleet-wide. Visitors ask once; a flood repeats, so each
// flooding provider is a newcomer at most once per instance, until it
// stops for a whole window. A caller that is no newcomer is refused for
// the window's budget once only the reserve is left, with no Momento call.
//
// The reserve only refuses: the window still admits at most C, so the
// bound stands. C − Newcomers is past Pressure (NewFleet sees to that), so
// nobody is refused for it without pressure, and a mint without pressure
// costs no more calls than before. What it costs is that, under pressure,
// callers that repeat (floods, and busy provider blocks) get at most
// C − Newcomers of a window; what newcomers leave of the reserve is
// stranded. An instance remembers at most maxOver keys a window; a caller
// it could not remember counts as a newcomer.
//
// # What a bystander keeps
//
// While one device attacks, with as many identities as it likes, the other
// users of its provider block outside its network still pass the provider
// share Provider − Device times per window, fleet-wide, and those of its
// network Network − Device times: the attacker's charges to those counters
// stop at Device. They get those mints as long as the window has permits
// left.
//
// # What shares cannot do
//
// An attacker that spreads over k providers, each staying within its
// share, looks like k busy providers: it can take k × Provider of a
// window, and callers arriving after it in a window compete for what is
// left. The budget still bounds the total.
type Shares struct {
	// Pressure is the count of a window past which the budget is under
	// pressure.
	Pressure int64
	// Device, Identity, Network and Provider are each key's share of a
	// window.
	Device, Identity, Network, Provider int64
	// Contended is the share of a window that contending providers take
	// together.
	Contended int64
	// Newcomers is the newcomers' reserve: how many of a window's permits
	// only newcomers may take, once the others are spent. NewFleet lowers
	// it below C − Pressure.
	Newcomers int64
	// Tolerance is how many refusals a provider may have had in
	// ContendPeriod without contending.
	Tolerance     int64
	ContendPeriod time.Duration
}

// DefaultShares returns the shares of a window of capacity c: device and
// identity a tenth, network a fifth, provider three tenths, the contended
// pool and the pressure threshold a half (each at least 1, 1, 2, 3, 1 and
// 0), and the newcomers' reserve three tenths, as much as one provider's
// share (none below c = 4); a provider contends for a minute after a
// refusal. With c = 10 (FLEET_MINT_BURST 20) that is 1, 1, 2, 3, 5 and 3
// of every window.
func DefaultShares(c int64) Shares {
	return Shares{
		Pressure:      c / 2,
		Device:        max(1, c/10),
		Identity:      max(1, c/10),
		Network:       max(2, c/5),
		Provider:      max(3, 3*c/10),
		Contended:     max(1, c/2),
		Newcomers:     3 * c / 10,
		Tolerance:     0,
		ContendPeriod: time.Minute,
	}
}

// The share names an Admission reports.
const (
	ShareDevice    = "device"
	ShareIdentity  = "identity"
	ShareNetwork   = "network"
	ShareProvider  = "provider"
	ShareContended = "contended"
)

// shareKey returns the counter of chain key key at level in window n.
func (f *Fleet) shareKey(n int64, level, key string) string {
	return f.prefix + strconv.FormatInt(n, 10) + "-" + level + ":" + key
}

// identityKey shortens an identity, which may be long, to a hash.
func identityKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// knownSpentLocked returns the share of c this instance already saw spent
// in window n, or "". f.mu must be held.
func (f *Fleet) knownSpentLocked(n int64, c Chain) string {
	if f.over == nil || f.win != n {
		return ""
	}
	for _, s := range []struct{ level, key, name string }{
		{"d", c.Device, ShareDevice},
		{"i", identityOrEmpty(c.Identity), ShareIdentity},
		{"n", c.Network, ShareNetwork},
		{"p", c.Provider, ShareProvider},
	} {
		if s.key != "" && f.over[f.shareKey(n, s.level, s.key)] {
			return s.name
		}
	}
	return ""
}

func identityOrEmpty(id string) string {
	if id == "" {
		return ""
	}
	return identityKey(id)
}

// markSpent remembers that counter key of window n is past its share.
func (f *Fleet) markSpent(n int64, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.win != n {
		return
	}
	if f.over == nil {
		f.over = make(map[string]bool)
	}
	if len(f.over) < maxOver {
		f.over[key] = true
	}
}

// counter is one share counter of a window.
type counter struct {
	key   string
	share int64
	name  string
}

// charge charges c's shares of window n, stage by stage, and returns the
// share that was spent, or "" if every one passed, the provider's count in
// n if it was charged, and whether the provider is contending.
func (f *Fleet) charge(ctx context.Context, cache momento.CacheClient, n int64, c Chain) (spent string, providerCount int64, contending bool, err error) {
	s := f.shares
	first := []counter{{key: f.shareKey(n, "d", c.Device), share: s.Device, name: ShareDevice}}
	if c.Identity != "" {
		first = append(first, counter{key: f.shareKey(n, "i", identityKey(c.Identity)), share: s.Identity, name: ShareIdentity})
	}
	var refusals int64
	var wg sync.WaitGroup
	var readErr error
	if c.Provider != "" {
		wg.Go(func() { refusals, readErr = f.read(ctx, cache, f.refusalsKey(c.Provider)) })
	}
	spent, _, err = f.chargeStage(ctx, cache, n, first)
	wg.Wait()
	if err == nil {
		err = readErr
	}
	if err != nil || spent != "" {
		return spent, 0, false, err
	}
	contending = refusals > s.Tolerance
	if c.Network != "" {
		spent, _, err := f.chargeStage(ctx, cache, n, []counter{{key: f.shareKey(n, "n", c.Network), share: s.Network, name: ShareNetwork}})
		if err != nil {
			return "", 0, false, err
		}
		if spent != "" {
			// A network that wants more than its share: its provider
			// is contending.
			return spent, 0, true, f.countRefusal(ctx, cache, n, c.Provider)
		}
	}
	if c.Provider == "" {
		return "", 0, false, nil
	}
	spent, counts, err := f.chargeStage(ctx, cache, n, []counter{{key: f.shareKey(n, "p", c.Provider), share: s.Provider, name: ShareProvider}})
	if err == nil {
		providerCount = counts[0]
	}
	if err == nil && spent == "" {
		f.mu.Lock()
		f.notePassedLocked(n, c.Provider)
		f.mu.Unlock()
	}
	if err == nil && spent == "" && contending {
		pool := counter{key: f.prefix + strconv.FormatInt(n, 10) + "-contended", share: s.Contended, name: ShareContended}
		if f.isSpent(n, pool.key) {
			spent = ShareContended
		} else {
			spent, _, err = f.chargeStage(ctx, cache, n, []counter{pool})
		}
	}
	if err != nil || spent == "" || providerCount < 2 {
		return spent, providerCount, contending, err
	}
	// The provider was refused, wanting more than one mint of the window.
	return spent, providerCount, contending, f.countRefusal(ctx, cache, n, c.Provider)
}

// countRefusal counts one refusal of provider in window n towards its
// contending, once per window and instance.
func (f *Fleet) countRefusal(ctx context.Context, cache momento.CacheClient, n int64, provider string) error {
	if provider == "" {
		return nil
	}
	f.mu.Lock()
	count := f.win == n && !f.counted[provider]
	if count && len(f.counted) < maxOver {
		if f.counted == nil {
			f.counted = make(map[string]bool)
		}
		f.counted[provider] = true
	}
	f.mu.Unlock()
	if !count {
		return nil
	}
	_, err := f.increment(ctx, cache, f.refusalsKey(provider), 1, f.shares.ContendPeriod)
	return err
}

// refusalsKey returns the counter of provider's recent refusals.
func (f *Fleet) refusalsKey(provider string) string {
	return f.prefix + "refused:" + provider
}

// read returns the count Momento holds under key, 0 if none.
func (f *Fleet) read(ctx context.Context, cache momento.CacheClient, key string) (int64, error) {
	if f.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.callTimeout)
		defer cancel()
	}
	resp, err := cache.Get(ctx, &momento.GetRequest{CacheName: f.cacheName, Key: momento.String(key)})
	if err != nil {
		return 0, err
	}
	hit, ok := resp.(*responses.GetHit)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(hit.ValueString(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counter %s holds %q", key, hit.ValueString())
	}
	return n, nil
}

// chargeStage adds one to each of cs at once, plus the mints this instance
// made for it in window n before it saw pressure, and returns the name of
// the first past its share, or "", and the counts. Every counter past its
// share is remembered for the rest of the window.
func (f *Fleet) chargeStage(ctx context.Context, cache momento.CacheClient, n int64, cs []counter) (spent string, counts []int64, err error) {
	counts = make([]int64, len(cs))
	errs := make([]error, len(cs))
	amounts := make([]int64, len(cs))
	f.mu.Lock()
	for i, c := range cs {
		amounts[i] = 1
		if f.win == n {
			amounts[i] += f.uncharged[c.key]
			delete(f.uncharged, c.key)
		}
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for i, c := range cs[1:] {
		wg.Go(func() { counts[i+1], errs[i+1] = f.increment(ctx, cache, c.key, amounts[i+1], f.ttl) })
	}
	counts[0], errs[0] = f.increment(ctx, cache, cs[0].key, amounts[0], f.ttl)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return "", nil, err
		}
	}
	f.mu.Lock()
	f.reachableLocked()
	f.mu.Unlock()
	for i, c := range cs {
		if counts[i] > c.share {
			f.markSpent(n, c.key)
			if spent == "" {
				spent = c.name
			}
		}
	}
	return spent, counts, nil
}

// noteUncharged records a mint admitted for c in window n without pressure,
// to be added to c's shares if pressure shows in the window.
func (f *Fleet) noteUncharged(n int64, c Chain) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.win != n {
		return
	}
	if f.uncharged == nil {
		f.uncharged = make(map[string]int64)
	}
	for _, k := range [...]struct{ level, key string }{
		{"d", c.Device}, {"i", identityOrEmpty(c.Identity)}, {"n", c.Network}, {"p", c.Provider},
	} {
		if k.key == "" {
			continue
		}
		key := f.shareKey(n, k.level, k.key)
		if _, ok := f.uncharged[key]; ok || len(f.uncharged) < maxOver {
			f.uncharged[key]++
		}
	}
	f.notePassedLocked(n, c.Provider)
}

// isSpent reports whether counter key of window n was seen past its share.
func (f *Fleet) isSpent(n int64, key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.win == n && f.over[key]
}

// asker is what take knows of a caller to tell whether it is a newcomer
// (see [Shares]).
type asker struct {
	// key is the caller's key among the instance's attempts: its
	// provider block, or its device, or its identity; "" for the zero
	// chain, which counts as a newcomer.
	key string
	// providerCount is the provider's count in the window once charged,
	// and contending whether the provider was contending then.
	providerCount int64
	contending    bool
}

// newcomerKey returns c's key among the instance's attempts.
func newcomerKey(c Chain) string {
	switch {
	case c.Provider != "":
		return "p:" + c.Provider
	case c.Device != "":
		return "d:" + c.Device
	case c.Identity != "":
		return "i:" + identityKey(c.Identity)
	}
	return ""
}

// noteAttemptLocked counts an attempt of key in the current window. f.mu
// must be held.
func (f *Fleet) noteAttemptLocked(key string) {
	if key == "" {
		return
	}
	if f.attempts == nil {
		f.attempts = make(map[string]int64)
	}
	if _, ok := f.attempts[key]; ok || len(f.attempts) < maxOver {
		f.attempts[key]++
	}
}

// newcomerLocked reports whether w is a newcomer, who may take the
// newcomers' reserve. f.mu must be held.
func (f *Fleet) newcomerLocked(w asker) bool {
	if w.key == "" {
		return true
	}
	if w.providerCount > 1 || w.contending {
		return false
	}
	return f.attempts[w.key]+f.attemptsPrev[w.key] <= 1
}
