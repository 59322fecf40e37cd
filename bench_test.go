package tokenvendingmachine

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"example.com/tokenvendingmachine/internal/cloudlog"
	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/functest"
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
// the Momento calls each made: the hits and the mint, then the refusals of
// forged credentials, which must cost no more than a hit and one signature
// check.
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
	// withIssuer is a function that takes tickets and ID tokens.
	withIssuer := func(b *testing.B) (*harness, *oidctest.Server) {
		return oidcHarness(b, unlimited(ticketEnv(nil)))
	}
	paths := []struct {
		name string
		// setup returns the function and the request's credential, if any.
		setup  func(b *testing.B) (*harness, http.Header)
		ip     func(i int) string // nil: always 203.0.113.7
		status int                // 0: 200
	}{
		// A repeat visit: answered from the instance's L1.
		{name: "l1-hit", setup: func(b *testing.B) (*harness, http.Header) {
			return newHarness(b, unlimited(map[string]string{})), nil
		}},
		// A visit whose token another instance minted: one Get.
		{name: "momento-hit", setup: func(b *testing.B) (*harness, http.Header) {
			return newHarness(b, unlimited(map[string]string{"L1_MAX_ENTRIES": "0"})), nil
		}},
		// A new visitor: Get, mint, Set.
		{name: "mint", setup: func(b *testing.B) (*harness, http.Header) {
			return newHarness(b, unlimited(map[string]string{})), nil
		}, ip: newAddress},
		// A repeat visit with the same ticket: the verified ticket and its
		// token both come from memory.
		{name: "ticket-l1-hit", setup: func(b *testing.B) (*harness, http.Header) {
			hs := newHarness(b, unlimited(ticketEnv(nil)))
			return hs, withBearer(signTicket(b, ticketClaims(hs, "customer-7", "order-42-*")))
		}},
		// The same with the largest ticket: 20 topic prefixes of the
		// longest length, so a token of about 11 KB to answer.
		{name: "ticket-l1-hit-20-long-topics", setup: func(b *testing.B) (*harness, http.Header) {
			hs := newHarness(b, unlimited(ticketEnv(nil)))
			return hs, withBearer(signTicket(b, ticketClaims(hs, "customer-7", functest.LongTopics()...)))
		}},
		// A repeat visit with the same ID token: no signature verified.
		{name: "id-token-l1-hit", setup: func(b *testing.B) (*harness, http.Header) {
			hs, issuer := oidcHarness(b, unlimited(map[string]string{}))
			return hs, withBearer(idToken(b, issuer, "alice"))
		}},
		// A ticket signed with another key, each from an address of its
		// own (an address refused too often is refused before its check,
		// below): one HMAC.
		{name: "forged-ticket", status: http.StatusUnauthorized, ip: newAddress, setup: func(b *testing.B) (*harness, http.Header) {
			hs, _ := withIssuer(b)
			tkt, err := jwt.NewWithClaims(jwt.SigningMethodHS256, ticketClaims(hs, "customer-7", "order-42-*")).SignedString([]byte(strings.Repeat("k", 32)))
			if err != nil {
				b.Fatal(err)
			}
			return hs, withBearer(tkt)
		}},
		// An ID token under the issuer's published kid, with a signature
		// of nobody's, each from an address of its own: one RSA signature
		// check.
		{name: "forged-id-token", status: http.StatusUnauthorized, ip: newAddress, setup: func(b *testing.B) (*harness, http.Header) {
			hs, issuer := withIssuer(b)
			p := strings.Split(idToken(b, issuer, "alice"), ".")
			return hs, withBearer(p[0] + "." + p[1] + "." + forgedSignature(p[2]))
		}},
		// The same from one address, past its refusals: refused before
		// the check.
		{name: "forged-id-token-refused-too-often", status: http.StatusTooManyRequests, setup: func(b *testing.B) (*harness, http.Header) {
			hs, issuer := withIssuer(b)
			p := strings.Split(idToken(b, issuer, "alice"), ".")
			forged := withBearer(p[0] + "." + p[1] + "." + forgedSignature(p[2]))
			for range credential.RefusedBurst { // its refusals: the warm-up is refused before its check
				hs.do(http.MethodGet, "203.0.113.7", forged)
			}
			return hs, forged
		}},
		// 8 KB tickets and ID tokens whose header nests a member as deep
		// as fits: refused by their length, before any decoding.
		{name: "nested-header-ticket-8k", status: http.StatusUnauthorized, setup: func(b *testing.B) (*harness, http.Header) {
			hs, _ := withIssuer(b)
			p := strings.Split(signTicket(b, ticketClaims(hs, "customer-7", "order-42-*")), ".")
			return hs, withBearer(nestedHeader(`{"alg":"HS256","typ":"JWT","x":`, p[1], forgedSignature(p[2])))
		}},
		{name: "nested-header-id-token-8k", status: http.StatusUnauthorized, setup: func(b *testing.B) (*harness, http.Header) {
			hs, issuer := withIssuer(b)
			p := strings.Split(idToken(b, issuer, "alice"), ".")
			return hs, withBearer(nestedHeader(`{"alg":"RS256","kid":"`+issuer.KeyID()+`","typ":"JWT","x":`, p[1], forgedSignature(p[2])))
		}},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			hs, header := p.setup(b)
			hs.h.log = cloudlog.New(io.Discard) // the lines are still made, not kept
			status := cmp.Or(p.status, http.StatusOK)
			// Set up the instance, and cache this caller.
			if warm := hs.do(http.MethodGet, "203.0.113.7", header); warm.Code != status {
				b.Fatalf("warm-up: status %d, want %d", warm.Code, status)
			}
			r := hs.request(request{header: header})
			w := &benchWriter{h: http.Header{}}
			ips := make([]string, 0, 1)
			if p.ip != nil {
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
				if w.code != status {
					b.Fatalf("status %d, want %d", w.code, status)
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

// newAddress is the i-th of the addresses that are new to the function
// (the warm-up's is 203.0.113.7).
func newAddress(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// forgedSignature returns sig, a base64url signature, with its first
// character changed: a signature of nobody's, still canonical.
func forgedSignature(sig string) string {
	c := byte('A')
	if sig[0] == 'A' {
		c = 'B'
	}
	return string(c) + sig[1:]
}

// nestedHeader returns a compact JWS of credential.MaxLen bytes at most
// whose header is prefix followed by as many nested arrays as fit, then
// payload and sig (base64url segments).
func nestedHeader(prefix, payload, sig string) string {
	room := (credential.MaxLen-len(payload)-len(sig)-2)/4*3 - len(prefix) - 1
	depth := room / 2
	header := prefix + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + payload + "." + sig
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
	if anon > 10 {
		t.Errorf("an L1 hit allocates %.0f times, want at most 10", anon)
	}
	if withTicket > 2*anon {
		t.Errorf("an L1 hit with a ticket allocates %.0f times, want at most twice an anonymous one's %.0f", withTicket, anon)
	}
}
