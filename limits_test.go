package tokenvendingmachine

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"example.com/tokenvendingmachine/internal/cloudlog"
	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/limits"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/vending"
)

// pressure puts the fleet budget under pressure as instance h sees it, with
// six new visitors from as many /16s: the default budget's windows hold 10
// and are under pressure past 5. The clock must stand on a window's start
// (the harness's does).
func pressure(t *testing.T, hs *harness, h *handler) {
	t.Helper()
	for i := range 6 {
		if w := hs.getFrom(h, fmt.Sprintf("100.%d.0.1", 64+i)); w.Code != http.StatusOK {
			t.Fatalf("new visitor %d before the pressure: status %d", i+1, w.Code)
		}
	}
}

// getFrom sends a GET from ip to handler h of hs.
func (hs *harness) getFrom(h *handler, ip string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hs.request(request{ip: ip}))
	return w
}

func TestFleetBudgetHoldsAcrossInstances(t *testing.T) {
	const rate, burst, seconds = 2, 4, 6
	hs := newHarness(t, map[string]string{"FLEET_MINT_RATE": strconv.Itoa(rate), "FLEET_MINT_BURST": strconv.Itoa(burst)})
	instances := []*handler{hs.h, hs.instance(t)}
	// Both instances take new visitors as fast as they come, 100 ms apart
	// on the clock, for six seconds.
	minted := 0
	perInstance := make([]int, len(instances))
	for tick := range seconds * 10 {
		for k := range instances {
			i := (k + tick/10) % len(instances) // each goes first in turn, a second each
			h := instances[i]
			for j := range 3 {
				// From a /16 of its own each tick: what is measured is the
				// budget, not the shares of a provider.
				w := hs.getFrom(h, fmt.Sprintf("%d.%d.%d.1", 10+i, tick, j))
				switch w.Code {
				case http.StatusOK:
					minted++
					perInstance[i]++
				case http.StatusTooManyRequests:
					if w.Header().Get("Retry-After") == "" {
						t.Fatalf("429 without Retry-After")
					}
				default:
					t.Fatalf("status %d, body %s", w.Code, w.Body)
				}
			}
		}
		hs.momento.FastForward(100 * time.Millisecond)
	}
	if max := rate*seconds + burst; minted > max || minted != len(hs.momento.Mints()) {
		t.Errorf("two instances minted %d tokens (fake: %d) in %ds, want at most rate × time + burst = %d", minted, len(hs.momento.Mints()), seconds, max)
	}
	if minted < rate*(seconds-1) || perInstance[0] == 0 || perInstance[1] == 0 {
		t.Errorf("minted %v per instance, want the budget used by both", perInstance)
	}
	if n := hs.momento.Count(momentotest.MethodIncrement); n == 0 {
		t.Errorf("no Increment reached Momento")
	}
}

func TestFleetCounterDownFallsBackToTheInstanceLimit(t *testing.T) {
	// Each instance falls back to a quarter of the fleet's budget: a burst
	// of 3 and one mint per 100 s.
	hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": "12", "FLEET_MINT_RATE": "0.04"})
	hs.momento.SetFault(momentotest.MethodIncrement, momentotest.Fault{Code: codes.Unavailable})
	for i := range 3 {
		hs.token(t, fmt.Sprintf("192.0.2.%d", i+1))
	}
	if w := hs.get("192.0.2.9"); w.Code != http.StatusTooManyRequests {
		t.Errorf("a fourth new visitor with a fallback burst of 3 and the fleet counter down: status %d, want 429", w.Code)
	}
	if n := len(hs.logLines(t, limits.LogFleetDown)); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
}

func TestMomentoResourceExhaustedBacksOff(t *testing.T) {
	hs := newHarness(t, nil)
	cached := hs.token(t, "192.0.2.1")
	hs.momento.SetFault(momentotest.MethodMint, momentotest.Fault{Code: codes.ResourceExhausted})
	w := hs.get("192.0.2.2")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("mint refused with ResourceExhausted: status %d, Retry-After %q; want 429, 1", w.Code, w.Header().Get("Retry-After"))
	}
	checkErrorBody(t, w)
	mints := hs.momento.Count(momentotest.MethodMint)
	for i := range 5 {
		if w := hs.get(fmt.Sprintf("192.0.2.%d", 10+i)); w.Code != http.StatusTooManyRequests {
			t.Errorf("a new visitor during the pause: status %d, want 429", w.Code)
		}
	}
	if n := hs.momento.Count(momentotest.MethodMint) - mints; n != 0 {
		t.Errorf("%d mints reached Momento during the pause, want none", n)
	}
	if got := hs.token(t, "192.0.2.1"); got.Token != cached.Token {
		t.Errorf("a cached visitor was not served during the pause")
	}
	// The next refusal, after the pause, doubles it.
	hs.momento.FastForward(time.Second)
	if w := hs.get("192.0.2.3"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Errorf("second refusal: status %d, Retry-After %q; want 429, 2", w.Code, w.Header().Get("Retry-After"))
	}
	if len(hs.logLines(t, vending.LogMintsPaused)) != 2 {
		t.Errorf("pauses not logged")
	}
}

