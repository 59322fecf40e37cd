package tokenvendingmachine

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"example.com/tokenvendingmachine/internal/cloudlog"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/oidctest"
)

// benchWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the handler rather than a recorder.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkHandler measures one request on each of the function's paths,
// against the fake Momento on loopback (no injected latency), and reports
// the Momento calls each made.
//
//	go test -run '^$' -bench Handler -benchmem .
func BenchmarkHandler(b *testing.B) {
	// Limits off: they would refuse the benchmark's thousands of requests
	// a second, which is what they are for.
	unlimited := func(env map[string]string) map[string]string {
		for _, k := range []string{"FLEET_MINT_RATE", "FLEET_MINT_BURST"} {
			env[k] = "1000000"
		}
		return env
	}
	paths := []struct {
		name   string
		env    map[string]string
		ip     func(i int) string
		bearer func(hs *harness) string // the request's credential, if any
	}{
		// A repeat visit: answered from the instance's L1.
		{"l1-hit", unlimited(map[string]string{}), func(int) string { return "203.0.113.7" }, nil},
		// A visit whose token another instance minted: one Get.
		{"momento-hit", unlimited(map[string]string{"L1_MAX_ENTRIES": "0"}), func(int) string { return "203.0.113.7" }, nil},
		// A new visitor: Get, mint, Set.
		{"mint", unlimited(map[string]string{}),
			func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }, nil},
		// A repeat visit with the same ticket: the verified ticket and its
		// token both come from memory.
		{"ticket-l1-hit", unlimited(ticketEnv(nil)), func(int) string { return "203.0.113.7" },
			func(hs *harness) string { return signTicket(b, ticketClaims(hs, "customer-7", "order-42-*")) }},
		// A repeat visit with the same ID token: no signature verified.
		{"id-token-l1-hit", nil, func(int) string { return "203.0.113.7" }, nil},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			var hs *harness
			var header http.Header
			if p.name == "id-token-l1-hit" {
				var issuer *oidctest.Server
				hs, issuer = oidcHarness(b, unlimited(map[string]string{}))
				header = withBearer(idToken(b, issuer, "alice"))
			} else {
				hs = newHarness(b, p.env)
			}
			hs.h.log = cloudlog.New(io.Discard) // the lines are still made, not kept
			if p.bearer != nil {
				header = withBearer(p.bearer(hs))
			}
			// Set up the instance, and cache this caller.
			if warm := hs.do(http.MethodGet, "203.0.113.7", header); warm.Code != http.StatusOK {
				b.Fatalf("warm-up: status %d", warm.Code)
			}
			r := hs.request(request{header: header})
			w := &benchWriter{h: http.Header{}}
			ips := make([]string, 0, 1)
			if p.name == "mint" {
				ips = make([]string, b.N)
				for i := range ips {
					ips[i] = p.ip(i)
				}
			}
			hs.momento.ResetCounts()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ip := "203.0.113.7"
				if len(ips) > 0 {
					ip = ips[i]
				}
				r.Header["X-Forwarded-For"] = []string{ip}
				clear(w.h)
				w.code = 0
				hs.h.ServeHTTP(w, r)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(hs.momento.TotalCount())/float64(b.N), "momento-calls/op")
			for _, m := range []momentotest.Method{momentotest.MethodGet, momentotest.MethodMint, momentotest.MethodSet} {
				b.ReportMetric(float64(hs.momento.Count(m))/float64(b.N), string(m)+"/op")
			}
		})
	}
}

// TestL1HitAllocations holds the repeat-visit paths to their allocation
// budgets: an anonymous one, and one with a ticket, which may cost at most
// twice as much. Allocations, unlike time, do not depend on the machine's
// load; the time is measured by BenchmarkHandler.
func TestL1HitAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("sets up the function against the fakes")
	}
	hs := newHarness(t, ticketEnv(nil))
	hs.h.log = cloudlog.New(io.Discard)
	measure := func(header http.Header) float64 {
		t.Helper()
		if w := hs.do(http.MethodGet, "203.0.113.7", header); w.Code != http.StatusOK {
			t.Fatalf("warm-up: status %d", w.Code)
		}
		r := hs.request(request{ip: "203.0.113.7", header: header})
		w := &benchWriter{h: http.Header{}}
		hs.momento.ResetCounts()
		allocs := testing.AllocsPerRun(1000, func() {
			clear(w.h)
			hs.h.ServeHTTP(w, r)
		})
		if w.code != http.StatusOK || hs.momento.TotalCount() != 0 {
			t.Fatalf("status %d, %d Momento calls; want an L1 hit", w.code, hs.momento.TotalCount())
		}
		return allocs
	}
	anon := measure(nil)
	withTicket := measure(withBearer(signTicket(t, ticketClaims(hs, "customer-7", "order-42-*"))))
	ohs, issuer := oidcHarness(t, nil)
	ohs.h.log = cloudlog.New(io.Discard)
	hs = ohs
	withIDToken := measure(withBearer(idToken(t, issuer, "alice")))
	t.Logf("an L1 hit allocates %.0f times; with a ticket, %.0f; with an ID token, %.0f", anon, withTicket, withIDToken)
	if withIDToken > 2*anon {
		t.Errorf("an L1 hit with an ID token allocates %.0f times, want at most twice an anonymous one's %.0f", withIDToken, anon)
	}
	if anon > 30 {
		t.Errorf("an L1 hit allocates %.0f times, want at most 30", anon)
	}
	if withTicket > 2*anon {
		t.Errorf("an L1 hit with a ticket allocates %.0f times, want at most twice an anonymous one's %.0f", withTicket, anon)
	}
}
