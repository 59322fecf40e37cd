package tokenvendingmachine

// The browser helper's tests: web/tvm.js in headless Chromium, with the real
// web SDK bundled from web/package-lock.json, tokens from the function, and
// the emulator over gRPC-web. Besides Chromium (see browser_test.go) they
// need node and npm (the Debian packages nodejs and npm): without them they
// skip, unless REQUIRE_NODE=1, which CI sets, makes that a failure. The first
// run needs the npm registry. The names of this file's top-level helpers all
// start with "web".

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/demo"
	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/ticket"
	"example.com/tokenvendingmachine/web"
)

// webLifetime is TOKEN_TTL in the tests that watch tokens be refreshed:
// with the emulator, its margin is a twelfth, 1s.
const webLifetime = 12 * time.Second

// webSessionTimeout bounds TestWebHelper's browser session.
const webSessionTimeout = 3 * time.Minute

// TestWebHelper runs its subtests in one headless Chromium, each page on an
// origin of its own, against a function and an emulator of its own. The two
// that watch refreshes run together, last.
func TestWebHelper(t *testing.T) {
	start := time.Now()
	bundle := webBundle(t)
	t.Logf("npm ci and esbuild: %v", time.Since(start).Round(time.Millisecond))
	browser := browserStart(t, webSessionTimeout)
	t.Run("ResumesAfterTheStreamIsCut", func(t *testing.T) { webTestCut(t, browser, bundle) })
	t.Run("RetryAfterDelaysTheNextFetch", func(t *testing.T) { webTestRetryAfter(t, browser, bundle) })
	t.Run("UnauthorizedAsksOnceMoreThenStops", func(t *testing.T) { webTestUnauthorized(t, browser, bundle) })
	t.Run("ForbiddenStops", func(t *testing.T) { webTestForbidden(t, browser, bundle) })
	t.Run("ResumesWhenTheNetworkIsBack", func(t *testing.T) { webTestOnline(t, browser, bundle) })
	t.Run("NoticesASleepByTheWallClock", func(t *testing.T) { webTestSleep(t, browser, bundle) })
	t.Run("DemoShowsWhatEachCallerSees", func(t *testing.T) { webTestDemo(t, browser, bundle) })
	t.Run("DemoSaysHowToGetTheSDK", func(t *testing.T) { webTestDemoWithoutSDK(t, browser) })
	t.Run("RefreshesWithoutLossOrDuplicates", func(t *testing.T) {
		t.Parallel()
		webTestRefresh(t, browser, bundle)
	})
	t.Run("TabsShareOneTokenFetch", func(t *testing.T) {
		t.Parallel()
		webTestTabs(t, browser, bundle)
	})
}

// webTestRefresh runs the README's example, a ticket holder following order
// 42, with 12s tokens, while an update is published every 100 ms, for at
// least three lifetimes and two refreshes: every update arrives once, in
// order, with no discontinuity.
func webTestRefresh(t *testing.T, browser context.Context, bundle []byte) {
	we := webSetup(t, browser, bundle, ticketEnv(map[string]string{"TOPICS": "none", "TOKEN_TTL": webLifetime.String()}), nil)
	tab := we.tab(t, browser, true)
	stop := webPublish(t, we.hs.momento, 100*time.Millisecond, "order-42-status-updated")
	start := time.Now()
	tab.open(t, we.site.URL+"/readme")
	refreshes, err := chromedp.Run(tab.ctx, chromedp.Poll[int](fmt.Sprintf(`(() => {
		const s = rec.states[rec.states.length - 1];
		return s && s.refreshes >= 2 && performance.now() > %d && s.refreshes;
	})()`, (3*webLifetime).Milliseconds()), chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(4*webLifetime+20*time.Second)))
	if err != nil {
		t.Fatalf("waiting for two refreshes over three lifetimes: %v; states %s", err, tab.states(t))
	}
	published := stop()
	events := tab.waitFor(t, "order-42-status-updated", published["order-42-status-updated"])
	got := webCheckStream(t, events, "order-42-status-updated", published["order-42-status-updated"])
	if got.gaps != 0 || got.missed != 0 {
		t.Errorf("across %d refreshes: %d missed, %d discontinuities; want none", refreshes, got.missed, got.gaps)
	}
	gets := we.fn.gets()
	t.Logf("%v, %d lifetimes of %v: %d updates received once and in order (of %d published; the first %d before the page subscribed), %d refreshes, %d token requests, %d mints",
		time.Since(start).Round(time.Millisecond), int(time.Since(start)/webLifetime), webLifetime, got.received, published["order-42-status-updated"],
		got.first-1, refreshes, gets, len(we.hs.momento.Mints()))
	if gets != refreshes+1 {
		t.Errorf("the function saw %d token requests for %d refreshes, want one each and one at the start", gets, refreshes)
	}
}