func TestKeyRejectedWithinTheRereadIntervalIsUnavailable(t *testing.T) {
	hs := newHarness(t, nil)
	hs.token(t, "192.0.2.1")
	hs.momento.RotateAPIKey() // the secret is not updated: a rotation under way
	first := hs.get("192.0.2.2")
	if first.Code != http.StatusInternalServerError {
		t.Fatalf("key rejected after a re-read: status %d, want 500", first.Code)
	}
	hs.momento.FastForward(10 * time.Second)
	w := hs.get("192.0.2.3")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "20" {
		t.Errorf("key rejected within the re-read interval: status %d, Retry-After %q; want 503, 20", w.Code, w.Header().Get("Retry-After"))
	}
	checkErrorBody(t, w)
}

func TestMintRateLimit(t *testing.T) {
	// Three mints per 100 s window; the clock stands on a window's start.
	hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": "6", "FLEET_MINT_RATE": "0.03"})
	cached := hs.token(t, "192.0.2.1")
	hs.token(t, "198.51.100.2")
	hs.token(t, "203.0.113.3")
	for i := 4; i <= 6; i++ {
		w := hs.get(fmt.Sprintf("192.0.2.%d", i))
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("new IP beyond the window's budget: status %d, want 429", w.Code)
		}
		if got := w.Header().Get("Retry-After"); got != "100" {
			t.Errorf("429 Retry-After = %q, want 100 (the next window)", got)
		}
		checkErrorBody(t, w)
		if got := hs.token(t, "192.0.2.1"); got.Token != cached.Token {
			t.Errorf("cached IP got another token while limited")
		}
	}
	if n := len(hs.momento.Mints()); n != 3 {
		t.Errorf("mints = %d, want 3", n)
	}
	limited := 0
	for _, l := range hs.logLines(t, logRequest) {
		if l["outcome"] == "limited" {
			limited++
		}
	}
	if limited != 3 {
		t.Errorf("%d request lines with outcome limited, want 3", limited)
	}
}

// TestDeprecatedLimitVariableStillStarts: a deploy that sets a limit
// variable of the last release still serves, and the log says what
// replaced it, once per instance.
func TestDeprecatedLimitVariableStillStarts(t *testing.T) {
	hs := newHarness(t, map[string]string{"NETWORK_MINT_RATE": "0.5", "MINT_BURST": "10"})
	hs.token(t, "192.0.2.1")
	lines := hs.logLines(t, logDeprecated)
	got := map[string]bool{}
	for _, l := range lines {
		got[l["variable"].(string)] = l["instead"] != ""
	}
	if len(lines) != 2 || !got["NETWORK_MINT_RATE"] || !got["MINT_BURST"] {
		t.Errorf("deprecation lines %v, want one for each of NETWORK_MINT_RATE and MINT_BURST, saying what replaced it", lines)
	}
}

// TestFleetBoundMeasured measures the fleet budget with reservations across
// two instances with the default limits: for 60 s on the clock, each asks
// for 430 new tokens a second, each request from a /16 of its own (51,600
// of them), and the mints in every interval of 1, 10 and 30 s are held to
// the bound, FLEET_MINT_RATE × T + FLEET_MINT_BURST.
//
//	go test -count=1 -run TestFleetBoundMeasured -v .
func TestFleetBoundMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 51,600 requests")
	}
	const (
		rate, burst = 4, 20
		seconds     = 60
		step        = 100 * time.Millisecond
		perStep     = 43
	)
	hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": ""})
	instances := []*handler{hs.h, hs.instance(t)}
	for _, h := range instances {
		h.log = cloudlog.New(io.Discard) // 51,600 request lines are not what is checked
	}
	var mints []time.Duration // by step, since the start
	n := 0
	for i := range seconds * int(time.Second/step) {
		before := len(hs.momento.Mints())
		var wg sync.WaitGroup
		for j, h := range instances {
			first := n + j*perStep
			wg.Go(func() {
				for k := range perStep {
					p := first + k
					w := httptest.NewRecorder()
					h.ServeHTTP(w, hs.request(request{ip: fmt.Sprintf("%d.%d.1.1", 1+p/256, p%256), untracked: true}))
				}
			})
		}
		wg.Wait()
		n += len(instances) * perStep
		for range len(hs.momento.Mints()) - before {
			mints = append(mints, time.Duration(i)*step)
		}
		hs.momento.FastForward(step)
	}
	var lines []string
	for _, T := range []time.Duration{time.Second, 10 * time.Second, 30 * time.Second} {
		most := 0
		for i, a := range mints {
			j, _ := slices.BinarySearch(mints, a+T+1) // the closed interval [a, a+T]
			most = max(most, j-i)
		}
		bound := int(rate*T.Seconds()) + burst
		lines = append(lines, fmt.Sprintf("| %v | %d | %d |", T, most, bound))
		if most > bound {
			t.Errorf("%d mints within %v, want at most FLEET_MINT_RATE × T + FLEET_MINT_BURST = %d", most, T, bound)
		}
	}
	t.Logf("two instances, %d s, %d requests from as many /16s: %d mints (%d Increments)\n| T | most mints in any T | bound 4T + 20 |\n|---|---|---|\n%s",
		seconds, n, len(mints), hs.momento.Count(momentotest.MethodIncrement), strings.Join(lines, "\n"))
	if len(mints) < rate*(seconds-3) {
		t.Errorf("%d mints in %d s, want the budget spent, at least %d", len(mints), seconds, rate*(seconds-3))
	}
}

