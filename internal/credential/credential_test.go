package credential

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/scope"
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
		r.verified.Put(sum(i), verified{caller: vending.Caller{Key: strconv.Itoa(i)}, kind: Ticket}, 1, t0, t0.Add(time.Hour))
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
			_, kind, err := r.Caller(context.Background(), tc.raw, netip.Prefix{})
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

// TestVerifiedCallersBytes fills the verified callers with the largest
// callers a ticket can make (20 topics of 250 bytes): the byte bound holds
// them to MaxVerifiedBytes, and the heap grows by about what the estimate
// says, so the bound is a bound on memory.
func TestVerifiedCallersBytes(t *testing.T) {
	r := newResolver(t, Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 20_000
	for i := range n {
		var topics []string
		for j := range scope.MaxSelectors {
			topics = append(topics, fmt.Sprintf("%0245d-%03d-%d", i, j, i%7))
		}
		sc, err := scope.Parse(strings.Join(topics, ","))
		if err != nil {
			t.Fatal(err)
		}
		sub := fmt.Sprintf("user-%d", i)
		v := verified{caller: vending.Caller{Key: "ticket:" + sub + ":" + sc.Key(), Scope: sc, TokenID: sub}, kind: Ticket}
		r.verified.Put(sha256.Sum256([]byte(sub)), v, v.size(), t0, t0.Add(time.Hour))
		if _, b := r.verified.Len(); b > MaxVerifiedBytes {
			t.Fatalf("after %d callers: %d estimated bytes, over the bound %d", i+1, b, MaxVerifiedBytes)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	entries, b := r.verified.Len()
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("after %d worst-case callers: %d entries, %d estimated bytes, heap grew %.1f MiB", n, entries, b, float64(grew)/(1<<20))
	if entries >= MaxVerified || entries == 0 {
		t.Errorf("%d entries: want the byte bound, not the count, to hold them", entries)
	}
	if grew > int64(b)*115/100 {
		t.Errorf("heap grew %d bytes for %d estimated: the estimate, and so the bound, is too low", grew, b)
	}
}