// webTestTabs opens the README's example in two tabs of one profile: the
// second takes the first's tokens, so the function sees one token request
// per refresh, and both receive every update once, in order.
func webTestTabs(t *testing.T, browser context.Context, bundle []byte) {
	we := webSetup(t, browser, bundle, ticketEnv(map[string]string{"TOPICS": "none", "TOKEN_TTL": webLifetime.String()}), nil)
	first := we.tab(t, browser, true)
	stop := webPublish(t, we.hs.momento, 100*time.Millisecond, "order-42-status-updated")
	start := time.Now()
	first.open(t, we.site.URL+"/readme")
	first.waitStatus(t, "live")
	second := we.tab(t, first.ctx, false) // a tab in the first one's profile
	second.open(t, we.site.URL+"/readme")
	second.waitStatus(t, "live")
	refreshes, err := chromedp.Run(first.ctx, chromedp.Poll[int](`(() => {
		const s = rec.states[rec.states.length - 1];
		return s && s.refreshes >= 2 && s.refreshes;
	})()`, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(3*webLifetime+20*time.Second)))
	if err != nil {
		t.Fatalf("waiting for two refreshes: %v; states %s", err, first.states(t))
	}
	published := stop()["order-42-status-updated"]
	for i, tab := range []*webTab{first, second} {
		got := webCheckStream(t, tab.waitFor(t, "order-42-status-updated", published), "order-42-status-updated", published)
		if got.gaps != 0 || got.missed != 0 {
			t.Errorf("tab %d: %d missed, %d discontinuities; want none", i+1, got.missed, got.gaps)
		}
		last := tab.lastState(t)
		t.Logf("tab %d (%s): %d updates once and in order, %d refreshes", i+1, last.Sharing, got.received, last.Refreshes)
	}
	if s := second.lastState(t); s.Sharing != "receiving" || s.Refreshes < 2 {
		t.Errorf("the second tab: sharing %q, %d refreshes; want receiving, at least 2", s.Sharing, s.Refreshes)
	}
	gets := we.fn.gets()
	t.Logf("%v: two tabs, %d refreshes, %d token requests at the function", time.Since(start).Round(time.Millisecond), refreshes, gets)
	if gets != refreshes+1 {
		t.Errorf("the function saw %d token requests for two tabs and %d refreshes, want %d", gets, refreshes, refreshes+1)
	}
}

// webTestCut ends the page's subscription from the emulator: first cleanly,
// while an item is published every 100 ms, which the web SDK resumes at the
// next sequence number, losing nothing; then with Unavailable, which the
// helper answers with a new subscription and one discontinuity for what was
// published meanwhile. The test places those items itself: one as the old
// subscription ends, which the page never sees, and one as the new one
// opens, which comes with its first heartbeat, so that the web SDK hands it
// over before its subscribe() has returned.
func webTestCut(t *testing.T, browser context.Context, bundle []byte) {
	we := webSetup(t, browser, bundle, nil, nil)
	tab := we.tab(t, browser, true)
	tab.open(t, we.site.URL+"/")
	tab.start(t, webOptions{URL: we.fn.URL + "/", Endpoint: we.grpcWeb, Cache: "pizza", Topics: []string{"orders"}})
	tab.waitStatus(t, "live")
	stop := webPublish(t, we.hs.momento, 100*time.Millisecond, "orders")
	tab.waitItems(t, 10)
	if n := we.hs.momento.EndSubscriptions(nil); n != 1 {
		t.Fatalf("EndSubscriptions(nil) = %d, want the page's one", n)
	}
	tab.waitItems(t, 20)
	before := stop()["orders"]
	clean := webCheckStream(t, tab.waitFor(t, "orders", before), "orders", before)
	if clean.gaps != 0 || clean.missed != 0 {
		t.Errorf("after a clean end: %d missed, %d discontinuities; want the SDK to resume with none", clean.missed, clean.gaps)
	}

	var calls atomic.Int32
	we.hs.momento.OnSubscription(func(cache, topic string, open bool) {
		if n := calls.Add(1); n == 1 && !open || n == 2 && open {
			if _, err := we.hs.momento.Publish(cache, topic, fmt.Sprintf("%s, published as subscription %d opened or ended", topic, n)); err != nil {
				t.Errorf("Publish: %v", err)
			}
		}
	})
	defer we.hs.momento.OnSubscription(nil)
	if n := we.hs.momento.EndSubscriptions(status.Error(codes.Unavailable, "draining")); n != 1 {
		t.Fatalf("EndSubscriptions(Unavailable) = %d, want the page's one", n)
	}
	tab.waitItems(t, clean.received+1)
	got := webCheckStream(t, tab.events(t), "orders", before+2)
	if got.gaps != 1 || got.reasons[0] != "resubscribed" || got.missed != 1 {
		t.Errorf("after an end with Unavailable: %d missed, discontinuities %v; want 1, and one discontinuity, resubscribed, before the item after it", got.missed, got.reasons)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d subscriptions opened or ended after the cut, want the page's one to end and one to open", n)
	}
	t.Logf("%d published, %d received once and in order, %d missed across the second cut, all reported (%v); %d subscriptions",
		before+2, got.received, got.missed, got.reasons, we.hs.momento.Count(momentotest.MethodSubscribe))
}

