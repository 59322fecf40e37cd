package momentotest

// TestWebSDKInBrowser holds the gRPC-web port to @gomomento/sdk-web in
// headless Chromium. It needs Chromium (the Debian package chromium) and
// node with npm (the Debian packages nodejs and npm): without them it skips,
// unless REQUIRE_BROWSER=1 or REQUIRE_NODE=1 (as in CI) makes that a
// failure. The first run needs the npm registry.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/momentohq/client-sdk-go/momento"
	authresp "github.com/momentohq/client-sdk-go/responses/auth"
	"github.com/momentohq/client-sdk-go/utils"

	"example.com/tokenvendingmachine/internal/functest"
)

// webPage loads the bundle of testdata/web/page.js, which defines
// window.webCheck.
const webPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>web SDK check</title>
<script src="/bundle.js"></script></head><body></body></html>
`

// TestWebSDKInBrowser: a page on another origin than the gRPC-web port
// subscribes with the web SDK and a token minted by the fake, receives an
// item published through gRPC, sets and gets an item, and sees its
// subscription end with an authentication error when the token expires,
// without resubscribing.
func TestWebSDKInBrowser(t *testing.T) {
	chromium := functest.Chromium(t)
	node, npm := functest.Node(t)
	start := time.Now()
	bundle := webBundle(t, node, npm)
	bundled := time.Since(start)

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(webPage)) //nolint:errcheck
		case "/bundle.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(bundle) //nolint:errcheck
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(site.Close)
	s := NewServerT(t, "pizza")
	url, err := s.ServeGRPCWeb("", site.URL)
	if err != nil {
		t.Fatalf("ServeGRPCWeb: %v", err)
	}
	resp, err := authClient(t, s, s.APIKey()).GenerateDisposableToken(context.Background(), &momento.GenerateDisposableTokenRequest{
		ExpiresIn: utils.ExpiresInSeconds(3600),
		Scope: momento.Permissions{Permissions: []momento.Permission{
			momento.TopicPermission{Role: momento.SubscribeOnly, Cache: momento.CacheName{Name: "pizza"}, Topic: momento.AllTopics{}},
			momento.CachePermission{Role: momento.ReadWrite, Cache: momento.CacheName{Name: "pizza"}},
		}},
	})
	if err != nil {
		t.Fatalf("GenerateDisposableToken: %v", err)
	}
	args := func(extra string) string {
		b, _ := json.Marshal(map[string]string{"url": url, "token": resp.(*authresp.GenerateDisposableTokenSuccess).ApiKey, "cache": "pizza"})
		return strings.TrimSuffix(string(b), "}") + extra + "}"
	}

	start = time.Now()
	ctx := webBrowser(t, chromium)
	started := time.Since(start)
	start = time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`webCheck.subscribe(`+args(`,"topic":"orders"`)+`)`, chromedp.EvalAwaitPromise))
	if err != nil || got != "subscribed" {
		t.Fatalf("subscribe in the page = %q, %v; want subscribed", got, err)
	}
	if _, err := topicClient(t, s, s.APIKey()).Publish(context.Background(), &momento.TopicPublishRequest{CacheName: "pizza", TopicName: "orders", Value: momento.String("order 7 is ready")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	items, err := chromedp.Run(ctx, chromedp.Poll[[]string](`webCheck.items.length > 0 && webCheck.items`, webPoll...))
	if err != nil {
		t.Fatalf("waiting for the page to receive the item: %v", err)
	}
	if diff := cmp.Diff([]string{"order 7 is ready"}, items); diff != "" {
		t.Errorf("items the page received (-want +got):\n%s", diff)
	}

	got, err = chromedp.Run(ctx, chromedp.Evaluate[string](`webCheck.setGet(`+args(`,"key":"k","value":"v from the page"`)+`)`, chromedp.EvalAwaitPromise))
	if err != nil || got != "v from the page" {
		t.Errorf("set and get in the page = %q, %v; want the value set", got, err)
	}
	if it, ok := s.Item("pizza", "k"); !ok || string(it.Value) != "v from the page" || it.TTL != time.Minute {
		t.Errorf("Item(pizza, k) = %q (TTL %v), %v; want the page's value for 1m", it.Value, it.TTL, ok)
	}

	s.FastForward(time.Hour)
	errs, err := chromedp.Run(ctx, chromedp.Poll[[]string](`webCheck.errors.length > 0 && webCheck.errors`, webPoll...))
	if err != nil {
		t.Fatalf("waiting for the subscription to end: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // time enough for a resubscription to arrive
	if diff := cmp.Diff([]string{"AUTHENTICATION_ERROR"}, errs); diff != "" || s.Count(MethodSubscribe) != 1 {
		t.Errorf("after the token expired: %d subscriptions, errors the page saw (-want +got):\n%s", s.Count(MethodSubscribe), diff)
	}
	ms := time.Millisecond
	t.Logf("npm ci and esbuild %v, Chromium's start %v, the page's checks %v", bundled.Round(ms), started.Round(ms), time.Since(start).Round(ms))
}

var webPoll = []chromedp.PollOption{chromedp.WithPollingInterval(20 * time.Millisecond), chromedp.WithPollingTimeout(10 * time.Second)}

// webBundle installs testdata/web's packages as its lockfile pins them and
// bundles page.js for the browser.
func webBundle(t *testing.T, node, npm string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := filepath.Abs(filepath.Join("testdata", "web"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle.js")
	for _, cmd := range []*exec.Cmd{
		// esbuild needs no install script: its launcher finds the binary in
		// the @esbuild package for this platform.
		exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"),
		exec.CommandContext(ctx, node, filepath.Join("node_modules", "esbuild", "bin", "esbuild"),
			"page.js", "--bundle", "--format=iife", "--log-level=warning", "--outfile="+out),
	} {
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// webBrowser starts headless Chromium for the test, with a fresh profile,
// and logs what its page said on the console if the test fails.
func webBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	ctx, cancelSession := context.WithTimeout(context.Background(), 30*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
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
		chromedp.UserDataDir(t.TempDir()),
	)
	var mu sync.Mutex
	var console []string
	record := func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Text
			if e := ev.ExceptionDetails.Exception; e != nil {
				line += " " + e.Description
			}
		default:
			return
		}
		mu.Lock()
		console = append(console, line)
		mu.Unlock()
	}
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(record))
	t.Cleanup(func() {
		cancelBrowser() // stops Chromium, and waits for it
		cancelAlloc()
		cancelSession()
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() && len(console) > 0 {
			t.Logf("the page's console:\n%s", strings.Join(console, "\n"))
		}
	})
	if err := chromedp.Do(browser); err != nil { // starts Chromium
		t.Fatalf("start Chromium (%s): %v", chromium, err)
	}
	return browser
}
