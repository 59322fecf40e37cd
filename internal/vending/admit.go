package vending

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"

	"example.com/tokenvendingmachine/internal/limits"
)

// The limits a request passes before it costs Momento a lookup or a mint,
// from the most specific to the most shared (see package limits): the
// caller's own buckets (its networks, or its identity), this instance's
// bucket, the pause after Momento's ResourceExhausted, and the fleet's
// budget. A later refusal gives back what the earlier ones took, so a
// refused attempt does not count twice. A cache hit passes none of them.

// limiter is the Vendor's limits; built by newLimiter from Options.
type limiter struct {
	lookups    *rate.Limiter // nil: no limit
	mints      *rate.Limiter
	keyLookups *limits.Keyed[string] // nil: no per-caller limit
	keyMints   *limits.Keyed[string]
	pause      limits.Backoff
	fleet      *limits.Fleet // nil: no fleet budget
}

func newLimiter(o Options) (*limiter, error) {
	l := &limiter{
		mints: rate.NewLimiter(rate.Limit(o.MintRate), o.MintBurst),
		pause: limits.Backoff{Now: o.Now},
	}
	if o.LookupRate > 0 {
		l.lookups = rate.NewLimiter(rate.Limit(o.LookupRate), max(o.LookupBurst, 1))
	}
	var err error
	if o.KeyMintRate > 0 {
		l.keyMints, err = limits.NewKeyed[string](limits.KeyedOptions{Rate: o.KeyMintRate, Burst: o.KeyMintBurst, MaxKeys: o.MaxLimitKeys, Now: o.Now})
		if err != nil {
			return nil, err
		}
	}
	if o.KeyLookupRate > 0 {
		l.keyLookups, err = limits.NewKeyed[string](limits.KeyedOptions{Rate: o.KeyLookupRate, Burst: o.KeyLookupBurst, MaxKeys: o.MaxLimitKeys, Now: o.Now})
		if err != nil {
			return nil, err
		}
	}
	if o.FleetMintRate > 0 {
		l.fleet, err = limits.NewFleet(limits.FleetOptions{
			CacheName: o.CacheName, Rate: o.FleetMintRate, Burst: o.FleetMintBurst,
			CallTimeout: o.CallTimeout, Now: o.Now, Logger: o.Logger,
		})
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

// takeKeys takes one token from each of keys' buckets in k, or none.
func takeKeys(k *limits.Keyed[string], keys []string) (wait time.Duration) {
	if k == nil {
		return 0
	}
	for i, key := range keys {
		if ok, d := k.Allow(key); !ok {
			for _, taken := range keys[:i] {
				k.Refund(taken)
			}
			return max(d, time.Millisecond)
		}
	}
	return 0
}

func refundKeys(k *limits.Keyed[string], keys []string) {
	if k == nil {
		return
	}
	for _, key := range keys {
		k.Refund(key)
	}
}

// limitKeys returns the keys of c's own buckets: its identity's, if it
// has one, and its client's networks'. Identities too draw on their
// network, since some issuers hand out new ones for free (anonymous
// sign-in): a network cannot mint past its share by signing in anew.
func limitKeys(c Caller) []string {
	var keys []string
	if c.TokenID != "" {
		keys = append(keys, "id:"+c.TokenID)
	}
	fine, ok := limits.NetworkOfKey(c.Client)
	if !ok {
		return append(keys, "client:"+c.Client)
	}
	bits := 16
	if fine.Addr().Is6() {
		bits = 32
	}
	coarse, _ := fine.Addr().Prefix(bits)
	return append(keys, "net:"+fine.String(), "net:"+coarse.String())
}

// admitLookup takes what a Momento lookup for c costs from the limits, or
// returns a Limited error.
func (v *Vendor) admitLookup(keys []string, now time.Time) error {
	l := v.lim
	if wait := takeKeys(l.keyLookups, keys); wait > 0 {
		return limited(wait)
	}
	if wait := reserve(l.lookups, now); wait > 0 {
		refundKeys(l.keyLookups, keys)
		return limited(wait)
	}
	return nil
}

// admitMint takes what a mint for c costs from the limits, the fleet's
// budget last (it may cost a Momento call), or returns a Limited error. The
// caller must Wait for the Admission before it responds.
func (v *Vendor) admitMint(ctx context.Context, keys []string, clients *Clients, now time.Time) (limits.Admission, error) {
	l := v.lim
	if wait := takeKeys(l.keyMints, keys); wait > 0 {
		return limits.Admission{}, limited(wait)
	}
	r := l.mints.ReserveN(now, 1) // always OK: the bucket holds at least one
	giveBack := func() {
		r.CancelAt(now)
		refundKeys(l.keyMints, keys)
	}
	if d := r.DelayFrom(now); d > 0 {
		giveBack()
		return limits.Admission{}, limited(d)
	}
	if ok, wait := l.pause.Allow(); !ok {
		giveBack()
		return limits.Admission{}, limited(wait)
	}
	if l.fleet == nil {
		return limits.Admission{}, nil
	}
	a, err := l.fleet.Admit(ctx, clients.Cache, limits.Chain{})
	switch {
	case errors.Is(err, limits.ErrFleetUnavailable):
		// The instance's own limit, already taken, stands in for the
		// fleet's until Momento answers again; the Fleet logs the outage.
		return limits.Admission{}, nil
	case err != nil:
		giveBack()
		return limits.Admission{}, err // ctx ended
	case !a.OK:
		giveBack()
		return limits.Admission{}, limited(a.RetryAfter)
	}
	return a, nil
}
