package tokenvendingmachine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/logbuf"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/secretmanagertest"
)

// secretID is the secret the tests keep the Momento key in.
const secretID = "projects/test-project/secrets/momento"

// frontEndAddr is the address requests come from: Google's front end's, as
// on Cloud Functions.
const frontEndAddr = "169.254.1.1:43210"

// harness is the function wired to fake Momento and Secret Manager servers,
// reached through the real SDK clients over loopback gRPC.
type harness struct {
	momento *momentotest.Server
	secrets *secretmanagertest.Server
	h       *handler
	logs    *logbuf.Buffer
	// lookupenv is the function's environment; a variable set to "" in
	// it is unset.
	lookupenv func(string) (string, bool)

	mu  sync.Mutex
	ips map[string]bool // every client IP a request used
}

// newHarness starts the fakes and the function. env holds the function's
// environment on top of the defaults (SECRET_ID, both emulator hosts, and
// a fleet burst of 2000 mints); a value of "" removes a default.
func newHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	return newHarnessFunc(t, func(*harness) map[string]string { return env })
}

// newHarnessFunc is newHarness with an environment that env makes once the
// fakes run, for variables that name them.
func newHarnessFunc(t testing.TB, env func(hs *harness) map[string]string) *harness {
	t.Helper()
	return startHarness(t, false, env)
}

// newLiveHarness is newHarness with the fakes' clock running in real time,
// for browsers that wait for tokens to expire.
func newLiveHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	return startHarness(t, true, func(*harness) map[string]string { return env })
}

// startHarness starts the fakes, with their clock stopped at noon on
// 2026-11-28 unless live, and the function.
func startHarness(t testing.TB, live bool, env func(hs *harness) map[string]string) *harness {
	t.Helper()
	hs := &harness{
		momento: momentotest.NewServerT(t, "pizza"),
		secrets: secretmanagertest.NewServerT(t),
		logs:    &logbuf.Buffer{},
		ips:     make(map[string]bool),
	}
	if !live {
		hs.momento.SetTime(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	}
	// A v2 key, as Momento's console issues them; the emulator host stands
	// in for its endpoint.
	hs.secrets.AddVersion(secretID, []byte(hs.momento.APIKeyV2()))
	vars := map[string]string{
		"SECRET_ID":                   secretID,
		"MOMENTO_EMULATOR_HOST":       hs.momento.Addr(),
		"SECRETMANAGER_EMULATOR_HOST": hs.secrets.Addr(),
		// Room for the tests' bursts of new clients on a clock that stands
		// still (the per-instance lookup bursts derive from it); the
		// limits' own tests set it.
		"FLEET_MINT_BURST": "2000",
	}
	for k, v := range env(hs) {
		vars[k] = v
	}
	hs.lookupenv = func(k string) (string, bool) { return vars[k], vars[k] != "" }
	hs.h = handlerFromEnv(hs.lookupenv, deps{stdout: hs.logs, now: hs.momento.Now})
	t.Cleanup(func() {
		hs.h.close()
		hs.checkLogs(t)
	})
	return hs
}

// instance returns another instance of the function, with the same
// environment and fakes, as Cloud Functions runs several: it shares only
// Momento and Secret Manager with the first. Its logs go to the same buffer.
func (hs *harness) instance(t testing.TB) *handler {
	t.Helper()
	h := handlerFromEnv(hs.lookupenv, deps{stdout: hs.logs, now: hs.momento.Now})
	t.Cleanup(h.close)
	return h
}

// request is a request for the harness to send. Its zero value is a GET of
// "/" from the front end with no client address.
type request struct {
	ctx    context.Context // nil: context.Background()
	method string          // "": GET
	path   string          // "": "/"
	ip     string          // if set, appended to X-Forwarded-For, as Google's front end does
	header http.Header
	remote string // the connection's address; "": frontEndAddr
	// untracked leaves the request's addresses out of the log check, for
	// floods of addresses that would make the check take minutes.
	untracked bool
}

// send sends rq to the function and returns the response.
func (hs *harness) send(rq request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, hs.request(rq))
	return w
}

