package tokenvendingmachine

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRefusedOriginsAreLoggedWithAReason checks that every CORS refusal's
// log line says why, as every other refusal's does, and without the
// caller's Origin: a disallowed origin (for a GET and a preflight), and a
// browser request that cannot read the answer.
func TestRefusedOriginsAreLoggedWithAReason(t *testing.T) {
	hs := newHarness(t, map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com"})
	tests := []struct {
		name   string
		method string
		header http.Header
		want   string
	}{
		{"disallowed origin", http.MethodGet, http.Header{"Origin": {"https://evil.example"}}, "origin not in ALLOWED_ORIGINS"},
		{"preflight from a disallowed origin", http.MethodOptions,
			http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}}, "origin not in ALLOWED_ORIGINS"},
		{"no-cors fetch", http.MethodGet, http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Site": {"cross-site"}}, "browser request that cannot read the answer"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := hs.do(tt.method, fmt.Sprintf("192.0.2.%d", i+1), tt.header)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", w.Code)
			}
			lines := hs.logLines(t, logRequest)
			line := lines[len(lines)-1]
			if line["outcome"] != "refused" || line["reason"] != tt.want {
				t.Errorf("log line %v: outcome %v, reason %v; want refused, %q", line, line["outcome"], line["reason"], tt.want)
			}
			if strings.Contains(fmt.Sprint(line), "evil.example") {
				t.Errorf("log line %v holds the caller's Origin", line)
			}
		})
	}
}

