// Package limits holds the rate limits that stand between callers and
// Momento's token minting: per-key buckets with bounded memory ([Keyed]),
// the networks a client address belongs to ([Network], [ChainOf]), a
// fleet-wide mint budget kept in Momento itself, with each caller's shares
// of it ([Fleet], [Shares]), and a pause after Momento says its quota is
// exhausted ([Backoff]).
//
// A lookup (a request the instance cannot answer from memory) passes
// per-instance buckets, Keyed by the caller's device, identity and
// networks, finest first, so that one device spends only its own. A mint
// passes
//
//	backoff  Backoff: paused after ResourceExhausted
//	fleet    Fleet (FLEET_MINT_RATE / FLEET_MINT_BURST): permits reserved in
//	         batches; under pressure, the caller's shares first, and the
//	         last of a window's permits kept for newcomers
//	instance rate.Limiter: only while the fleet's counter cannot be reached
//
// The fleet budget bounds the mints of every instance together; a caller's
// shares bound what one device, identity or network takes of it, across
// all instances, and only while the budget is under pressure, when the
// newcomers' reserve keeps some of each window from callers that repeat.
// A cache hit costs none of these.
//
// Every type takes its clock as a now func() time.Time, so tests need no
// sleeping. None of them logs a key or an address.
package limits
