package ticket_test

import (
	"fmt"
	"time"

	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
)

func Example() {
	// The secret holds two keys while the backend moves to "2026-03".
	keys, err := ticket.ParseKeys([]byte(`{"keys": {
		"2025-12": "old-key-old-key-old-key-old-key-old",
		"2026-03": "new-key-new-key-new-key-new-key-new"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v, err := ticket.NewVerifier(keys, ticket.Options{Now: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}

	// What the app's backend does, in its own language.
	key, _ := keys.Key("2026-03")
	topics, _ := scope.Parse("order-42-*")
	raw, _ := ticket.Sign(key, ticket.DefaultAudience, ticket.Claims{Subject: "alice", Scope: topics, Expires: now.Add(5 * time.Minute)})

	c, err := v.Verify(raw)
	fmt.Println(c.Subject, c.Scope, c.Expires.Sub(now), c.KeyID, err)

	now = now.Add(time.Hour)
	_, err = v.Verify(raw)
	fmt.Println(ticket.Reason(err), err)
	// Output:
	// alice order-42-* 5m0s 2026-03 <nil>
	// expired ticket refused: expired: exp has passed
}