// webTestSleep moves the page's wall clock two hours on, as a sleep does on
// a machine whose page clock stops meanwhile: the helper takes its token
// for expired and fetches at once, while its subscription, which still
// delivers, carries on with nothing lost.
func webTestSleep(t *testing.T, browser context.Context, bundle []byte) {
	we := webSetup(t, browser, bundle, nil, nil)
	tab := we.tab(t, browser, true)
	tab.open(t, we.site.URL+"/")
	tab.start(t, webOptions{URL: we.fn.URL + "/", Endpoint: we.grpcWeb, Cache: "pizza", Topics: []string{"orders"}})
	tab.waitStatus(t, "live")
	stop := webPublish(t, we.hs.momento, 100*time.Millisecond, "orders")
	tab.waitItems(t, 5)
	before := we.fn.gets()
	start := time.Now()
	if _, err := chromedp.Run(tab.ctx, chromedp.Evaluate[bool](`sleep(2 * 3600 * 1000)`)); err != nil {
		t.Fatal(err)
	}
	for we.fn.gets() == before && time.Since(start) < 5*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	noticed := time.Since(start)
	tab.waitItems(t, len(tab.events(t))+5)
	published := stop()["orders"]
	got := webCheckStream(t, tab.waitFor(t, "orders", published), "orders", published)
	if gets := we.fn.gets(); gets != before+1 || noticed > 2*time.Second {
		t.Errorf("after the wall clock jumped: %d token requests, the first after %v; want one within the ticker's second", gets-before, noticed)
	}
	if got.gaps != 0 || got.missed != 0 {
		t.Errorf("after the wall clock jumped: %d missed, discontinuities %v; want none from a subscription that carried on", got.missed, got.reasons)
	}
	t.Logf("a 2 h jump of the wall clock: a token request %v later, %d items once and in order", noticed.Round(time.Millisecond), got.received)
}

// webTestOnline starts the page offline: its token request fails, and it
// waits for the network rather than retrying into it. When the browser says
// it is online again, it fetches within a second, not at its back-off.
func webTestOnline(t *testing.T, browser context.Context, bundle []byte) {
	front := &webFront{}
	front.down.Store(true)
	we := webSetup(t, browser, bundle, nil, front)
	tab := we.tab(t, browser, true)
	tab.open(t, we.site.URL+"/")
	if _, err := chromedp.Call(tab.ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		t.Fatalf("going offline: %v", err)
	}
	tab.start(t, webOptions{URL: we.front.URL + "/", Endpoint: we.grpcWeb, Cache: "pizza", Topics: []string{"orders"}})
	offline := tab.waitStatus(t, "retrying")
	if offline.Reason != "offline" || offline.RetryAt == nil {
		t.Errorf("offline, the page is retrying for %q at %v, want offline", offline.Reason, offline.RetryAt)
	}
	time.Sleep(500 * time.Millisecond)
	front.down.Store(false)
	back := time.Now()
	if _, err := chromedp.Call(tab.ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: false, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		t.Fatalf("going online: %v", err)
	}
	tab.waitStatus(t, "live")
	times := front.times()
	if len(times) != 2 || times[1].Sub(back) > 1500*time.Millisecond {
		t.Errorf("token requests at %v, online at %v: want one offline and one within a second of going online", times, back)
	}
	t.Logf("offline: %d request, then waiting for the network (the next try set %v ahead); online: a request %v later, then live",
		len(times)-1, time.Duration(*offline.RetryAt-float64(times[0].UnixMilli()))*time.Millisecond, times[len(times)-1].Sub(back).Round(time.Millisecond))
}

