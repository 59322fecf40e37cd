package tokenvendingmachine

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokenBodyIsWhatJSONMarshalWrites(t *testing.T) {
	tokens := []string{
		"eyJhcGlfa2V5IjoiZXlKaGJHY2lPaUp1YjI1bElpd2lkSGx3SWpvaVNsZFVJbjAifQ==",
		"a.b-c_d+e/f=",
		"",
		" ~!#$%'()*,:;?@[]^`{|}",
		`quote " and backslash \`,
		"<script>&amp;</script>",
		"control \x00\x1f\x7f",
		"line\u2028separator\u2029",
		"é 日本 🙂",
		"invalid \xff utf8",
	}
	for c := range 256 {
		tokens = append(tokens, "ab"+string([]byte{byte(c)})+"cd") // each byte, for jsonEscapes
	}
	for _, tok := range tokens {
		for _, r := range []response{
			{Token: tok, Exp: 1795870800, ExpiresIn: 3600},
			{Token: tok, Exp: -1, ExpiresIn: 0},
		} {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(appendResponse(nil, r)); got != string(want)+"\n" {
				t.Errorf("appendResponse(%+v) = %q, want %q", r, got, string(want)+"\n")
			}
		}
	}
}

// TestSharedHeaderValuesStayConstant checks that answering, on every path
// that sets them, leaves the header values all responses share as they
// were.
func TestSharedHeaderValuesStayConstant(t *testing.T) {
	shared := map[string][]string{
		"nosniff": nosniff, "anyOrigin": anyOrigin, "exposeRetryAfter": exposeRetryAfter,
		"noStore": noStore, "jsonContent": jsonContent,
	}
	before := map[string][]string{}
	for k, v := range shared {
		before[k] = append([]string(nil), v...)
	}
	hs := newHarness(t, nil)
	hs.get("203.0.113.7")
	hs.get("203.0.113.7")
	hs.do(http.MethodOptions, "203.0.113.7", http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"GET"}})
	hs.do(http.MethodPost, "203.0.113.7", nil)
	w := hs.do(http.MethodGet, "203.0.113.7", http.Header{"Authorization": {"Basic x"}})
	// What a caller of the header could do to it after.
	w.Header().Add("Cache-Control", "private")
	w.Header()["X-Content-Type-Options"] = append(w.Header()["X-Content-Type-Options"], "more")
	if diff := cmp.Diff(before, shared); diff != "" {
		t.Errorf("shared header values changed (-before +after):\n%s", diff)
	}
}
