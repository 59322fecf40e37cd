package demo

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler("http://127.0.0.1:8080/")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/demo", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<code id="fn">http://127.0.0.1:8080/</code>`) {
		t.Fatalf("GET /demo = %d, body without the function URL:\n%s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/demo" {
		t.Errorf("GET / = %d to %q, want a redirect to /demo", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	Handler(`"><script>alert(1)</script>`).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/demo", nil))
	if strings.Contains(w.Body.String(), "<script>alert(1)") {
		t.Errorf("the function URL is not escaped")
	}
}
