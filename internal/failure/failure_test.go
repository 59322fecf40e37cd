package failure

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestOf(t *testing.T) {
	sentinel := New(Misconfigured, "bad key")
	tests := []struct {
		name      string
		err       error
		wantKind  Kind
		wantRetry time.Duration
	}{
		{"nil", nil, Unexpected, 0},
		{"plain error", errors.New("boom"), Unexpected, 0},
		{"sentinel", sentinel, Misconfigured, 0},
		{"wrapped sentinel", fmt.Errorf("mint: %w", sentinel), Misconfigured, 0},
		{"limited with retry", &Error{Kind: Limited, Retry: 3 * time.Second}, Limited, 3 * time.Second},
		{"canceled", context.Canceled, Slow, 0},
		{"deadline, wrapped", fmt.Errorf("wait: %w", context.DeadlineExceeded), Slow, 0},
		// A kind set on purpose wins over a context error inside it: a
		// setup that timed out is Unavailable, not the caller's deadline.
		{"kind around a deadline", Wrap(Unavailable, context.DeadlineExceeded), Unavailable, 0},
		{"outermost kind wins", Wrap(Misconfigured, fmt.Errorf("x: %w", Wrap(Unavailable, errors.New("y")))), Misconfigured, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, retry := Of(tt.err)
			if kind != tt.wantKind || retry != tt.wantRetry {
				t.Errorf("Of(%v) = %v, %v; want %v, %v", tt.err, kind, retry, tt.wantKind, tt.wantRetry)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	if err := Wrap(Unavailable, nil); err != nil {
		t.Errorf("Wrap(Unavailable, nil) = %v, want nil", err)
	}
	cause := errors.New("cause")
	err := Wrap(Unavailable, cause)
	if !errors.Is(err, cause) || err.Error() != "cause" {
		t.Errorf("Wrap(Unavailable, cause) = %v, want it to wrap cause with the same text", err)
	}
}

func TestReasonOf(t *testing.T) {
	refused := Refusal(BadCredentials, "expired")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), ""},
		{"no reason", New(Misconfigured, "bad key"), ""},
		{"refusal", refused, "expired"},
		{"wrapped twice", fmt.Errorf("a: %w: %w", errors.New("b"), refused), "expired"},
		{"inside a kind without reason", Wrap(Forbidden, refused), "expired"},
		{"outermost reason wins", &Error{Kind: Forbidden, Reason: "outer", Err: refused}, "outer"},
	}
	for _, tt := range tests {
		if got := ReasonOf(tt.err); got != tt.want {
			t.Errorf("ReasonOf(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if kind, _ := Of(refused); kind != BadCredentials {
		t.Errorf("Of(Refusal(BadCredentials, ...)) = %v, want BadCredentials", kind)
	}
}
