package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"example.com/tokenvendingmachine/internal/ticket"
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
