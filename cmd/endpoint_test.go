package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/logbuf"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/secretmanagertest"
)

// TestV2KeyThroughItsEndpoint runs the built runner as a new Momento customer
// would, with a v2 API key from Secret Manager and MOMENTO_ENDPOINT pasted as
// the docs show it, and no emulator host: the real Go SDK dials
// cache.<endpoint>:443 and token.<endpoint>:443 over TLS, which a loopback
// proxy ends and relays to the emulator. The key is then rotated to a new
// v2 key stored with its endpoint in the secret; the next new caller's mint
// is rejected, the secret re-read, and the mint made with the new key.
func TestV2KeyThroughItsEndpoint(t *testing.T) {
	bin := buildRunner(t)
	const cell = "cell-test-1.momentotest.invalid"
	emu, err := momentotest.NewServer(momentotest.Options{Endpoint: cell, Caches: []string{"pizza"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	proxy := momentotest.NewTLSProxyT(t, cell, emu.Addr())
	certFile := filepath.Join(t.TempDir(), "proxy.pem")
	if err := os.WriteFile(certFile, proxy.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := secretmanagertest.NewServerT(t)
	const secretID = "projects/p/secrets/momento"
	secrets.AddVersion(secretID, []byte(emu.APIKeyV2()+"\n"))

	port, err := functest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(functest.Env(withoutProxies(os.Environ()), map[string]string{
		"SECRET_ID":                   secretID,
		"SECRETMANAGER_EMULATOR_HOST": secrets.Addr(),
		"MOMENTO_ENDPOINT":            "https://api.cache." + cell + "/",
		"CACHE_NAME":                  "pizza",
		"HTTPS_PROXY":                 proxy.URL(),
		"SSL_CERT_FILE":               certFile,
	}), "PORT="+strconv.Itoa(port))
	var out logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := functest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := p.WaitUp(url+"robots.txt", 30*time.Second); err != nil {
		t.Fatalf("runner: %v\n%s", err, out.String())
	}

	get := func(ip string) functest.Token {
		t.Helper()
		resp, body, err := functest.Get(url, ip)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s from %s = %v %s (%v), want 200\n%s", url, ip, resp, body, err, out.String())
		}
		tok, err := functest.DecodeToken(body)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := get("203.0.113.7")
	if m, ok := emu.MintOf(first.Token); !ok || m.Caller != "key-1" {
		t.Errorf("first token: minted by %q (recorded: %v), want key-1, the v2 key", m.Caller, ok)
	}
	if again := get("203.0.113.7"); again.Token != first.Token {
		t.Errorf("a repeat visit got a new token, want the cached one")
	}

	emu.RotateAPIKey()
	secrets.AddVersion(secretID, []byte(`{"api_key": "`+emu.APIKeyV2()+`", "endpoint": "cache.`+cell+`:443"}`))
	second := get("198.51.100.9")
	if m, ok := emu.MintOf(second.Token); !ok || m.Caller != "key-2" {
		t.Errorf("after rotation: minted by %q (recorded: %v), want key-2, the new v2 key", m.Caller, ok)
	}

	connected := proxy.Connected()
	for _, host := range []string{"cache." + cell + ":443", "token." + cell + ":443"} {
		if !slices.Contains(connected, host) {
			t.Errorf("the SDK never dialled %s through the proxy; it dialled %q", host, connected)
		}
	}
	if r := proxy.Refused(); len(r) > 0 {
		t.Errorf("the runner tried to reach hosts other than the endpoint's: %q", r)
	}
	for _, key := range emu.APIKeys() {
		if strings.Contains(out.String(), key) {
			t.Errorf("the runner's output holds an API key")
		}
	}
}

// withoutProxies is environ without the variables that would send the
// runner's connections elsewhere.
func withoutProxies(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "GRPC_PROXY":
			continue
		}
		out = append(out, kv)
	}
	return out
}