// TestFleetFallbackMeasured: while the fleet's counter cannot be reached,
// each instance mints at most a quarter of the fleet's budget (F = 4): N
// instances mint at most N/4 × FLEET_MINT_RATE a second, after bursts of
// FLEET_MINT_BURST/4 each.
//
//	go test -count=1 -run TestFleetFallbackMeasured -v .
func TestFleetFallbackMeasured(t *testing.T) {
	const (
		seconds = 30
		step    = 100 * time.Millisecond
		perStep = 10 // per instance: 100 new visitors a second
	)
	lines := []string{"| instances | mints in 30 s | per second | cap N × (R/F × 30 s + B/F) |", "|---|---|---|---|"}
	for _, n := range []int{1, 2, 8} {
		hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": ""})
		hs.momento.SetFault(momentotest.MethodIncrement, momentotest.Fault{Code: codes.Unavailable})
		instances := []*handler{hs.h}
		for range n - 1 {
			instances = append(instances, hs.instance(t))
		}
		for _, h := range instances {
			h.log = cloudlog.New(io.Discard)
		}
		p := 0
		for range seconds * int(time.Second/step) {
			for _, h := range instances {
				for range perStep {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, hs.request(request{ip: fmt.Sprintf("%d.%d.1.1", 1+p/256, p%256), untracked: true}))
					p++
				}
			}
			hs.momento.FastForward(step)
		}
		mints := len(hs.momento.Mints())
		limit := n * (seconds*config.DefaultFleetMintRate/config.FallbackInstances + config.DefaultFleetMintBurst/config.FallbackInstances)
		lines = append(lines, fmt.Sprintf("| %d | %d | %.2f | %d |", n, mints, float64(mints)/seconds, limit))
		if mints > limit {
			t.Errorf("%d instances minted %d tokens in %d s with the counter down, want at most %d", n, mints, seconds, limit)
		}
		if mints < limit*9/10 {
			t.Errorf("%d instances minted %d tokens in %d s with the counter down, want about %d: the fallback serves", n, mints, seconds, limit)
		}
	}
	t.Logf("the fleet's counter down, the default budget (R = 4, B = 20, F = %d):\n%s", config.FallbackInstances, strings.Join(lines, "\n"))
}

// An attacker tries this: while the fleet budget is under pressure, spread requests over
// address forms of one network to get a fresh share each time: IPv4-mapped
// IPv6, ports, brackets, IPv6 zones, new /64s in one /48, and entries
// prepended to X-Forwarded-For.
func TestNetworkSharesHoldAgainstAddressTricks(t *testing.T) {
	tests := []struct {
		name  string
		reqs  []request
		mints int // of the requests, how many may mint
	}{
		{"IPv4 forms", []request{
			{ip: "203.0.113.7"},
			{ip: "::ffff:203.0.113.8"},
			{ip: "[::ffff:203.0.113.9]:443"},
			{ip: " 203.0.113.10:8080 "},
			{ip: "203.0.113.11", header: http.Header{"X-Forwarded-For": {"198.51.100.1, 192.0.2.1"}}},
		}, 2},
		{"IPv6 forms", []request{
			{ip: "2001:db8:1:1::1"},
			{ip: "2001:db8:1:2::1%eth0"},
			{ip: "[2001:db8:1:3::1]:443"},
			{ip: "[2001:db8:1:4::1]"},
			{ip: "2001:db8:1:5::1", header: http.Header{"X-Forwarded-For": {"2001:db8:ffff::1"}}},
		}, 2},
		{"one /16, many /24s", []request{
			{ip: "198.18.1.1"}, {ip: "198.18.2.1"}, {ip: "198.18.3.1"}, {ip: "198.18.4.1"},
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The default budget, 10 a window: past 5, its shares are
			// charged, a network's 2 and a /16's 3 of a window. The next
			// window, still under pressure, has room for them: of the
			// pressure's window, 3 are left only to newcomers.
			hs := newHarness(t, map[string]string{"FLEET_MINT_RATE": "4", "FLEET_MINT_BURST": "20"})
			pressure(t, hs, hs.h)
			hs.momento.FastForward(2500 * time.Millisecond)
			before := len(hs.momento.Mints())
			minted := 0
			for _, rq := range tt.reqs {
				w := hs.send(rq)
				switch w.Code {
				case http.StatusOK:
					minted++
				case http.StatusTooManyRequests:
					if w.Header().Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
				default:
					t.Errorf("%q: status %d, body %s", rq.ip, w.Code, w.Body)
				}
			}
			if minted != tt.mints || len(hs.momento.Mints())-before != tt.mints {
				t.Errorf("one network minted %d tokens (fake: %d), want its share, %d", minted, len(hs.momento.Mints())-before, tt.mints)
			}
		})
	}
}

