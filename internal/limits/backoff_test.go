package limits

import (
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/fakeclock"
)

func TestBackoff(t *testing.T) {
	type call struct {
		advance   time.Duration
		op        string        // "allow", "fail" or "succeed"
		wantOK    bool          // for allow
		wantRetry time.Duration // for allow and fail
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{
			name:  "allowed before any failure",
			calls: []call{{op: "allow", wantOK: true}},
		},
		{
			name: "a failure pauses for a second",
			calls: []call{
				{op: "fail", wantRetry: time.Second},
				{op: "allow", wantRetry: time.Second},
				{advance: 400 * time.Millisecond, op: "allow", wantRetry: 600 * time.Millisecond},
				{advance: 600 * time.Millisecond, op: "allow", wantOK: true},
			},
		},
		{
			name: "failures after each pause double it up to 30 s",
			calls: []call{
				{op: "fail", wantRetry: 1 * time.Second},
				{advance: 1 * time.Second, op: "fail", wantRetry: 2 * time.Second},
				{advance: 2 * time.Second, op: "fail", wantRetry: 4 * time.Second},
				{advance: 4 * time.Second, op: "fail", wantRetry: 8 * time.Second},
				{advance: 8 * time.Second, op: "fail", wantRetry: 16 * time.Second},
				{advance: 16 * time.Second, op: "fail", wantRetry: 30 * time.Second},
				{advance: 30 * time.Second, op: "fail", wantRetry: 30 * time.Second},
				{advance: 29 * time.Second, op: "allow", wantRetry: time.Second},
			},
		},
		{
			name: "failures during a pause do not lengthen it",
			calls: []call{
				{op: "fail", wantRetry: time.Second},
				{op: "fail", wantRetry: time.Second},
				{advance: 500 * time.Millisecond, op: "fail", wantRetry: 500 * time.Millisecond},
				{advance: 500 * time.Millisecond, op: "fail", wantRetry: 2 * time.Second},
			},
		},
		{
			name: "a success starts over",
			calls: []call{
				{op: "fail", wantRetry: time.Second},
				{advance: time.Second, op: "fail", wantRetry: 2 * time.Second},
				{advance: 2 * time.Second, op: "succeed"},
				{op: "fail", wantRetry: time.Second},
			},
		},
		{
			name: "a success leaves the pause on",
			calls: []call{
				{op: "fail", wantRetry: time.Second},
				{op: "succeed"},
				{op: "allow", wantRetry: time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
			b := &Backoff{Now: clock.Now}
			for i, c := range tt.calls {
				clock.Advance(c.advance)
				switch c.op {
				case "allow":
					ok, retry := b.Allow()
					if ok != c.wantOK || retry != c.wantRetry {
						t.Errorf("call %d: Allow() = %v, %v, want %v, %v", i, ok, retry, c.wantOK, c.wantRetry)
					}
				case "fail":
					if retry := b.Fail(); retry != c.wantRetry {
						t.Errorf("call %d: Fail() = %v, want %v", i, retry, c.wantRetry)
					}
				case "succeed":
					b.Succeed()
				default:
					t.Fatalf("call %d: unknown op %q", i, c.op)
				}
			}
		})
	}
}

func TestBackoffCustom(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	b := &Backoff{Initial: 100 * time.Millisecond, Max: 250 * time.Millisecond, Now: clock.Now}
	var got []time.Duration
	for range 4 {
		d := b.Fail()
		got = append(got, d)
		clock.Advance(d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Fail() #%d = %v, want %v", i+1, got[i], want[i])
		}
	}
}
