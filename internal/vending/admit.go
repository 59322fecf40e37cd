package vending

import (
	"context"
	"errors"
	"math"
	"time"

	"golang.org/x/time/rate"

	"example.com/tokenvendingmachine/internal/limits"
)

// The limits a request passes before it costs Momento a lookup or a mint
// (see package limits). A cache hit passes none of them.
//
// A lookup passes the caller's own buckets, on this instance, from the
// finest to the coarsest: its device (the client key), its identity, its
// network and its provider block (Caller.Client), then the instance's
// bucket. A bucket is charged only if the finer ones passed, and a refusal
// gives back what the finer ones took, so one device spends at most its
// own bucket of its network's and its provider's. The last tenth of the
// instance's bucket (lookupReserve) is kept for callers whose provider
// bucket is at least half full: a provider block that asks within its
// rate keeps it so, while a flood's are empty, so a flood from more
// providers than the instance's bucket holds bursts for cannot take new
// visitors' lookups. It only refuses: the instance's lookups are bounded
// as before.
//
// A mint passes the pause after Momento's ResourceExhausted, then the
// fleet's budget, which charges the caller's shares fleet-wide while the
// budget is under pressure. Without a fleet budget, or while its counter
// cannot be reached, the instance's own mint bucket stands in for it.

// lookupLevels are the fractions of KeyLookupRate and KeyLookupBurst that
// a caller's device, identity, network and provider buckets hold: they
// nest, so the coarser keep room for those the finer refuse.
var lookupLevels = [...]float64{2.0 / 5, 2.0 / 5, 3.0 / 5, 1}

// lookupReserve is the fraction of LookupBurst kept for callers whose
// provider bucket is at least half full.
const lookupReserve = 0.1

// limiter is the Vendor's limits; built by newLimiter from Options.
type limiter struct {
	lookups *rate.Limiter // nil: no limit
	// keyLookups are the caller's lookup buckets, by lookupLevels; nil: none.
	keyLookups []*limits.Keyed[string]
	// lookupsKept is how many of the instance's lookups only callers
	// whose provider bucket is at least half full may take.
	lookupsKept float64
	// mints is the instance's own mint bucket: the limit without a fleet
	// budget, and while its counter cannot be reached.
	mints *rate.Limiter
	pause limits.Backoff
	fleet *limits.Fleet // nil: no fleet budget
}

func newLimiter(o Options) (*limiter, error) {
	l := &limiter{
		mints: rate.NewLimiter(rate.Limit(o.MintRate), o.MintBurst),
		pause: limits.Backoff{Now: o.Now},
	}
	if o.LookupRate > 0 {
		l.lookups = rate.NewLimiter(rate.Limit(o.LookupRate), max(o.LookupBurst, 1))
		l.lookupsKept = math.Floor(lookupReserve * float64(l.lookups.Burst()))
	}
	if o.KeyLookupRate > 0 {
		for _, share := range lookupLevels {
			k, err := limits.NewKeyed[string](limits.KeyedOptions{
				Rate: o.KeyLookupRate * share, Burst: max(1, int(float64(o.KeyLookupBurst)*share)),
				MaxKeys: o.MaxLimitKeys, Now: o.Now,
			})
			if err != nil {
				return nil, err
			}
			l.keyLookups = append(l.keyLookups, k)
		}
	}
	if o.FleetMintRate > 0 {
		var err error
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

// lookupKeys returns a caller's keys in the lookup buckets, by
// lookupLevels; "" where it has none.
func lookupKeys(ch limits.Chain) [len(lookupLevels)]string {
	return [...]string{ch.Device, ch.Identity, ch.Network, ch.Provider}
}

// admitLookup takes what a Momento lookup for the caller of chain ch costs
// from the limits, or returns a Limited error.
func (v *Vendor) admitLookup(ch limits.Chain, now time.Time) error {
	l := v.lim
	keys := lookupKeys(ch)
	// The reserve is kept from callers whose provider bucket is below
	// half; without provider buckets, or a provider, from nobody.
	kept := 0.0
	if p := len(lookupLevels) - 1; l.lookupsKept > 0 && l.keyLookups != nil && keys[p] != "" && l.keyLookups[p].Tokens(keys[p]) < l.keyLookups[p].Burst()/2 {
		kept = l.lookupsKept
	}
	taken := 0 // levels taken from, in order
	giveBack := func() {
		for i := range taken {
			if keys[i] != "" {
				l.keyLookups[i].Refund(keys[i])
			}
		}
	}
	for i, k := range l.keyLookups {
		if keys[i] != "" {
			if ok, wait := k.Allow(keys[i]); !ok {
				giveBack()
				return limited(max(wait, time.Millisecond))
			}
		}
		taken = i + 1
	}
	if kept > 0 {
		if short := kept + 1 - l.lookups.TokensAt(now); short > 0 {
			giveBack()
			return limited(max(time.Duration(short/float64(l.lookups.Limit())*float64(time.Second)), time.Millisecond))
		}
	}
	if wait := reserve(l.lookups, now); wait > 0 {
		giveBack()
		return limited(wait)
	}
	return nil
}

// admitMint decides a mint for the caller of chain ch, or returns a Limited
// error. The caller must Wait for the Admission before it responds.
func (v *Vendor) admitMint(ctx context.Context, ch limits.Chain, clients *Clients, now time.Time) (limits.Admission, error) {
	l := v.lim
	if ok, wait := l.pause.Allow(); !ok {
		return limits.Admission{}, limited(wait)
	}
	if l.fleet != nil {
		a, err := l.fleet.Admit(ctx, clients.Cache, ch)
		switch {
		case errors.Is(err, limits.ErrFleetUnavailable):
			// The instance's own bucket stands in for the fleet's until
			// Momento answers again; the Fleet logs the outage.
		case err != nil:
			return limits.Admission{}, err // ctx ended
		case !a.OK:
			return limits.Admission{}, limited(a.RetryAfter)
		default:
			return a, nil
		}
	}
	if wait := reserve(l.mints, now); wait > 0 {
		return limits.Admission{}, limited(wait)
	}
	return limits.Admission{}, nil
}
