package demo

import (
	"context"
	"fmt"
	"time"
)

// The topics the pizzeria publishes on: each order's status, each
// customer's notifications, and new orders. Order 42 is alice's, order 43
// bob's.
const (
	TopicOrder42    = "order-42-status-updated"
	TopicOrder43    = "order-43-status-updated"
	TopicNewOrder   = "new-order"
	TopicAliceInbox = "user-alice-notifications"
	TopicBobInbox   = "user-bob-notifications"
)

// DefaultPizzeriaTick is how often the runner's pizzeria publishes.
const DefaultPizzeriaTick = 2 * time.Second

// statuses are an order's steps; an order delivered is placed again.
var statuses = []string{"placed", "in the oven", "out for delivery", "delivered"}

// RunPizzeria plays the pizza shop's backend until ctx ends: every tick it
// moves orders 42 and 43 on a step, publishing each status on the order's
// topic and a notification on its customer's, and every third tick
// announces another customer's new order (44, 45, ...) on new-order.
// publish is called for each message, one at a time; its errors are handed
// to failed, if set, and the pizzeria carries on.
func RunPizzeria(ctx context.Context, tick time.Duration, publish func(topic, message string) error, failed func(error)) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 0; ; n++ {
		for _, m := range pizzeriaTick(n) {
			if err := publish(m.topic, m.text); err != nil && failed != nil {
				failed(fmt.Errorf("publish on %s: %w", m.topic, err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type message struct{ topic, text string }

// pizzeriaTick returns what the pizzeria publishes at its nth tick.
func pizzeriaTick(n int) []message {
	s42, s43 := statuses[n%len(statuses)], statuses[(n+2)%len(statuses)]
	out := []message{
		{TopicOrder42, "order 42: " + s42},
		{TopicAliceInbox, "alice, your order 42 is " + s42},
		{TopicOrder43, "order 43: " + s43},
		{TopicBobInbox, "bob, your order 43 is " + s43},
	}
	if n%3 == 0 {
		out = append(out, message{TopicNewOrder, fmt.Sprintf("order %d placed", 44+n/3)})
	}
	return out
}