// request returns rq as an *http.Request for the function, noting the
// addresses it carries for checkLogs.
func (hs *harness) request(rq request) *http.Request {
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	if rq.path == "" {
		rq.path = "/"
	}
	r := httptest.NewRequest(rq.method, rq.path, nil)
	if rq.ctx != nil {
		r = r.WithContext(rq.ctx)
	}
	r.RemoteAddr = frontEndAddr
	if rq.remote != "" {
		r.RemoteAddr = rq.remote
	}
	for k, vs := range rq.header {
		r.Header[k] = vs
	}
	if rq.ip != "" {
		r.Header.Add("X-Forwarded-For", rq.ip)
	}
	if rq.untracked {
		return r
	}
	hs.mu.Lock()
	for _, line := range append(r.Header.Values("X-Forwarded-For"), r.RemoteAddr) {
		for _, entry := range strings.Split(line, ",") {
			hs.ips[strings.TrimSpace(entry)] = true
		}
	}
	hs.mu.Unlock()
	return r
}

// do sends a request with method from client IP ip, with header.
func (hs *harness) do(method, ip string, header http.Header) *httptest.ResponseRecorder {
	return hs.send(request{method: method, ip: ip, header: header})
}

func (hs *harness) get(ip string) *httptest.ResponseRecorder { return hs.do(http.MethodGet, ip, nil) }

// token sends a GET from ip and decodes a 200 response.
func (hs *harness) token(t *testing.T, ip string) response {
	t.Helper()
	w := hs.get(ip)
	if w.Code != http.StatusOK {
		t.Fatalf("GET from %s: status %d, body %s", ip, w.Code, w.Body)
	}
	return decode(t, w)
}

// decode decodes a token response with functest's one check of its shape.
func decode(t testing.TB, w *httptest.ResponseRecorder) response {
	t.Helper()
	return decodeBody(t, w.Body.Bytes())
}

func decodeBody(t testing.TB, body []byte) response {
	t.Helper()
	tok, err := functest.DecodeToken(body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Token: tok.Token, Exp: tok.Exp, ExpiresIn: tok.ExpiresIn, RefreshIn: tok.RefreshIn}
}

// checkErrorBody checks that w is a JSON error a page can read.
func checkErrorBody(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["message"] == "" || len(body) != 1 {
		t.Errorf("error body %q, want {\"message\": ...}", w.Body)
	}
	if w.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("error response without Access-Control-Allow-Origin")
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	for _, internal := range []string{"rpc", "momento", "secret", "grpc", "127.0.0.1", "projects/"} {
		if strings.Contains(strings.ToLower(w.Body.String()), internal) {
			t.Errorf("error body %q reveals %q", w.Body, internal)
		}
	}
}

// checkLogs fails t if any log line holds an API key, a token, or a client IP.
func (hs *harness) checkLogs(t testing.TB) {
	t.Helper()
	logs := hs.logs.String()
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line != "" && !json.Valid([]byte(line)) {
			t.Errorf("log line %d is not JSON: %s", i, line)
		}
	}
	for _, key := range hs.momento.APIKeys() {
		if containsSecret(logs, key) {
			t.Errorf("logs contain an API key")
		}
	}
	for _, m := range hs.momento.Mints() {
		if containsSecret(logs, m.Token) {
			t.Errorf("logs contain token %d", m.ID)
		}
	}
	// Every address a request carried, and every client key the function
	// made from them (an IPv6 key is a /64 prefix).
	addrs := map[string]bool{}
	for _, k := range hs.momento.Keys("pizza") {
		addrs[strings.TrimSuffix(k, "-token")] = true
	}
	hs.mu.Lock()
	for a := range hs.ips {
		if host, _, err := net.SplitHostPort(a); err == nil {
			a = host
		}
		addrs[a] = true
	}
	hs.mu.Unlock()
	for a := range addrs {
		for _, form := range []string{a, strings.TrimSuffix(a, "/64")} {
			if len(form) >= 7 && strings.Contains(logs, form) { // skip the empty and the trivially short
				t.Errorf("logs contain the client address %q", form)
			}
		}
	}
}

// innerKey returns the api_key inside a v1 key or token.
// containsSecret reports whether s holds key (a v2 key, or a v1 key or
// token) or the api_key inside a v1 one.
func containsSecret(s, key string) bool {
	inner := innerKey(key)
	return strings.Contains(s, key) || (inner != "" && strings.Contains(s, inner))
}

// innerKey returns the api_key inside a v1 key or token, and "" for any
// other string.
func innerKey(v1 string) string {
	b, err := base64.StdEncoding.DecodeString(v1)
	if err != nil {
		return ""
	}
	var m map[string]string
	json.Unmarshal(b, &m)
	return m["api_key"]
}

// logLines returns the decoded log lines whose message is msg.
func (hs *harness) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(hs.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}
