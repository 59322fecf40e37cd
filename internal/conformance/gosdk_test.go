package conformance

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/momentotest"
)

// sdkModule is the Go SDK whose own specs the emulator is held to.
const sdkModule = "github.com/momentohq/client-sdk-go"

// ginkgoSuite is the description the SDK's suite runs under (momento_suite_test.go).
const ginkgoSuite = "Momento Suite"

// knownGaps lists specs of surfaceSpecs that the emulator does not pass
// yet, each with the emulator behaviour that is missing. A listed spec that
// fails is logged; a listed spec that passes fails the test, so the list
// only ever shrinks.
var knownGaps = map[string]string{}

// TestGoSDKSpecs runs the Go SDK's own specs for the surface we use (see
// surfaceSpecs) against the emulator, and fails if any of them fails, does
// not run, or if the suite's setup (which creates two caches) or teardown
// (which deletes them) fails.
//
// How the SDK is built: the test copies the SDK's module (pinned by this
// project's go.sum) from the module cache and replaces its go.mod and go.sum
// with testdata/gosdk's, which raise the modules it shares with this project
// to the versions this project builds with (gRPC v1.82.0 instead of v1.63.0,
// among others): both the build our function ships, and what lets gRPC hand
// the unresolvable host name to the proxy. It compiles the specs with
// go test -c and -mod=readonly, outside the emulator's proxy, so every
// module the build fetches is checked against that committed go.sum, and a
// missing pin fails the build instead of being looked up.
//
// How the SDK is pointed at the emulator: its suite reads the key from
// MOMENTO_API_KEY and dials "cache.<endpoint>:443" (and control., token.)
// over TLS. The compiled specs run with the emulator's own key (endpoint
// momentotest.invalid), HTTPS_PROXY pointing at a loopback CONNECT proxy
// that ends TLS and relays to the emulator (momentotest.TLSProxy), and
// SSL_CERT_FILE holding that proxy's certificate. The SDK's sources are not
// changed.
func TestGoSDKSpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the Go SDK's own specs; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}

	work := t.TempDir()
	sdkDir := filepath.Join(work, "sdk")
	if err := copyTree(sdkModuleDir(t, ctx, goBin), sdkDir); err != nil {
		t.Fatalf("copying the SDK module: %v", err)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(pinnedSDKModDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sdkDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	specs := filepath.Join(work, "momento.test")
	start := time.Now()
	// -trimpath keeps the temporary directory out of the build cache's keys,
	// so the SDK's packages compile once per machine, not once per run.
	out, err := goCmd(ctx, goBin, sdkDir, []string{"GOFLAGS=-mod=readonly -trimpath", "GOTOOLCHAIN=local", "GOWORK=off"},
		"test", "-c", "-o", specs, "./momento")
	if err != nil {
		t.Fatalf("go test -c ./momento in the SDK's copy: %v\n%s\n(a missing go.sum entry means %s needs regenerating: %s)",
			err, tail(string(out), 30), pinnedSDKModDir, regenCommand)
	}
	t.Logf("building the SDK's specs took %v", time.Since(start).Round(time.Second))

	srv, err := momentotest.NewServer(momentotest.Options{})
	if err != nil {
		t.Fatalf("momentotest.NewServer: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	proxy := momentotest.NewTLSProxyT(t, momentotest.DefaultEndpoint, srv.Addr())
	certFile := filepath.Join(work, "proxy-cert.pem")
	if err := os.WriteFile(certFile, proxy.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	names, group := surfaceSpecNames()
	reportFile := filepath.Join(work, "report.json")
	run := exec.CommandContext(ctx, specs, "-test.timeout=15m",
		"-ginkgo.focus="+focusRegexp(ginkgoSuite, names),
		"-ginkgo.json-report="+reportFile,
		"-ginkgo.no-color",
	)
	// go test runs a test binary in its package's directory.
	run.Dir = filepath.Join(sdkDir, "momento")
	run.Env = childEnv([]string{
		"MOMENTO_API_KEY=" + srv.APIKey(),
		"HTTPS_PROXY=" + proxy.URL(),
		"SSL_CERT_FILE=" + certFile,
	})
	start = time.Now()
	out, runErr := run.CombinedOutput()
	redact := redactor(srv)
	t.Logf("running the SDK's specs took %v (exit: %v)", time.Since(start).Round(time.Second), runErr)

	reports, err := readGinkgoReport(reportFile)
	if err != nil {
		t.Fatalf("no ginkgo report (%v); the specs said:\n%s", err, tail(redact(string(out)), 60))
	}
	for _, r := range reports {
		t.Logf("ginkgo suite %q: %d of its %d specs selected", r.SuiteDescription, r.PreRunStats.SpecsThatWillRun, r.PreRunStats.TotalSpecs)
	}
	if refused := proxy.Refused(); len(refused) > 0 {
		t.Errorf("the SDK tried to reach hosts other than the emulator's: %q", refused)
	}
	if u := srv.Unmodelled(); len(u) > 0 {
		t.Logf("RPCs the emulator answered Unimplemented: %q", dedupe(u))
	}
	checkSpecs(t, reports, names, group, redact)
	if runErr != nil && !t.Failed() {
		t.Errorf("the SDK's specs failed although every listed spec passed: %v\n%s", runErr, tail(redact(string(out)), 40))
	}
}

// checkSpecs compares the ginkgo report with the expected specs.
func checkSpecs(t *testing.T, reports []ginkgoReport, names []string, group map[string]string, redact func(string) string) {
	t.Helper()
	got := make(map[string]ginkgoSpec)
	for _, r := range reports {
		for _, s := range r.SpecReports {
			switch s.LeafNodeType {
			case "It":
			case "BeforeSuite", "AfterSuite", "SynchronizedBeforeSuite", "SynchronizedAfterSuite":
				if s.State != "passed" {
					t.Errorf("suite %s %s: %s", s.LeafNodeType, s.State, redact(s.Failure.summary()))
				}
				continue
			default:
				if s.State != "passed" {
					t.Errorf("%s node %s: %s", s.LeafNodeType, s.State, redact(s.Failure.summary()))
				}
				continue
			}
			full := strings.Join(append(append([]string(nil), s.ContainerHierarchyTexts...), s.LeafNodeText), " ")
			if s.State == "skipped" {
				continue
			}
			if _, ok := group[full]; !ok {
				t.Errorf("spec %q ran but is not in surfaceSpecs", full)
				continue
			}
			got[full] = s
		}
	}

	type tally struct{ passed, total int }
	tallies := make(map[string]*tally)
	var order []string
	var passed, gaps int
	var notRun []string
	for _, n := range names {
		g := group[n]
		if tallies[g] == nil {
			tallies[g] = &tally{}
			order = append(order, g)
		}
		tallies[g].total++
		s, ran := got[n]
		ok := ran && s.State == "passed"
		reason, known := knownGaps[n]
		switch {
		case ok && known:
			tallies[g].passed++
			passed++
			t.Errorf("PASS %q, which knownGaps lists (%s): remove it from knownGaps", n, reason)
		case ok:
			tallies[g].passed++
			passed++
		case known:
			gaps++
			t.Logf("known gap %q: %s (%s)", n, stateOf(s, ran), reason)
		case !ran:
			notRun = append(notRun, n)
		default:
			t.Errorf("FAIL %q: %s: %s", n, s.State, redact(s.Failure.summary()))
		}
	}
	var b strings.Builder
	for _, g := range order {
		fmt.Fprintf(&b, "\n  %-38s %2d/%d", g, tallies[g].passed, tallies[g].total)
	}
	t.Logf("Go SDK specs passed: %d/%d (known gaps: %d)%s", passed, len(names), gaps, b.String())
	if len(notRun) > 0 {
		t.Errorf("%d of the %d expected specs did not run:\n  %s", len(notRun), len(names), strings.Join(notRun, "\n  "))
	}
}

func stateOf(s ginkgoSpec, ran bool) string {
	if !ran {
		return "did not run"
	}
	return s.State
}

// ginkgoReport is the part of ginkgo's JSON report (types.Report) read here.
type ginkgoReport struct {
	SuiteDescription string
	PreRunStats      struct{ TotalSpecs, SpecsThatWillRun int }
	SpecReports      []ginkgoSpec
}

// ginkgoSpec is the part of types.SpecReport read here.
type ginkgoSpec struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	Failure                 ginkgoFailure
}

type ginkgoFailure struct {
	Message        string
	ForwardedPanic string
	Location       struct {
		FileName   string
		LineNumber int
	}
}

// summary is the failure's message and place on one line, cut short.
func (f ginkgoFailure) summary() string {
	msg := f.Message
	if f.ForwardedPanic != "" {
		msg += " (panic: " + f.ForwardedPanic + ")"
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	return fmt.Sprintf("%s at %s:%d", msg, filepath.Base(f.Location.FileName), f.Location.LineNumber)
}

func readGinkgoReport(path string) ([]ginkgoReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r []ginkgoReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return r, nil
}

// goCmd runs the go command in dir and returns its combined output.
func goCmd(ctx context.Context, goBin, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = buildEnv(env)
	return cmd.CombinedOutput()
}

// buildVars are the variables that would point a Momento client elsewhere
// or change how go builds.
var buildVars = []string{"MOMENTO_", "CONSISTENT_READS=", "GOFLAGS=", "GOTOOLCHAIN=", "GOWORK="}

// netVars are the variables that send a client through a proxy or change
// the certificates it trusts.
var netVars = []string{"HTTPS_PROXY=", "https_proxy=", "HTTP_PROXY=", "http_proxy=", "NO_PROXY=", "no_proxy=",
	"ALL_PROXY=", "all_proxy=", "grpc_proxy=", "no_grpc_proxy=", "SSL_CERT_FILE=", "SSL_CERT_DIR=",
	"NODE_EXTRA_CA_CERTS=", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH="}

// buildEnv is the environment for a build tool (go, npm): this process's,
// without buildVars, plus env. The network settings stay this process's own,
// so modules and packages come the way this go test's own came.
func buildEnv(env []string) []string { return environ(buildVars, env) }

// childEnv is the environment for a Momento client under test: this
// process's without buildVars and netVars, plus env, which alone says where
// the client connects and what it trusts.
func childEnv(env []string) []string {
	return environ(append(append([]string(nil), buildVars...), netVars...), env)
}

// environ is this process's environment without the variables whose
// "NAME=" (or name prefix) is in drop, plus env.
func environ(drop, env []string) []string {
	var out []string
next:
	for _, kv := range os.Environ() {
		for _, d := range drop {
			if strings.HasPrefix(kv, d) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return append(out, env...)
}

// copyTree copies the module in src (read-only in the module cache) to a
// writable dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// redactor returns a function that hides every key and minted token of srv.
func redactor(srv *momentotest.Server) func(string) string {
	return func(s string) string {
		var secrets []string
		secrets = append(secrets, srv.APIKeys()...)
		for _, m := range srv.Mints() {
			secrets = append(secrets, m.Token)
		}
		for _, tok := range append([]string(nil), secrets...) {
			// A v1 key or token is base64 of {"api_key": secret, ...}.
			if b, err := base64.StdEncoding.DecodeString(tok); err == nil {
				var v struct {
					APIKey string `json:"api_key"`
				}
				if json.Unmarshal(b, &v) == nil {
					secrets = append(secrets, v.APIKey)
				}
			}
		}
		for _, x := range secrets {
			if x != "" {
				s = strings.ReplaceAll(s, x, "[redacted]")
			}
		}
		return s
	}
}

func dedupe(s []string) []string {
	seen := make(map[string]bool)
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
