package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/momentotest"
)

// TestNodeSDK runs testdata/node/check.mjs, with the npm package
// @gomomento/sdk at the version package-lock.json pins, against an emulator.
// The Node SDK is pointed at the emulator with its own credential provider
// option: CredentialProvider.fromString with endpointOverrides naming the
// emulator's address and secureConnection false.
//
// The v2 key has no such option: CredentialProvider.fromApiKeyV2 takes an
// endpoint E and dials token.E, cache.E and control.E on port 443 with TLS.
// So that part goes, with E = momentotest.invalid, through a
// momentotest.TLSProxy: grpc-js takes its proxy from grpc_proxy and leaves
// the host name for the proxy to resolve (no_grpc_proxy=127.0.0.1 keeps the
// plaintext clients off it), and trusts the proxy's certificate from
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, its own roots file, which when set
// replaces Node's roots, NODE_EXTRA_CA_CERTS included. The token minted
// there is used as a browser would, with
// CredentialProvider.fromDisposableToken, so its subscription goes to the
// endpoint inside it, through the proxy too.
//
// It skips, with a message, when node or npm is not on PATH, and fails
// instead when REQUIRE_NODE=1 (as in CI).
func TestNodeSDK(t *testing.T) {
	node, npm := functest.Node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	install.Dir = dir
	install.Env = buildEnv(nil)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, tail(string(out), 30))
	}

	srv, err := momentotest.NewServer(momentotest.Options{})
	if err != nil {
		t.Fatalf("momentotest.NewServer: %v", err)
	}
	t.Cleanup(func() { srv.Close() })

	proxy := momentotest.NewTLSProxyT(t, momentotest.DefaultEndpoint, srv.Addr())
	certFile := filepath.Join(t.TempDir(), "proxy-cert.pem")
	if err := os.WriteFile(certFile, proxy.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	check := exec.CommandContext(ctx, node, "check.mjs")
	check.Dir = dir
	check.Env = childEnv([]string{
		"EMULATOR_ADDR=" + srv.Addr(),
		"MOMENTO_API_KEY=" + srv.APIKey(),
		"MOMENTO_API_KEY_V2=" + srv.APIKeyV2(),
		"MOMENTO_ENDPOINT=" + momentotest.DefaultEndpoint,
		"grpc_proxy=" + proxy.URL(),
		"no_grpc_proxy=127.0.0.1",
		"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + certFile,
	})
	out, err := check.CombinedOutput()
	text := redactor(srv)(string(out))
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		t.Log(line)
	}
	if u := srv.Unmodelled(); len(u) > 0 {
		t.Logf("RPCs the emulator answered Unimplemented: %q", dedupe(u))
	}
	if err != nil {
		t.Fatalf("node check.mjs: %v", err)
	}
	var ids []string
	for _, m := range srv.Mints() {
		ids = append(ids, m.TokenID)
	}
	// The subscriber's token, the publisher's, the one minted with the v2 key.
	if len(ids) != 3 || ids[0] != "" || !strings.HasPrefix(ids[1], "node-publisher-") || !strings.HasPrefix(ids[2], "node-v2-") {
		t.Errorf("the emulator recorded mints with token IDs %q, want \"\", node-publisher-…, node-v2-…", ids)
	}
	if refused := proxy.Refused(); len(refused) > 0 {
		t.Errorf("the Node SDK asked the proxy for hosts other than the emulator's: %q", refused)
	}
	connected := strings.Join(proxy.Connected(), " ")
	for _, host := range []string{"token.", "cache."} {
		if want := host + momentotest.DefaultEndpoint + ":443"; !strings.Contains(" "+connected+" ", " "+want+" ") {
			t.Errorf("the proxy relayed %q, want %s among them (the v2 key's mint and the subscription with its token)", proxy.Connected(), want)
		}
	}
}
