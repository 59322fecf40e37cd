package momentotest

import (
	"time"

	"google.golang.org/grpc/codes"
)

// What the fake records of the calls it serves, for tests to inspect.

// Fault is an injected misbehaviour of one method.
type Fault struct {
	// Code is the status the call fails with; codes.OK means it answers normally
	// (after Latency).
	Code codes.Code
	// Message is the status message; "" means "momentotest: injected fault".
	Message string
	// Latency is how long the call waits before answering. The wait ends early,
	// with the matching status, if the caller's deadline passes first.
	Latency time.Duration
	// Times is how many calls the fault applies to; 0 means every call until
	// ClearFaults.
	Times int
}

// Grant is one permission of a minted token, in plain words.
type Grant struct {
	// Kind is "cache" or "topic".
	Kind string `json:"kind"`
	// Role is the role's name in Momento's protos: CacheReadWrite, CacheReadOnly,
	// CacheWriteOnly, TopicReadWrite, TopicReadOnly (subscribe only),
	// TopicWriteOnly (publish only), or a Permit*None.
	Role string `json:"role"`
	// Cache is the cache's name, or "*" for all caches.
	Cache string `json:"cache"`
	// Topic, for topic grants: the topic's name, "*" for all topics, or a
	// prefix followed by "*".
	Topic string `json:"topic,omitempty"`
	// Item, for cache grants: the key, "*" for all items, or a prefix followed
	// by "*".
	Item string `json:"item,omitempty"`
}

// Mint records one GenerateDisposableToken call that succeeded.
type Mint struct {
	// ID numbers mints from 1 in the order they happened.
	ID int
	// Caller is the ID of the account key that asked ("key-1", "key-2", ...).
	Caller string
	// SuperUser reports that the request asked for super-user permissions.
	SuperUser bool
	// Grants is the explicit scope asked for.
	Grants []Grant
	// ValidFor is the lifetime asked for.
	ValidFor time.Duration
	// ValidUntil is the token's expiry, whole seconds, on the fake's clock.
	ValidUntil time.Time
	// TokenID is the token_id the request carried, if any.
	TokenID string
	// Token is the token as the SDK hands it to its caller: base64 of
	// {"api_key": ..., "endpoint": ...}.
	Token string
}
