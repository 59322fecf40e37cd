package functest

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of headless Chromium for a browser test. Without
// it, or with -short, t skips, saying so, unless REQUIRE_BROWSER=1 (which CI
// sets) makes that a failure.
func Chromium(t testing.TB) string {
	t.Helper()
	required := os.Getenv("REQUIRE_BROWSER") == "1"
	if testing.Short() && !required {
		t.Skip("browser test skipped in -short mode; set REQUIRE_BROWSER=1 to run it anyway")
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if required {
		t.Fatal("REQUIRE_BROWSER=1, but headless Chromium was not found (neither chromium nor chromium-browser is on PATH); install the Debian package chromium")
	}
	t.Skip("SKIPPED: headless Chromium not found; install the Debian package chromium, or set REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

// Node returns the paths of node and npm for a test that needs them.
// Without them, or with -short, t skips, saying so, unless REQUIRE_NODE=1
// (which CI sets) makes that a failure.
func Node(t testing.TB) (node, npm string) {
	t.Helper()
	required := os.Getenv("REQUIRE_NODE") == "1"
	if testing.Short() && !required {
		t.Skip("needs node and npm; skipped in -short mode; set REQUIRE_NODE=1 to run it anyway")
	}
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode == nil && errNpm == nil {
		return node, npm
	}
	if required {
		t.Fatalf("REQUIRE_NODE=1, but node or npm is not on PATH (node: %v, npm: %v); install the Debian packages nodejs and npm", errNode, errNpm)
	}
	t.Skipf("SKIPPED: node or npm is not on PATH (node: %v, npm: %v); install the Debian packages nodejs and npm, or set REQUIRE_NODE=1 to make this a failure", errNode, errNpm)
	return "", ""
}