// webTestRetryAfter answers the page's first token request with 429 and
// Retry-After: 3: the next comes at least 3 s later, and the page says when.
func webTestRetryAfter(t *testing.T, browser context.Context, bundle []byte) {
	front := &webFront{answers: []webAnswer{{status: http.StatusTooManyRequests, retryAfter: "3"}}}
	we := webSetup(t, browser, bundle, nil, front)
	tab := we.tab(t, browser, true)
	tab.open(t, we.site.URL+"/")
	tab.start(t, webOptions{URL: we.front.URL + "/", Endpoint: we.grpcWeb, Cache: "pizza", Topics: []string{"orders"}})
	tab.waitStatus(t, "live")
	times := front.times()
	var retrying *webState
	for _, s := range tab.allStates(t) {
		if s.Status == "retrying" {
			retrying = &s
			break
		}
	}
	if len(times) != 2 || times[1].Sub(times[0]) < 3*time.Second {
		t.Errorf("token requests at %v, want two, 3 s apart at least", times)
	} else {
		t.Logf("429 with Retry-After: 3, then the next request %v later", times[1].Sub(times[0]).Round(time.Millisecond))
	}
	if retrying == nil || retrying.Reason != "http-429" || retrying.RetryAt == nil {
		t.Errorf("the page's states lack retrying (http-429) with a time: %s", tab.states(t))
	}
}

// webTestUnauthorized refuses every token request with 401: the helper asks
// the page's callback once more, tries once more, and stops.
func webTestUnauthorized(t *testing.T, browser context.Context, bundle []byte) {
	front := &webFront{answers: []webAnswer{{status: http.StatusUnauthorized}, {status: http.StatusUnauthorized}, {status: http.StatusUnauthorized}}}
	we := webSetup(t, browser, bundle, nil, front)
	tab := we.tab(t, browser, true)
	tab.open(t, we.site.URL+"/")
	tab.start(t, webOptions{URL: we.front.URL + "/", Endpoint: we.grpcWeb, Cache: "pizza", Topics: []string{"orders"}, Credential: "a-ticket"})
	last := tab.waitStatus(t, "stopped")
	time.Sleep(1500 * time.Millisecond) // time for a retry that must not come
	asks, err := chromedp.Run(tab.ctx, chromedp.Evaluate[[]bool](`rec.asks`))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(front.times()); n != 2 || last.Reason != "unauthorized" || fmt.Sprint(asks) != "[false true]" {
		t.Errorf("after 401s: %d requests, callback asked %v, stopped for %q; want 2 requests, [false true], unauthorized", n, asks, last.Reason)
	}
	t.Logf("401: credential asked %v, %d requests, stopped: %s (%s)", asks, len(front.times()), last.Reason, last.Message)
}

// webTestForbidden refuses the page's token request with 403: it stops, and
// asks no more.
func webTestForbidden(t *testing.T, browser context.Context, bundle []byte) {
	front := &webFront{answers: []webAnswer{{status: http.StatusForbidden}, {status: http.StatusForbidden}}}
	we := webSetup(t, browser, bundle, nil, front)
	tab := we.tab(t, browser, true)
	tab.open(t, we.site.URL+"/")
	tab.start(t, webOptions{URL: we.front.URL + "/", Endpoint: we.grpcWeb, Cache: "pizza", Topics: []string{"orders"}})
	last := tab.waitStatus(t, "stopped")
	time.Sleep(1500 * time.Millisecond)
	if n := len(front.times()); n != 1 || last.Reason != "forbidden" {
		t.Errorf("after a 403: %d requests, stopped for %q; want 1, forbidden", n, last.Reason)
	}
	t.Logf("403: %d request, stopped: %s (%s)", len(front.times()), last.Reason, last.Message)
}