// An attacker tries this: while the budget is under pressure, have Momento refuse mints now
// and then, hoping that failed mints are not counted. Over 20 s on the
// clock, one /24 asks for a new token ten times a second; its mint calls,
// failed ones included, stay within its share of each window.
func TestFailedMintsCountAgainstTheNetworkShare(t *testing.T) {
	const seconds = 20
	hs := newHarness(t, map[string]string{"FLEET_MINT_RATE": "4", "FLEET_MINT_BURST": "20"})
	pressure(t, hs, hs.h)
	calls := hs.momento.Count(momentotest.MethodMint)
	for tick := range seconds * 10 {
		hs.send(request{ip: fmt.Sprintf("203.0.113.%d", tick%250+1), untracked: true})
		if tick%40 == 5 {
			// Momento's own quota refuses now and then.
			hs.momento.SetFault(momentotest.MethodMint, momentotest.Fault{Code: codes.ResourceExhausted, Times: 1})
		}
		hs.momento.FastForward(100 * time.Millisecond)
	}
	// A network's share is 2 of each 2.5 s window.
	if n, max := hs.momento.Count(momentotest.MethodMint)-calls, 2*seconds*10/25; n > max {
		t.Errorf("one /24 made %d mint calls in %d s, want at most its share, %d", n, seconds, max)
	}
	if n := hs.momento.Count(momentotest.MethodMint) - calls; n < 3 {
		t.Errorf("one /24 made %d mint calls in %d s, want some", n, seconds)
	}
}

// TestNewcomersGetTheReserveOfAFloodedWindow: sixteen /16s flood, each
// address new, through two windows of the default budget (10 mints per
// 2.5 s). Past the window's everyone-permits the flood is refused, 429 with
// Retry-After and its log line limited, and mints stay within the budget;
// a visitor from a /16 of its own still gets a token from the newcomers'
// reserve of the second window.
func TestNewcomersGetTheReserveOfAFloodedWindow(t *testing.T) {
	hs := newHarness(t, map[string]string{"FLEET_MINT_BURST": ""})
	// Start at a window's edge, so that both windows are whole.
	const window = 2500 * time.Millisecond
	now := hs.momento.Now()
	hs.momento.FastForward(now.Truncate(window).Add(window).Sub(now))
	refused := 0
	flood := func(w int) {
		for i := range 20 {
			for p := range 16 {
				ip := fmt.Sprintf("100.%d.%d.%d", 64+p, w, i+1)
				switch rec := hs.get(ip); rec.Code {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					refused++
					if rec.Header().Get("Retry-After") == "" {
						t.Fatalf("flood from %s: 429 without Retry-After", ip)
					}
					checkErrorBody(t, rec)
				default:
					t.Fatalf("flood from %s: status %d, want 200 or 429", ip, rec.Code)
				}
			}
		}
	}
	flood(0)
	hs.momento.FastForward(window)
	flood(1)
	if w := hs.get("192.0.77.9"); w.Code != http.StatusOK {
		t.Errorf("a new visitor in the flood's second window: status %d, want 200 from the newcomers' reserve", w.Code)
	}
	if n := len(hs.momento.Mints()); n > 20 {
		t.Errorf("%d mints in two windows of 10, want at most 20", n)
	}
	limited := 0
	for _, l := range hs.logLines(t, logRequest) {
		if l["outcome"] == "limited" {
			limited++
		}
	}
	if refused == 0 || limited != refused {
		t.Errorf("%d refused, %d request lines limited; want as many, and some", refused, limited)
	}
}