func TestAllowOrigin(t *testing.T) {
	list := []string{"https://shop.example.com", "http://localhost:8081"}
	tests := []struct {
		name    string
		origin  string
		allowed []string
		wantOK  bool
		want    http.Header
	}{
		{"any origin, from a page", "https://evil.example", nil, true,
			http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Expose-Headers": {"Retry-After"}}},
		{"any origin, no Origin", "", nil, true,
			http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Expose-Headers": {"Retry-After"}}},
		{"listed origin", "https://shop.example.com", list, true,
			http.Header{"Access-Control-Allow-Origin": {"https://shop.example.com"}, "Access-Control-Expose-Headers": {"Retry-After"}, "Vary": {"Origin"}}},
		{"listed origin as the browser cases it", "https://SHOP.example.com", list, true,
			http.Header{"Access-Control-Allow-Origin": {"https://SHOP.example.com"}, "Access-Control-Expose-Headers": {"Retry-After"}, "Vary": {"Origin"}}},
		{"listed origin with a default port", "https://shop.example.com:443", list, true,
			http.Header{"Access-Control-Allow-Origin": {"https://shop.example.com:443"}, "Access-Control-Expose-Headers": {"Retry-After"}, "Vary": {"Origin"}}},
		{"second listed origin", "http://localhost:8081", list, true,
			http.Header{"Access-Control-Allow-Origin": {"http://localhost:8081"}, "Access-Control-Expose-Headers": {"Retry-After"}, "Vary": {"Origin"}}},
		{"no Origin: not a CORS request", "", list, true, http.Header{"Vary": {"Origin"}}},
		{"other origin", "https://evil.example", list, false, http.Header{"Vary": {"Origin"}}},
		{"lookalike origin", "https://shop.example.com.evil.example", list, false, http.Header{"Vary": {"Origin"}}},
		{"other scheme", "http://shop.example.com", list, false, http.Header{"Vary": {"Origin"}}},
		{"other port", "http://localhost:8080", list, false, http.Header{"Vary": {"Origin"}}},
		{"null", "null", list, false, http.Header{"Vary": {"Origin"}}},
		{"not an origin", "https://shop.example.com/path", list, false, http.Header{"Vary": {"Origin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if ok := allowOrigin(hdr, tt.origin, tt.allowed); ok != tt.wantOK {
				t.Errorf("allowOrigin(%q, %q) = %v, want %v", tt.origin, tt.allowed, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, hdr); diff != "" {
				t.Errorf("allowOrigin(%q, %q) headers (-want +got):\n%s", tt.origin, tt.allowed, diff)
			}
		})
	}
}

func TestPreflightHeaders(t *testing.T) {
	tests := []struct {
		name string
		req  http.Header
		want http.Header
	}{
		{"not a preflight", http.Header{}, http.Header{"Allow": {allowedMethods}}},
		{"preflight", http.Header{"Access-Control-Request-Method": {"GET"}}, http.Header{
			"Allow":                        {allowedMethods},
			"Access-Control-Allow-Methods": {allowedMethods},
			"Vary":                         {"Access-Control-Request-Headers"},
			"Access-Control-Max-Age":       {"7200"},
		}},
		{"preflight asking for headers", http.Header{
			"Access-Control-Request-Method":  {"GET"},
			"Access-Control-Request-Headers": {"authorization, x-request-id"},
		}, http.Header{
			"Allow":                        {allowedMethods},
			"Access-Control-Allow-Methods": {allowedMethods},
			"Access-Control-Allow-Headers": {"authorization, x-request-id"},
			"Vary":                         {"Access-Control-Request-Headers"},
			"Access-Control-Max-Age":       {"7200"},
		}},
		{"preflight asking for a malformed list", http.Header{
			"Access-Control-Request-Method":  {"GET"},
			"Access-Control-Request-Headers": {"x-ok, bad header\r"},
		}, http.Header{
			"Allow":                        {allowedMethods},
			"Access-Control-Allow-Methods": {allowedMethods},
			"Vary":                         {"Access-Control-Request-Headers"},
			"Access-Control-Max-Age":       {"7200"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			preflight(hdr, tt.req)
			if diff := cmp.Diff(tt.want, hdr); diff != "" {
				t.Errorf("preflight(%v) headers (-want +got):\n%s", tt.req, diff)
			}
		})
	}
}

func TestValidHeaderList(t *testing.T) {
	long := make([]byte, 1025)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		list string
		want bool
	}{
		{"authorization", true},
		{"x-request-id, content-type", true},
		{"X_Custom.1", true},
		{"", false},
		{"a,,b", false},
		{"a b", false},
		{"a\r\nb", false},
		{"a:b", false},
		{string(long), false},
	}
	for _, tt := range tests {
		if got := validHeaderList(tt.list); got != tt.want {
			t.Errorf("validHeaderList(%.20q) = %v, want %v", tt.list, got, tt.want)
		}
	}
}

func TestUnreadable(t *testing.T) {
	tests := []struct {
		name string
		req  http.Header
		want bool
	}{
		{"curl: no Sec-Fetch headers", http.Header{}, false},
		{"server with an Origin", http.Header{"Origin": {"https://shop.example.com"}}, false},
		{"cors fetch", http.Header{"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://shop.example.com"}}, false},
		{"preflight", http.Header{"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"same-site"}, "Origin": {"https://shop.example.com"}}, false},
		{"img", http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Dest": {"image"}}, true},
		{"no-cors fetch", http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Site": {"cross-site"}}, true},
		{"no-cors fetch with an Origin", http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Origin": {"https://shop.example.com"}}, true},
		{"navigation", http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Site": {"none"}}, true},
		{"cors without an Origin", http.Header{"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"only Sec-Fetch-Site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, true},
	}
	for _, tt := range tests {
		if got := unreadable(tt.req); got != tt.want {
			t.Errorf("%s: unreadable(%v) = %v, want %v", tt.name, tt.req, got, tt.want)
		}
	}
}

func TestPreflight(t *testing.T) {
	hs := newHarness(t, nil)
	w := hs.do(http.MethodOptions, "203.0.113.7", http.Header{
		"Origin":                         {"https://shop.example.com"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"x-request-id, content-type"},
	})
	if w.Code != http.StatusNoContent {
		t.Fatalf("preflight status %d, want 204", w.Code)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
		"Access-Control-Allow-Headers": "x-request-id, content-type",
		"Access-Control-Max-Age":       "7200",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("preflight header %s = %q, want %q", k, got, v)
		}
	}
	if got := w.Header().Values("Vary"); !slices.Contains(got, "Access-Control-Request-Headers") {
		t.Errorf("preflight Vary = %q, want Access-Control-Request-Headers in it", got)
	}
	// A header list that is not a list of names is not echoed.
	w = hs.do(http.MethodOptions, "203.0.113.7", http.Header{
		"Origin":                         {"https://shop.example.com"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"x-ok, bad header\r"},
	})
	if got := w.Header().Get("Access-Control-Allow-Headers"); got != "" {
		t.Errorf("preflight echoed a malformed header list: %q", got)
	}
	if n := len(hs.momento.Mints()) + hs.secrets.Count(); n != 0 {
		t.Errorf("preflights minted or read the secret (%d)", n)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	hs := newHarness(t, nil)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w := hs.do(method, "203.0.113.7", nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("%s: status %d, Allow %q; want 405 with Allow: GET, HEAD, OPTIONS", method, w.Code, w.Header().Get("Allow"))
		}
		checkErrorBody(t, w)
	}
	if n := len(hs.momento.Mints()); n != 0 {
		t.Errorf("refused methods minted %d tokens", n)
	}
	w := hs.do(http.MethodHead, "203.0.113.7", nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: status %d, Content-Type %q; want 200 application/json", w.Code, w.Header().Get("Content-Type"))
	}
}

func TestAllowedOrigins(t *testing.T) {
	hs := newHarness(t, map[string]string{"ALLOWED_ORIGINS": "https://shop.example.com, http://localhost:8081"})
	tests := []struct {
		name       string
		method     string
		origin     string
		wantStatus int
		wantACAO   string
	}{
		{"allowed origin", http.MethodGet, "https://shop.example.com", http.StatusOK, "https://shop.example.com"},
		{"allowed origin, other case", http.MethodGet, "https://SHOP.example.com", http.StatusOK, "https://SHOP.example.com"},
		{"second allowed origin", http.MethodGet, "http://localhost:8081", http.StatusOK, "http://localhost:8081"},
		{"disallowed origin", http.MethodGet, "https://evil.example", http.StatusForbidden, ""},
		{"lookalike origin", http.MethodGet, "https://shop.example.com.evil.example", http.StatusForbidden, ""},
		{"null origin", http.MethodGet, "null", http.StatusForbidden, ""},
		{"no origin: not a CORS request", http.MethodGet, "", http.StatusOK, ""},
		{"preflight from a disallowed origin", http.MethodOptions, "https://evil.example", http.StatusForbidden, ""},
		{"preflight from an allowed origin", http.MethodOptions, "https://shop.example.com", http.StatusNoContent, "https://shop.example.com"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := fmt.Sprintf("192.0.2.%d", i+1)
			header := http.Header{"Access-Control-Request-Method": {"GET"}}
			if tt.origin != "" {
				header.Set("Origin", tt.origin)
			}
			before := len(hs.momento.Mints())
			w := hs.do(tt.method, ip, header)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantACAO)
			}
			if got := w.Header().Get("Vary"); !strings.Contains(got, "Origin") {
				t.Errorf("Vary = %q, want it to name Origin", got)
			}
			minted := len(hs.momento.Mints()) - before
			if wantMint := tt.wantStatus == http.StatusOK && tt.method == http.MethodGet; (minted == 1) != wantMint {
				t.Errorf("minted %d tokens, want a mint: %v", minted, wantMint)
			}
		})
	}
}

// An attacker tries this: from a browser on another site, or in a way the page cannot read,
// make visitors' browsers mint (ALLOWED_ORIGINS set). None may mint, and a
// refused origin gets no CORS header.
func TestCrossSiteRequestsDoNotMint(t *testing.T) {
	const shop = "https://shop.example.com"
	hs := newHarness(t, map[string]string{"ALLOWED_ORIGINS": shop})
	cors := func(origin string) http.Header {
		return http.Header{"Origin": {origin}, "Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"cross-site"}}
	}
	tests := []struct {
		name   string
		method string
		header http.Header
		want   int
		acao   string
	}{
		{"other origin", "", cors("https://evil.example"), http.StatusForbidden, ""},
		{"lookalike origin", "", cors("https://shop.example.com.evil.example"), http.StatusForbidden, ""},
		{"userinfo origin", "", cors("https://shop.example.com@evil.example"), http.StatusForbidden, ""},
		{"origin with a fragment", "", cors("https://evil.example#https://shop.example.com"), http.StatusForbidden, ""},
		{"opaque origin", "", cors("null"), http.StatusForbidden, ""},
		{"two origins, first allowed", "", http.Header{"Origin": {shop, "https://evil.example"}, "Sec-Fetch-Mode": {"cors"}}, http.StatusOK, shop},
		{"preflight from another origin", http.MethodOptions, http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}, "Sec-Fetch-Mode": {"cors"}}, http.StatusForbidden, ""},
		{"img from the shop", "", http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Dest": {"image"}}, http.StatusForbidden, ""},
		{"no-cors fetch with the shop's Origin", "", http.Header{"Origin": {shop}, "Sec-Fetch-Mode": {"no-cors"}}, http.StatusForbidden, ""},
		{"navigation", "", http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden, ""},
		{"cors mode without Origin", "", http.Header{"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"same-origin"}}, http.StatusForbidden, ""},
		{"only Sec-Fetch-Site", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden, ""},
		{"HEAD from another origin", http.MethodHead, cors("https://evil.example"), http.StatusForbidden, ""},
		{"preflight from the shop", http.MethodOptions, http.Header{"Origin": {shop}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"}, "Sec-Fetch-Mode": {"cors"}}, http.StatusNoContent, shop},
	}
	mints := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := hs.send(request{method: tt.method, ip: fmt.Sprintf("192.0.2.%d", i+1), header: tt.header})
			if w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.acao)
			}
			if w.Code == http.StatusOK {
				mints++
			}
			if n := len(hs.momento.Mints()); n != mints {
				t.Errorf("mints = %d, want %d", n, mints)
			}
		})
	}
}