// webTestDemo opens the demo page's live view while the pizzeria publishes:
// the visitor (TOPICS=*) receives every order; the customer of order 42,
// with a ticket, receives order 42's updates, is refused order 43's topic
// and never receives one of its items; alice receives her notifications
// only.
func webTestDemo(t *testing.T, browser context.Context, bundle []byte) {
	issuer := oidctest.NewServerT(t, oidctest.Options{})
	we := webSetup(t, browser, bundle, map[string]string{"OIDC_ISSUER": issuer.Issuer(), "OIDC_AUDIENCE": issuer.Audience(), "OIDC_TOPICS": "user-{sub}-*"}, nil)
	sdkFile := filepath.Join(t.TempDir(), "sdk-web.js")
	if err := os.WriteFile(sdkFile, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(demo.Handler(demo.Options{FunctionURL: we.fn.URL + "/", GRPCWebURL: we.grpcWeb, WebSDKFile: sdkFile,
		TicketKey: []byte(testTicketKey), TicketAudience: ticket.DefaultAudience, SignInURL: issuer.Issuer() + string(oidctest.EndpointToken)}))
	t.Cleanup(site.Close)
	ctx, cancel := context.WithCancel(context.Background())
	published := make(chan struct{})
	go func() {
		defer close(published)
		demo.RunPizzeria(ctx, 300*time.Millisecond, func(topic, text string) error {
			_, err := we.hs.momento.Publish("pizza", topic, text)
			return err
		}, func(err error) { t.Errorf("the pizzeria: %v", err) })
	}()
	t.Cleanup(func() { cancel(); <-published })

	start := time.Now()
	tab := we.tab(t, browser, true)
	tab.open(t, site.URL+"/demo")
	type topics map[string][]int
	got, err := chromedp.Run(tab.ctx, chromedp.Poll[map[string]struct {
		Items topics `json:"items"`
		State webState
	}](`(() => {
		const l = window.demoLive, enough = (c, t) => l && l[c] && (l[c].items[t] || []).length >= 3;
		return enough("visitor", "order-42-status-updated") && enough("visitor", "order-43-status-updated") && enough("visitor", "new-order") &&
			enough("ticket", "order-42-status-updated") && enough("user", "user-alice-notifications") &&
			l.ticket.state.topics["order-43-status-updated"].status === "refused" &&
			l.user.state.topics["user-bob-notifications"].status === "refused" && l;
	})()`, webPoll(30*time.Second)...))
	if err != nil {
		live, _ := chromedp.Run(tab.ctx, chromedp.Evaluate[any](`window.demoLive`))
		t.Fatalf("waiting for every caller's updates: %v\n%v", err, live)
	}
	for caller, want := range map[string][]string{
		"visitor": {"new-order", "order-42-status-updated", "order-43-status-updated"},
		"ticket":  {"order-42-status-updated"},
		"user":    {"user-alice-notifications"},
	} {
		var have []string
		for topic, seqs := range got[caller].Items {
			have = append(have, topic)
			for i := 1; i < len(seqs); i++ {
				if seqs[i] != seqs[i-1]+1 {
					t.Errorf("%s on %s: items %v, want each once, in order", caller, topic, seqs)
					break
				}
			}
		}
		slices.Sort(have)
		if !slices.Equal(have, want) {
			t.Errorf("%s received items on %v, want %v only", caller, have, want)
		}
		t.Logf("%s (%s): %v", caller, got[caller].State.Status, got[caller].Items)
	}
	if shot, err := chromedp.Run(tab.ctx, chromedp.FullScreenshot(100)); err == nil {
		t.Cleanup(func() {
			if t.Failed() {
				browserKeep(t, map[string][]byte{"demo-live.png": shot})
			}
		})
	}
	t.Logf("%v to every caller's third update", time.Since(start).Round(time.Millisecond))
}

// webTestDemoWithoutSDK opens the demo page where the web SDK cannot be
// loaded: it says which command builds it.
func webTestDemoWithoutSDK(t *testing.T, browser context.Context) {
	site := httptest.NewServer(demo.Handler(demo.Options{FunctionURL: "http://127.0.0.1:9/", GRPCWebURL: "http://127.0.0.1:9",
		WebSDKURL: "/missing-sdk.js", WebSDKFile: filepath.Join(t.TempDir(), "absent.js")}))
	t.Cleanup(site.Close)
	we := &webEnv{}
	tab := we.tab(t, browser, true)
	tab.open(t, site.URL+"/demo")
	text, err := chromedp.Run(tab.ctx, chromedp.Poll[string](`(document.getElementById("live-error") || {}).textContent`, webPoll(10*time.Second)...))
	if err != nil || !strings.Contains(text, demo.BundleCommand) {
		t.Errorf("the live view without the SDK says %q (%v), want the command %q", text, err, demo.BundleCommand)
	}
}

// webEnv is one test's stack: the function (behind front, if any), the
// emulator's gRPC-web port, and the site of the pages.
type webEnv struct {
	hs      *harness
	fn      *browserFunction
	front   *httptest.Server // the front, or nil
	grpcWeb string
	site    *httptest.Server
	bundle  []byte
}

// webSetup starts the function with env on a live clock, its emulator's
// gRPC-web port, a front that answers as front says (nil for none), and the
// site of the test pages: "/" (webPage), "/readme" (the README's example),
// "/tvm.js", "/sdk-web.js" and "/ticket" (the demo's, for order-42-*).
func webSetup(t *testing.T, browser context.Context, bundle []byte, env map[string]string, front *webFront) *webEnv {
	t.Helper()
	env = ticketEnv(env)
	we := &webEnv{hs: newLiveHarness(t, env), bundle: bundle}
	we.fn = &browserFunction{h: we.hs.h}
	we.fn.Server = httptest.NewServer(we.fn)
	t.Cleanup(we.fn.Close)
	if front != nil {
		front.fn = we.fn
		we.front = httptest.NewServer(front)
		t.Cleanup(we.front.Close)
	}
	var err error
	if we.grpcWeb, err = we.hs.momento.ServeGRPCWeb("", "*"); err != nil {
		t.Fatalf("ServeGRPCWeb: %v", err)
	}
	tickets := demo.Handler(demo.Options{FunctionURL: we.fn.URL + "/", TicketKey: []byte(testTicketKey), TicketAudience: ticket.DefaultAudience})
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(body)) //nolint:errcheck
		}
	}
	script := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(body) //nolint:errcheck
		}
	}
	mux.Handle("GET /{$}", page(webPage))
	mux.Handle("GET /readme", page(webReadmePage(t, we.fn.URL+"/", we.grpcWeb)))
	mux.Handle("GET /tvm.js", script([]byte(web.Module)))
	mux.Handle("GET /sdk-web.js", script(bundle))
	mux.Handle("GET /ticket", tickets)
	we.site = httptest.NewServer(mux)
	t.Cleanup(we.site.Close)
	return we
}

