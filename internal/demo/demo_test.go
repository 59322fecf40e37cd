package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/ticket"
	"example.com/tokenvendingmachine/web"
)

func TestHandler(t *testing.T) {
	h := Handler(Options{FunctionURL: "http://127.0.0.1:8080/"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/demo", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<code id="fn">http://127.0.0.1:8080/</code>`) {
		t.Fatalf("GET /demo = %d, body without the function URL:\n%s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), `value="order"`) || strings.Contains(w.Body.String(), `value="user"`) {
		t.Errorf("the page offers ticket or sign-in modes without a ticket key or issuer")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ticket?order=42", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("GET /ticket without a ticket key = %d, want 404", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/demo" {
		t.Errorf("GET / = %d to %q, want a redirect to /demo", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	Handler(Options{FunctionURL: `"><script>alert(1)</script>`}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/demo", nil))
	if strings.Contains(w.Body.String(), "<script>alert(1)") {
		t.Errorf("the function URL is not escaped")
	}
}

func TestTicketEndpoint(t *testing.T) {
	key := []byte("demo-ticket-key-0123456789abcdef-xyz")
	h := Handler(Options{FunctionURL: "http://127.0.0.1:8080/", TicketKey: key, TicketAudience: ticket.DefaultAudience,
		SignInURL: "http://127.0.0.1:9999/token"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/demo", nil))
	for _, mode := range []string{`value="order"`, `value="user"`, `"http://127.0.0.1:9999/token"`} {
		if !strings.Contains(w.Body.String(), mode) {
			t.Errorf("the page lacks %s", mode)
		}
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ticket?order=42", nil))
	var body struct{ Ticket string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != http.StatusOK || err != nil {
		t.Fatalf("GET /ticket?order=42 = %d %s", w.Code, w.Body)
	}
	keys, _ := ticket.NewKeySet(ticket.Key{Secret: key})
	v, _ := ticket.NewVerifier(keys, ticket.Options{})
	c, err := v.Verify(body.Ticket)
	if err != nil {
		t.Fatalf("the demo's ticket does not verify: %v", err)
	}
	if got := c.Scope.String(); got != "order-42-*" {
		t.Errorf("ticket scope = %q, want order-42-*", got)
	}
	for _, bad := range []string{"", "4%2A", "42-x", "a%20b", strings.Repeat("9", 33)} {
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ticket?order="+bad, nil))
		if w.Code != http.StatusBadRequest {
			t.Errorf("GET /ticket?order=%s = %d, want 400", bad, w.Code)
		}
	}
}

// TestLiveView checks that the page has a live view only with the
// emulator's gRPC-web URL, serves the helper, and loads the web SDK from
// the local bundle while it exists, else from esm.sh.
func TestLiveView(t *testing.T) {
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if body := get(Handler(Options{FunctionURL: "http://127.0.0.1:8080/"}), "/demo").Body.String(); strings.Contains(body, `id="callers"`) {
		t.Errorf("the page has a live view without a gRPC-web URL")
	}
	bundle := filepath.Join(t.TempDir(), "sdk-web.js")
	h := Handler(Options{FunctionURL: "http://127.0.0.1:8080/", GRPCWebURL: "http://127.0.0.1:8082", WebSDKFile: bundle})
	body := get(h, "/demo").Body.String()
	for _, want := range []string{`id="callers"`, `const GRPC_WEB = "http://127.0.0.1:8082"`, `const SDK_URL = "https://esm.sh/@gomomento/sdk-web@1.118.0"`, BundleCommand} {
		if !strings.Contains(body, want) {
			t.Errorf("the page without a local bundle lacks %s", want)
		}
	}
	if w := get(h, "/tvm.js"); w.Code != http.StatusOK || w.Body.String() != web.Module || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /tvm.js = %d %q, want the helper as JavaScript", w.Code, w.Header().Get("Content-Type"))
	}
	if w := get(h, "/sdk-web.js"); w.Code != http.StatusNotFound {
		t.Errorf("GET /sdk-web.js before it is built = %d, want 404", w.Code)
	}
	if err := os.WriteFile(bundle, []byte("export const TopicClient = 1;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if body := get(h, "/demo").Body.String(); !strings.Contains(body, `const SDK_URL = "/sdk-web.js"`) {
		t.Errorf("the page does not load the local bundle once it is built")
	}
	if w := get(h, "/sdk-web.js"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "TopicClient") {
		t.Errorf("GET /sdk-web.js once built = %d", w.Code)
	}
}

// TestPizzeria checks what the pizzeria publishes: both orders move on a
// step each tick, each customer hears of their own, and a new order is
// announced every third tick.
func TestPizzeria(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	RunPizzeria(ctx, time.Millisecond, func(topic, text string) error {
		got = append(got, topic+": "+text)
		if len(got) == 14 {
			cancel()
		}
		return nil
	}, nil)
	want := []string{
		"order-42-status-updated: order 42: placed",
		"user-alice-notifications: alice, your order 42 is placed",
		"order-43-status-updated: order 43: out for delivery",
		"user-bob-notifications: bob, your order 43 is out for delivery",
		"new-order: order 44 placed",
		"order-42-status-updated: order 42: in the oven",
		"user-alice-notifications: alice, your order 42 is in the oven",
		"order-43-status-updated: order 43: delivered",
		"user-bob-notifications: bob, your order 43 is delivered",
		"order-42-status-updated: order 42: out for delivery",
		"user-alice-notifications: alice, your order 42 is out for delivery",
		"order-43-status-updated: order 43: placed",
		"user-bob-notifications: bob, your order 43 is placed",
		"order-42-status-updated: order 42: delivered",
	}
	if diff := cmp.Diff(want, got[:14]); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
	var failures []error
	ctx, cancel = context.WithCancel(context.Background())
	RunPizzeria(ctx, time.Millisecond, func(string, string) error { cancel(); return errors.New("no cache") }, func(err error) { failures = append(failures, err) })
	if len(failures) == 0 || !strings.Contains(failures[0].Error(), "no cache") {
		t.Errorf("publish errors reported as %v, want them handed to failed", failures)
	}
}
