package floor

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/momentotest"
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

// TestServeMissMakesAMissThreeCalls checks that the floor of a miss calls
// Get, mint and Set for a client it has no token for, nothing for one it
// has, and no mint for one whose token is in the cache.
func TestServeMissMakesAMissThreeCalls(t *testing.T) {
	emu := momentotest.NewServerT(t, config.DefaultCacheName)
	t.Setenv("MOMENTO_API_KEY", emu.APIKey())
	t.Setenv("MOMENTO_EMULATOR_HOST", emu.Addr())
	miss = newMissInstance() // connected to this emulator
	t.Cleanup(func() {
		if c, err := miss.clients(); err == nil {
			c.Close()
		}
	})
	get := func(client string) string {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Forwarded-For", client)
		w := httptest.NewRecorder()
		ServeMiss(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		tok, err := functest.DecodeToken(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	calls := func() [3]int {
		return [3]int{emu.Count(momentotest.MethodGet), emu.Count(momentotest.MethodMint), emu.Count(momentotest.MethodSet)}
	}

	first := get("10.0.0.1")
	if got := calls(); got != [3]int{1, 1, 1} {
		t.Fatalf("a new client's Get, mint, Set: %v, want one each", got)
	}
	if len(emu.Mints()) != 1 || emu.Mints()[0].Token != first {
		t.Errorf("answered a token the emulator did not mint")
	}
	if again := get("10.0.0.1"); again != first || calls() != [3]int{1, 1, 1} {
		t.Errorf("a known client: another token or more calls (%v)", calls())
	}
	miss.answers.Clear() // as on another instance: the token is in the cache only
	if again := get("10.0.0.1"); again != first || calls() != [3]int{2, 1, 1} {
		t.Errorf("a client whose token is cached: %v calls (Get, mint, Set), want [2 1 1]", calls())
	}
}
