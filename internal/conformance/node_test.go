package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/momentotest"
)

// TestNodeSDK runs testdata/node/check.mjs, with the npm package
// @gomomento/sdk at the version package-lock.json pins, against an emulator.
// The Node SDK is pointed at the emulator with its own credential provider
// option: CredentialProvider.fromString with endpointOverrides naming the
// emulator's address and secureConnection false.
//
// It skips, with a message, when node or npm is not on PATH, and fails
// instead when REQUIRE_NODE=1 (as in CI).
func TestNodeSDK(t *testing.T) {
	node, npm := nodeFind(t)
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

	check := exec.CommandContext(ctx, node, "check.mjs")
	check.Dir = dir
	check.Env = childEnv([]string{"EMULATOR_ADDR=" + srv.Addr(), "MOMENTO_API_KEY=" + srv.APIKey()})
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
	mints := srv.Mints()
	if len(mints) != 2 {
		t.Fatalf("the emulator recorded %d mints, want 2", len(mints))
	}
	if mints[1].TokenID == "" || !strings.HasPrefix(mints[1].TokenID, "node-publisher-") {
		t.Errorf("the publishing token's mint has TokenID %q, want the tokenId check.mjs sent", mints[1].TokenID)
	}
}

// nodeFind returns the paths of node and npm, or skips or fails t without
// them.
func nodeFind(t *testing.T) (node, npm string) {
	t.Helper()
	required := os.Getenv("REQUIRE_NODE") == "1"
	if testing.Short() && !required {
		t.Skip("installs @gomomento/sdk with npm ci and runs node; skipped with -short; set REQUIRE_NODE=1 to run it anyway")
	}
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode == nil && errNpm == nil {
		return node, npm
	}
	if required {
		t.Fatalf("REQUIRE_NODE=1, but node or npm is not on PATH (node: %v, npm: %v); install the Debian packages nodejs and npm", errNode, errNpm)
	}
	t.Skipf("SKIPPED the Node SDK check: node or npm is not on PATH (node: %v, npm: %v); install the Debian packages nodejs and npm, or set REQUIRE_NODE=1 to make this a failure", errNode, errNpm)
	return "", ""
}
