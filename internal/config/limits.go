package config

import "fmt"

// The limits come from two variables, FLEET_MINT_RATE (R) and
// FLEET_MINT_BURST (B): the deployment's mint budget, kept in Momento.
// Every per-instance limit derives from them by these constants, and every
// share of the budget by package limits' DefaultShares (docs/limits.md has
// the arithmetic).
const (
	DefaultFleetMintRate  = 4
	DefaultFleetMintBurst = 20

	// FallbackInstances, F, is how many instances the fallback is sized
	// for: while the fleet's counter cannot be reached, each instance
	// mints at most R/F a second, after a burst of B/F (at least 1), so N
	// instances mint at most N/F × R together.
	FallbackInstances = 4
	// LookupRatePerMint and LookupBurstPerMint size each instance's
	// bucket of Momento lookups (requests it cannot answer from memory):
	// 25 × R a second, 50 × B at once (100 and 1,000 by default).
	LookupRatePerMint  = 25
	LookupBurstPerMint = 50
	// NetworkLookupRatePerMint and NetworkLookupBurstPerMint size each
	// instance's lookup bucket per provider block (/16, /32): 1.25 × R a
	// second, 5 × B at once (5 and 100 by default); a network's (/24,
	// /48) holds 3/5 of that, a device's and an identity's 2/5.
	NetworkLookupRatePerMint  = 1.25
	NetworkLookupBurstPerMint = 5
)

// Deprecated are the variables FromEnv still reads, for this release only:
// the old limit variables, and tuning knobs that the function now derives
// or fixes. Config.Deprecated says which are set and what replaces each.
var Deprecated = []string{
	"MINT_RATE", "MINT_BURST", "LOOKUP_RATE", "LOOKUP_BURST",
	"NETWORK_MINT_RATE", "NETWORK_MINT_BURST", "NETWORK_LOOKUP_RATE", "NETWORK_LOOKUP_BURST",
	"CACHE_TTL", "UPSTREAM_TIMEOUT", "L1_MAX_ENTRIES", "L1_MAX_BYTES",
}

// deprecatedTuning says what replaces each deprecated tuning variable; it
// is still read where FromLookupEnv reads it, for this release.
var deprecatedTuning = []struct{ name, instead string }{
	{"CACHE_TTL", "derived from TOKEN_TTL: TOKEN_TTL minus the refresh margin, at most 55m; this variable still sets it, for this release"},
	{"UPSTREAM_TIMEOUT", "fixed at 2s; this variable still sets it, for this release"},
	{"L1_MAX_ENTRIES", "fixed at 10000 tokens per instance; this variable still sets it, for this release"},
	{"L1_MAX_BYTES", "fixed at 8 MiB per instance; this variable still sets it, for this release"},
}

// deprecatedSet records the deprecated tuning variables that are set.
func (p *parser) deprecatedSet(c *Config) {
	for _, d := range deprecatedTuning {
		if p.str(d.name) != "" {
			c.Deprecated = append(c.Deprecated, Deprecation{Variable: d.name, Instead: d.instead})
		}
	}
}

// A Deprecation is a deprecated variable that is set.
type Deprecation struct {
	// Variable is its name.
	Variable string
	// Instead says what takes its place, and what it still does.
	Instead string
}

// limits reads the limit variables into c: the fleet's budget, and the
// per-instance limits derived from it or, for this release, set by the
// deprecated variables.
func (p *parser) limits(c *Config) {
	c.FleetMintRate = p.float("FLEET_MINT_RATE", DefaultFleetMintRate)
	c.FleetMintBurst = p.integer("FLEET_MINT_BURST", DefaultFleetMintBurst, 1, 1_000_000)
	if p.ok("FLEET_MINT_RATE") && !(c.FleetMintRate > 0 && c.FleetMintRate <= 1_000_000) { // NaN fails too
		p.fail("FLEET_MINT_RATE must be more than 0 and at most 1000000 per second, got %v", c.FleetMintRate)
	}
	r, b := c.FleetMintRate, c.FleetMintBurst
	c.MintRate, c.MintBurst = r/FallbackInstances, max(1, b/FallbackInstances)
	c.LookupRate, c.LookupBurst = LookupRatePerMint*r, LookupBurstPerMint*b
	c.NetworkLookupRate, c.NetworkLookupBurst = NetworkLookupRatePerMint*r, NetworkLookupBurstPerMint*b

	fallback := fmt.Sprintf("FLEET_MINT_RATE and FLEET_MINT_BURST: while the fleet's counter cannot be reached, "+
		"each instance mints at most 1/%d of them; this variable can only lower that", FallbackInstances)
	derived := func(what string) string {
		return "derived from FLEET_MINT_RATE and FLEET_MINT_BURST (" + what + "); this variable still sets it, for this release"
	}
	ignored := "a network's and an identity's mints are bounded by their fleet-wide shares of FLEET_MINT_BURST " +
		"while the budget is under pressure (docs/limits.md); this variable is ignored"
	for _, d := range []struct {
		name    string
		instead string
		set     func(v string)
	}{
		{"MINT_RATE", fallback, func(string) { c.MintRate = min(c.MintRate, p.positive("MINT_RATE")) }},
		{"MINT_BURST", fallback, func(string) { c.MintBurst = min(c.MintBurst, p.integer("MINT_BURST", c.MintBurst, 1, 1_000_000)) }},
		{"LOOKUP_RATE", derived(fmt.Sprintf("%d × FLEET_MINT_RATE", LookupRatePerMint)), func(string) { c.LookupRate = p.positive("LOOKUP_RATE") }},
		{"LOOKUP_BURST", derived(fmt.Sprintf("%d × FLEET_MINT_BURST", LookupBurstPerMint)), func(string) {
			c.LookupBurst = p.integer("LOOKUP_BURST", c.LookupBurst, 1, 1_000_000)
		}},
		{"NETWORK_MINT_RATE", ignored, func(string) { p.positive("NETWORK_MINT_RATE") }},
		{"NETWORK_MINT_BURST", ignored, func(string) { p.integer("NETWORK_MINT_BURST", 1, 1, 1_000_000) }},
		{"NETWORK_LOOKUP_RATE", derived(fmt.Sprintf("%v × FLEET_MINT_RATE", NetworkLookupRatePerMint)), func(string) {
			c.NetworkLookupRate = p.positive("NETWORK_LOOKUP_RATE")
		}},
		{"NETWORK_LOOKUP_BURST", derived(fmt.Sprintf("%d × FLEET_MINT_BURST", NetworkLookupBurstPerMint)), func(string) {
			c.NetworkLookupBurst = p.integer("NETWORK_LOOKUP_BURST", c.NetworkLookupBurst, 1, 1_000_000)
		}},
	} {
		v := p.str(d.name)
		if v == "" {
			continue
		}
		d.set(v)
		c.Deprecated = append(c.Deprecated, Deprecation{Variable: d.name, Instead: d.instead})
	}
}

// positive parses name as a rate: more than 0, at most 1,000,000 a second.
// It returns 1 if the variable does not parse, with the error recorded.
func (p *parser) positive(name string) float64 {
	v := p.float(name, 1)
	if p.ok(name) && !(v > 0 && v <= 1_000_000) { // NaN fails too
		p.invalid(name, "must be more than 0 and at most 1000000 per second, got %v", v)
		return 1
	}
	return v
}