// webPage is the page most tests drive: start(options) runs subscribeTopics,
// and rec records what it reports.
const webPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>helper</title></head><body>
<script type="module">
import * as momento from "/sdk-web.js";
import {subscribeTopics} from "/tvm.js";
const rec = window.rec = {events: [], states: [], asks: []};
// sleep(ms) moves the wall clock as a machine's sleep does, leaving
// performance.now(), which on some systems does not count a sleep, alone.
const wallNow = Date.now.bind(Date);
let slept = 0;
Date.now = () => wallNow() + slept;
window.sleep = ms => { slept += ms; return true; };
window.start = o => {
	const credential = o.credential;
	window.sub = subscribeTopics({...o, sdk: momento,
		credential: credential === undefined ? undefined : async ({rejected}) => { rec.asks.push(rejected); return credential; },
		onItem: (item, topic) => rec.events.push({kind: "item", topic, seq: item.sequenceNumber(), value: item.valueString()}),
		onDiscontinuity: d => rec.events.push({kind: "gap", topic: d.topic, reason: d.reason, last: d.lastSequenceNumber, next: d.newSequenceNumber}),
		onState: s => rec.states.push(s),
	});
	return true;
};
window.ready = true;
</script></body></html>
`

// webReadmePage returns a page that runs the code of the README's "Calling
// it from a web page", with its URLs pointed at fnURL and the emulator's
// gRPC-web URL, and its page functions recording into rec as webPage's do.
func webReadmePage(t *testing.T, fnURL, grpcWeb string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## Calling it from a web page\n")
	_, code, _ := strings.Cut(section, "```js\n")
	code, _, ok := strings.Cut(code, "```")
	if !ok {
		t.Fatal(`README.md: no js code block under "## Calling it from a web page"`)
	}
	url, _ := json.Marshal(fnURL)
	endpoint, _ := json.Marshal(grpcWeb)
	for _, r := range [][2]string{
		{`"https://esm.sh/@gomomento/sdk-web@1.118.0"`, `"/sdk-web.js"`},
		{`"./tvm.js"`, `"/tvm.js"`},
		{`url: "https://REGION-PROJECT.cloudfunctions.net/token-vending-machine",`, "url: " + string(url) + ", endpoint: " + string(endpoint) + ","},
	} {
		if strings.Count(code, r[0]) != 1 {
			t.Fatalf("README.md's example no longer holds %s once:\n%s", r[0], code)
		}
		code = strings.Replace(code, r[0], r[1], 1)
	}
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>README</title></head><body>
<script>
const rec = window.rec = {events: [], states: [], asks: []};
const topic = "order-42-status-updated";
function showUpdate(value) { rec.events.push({kind: "item", topic, seq: Number(value.split("#")[1]), value}); }
function reloadOrder() { rec.events.push({kind: "gap", topic, reason: "reload"}); }
function showStatus(state) { rec.states.push(state); }
</script>
<script type="module">
` + code + `
window.order = order;
</script></body></html>
`
}

// webOptions are subscribeTopics's options that webPage's start takes.
type webOptions struct {
	URL        string   `json:"url"`
	Endpoint   string   `json:"endpoint,omitempty"`
	Cache      string   `json:"cache"`
	Topics     []string `json:"topics"`
	Credential string   `json:"credential,omitempty"` // what the callback returns; "" for none
	Share      string   `json:"share,omitempty"`
}

// webTab is a browser tab.
type webTab struct {
	ctx     context.Context
	console *browserConsole
}

// tab opens a tab under parent: in a fresh profile if fresh, else in
// parent's. It closes when t ends, logging its console if t failed.
func (we *webEnv) tab(t *testing.T, parent context.Context, fresh bool) *webTab {
	t.Helper()
	tab := &webTab{console: &browserConsole{}}
	opts := []chromedp.ContextOption{chromedp.WithListener(tab.console.record)}
	if fresh {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			for _, line := range tab.console.all() {
				t.Logf("browser console: %s", line)
			}
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tab.ctx = ctx
	return tab
}

func (tab *webTab) open(t *testing.T, url string) {
	t.Helper()
	if err := chromedp.Do(tab.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// start waits for webPage's module and starts the helper with o.
func (tab *webTab) start(t *testing.T, o webOptions) {
	t.Helper()
	b, _ := json.Marshal(o)
	if _, err := chromedp.Run(tab.ctx, chromedp.Poll[bool](`window.ready === true`, webPoll(10*time.Second)...)); err != nil {
		t.Fatalf("the page's module did not load: %v", err)
	}
	if _, err := chromedp.Run(tab.ctx, chromedp.Evaluate[bool](`start(`+string(b)+`)`)); err != nil {
		t.Fatalf("start(%s): %v", b, err)
	}
}

// webEvent is an item or a discontinuity, as the page received it.
type webEvent struct {
	Kind   string `json:"kind"` // "item" or "gap"
	Topic  string `json:"topic"`
	Seq    uint64 `json:"seq"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
	Last   *int64 `json:"last"`
	Next   *int64 `json:"next"`
}

