package floor

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"example.com/tokenvendingmachine/internal/functest"
)

func TestServeAnswersAToken(t *testing.T) {
	w := httptest.NewRecorder()
	Serve(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", w.Code)
	}
	tok, err := functest.DecodeToken(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Token) != TokenLen {
		t.Errorf("token of %d bytes, want %d", len(tok.Token), TokenLen)
	}
	if got, want := w.Header().Get("Content-Length"), strconv.Itoa(w.Body.Len()); got != want {
		t.Errorf("Content-Length %s, want %s", got, want)
	}
}
