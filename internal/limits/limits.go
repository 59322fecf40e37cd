// Package limits holds the rate limits that stand between callers and
// Momento's token minting: per-key buckets with bounded memory ([Keyed]),
// the network a client address belongs to ([Network]), a fleet-wide budget
// kept in Momento itself ([Fleet]) and a pause after Momento says its quota is
// exhausted ([Backoff]).
//
// A request that needs a Momento lookup or a mint passes the limits from the
// most specific to the most shared, so that a flood from one network is
// stopped before it spends what every caller shares:
//
//	network  Keyed, by the caller's networks (Network) and identity: a fair share each
//	instance rate.Limiter (MINT_RATE / MINT_BURST): this instance's share
//	backoff  Backoff: paused after ResourceExhausted
//	fleet    Fleet (FLEET_MINT_RATE / FLEET_MINT_BURST): permits reserved in batches
//
// The fleet budget comes last because it may cost a Momento call; a cache
// hit costs none of these. When a later stage refuses, giving back what the
// earlier ones took ([Keyed.Refund], rate.Reservation.Cancel) keeps a
// refused attempt from counting against its network twice.
//
// Every type takes its clock as a now func() time.Time, so tests need no
// sleeping. None of them logs a key or an address.
package limits