// webState is the helper's state (tvm.d.ts's State).
type webState struct {
	Status          string   `json:"status"`
	Reason          string   `json:"reason"`
	Message         string   `json:"message"`
	RetryAt         *float64 `json:"retryAt"`
	Refreshes       int      `json:"refreshes"`
	Discontinuities int      `json:"discontinuities"`
	Sharing         string   `json:"sharing"`
	Topics          map[string]struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"topics"`
}

func (tab *webTab) events(t *testing.T) []webEvent {
	t.Helper()
	ev, err := chromedp.Run(tab.ctx, chromedp.Evaluate[[]webEvent](`rec.events`))
	if err != nil {
		t.Fatalf("reading the page's events: %v", err)
	}
	return ev
}

func (tab *webTab) allStates(t *testing.T) []webState {
	t.Helper()
	s, err := chromedp.Run(tab.ctx, chromedp.Evaluate[[]webState](`rec.states`))
	if err != nil {
		t.Fatalf("reading the page's states: %v", err)
	}
	return s
}

func (tab *webTab) lastState(t *testing.T) webState {
	t.Helper()
	s, err := chromedp.Run(tab.ctx, chromedp.Evaluate[webState](`rec.states[rec.states.length - 1] || {}`))
	if err != nil {
		t.Fatalf("reading the page's state: %v", err)
	}
	return s
}

// states returns the statuses the page went through, for messages.
func (tab *webTab) states(t *testing.T) string {
	var out []string
	for _, s := range tab.allStates(t) {
		line := s.Status
		if s.Reason != "" {
			line += " (" + s.Reason + ": " + s.Message + ")"
		}
		out = append(out, line)
	}
	return strings.Join(out, ", ")
}

// waitStatus waits until the helper's state is status, and returns it.
func (tab *webTab) waitStatus(t *testing.T, status string) webState {
	t.Helper()
	q, _ := json.Marshal(status)
	s, err := chromedp.Run(tab.ctx, chromedp.Poll[webState](`(() => {
		const s = rec.states[rec.states.length - 1];
		return s && s.status === `+string(q)+` && s;
	})()`, webPoll(20*time.Second)...))
	if err != nil {
		t.Fatalf("waiting for the state %s: %v; states %s", status, err, tab.states(t))
	}
	return s
}

// waitItems waits until the page has received n items.
func (tab *webTab) waitItems(t *testing.T, n int) {
	t.Helper()
	if _, err := chromedp.Run(tab.ctx, chromedp.Poll[bool](fmt.Sprintf(`rec.events.filter(e => e.kind === "item").length >= %d`, n), webPoll(20*time.Second)...)); err != nil {
		t.Fatalf("waiting for %d items: %v; states %s", n, err, tab.states(t))
	}
}

// waitFor waits until the page has received item last of topic, or a
// second has passed, and returns its events.
func (tab *webTab) waitFor(t *testing.T, topic string, last uint64) []webEvent {
	t.Helper()
	q, _ := json.Marshal(topic)
	chromedp.Run(tab.ctx, chromedp.Poll[bool](fmt.Sprintf(`rec.events.some(e => e.kind === "item" && e.topic === %s && e.seq >= %d)`, q, last), webPoll(time.Second)...)) //nolint:errcheck // the check says what is missing
	return tab.events(t)
}

func webPoll(timeout time.Duration) []chromedp.PollOption {
	return []chromedp.PollOption{chromedp.WithPollingInterval(50 * time.Millisecond), chromedp.WithPollingTimeout(timeout)}
}

// webStream is what webCheckStream found.
type webStream struct {
	first, received, missed, gaps int
	reasons                       []string
}

// webCheckStream checks the items of topic in events: sequence numbers
// ascending, each once, a jump only after a discontinuity was reported, and
// (unless last is 0) the last one published received.
func webCheckStream(t *testing.T, events []webEvent, topic string, last uint64) webStream {
	t.Helper()
	var got webStream
	var prev uint64
	reported := false
	for _, e := range events {
		if e.Topic != topic {
			continue
		}
		if e.Kind == "gap" {
			got.gaps++
			got.reasons = append(got.reasons, e.Reason)
			reported = true
			continue
		}
		switch {
		case prev == 0:
			got.first = int(e.Seq)
		case e.Seq <= prev:
			t.Errorf("%s: item %d after %d: duplicated or out of order", topic, e.Seq, prev)
		case e.Seq > prev+1 && !reported:
			t.Errorf("%s: items %d to %d missed without a discontinuity", topic, prev+1, e.Seq-1)
		}
		if prev != 0 && e.Seq > prev+1 {
			got.missed += int(e.Seq - prev - 1)
		}
		reported = false
		prev = max(prev, e.Seq)
		got.received++
	}
	if last != 0 && prev != last {
		t.Errorf("%s: the last item received is %d, want %d, the last published", topic, prev, last)
	}
	return got
}

// webPublish publishes "<topic> #<n>" on each topic every interval, as the
// account, until the returned func is called, which returns the last
// sequence number published on each topic. Each topic is new: its numbers
// are n.
func webPublish(t *testing.T, s *momentotest.Server, every time.Duration, topics ...string) func() map[string]uint64 {
	t.Helper()
	done, stopped := make(chan struct{}), make(chan struct{})
	last := map[string]uint64{}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for n := uint64(1); ; n++ {
			for _, topic := range topics {
				seq, err := s.Publish("pizza", topic, topic+" #"+strconv.FormatUint(n, 10))
				if err != nil || seq != n {
					t.Errorf("Publish(%s #%d) = %d, %v", topic, n, seq, err)
					return
				}
				last[topic] = seq
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop := func() map[string]uint64 {
		once.Do(func() { close(done) })
		<-stopped
		return last
	}
	t.Cleanup(func() { stop() })
	return stop
}

// webAnswer is a status that webFront answers with.
type webAnswer struct {
	status     int
	retryAfter string
}

// webFront stands in front of the function: it answers the first token
// requests (GETs) with its answers, with CORS so that the page can read
// them, and passes everything else to the function.
type webFront struct {
	fn      http.Handler
	answers []webAnswer
	// down, while true, makes every token request fail as a network does:
	// the connection closes without an answer.
	down atomic.Bool

	mu   sync.Mutex // guards gets
	gets []time.Time
}

func (f *webFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		f.fn.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	n := len(f.gets)
	f.gets = append(f.gets, time.Now())
	f.mu.Unlock()
	if f.down.Load() {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if n >= len(f.answers) {
		f.fn.ServeHTTP(w, r)
		return
	}
	a := f.answers[n]
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	fmt.Fprintf(w, `{"message": %q}`+"\n", http.StatusText(a.status))
}

// times returns when each token request arrived.
func (f *webFront) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.gets...)
}

// gets returns how many token requests (GETs) the function has served.
func (f *browserFunction) gets() int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == http.MethodGet {
			n++
		}
	}
	return n
}

// webBundled is the bundle of the web SDK, made once per test binary.
var webBundled struct {
	once sync.Once
	js   []byte
	err  error
}

// webBundle returns the web SDK as an ES module, bundled by esbuild from a
// copy of web/'s package.json and lockfile, so that concurrent test
// binaries do not share a node_modules. It skips or fails t without node.
func webBundle(t *testing.T) []byte {
	t.Helper()
	node, npm := functest.Node(t)
	webBundled.once.Do(func() {
		webBundled.js, webBundled.err = webBuild(node, npm)
	})
	if webBundled.err != nil {
		t.Fatal(webBundled.err)
	}
	return webBundled.js
}

func webBuild(node, npm string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "tvm-web-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"package.json", "package-lock.json", "sdk-web.js"} {
		b, err := os.ReadFile(filepath.Join("web", name))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, "sdk-web.bundle.js")
	for _, cmd := range []*exec.Cmd{
		// esbuild needs no install script: its launcher finds the binary in
		// the @esbuild package for this platform.
		exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"),
		exec.CommandContext(ctx, node, filepath.Join("node_modules", "esbuild", "bin", "esbuild"),
			"sdk-web.js", "--bundle", "--format=esm", "--log-level=warning", "--outfile="+out),
	} {
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
		}
	}
	return os.ReadFile(out)
}
