package credential

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/vending"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newResolver(t *testing.T, opts Options) *Resolver {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	r, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// TestVerifiedCallersAreBoundedAndExact: filling the verified callers with
// many credentials keeps at most MaxVerified, and no lookup finds another
// credential's caller or an expired one.
func TestVerifiedCallersAreBoundedAndExact(t *testing.T) {
	r := newResolver(t, Options{})
	sum := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte(strconv.Itoa(i))) }
	for i := range MaxVerified + 500 {
		r.verified.Put(sum(i), verified{caller: vending.Caller{Key: strconv.Itoa(i)}, kind: Ticket}, 1, t0.Add(time.Hour))
	}
	if n, _ := r.verified.Len(); n > MaxVerified {
		t.Errorf("verified callers: %d entries, want at most %d", n, MaxVerified)
	}
	last := MaxVerified + 499
	if v, ok := r.verified.Get(sum(last), t0); !ok || v.caller.Key != strconv.Itoa(last) {
		t.Errorf("Get(last) = %v, %v; want its own caller", v, ok)
	}
	if _, ok := r.verified.Get(sha256.Sum256([]byte("never put")), t0); ok {
		t.Errorf("a credential never verified hit an entry")
	}
	if _, ok := r.verified.Get(sum(last), t0.Add(time.Hour)); ok {
		t.Errorf("a lookup at the credential's exp hit its entry")
	}
}

func TestRefusals(t *testing.T) {
	r := newResolver(t, Options{})
	for _, tc := range []struct {
		name, raw  string
		kind       Kind
		wantReason string
	}{
		{"too long", strings.Repeat("a", MaxLen+1), "", "malformed"},
		{"tickets not configured", "a.b.c", Ticket, "tickets not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, kind, err := r.Caller(context.Background(), tc.raw)
			var fe *failure.Error
			if !errors.As(err, &fe) || fe.Kind != failure.BadCredentials {
				t.Fatalf("Caller = %v, want a BadCredentials refusal", err)
			}
			if kind != tc.kind || failure.ReasonOf(err) != tc.wantReason {
				t.Errorf("Caller = kind %q, reason %q; want %q, %q", kind, failure.ReasonOf(err), tc.kind, tc.wantReason)
			}
		})
	}
}

func TestBadTicketKeysAreMisconfigured(t *testing.T) {
	_, err := New(context.Background(), Options{
		TicketKeysFrom: "TICKET_KEY",
		TicketKeys:     func(context.Context) ([]byte, error) { return []byte("short"), nil },
	})
	if kind, _ := failure.Of(err); kind != failure.Misconfigured || !strings.Contains(err.Error(), "TICKET_KEY") {
		t.Errorf("New with a short ticket key = %v, want Misconfigured naming TICKET_KEY", err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("the error quotes the key: %v", err)
	}
}
