package tokenvendingmachine

// The browser end-to-end tests: the function, served over HTTP, called from
// pages in headless Chromium the way a web app calls it, across origins.
// They need Chromium (the Debian package chromium) on PATH; without it they
// skip, unless REQUIRE_BROWSER=1, which CI sets, makes that a failure. The
// names of this file's top-level helpers all start with "browser".

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/demo"
	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/idtoken"
	"example.com/tokenvendingmachine/internal/logbuf"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/ticket"
)

// browserSessionTimeout bounds TestBrowser's browser session, from Chromium's
// start to the last subtest's last action.
const browserSessionTimeout = 60 * time.Second

// browserPage is the page on origin A that the tests run fetch in. Its icon
// is inline, so the browser asks its server for nothing else.
const browserPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>origin A</title></head>
<body><p>A page on another origin than the function.</p></body></html>
`

// TestBrowser runs its subtests in one headless Chromium, each in a tab of
// its own, with a fresh profile (a new browser context), against a function
// of its own.
func TestBrowser(t *testing.T) {
	browser := browserStart(t, browserSessionTimeout)
	t.Run("FetchFromAnotherOrigin", func(t *testing.T) { browserTestFetch(t, browser) })
	t.Run("DisallowedOriginCannotRead", func(t *testing.T) { browserTestDisallowedOrigin(t, browser) })
	t.Run("PreflightForACustomHeader", func(t *testing.T) { browserTestPreflight(t, browser) })
	t.Run("DemoPage", func(t *testing.T) { browserTestDemoPage(t, browser) })
	t.Run("DemoPageHonoursRetryAfter", func(t *testing.T) { browserTestDemoRetryAfter(t, browser) })
	t.Run("DemoPageRefusedOrigin", func(t *testing.T) { browserTestDemoRefusedOrigin(t, browser) })
	t.Run("DemoPageTracksAnOrder", func(t *testing.T) { browserTestDemoOrder(t, browser) })
	t.Run("NoCorsRequestsMintNothing", func(t *testing.T) { browserTestNoCors(t, browser) })
	t.Run("DemoPageSignsIn", func(t *testing.T) { browserTestDemoSignIn(t, browser) })
}

// browserTestDemoSignIn uses the demo page's sign-in mode: the page gets an
// ID token from a login issuer on a third origin and sends it to the
// function, which mints a token for OIDC_TOPICS.
func browserTestDemoSignIn(t *testing.T, browser context.Context) {
	harnessNow := func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) } // newHarness's clock
	issuer := oidctest.NewServerT(t, oidctest.Options{Now: harnessNow})
	be := browserSetup(t, browser, func(string) map[string]string {
		return map[string]string{"TOPICS": "none", "OIDC_ISSUER": issuer.Issuer(), "OIDC_AUDIENCE": issuer.Audience(), "OIDC_TOPICS": "user-{sub}-*"}
	})
	site := httptest.NewServer(demo.Handler(demo.Options{FunctionURL: be.fn.URL + "/",
		SignInURL: issuer.Issuer() + string(oidctest.EndpointToken)}))
	t.Cleanup(site.Close)
	be.open(t, site.URL+"/demo")
	if _, err := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the visitor's fetch: %v", err)
	}
	if _, err := chromedp.Run(be.ctx, chromedp.Evaluate[bool](`(() => {
		document.getElementById("status").className = "";
		document.getElementById("user").value = "alice";
		document.querySelector("input[value=user]").click();
		return true;
	})()`)); err != nil {
		t.Fatalf("choosing the sign-in mode: %v", err)
	}
	if _, err := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the sign-in's fetch: %v", err)
	}
	page, err := chromedp.Run(be.ctx, browserDemoRead)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != "ok" || !strings.Contains(page.Scope, "user-alice-*") {
		t.Errorf("demo page signed in as alice: #status %q (%s), #scope %q; want a token for user-alice-*", page.StatusText, page.Status, page.Scope)
	}
	want := idtoken.TokenID(issuer.Issuer(), "alice")
	if !strings.Contains(page.TokenID, want) {
		t.Errorf("demo page #tokenid = %q, want %q", page.TokenID, want)
	}
}

// browserTestNoCors has a page on an origin ALLOWED_ORIGINS does not list
// point an <img> and a no-cors fetch at the function: requests a browser
// sends without Origin, whose answer the page cannot read. They must mint
// nothing.
func browserTestNoCors(t *testing.T, browser context.Context) {
	be := browserSetup(t, browser, func(string) map[string]string {
		return map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com"}
	})
	be.open(t, be.page.URL+"/")
	fn, _ := json.Marshal(be.fn.URL + "/")
	_, err := chromedp.Run(be.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`Promise.all([
		new Promise(done => { const img = new Image(); img.onload = img.onerror = () => done(true); img.src = %s + "?img"; }),
		fetch(%s + "?no-cors", {mode: "no-cors"}).then(() => true, () => true),
	]).then(() => true)`, fn, fn), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("img and no-cors fetch in the page: %v", err)
	}
	reqs := be.fn.requests()
	gets := 0
	for _, r := range reqs {
		if r.Method == http.MethodGet {
			gets++
			if r.Status != http.StatusForbidden || r.AllowOrigin != "" {
				t.Errorf("a no-cors request got status %d, Access-Control-Allow-Origin %q; want 403 and none", r.Status, r.AllowOrigin)
			}
		}
	}
	if gets != 2 {
		t.Errorf("the function saw %d GETs, want the img's and the fetch's: %+v", gets, reqs)
	}
	if n := len(be.hs.momento.Mints()); n != 0 {
		t.Errorf("an img and a no-cors fetch from another site minted %d tokens", n)
	}
}

// browserTestFetch fetches a token twice from a page on another origin, with
// ALLOWED_ORIGINS unset and listing the page's origin.
func browserTestFetch(t *testing.T, browser context.Context) {
	tests := []struct {
		name string
		env  func(pageOrigin string) map[string]string
		// wantAllowOrigin is the Access-Control-Allow-Origin the function
		// sends; "" means the page's origin.
		wantAllowOrigin string
	}{
		{name: "any origin", env: func(string) map[string]string { return nil }, wantAllowOrigin: "*"},
		{name: "listed origin", env: func(page string) map[string]string {
			return map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com, " + page}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := browserSetup(t, browser, tt.env)
			be.open(t, be.page.URL)
			first := be.fetchToken(t, nil)
			now := be.hs.momento.Now()
			if ahead := time.Unix(first.Exp, 0).Sub(now); ahead < time.Hour-10*time.Second || ahead > time.Hour {
				t.Errorf("exp = %d, %v after the fake's clock (%d); want about 1h", first.Exp, ahead, now.Unix())
			}
			if first.ExpiresIn < 3590 || first.ExpiresIn > 3600 {
				t.Errorf("expires_in = %d, want 3590 to 3600", first.ExpiresIn)
			}

			again := be.fetchToken(t, nil)
			if again.Token != first.Token || again.Exp != first.Exp {
				t.Errorf("second fetch got another token or exp (exp %d, want %d)", again.Exp, first.Exp)
			}
			mints := be.hs.momento.Mints()
			if len(mints) != 1 || mints[0].Token != first.Token {
				t.Errorf("mints = %d, want 1, of the token the page got", len(mints))
			}

			wantOrigin := tt.wantAllowOrigin
			if wantOrigin == "" {
				wantOrigin = be.page.URL
			}
			want := []browserRequest{
				{Method: "GET", Origin: be.page.URL, Status: http.StatusOK, AllowOrigin: wantOrigin},
				{Method: "GET", Origin: be.page.URL, Status: http.StatusOK, AllowOrigin: wantOrigin},
			}
			if diff := cmp.Diff(want, be.fn.requests()); diff != "" {
				t.Errorf("requests the function saw (-want +got):\n%s", diff)
			}
		})
	}
}

// browserTestDisallowedOrigin fetches from a page whose origin is not in
// ALLOWED_ORIGINS: the browser blocks the response, and no token is minted.
func browserTestDisallowedOrigin(t *testing.T, browser context.Context) {
	tests := []struct {
		name    string
		headers map[string]string
		want    []browserRequest // what the function sees
		// wantCORSError is why Chromium blocks the response, as DevTools
		// reports it.
		wantCORSError network.CorsError
	}{
		{
			name: "simple GET",
			want: []browserRequest{{Method: "GET", Status: http.StatusForbidden}},
			// The function answered 403 without minting; the browser
			// hides even that from the page.
			wantCORSError: network.CorsErrorMissingAllowOriginHeader,
		},
		{
			name:    "preflighted GET",
			headers: map[string]string{"X-Request-Id": "abc"},
			// The preflight fails, so the GET is never sent.
			want:          []browserRequest{{Method: "OPTIONS", Status: http.StatusForbidden, RequestMethod: "GET", RequestHeaders: "x-request-id"}},
			wantCORSError: network.CorsErrorPreflightMissingAllowOriginHeader,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := browserSetup(t, browser, func(string) map[string]string {
				return map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com"}
			})
			be.open(t, be.page.URL)

			var got browserFetchResult
			fetch := func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
				var err error
				got, err = browserFetch(be.fn.URL+"/", tt.headers)(ctx, tgt)
				return chromedp.Void{}, err
			}
			blocked, err := chromedp.Run(be.ctx, chromedp.WaitEvent(network.LoadingFailed,
				func(e network.EventLoadingFailed) bool { return e.CorsErrorStatus != nil }, fetch))
			if err != nil {
				t.Fatalf("fetch from a disallowed origin, waiting for Chromium's CORS error: %v", err)
			}
			if got.Error != "TypeError" || got.Status != 0 {
				t.Errorf("fetch from a disallowed origin = %+v, want a rejection with a TypeError", got)
			}
			if e := blocked.CorsErrorStatus.CorsError; e != tt.wantCORSError {
				t.Errorf("Chromium's CORS error = %s (%s), want %s", e, blocked.ErrorText, tt.wantCORSError)
			}

			want := slices.Clone(tt.want)
			for i := range want {
				want[i].Origin = be.page.URL
			}
			if diff := cmp.Diff(want, be.fn.requests()); diff != "" {
				t.Errorf("requests the function saw (-want +got):\n%s", diff)
			}
			if mints := be.hs.momento.Mints(); len(mints) != 0 {
				t.Errorf("minted %d tokens for a disallowed origin, want none", len(mints))
			}
		})
	}
}

// browserTestPreflight fetches with a header that is not CORS-safelisted, so
// the browser asks first with OPTIONS, and reuses that answer next time.
func browserTestPreflight(t *testing.T, browser context.Context) {
	be := browserSetup(t, browser, func(string) map[string]string { return nil })
	be.open(t, be.page.URL)
	headers := map[string]string{"X-Request-Id": "abc"}
	first := be.fetchToken(t, headers)
	again := be.fetchToken(t, headers)
	if again.Token != first.Token {
		t.Errorf("second fetch got another token")
	}
	// One preflight: Access-Control-Max-Age lets the browser reuse it.
	want := []browserRequest{
		{Method: "OPTIONS", Origin: be.page.URL, Status: http.StatusNoContent, AllowOrigin: "*", RequestMethod: "GET", RequestHeaders: "x-request-id"},
		{Method: "GET", Origin: be.page.URL, Status: http.StatusOK, AllowOrigin: "*", RequestID: "abc"},
		{Method: "GET", Origin: be.page.URL, Status: http.StatusOK, AllowOrigin: "*", RequestID: "abc"},
	}
	if diff := cmp.Diff(want, be.fn.requests()); diff != "" {
		t.Errorf("requests the function saw (-want +got):\n%s", diff)
	}
}

// browserTestDemoPage loads the demo page, pointed at the function, checks
// what it shows once it has a token, and screenshots it.
func browserTestDemoPage(t *testing.T, browser context.Context) {
	be := browserSetup(t, browser, func(string) map[string]string { return nil })
	site := httptest.NewServer(demo.Handler(demo.Options{FunctionURL: be.fn.URL + "/"}))
	t.Cleanup(site.Close)
	be.open(t, site.URL+"/demo")

	// The page sets #status's class to "ok" or "err" once its fetch ends.
	_, waitErr := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	page, err := chromedp.Run(be.ctx, browserDemoRead)
	if err != nil {
		t.Errorf("reading the demo page: %v", err)
	}
	shot, shotErr := chromedp.Run(be.ctx, chromedp.FullScreenshot(100))
	shotPath := filepath.Join(t.TempDir(), "demo.png")
	if shotErr != nil {
		t.Errorf("screenshot of the demo page: %v", shotErr)
	} else if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Errorf("saving the screenshot: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			browserKeep(t, map[string][]byte{
				"demo.png":     shot,
				"demo-log.txt": []byte("#status: " + page.StatusText + "\n#log:\n" + page.Log),
			})
		}
	})

	if waitErr != nil {
		t.Fatalf("waiting for the demo page to fetch a token: %v (#status %q)", waitErr, page.StatusText)
	}
	if page.Status != "ok" {
		t.Fatalf("demo page #status: class %q, text %q; want class ok", page.Status, page.StatusText)
	}
	if !strings.Contains(page.Scope, "subscribe only") {
		t.Errorf("demo page #scope = %q, want it to say subscribe only", page.Scope)
	}
	// The countdown starts at the token's expires_in, 3600 s, and ticks
	// once a second.
	if !regexp.MustCompile(`^(59:5\d|60:00)$`).MatchString(page.Countdown) {
		t.Errorf("demo page #countdown = %q, want 60:00 or 59:5x", page.Countdown)
	}
	if exc := be.console.exceptions(); len(exc) > 0 {
		t.Errorf("the demo page threw:\n%s", strings.Join(exc, "\n"))
	}
	if n := len(be.hs.momento.Mints()); n != 1 {
		t.Errorf("mints = %d, want 1", n)
	}
}

// browserTestDemoRetryAfter loads the demo page while the function refuses
// new tokens with 429 and a Retry-After of 100 s, and checks that the page
// waits that long, and says so, rather than retrying in a few seconds.
func browserTestDemoRetryAfter(t *testing.T, browser context.Context) {
	be := browserSetup(t, browser, func(string) map[string]string {
		return map[string]string{"FLEET_MINT_BURST": "2", "FLEET_MINT_RATE": "0.01"} // one mint per 100 s window
	})
	be.hs.token(t, "192.0.2.1") // spends the burst
	page := browserDemoLoad(t, be, be.fn.URL+"/")
	if page.Status != "err" || !strings.Contains(page.StatusText, "429") || !strings.Contains(page.StatusText, "retrying in 100 s") {
		t.Errorf("demo page #status = %q (class %q), want a 429 retried in 100 s", page.StatusText, page.Status)
	}
	if !strings.HasSuffix(page.Next, "(retry)") {
		t.Errorf("demo page #next = %q, want the retry's time", page.Next)
	}
	// Nothing more is fetched for longer than the page's own 5 s default:
	// the retry waits 100 s.
	before := len(be.fn.requests())
	time.Sleep(6 * time.Second)
	if after := len(be.fn.requests()); after != before {
		t.Errorf("the page fetched %d more times within 6 s of a 429 with Retry-After 100", after-before)
	}
}

// browserTestDemoRefusedOrigin loads the demo page from an origin that
// ALLOWED_ORIGINS does not list, and checks that the page says what the
// likely cause is.
func browserTestDemoRefusedOrigin(t *testing.T, browser context.Context) {
	be := browserSetup(t, browser, func(string) map[string]string {
		return map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com"}
	})
	page := browserDemoLoad(t, be, be.fn.URL+"/")
	if page.Status != "err" || !strings.Contains(page.StatusText, "ALLOWED_ORIGINS") {
		t.Errorf("demo page #status = %q (class %q), want it to name ALLOWED_ORIGINS", page.StatusText, page.Status)
	}
	if n := len(be.hs.momento.Mints()); n != 0 {
		t.Errorf("mints = %d for a refused origin, want 0", n)
	}
}

// browserTestDemoOrder uses the demo page's order mode: the page gets a
// ticket from its own server (the app's backend) and sends it to the
// function on another origin as Authorization, which needs a preflight.
func browserTestDemoOrder(t *testing.T, browser context.Context) {
	be := browserSetup(t, browser, func(string) map[string]string {
		return ticketEnv(map[string]string{"TOPICS": "none"})
	})
	site := httptest.NewServer(demo.Handler(demo.Options{FunctionURL: be.fn.URL + "/",
		TicketKey: []byte(testTicketKey), TicketAudience: ticket.DefaultAudience, Now: be.hs.momento.Now}))
	t.Cleanup(site.Close)
	be.open(t, site.URL+"/demo")
	// As a visitor, TOPICS=none refuses the page.
	if _, err := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the visitor's fetch: %v", err)
	}
	_, err := chromedp.Run(be.ctx, chromedp.Evaluate[bool](`(() => {
		document.getElementById("status").className = "";
		document.getElementById("order").value = "42";
		document.querySelector("input[value=order]").click();
		return true;
	})()`))
	if err != nil {
		t.Fatalf("choosing the order mode: %v", err)
	}
	if _, err := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the order's fetch: %v", err)
	}
	page, err := chromedp.Run(be.ctx, browserDemoRead)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != "ok" || !strings.Contains(page.Scope, "order-42-*") || !strings.Contains(page.Scope, "subscribe only") {
		t.Errorf("demo page in order mode: #status %q (%s), #scope %q; want a token for order-42-*", page.StatusText, page.Status, page.Scope)
	}
	preflight := false
	for _, r := range be.fn.requests() {
		if r.Method == http.MethodOptions && strings.Contains(strings.ToLower(r.RequestHeaders), "authorization") && r.Status == http.StatusNoContent {
			preflight = true
		}
	}
	if !preflight {
		t.Errorf("no preflight for Authorization reached the function: %+v", be.fn.requests())
	}
	mints := be.hs.momento.Mints()
	if len(mints) != 1 || mints[0].TokenID != "customer-of-order-42" {
		t.Errorf("mints %+v, want one for the ticket's sub", mints)
	}

	// An order the demo backend refuses: the error must not leave order
	// 42's token on screen, as if it were this order's.
	if _, err := chromedp.Run(be.ctx, chromedp.Evaluate[bool](`(() => {
		document.getElementById("status").className = "";
		document.getElementById("order").value = "4-x";
		document.getElementById("refresh").click();
		return true;
	})()`)); err != nil {
		t.Fatalf("asking for a refused order: %v", err)
	}
	if _, err := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the refused order's fetch: %v", err)
	}
	page, err = chromedp.Run(be.ctx, browserDemoRead)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != "err" || page.Scope != "–" || page.TokenID != "–" || page.Countdown != "–" {
		t.Errorf("demo page after an error: #status %q (%s), #scope %q, #tokenid %q, #countdown %q; want the error and no token shown",
			page.StatusText, page.Status, page.Scope, page.TokenID, page.Countdown)
	}
}

// browserDemoLoad opens the demo page, pointed at fnURL, waits for its first
// fetch to end, and returns what it shows.
func browserDemoLoad(t *testing.T, be *browserEnv, fnURL string) browserDemoState {
	t.Helper()
	site := httptest.NewServer(demo.Handler(demo.Options{FunctionURL: fnURL}))
	t.Cleanup(site.Close)
	be.open(t, site.URL+"/demo")
	if _, err := chromedp.Run(be.ctx, chromedp.Poll[string](`document.getElementById("status").className`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the demo page's fetch: %v", err)
	}
	page, err := chromedp.Run(be.ctx, browserDemoRead)
	if err != nil {
		t.Fatalf("reading the demo page: %v", err)
	}
	return page
}

// browserDemoRead reads what the demo page shows.
var browserDemoRead = chromedp.Evaluate[browserDemoState](`(() => {
	const text = id => document.getElementById(id).textContent;
	return {status: document.getElementById("status").className, statusText: text("status"),
		scope: text("scope"), countdown: text("countdown"), next: text("next"), tokenid: text("tokenid"), log: text("log")};
})()`)

// browserDemoState is what the demo page shows.
type browserDemoState struct {
	Status     string `json:"status"` // #status's class: "ok" or "err" after a fetch
	StatusText string `json:"statusText"`
	Scope      string `json:"scope"`
	Countdown  string `json:"countdown"`
	Next       string `json:"next"`
	TokenID    string `json:"tokenid"`
	Log        string `json:"log"`
}

// browserEnv is the function on one origin (fn), a page on another (page),
// and a browser tab to load pages in.
type browserEnv struct {
	hs   *harness
	page *httptest.Server // origin A: browserPage at /
	fn   *browserFunction // origin B: the function
	// ctx is the tab's context; it ends when the browser session does.
	ctx     context.Context
	console *browserConsole
}

// browserSetup starts the function, with the environment env returns for the
// page's origin, on its own server, the page's server, and a tab in browser
// with a fresh profile. Everything stops when t ends.
func browserSetup(t *testing.T, browser context.Context, env func(pageOrigin string) map[string]string) *browserEnv {
	t.Helper()
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, browserPage)
	}))
	t.Cleanup(page.Close)
	h := newHarness(t, env(page.URL))
	fn := &browserFunction{h: h.h}
	fn.Server = httptest.NewServer(fn)
	t.Cleanup(fn.Close)

	be := &browserEnv{hs: h, page: page, fn: fn, console: &browserConsole{}}
	// A new browser context is a fresh profile: no cache, cookies or
	// preflights from another subtest.
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(be.console.record))
	t.Cleanup(func() {
		cancel() // closes the tab before the servers close
		if t.Failed() {
			for _, line := range be.console.all() {
				t.Logf("browser console: %s", line)
			}
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	be.ctx = ctx
	return be
}

// browserStart starts headless Chromium, with a fresh profile and no
// background traffic, and returns its context, for browserSetup, which ends
// after timeout. It skips t if Chromium is absent or in -short mode, unless
// REQUIRE_BROWSER=1. The browser stops when t ends; if t failed, it logs the
// tail of Chromium's output.
func browserStart(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	execPath := functest.Chromium(t)
	// A machine under load now and then loses a Chromium before it says
	// where DevTools listen; a second start is not a second test.
	browser, err := browserLaunch(t, execPath, timeout)
	if err != nil {
		t.Logf("start Chromium (%s): %v; starting it once more", execPath, err)
		browser, err = browserLaunch(t, execPath, timeout)
	}
	if err != nil {
		t.Fatalf("start Chromium (%s): %v", execPath, err)
	}
	return browser
}

// browserLaunch starts Chromium for browserStart. It stops when t ends, or
// at once if it fails to start; if t failed, the tail of its output is
// logged.
func browserLaunch(t *testing.T, execPath string, timeout time.Duration) (context.Context, error) {
	t.Helper()
	profile := t.TempDir() // removed after the browser has stopped
	output := &logbuf.Buffer{}
	ctx, cancelSession := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the sandbox needs privileges a container or CI runner may not have
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The test's network is loopback only: no calls home.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		// Timers on time in every tab, in front or not, as in a page the
		// user looks at: tests of timing must not depend on which is which.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(output),
	)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelBrowser() // stops Chromium, and waits for it
		cancelAlloc()
		cancelSession()
	}
	if err := chromedp.Do(browser); err != nil { // starts Chromium; err holds its output
		stop()
		return nil, err
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if out := browserTail(output.String(), 40); out != "" {
				t.Logf("Chromium's output (%s), without its D-Bus complaints:\n%s", execPath, out)
			}
		}
	})
	return browser, nil
}

// browserTail returns the last n lines of Chromium's output, leaving out
// those about D-Bus, which a container or CI runner lacks and Chromium does
// not need.
func browserTail(out string, n int) string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if l := strings.ToLower(line); strings.TrimSpace(line) != "" && !strings.Contains(l, "dbus") && !strings.Contains(l, "d-bus") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// open loads url in the tab.
func (be *browserEnv) open(t *testing.T, url string) {
	t.Helper()
	if err := chromedp.Do(be.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// fetchToken fetches a token from the function in the page, with headers,
// and fails t unless the page reads a 200 with a token.
func (be *browserEnv) fetchToken(t *testing.T, headers map[string]string) response {
	t.Helper()
	got, err := chromedp.Run(be.ctx, browserFetch(be.fn.URL+"/", headers))
	if err != nil {
		t.Fatalf("fetch in the page: %v", err)
	}
	if got.Error != "" || got.Type != "cors" || got.Status != http.StatusOK {
		t.Fatalf("fetch(function, %v) in the page = %+v, want a 200 cors response", headers, got)
	}
	return decodeBody(t, []byte(got.Body))
}

// browserFetchResult is what a page sees of a fetch.
type browserFetchResult struct {
	Type   string `json:"type"` // the response's type: "cors" for another origin's
	Status int    `json:"status"`
	Body   string `json:"body"`
	// Error is the name of the error the fetch rejected with, such as
	// "TypeError"; Message its message.
	Error   string `json:"error"`
	Message string `json:"message"`
}

// browserFetch is an action that runs fetch(url) in the page, with headers,
// and returns what the page can see of the outcome.
func browserFetch(url string, headers map[string]string) chromedp.Action[browserFetchResult] {
	init := map[string]any{}
	if headers != nil {
		init["headers"] = headers
	}
	u, _ := json.Marshal(url)
	i, _ := json.Marshal(init)
	return chromedp.Evaluate[browserFetchResult](fmt.Sprintf(`fetch(%s, %s).then(
		async r => ({type: r.type, status: r.status, body: await r.text()}),
		e => ({error: e.name, message: e.message}))`, u, i), chromedp.EvalAwaitPromise)
}

// browserRequest is a request the function got from the browser, and what it
// answered. Empty fields are headers the request or response did not have.
type browserRequest struct {
	Method         string
	Origin         string
	RequestMethod  string // Access-Control-Request-Method
	RequestHeaders string // Access-Control-Request-Headers
	RequestID      string // X-Request-Id
	Status         int
	AllowOrigin    string // Access-Control-Allow-Origin
}

// browserFunction is the function on an httptest.Server, recording the
// requests it serves.
type browserFunction struct {
	*httptest.Server
	h http.Handler

	mu   sync.Mutex // guards reqs
	reqs []browserRequest
}

func (f *browserFunction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	f.h.ServeHTTP(rec, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, browserRequest{
		Method:         r.Method,
		Origin:         r.Header.Get("Origin"),
		RequestMethod:  r.Header.Get("Access-Control-Request-Method"),
		RequestHeaders: r.Header.Get("Access-Control-Request-Headers"),
		RequestID:      r.Header.Get("X-Request-Id"),
		Status:         rec.status,
		AllowOrigin:    w.Header().Get("Access-Control-Allow-Origin"),
	})
}

// requests returns the requests served so far, in order.
func (f *browserFunction) requests() []browserRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// browserConsole collects what a tab writes to its console: calls of the
// console API, uncaught exceptions, and the browser's own log (where CORS
// errors go).
type browserConsole struct {
	mu     sync.Mutex // guards lines and thrown
	lines  []string
	thrown []string
}

// record is a chromedp listener: it only appends, as chromedp asks.
func (c *browserConsole) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = fmt.Sprintf("uncaught: %s %s:%d:%d", d.Text, d.URL, d.LineNumber, d.ColumnNumber)
		if d.Exception != nil {
			line += ": " + d.Exception.Description
		}
		c.mu.Lock()
		c.thrown = append(c.thrown, line)
		c.mu.Unlock()
	case *log.EventEntryAdded:
		e := ev.Entry
		line = fmt.Sprintf("%s %s: %s %s", e.Source, e.Level, e.Text, e.URL)
	default:
		return
	}
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.mu.Unlock()
}

func (c *browserConsole) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

func (c *browserConsole) exceptions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.thrown)
}

// browserKeep saves files (name to content; nil content is skipped) into
// testoutput/browser/ under the repository, named after t, so that CI keeps
// them, and logs where they are.
func browserKeep(t *testing.T, files map[string][]byte) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testoutput", "browser"))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Logf("cannot keep the browser's output: %v", err)
		return
	}
	prefix := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if files[name] == nil {
			continue
		}
		path := filepath.Join(dir, prefix+"-"+name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			t.Logf("cannot keep %s: %v", name, err)
			continue
		}
		t.Logf("kept %s", path)
	}
}
