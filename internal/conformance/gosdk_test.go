package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
// How the SDK is pointed at the emulator: its suite reads the key from
// MOMENTO_API_KEY and dials "cache.<endpoint>:443" (and control., token.)
// over TLS. The test gives it the emulator's own key (endpoint
// momentotest.invalid), HTTPS_PROXY pointing at a loopback CONNECT proxy
// that ends TLS and relays to the emulator, and SSL_CERT_FILE holding that
// proxy's certificate. The SDK's sources are not changed; only its go.mod
// is: the versions of the modules it shares with this project are raised to
// the ones this project builds with (gRPC v1.82.0 instead of v1.63.0, among others),
// which is both the build our function ships and what lets gRPC hand the
// unresolvable host name to the proxy; ginkgo and gomega come from the proxy
// at the SDK's own versions.
func TestGoSDKSpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go SDK's own specs in a go test of their own; skipped with -short")
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

	sdkSrc := strings.TrimSpace(runGo(t, ctx, goBin, ".", nil, "list", "-m", "-f", "{{.Dir}}", sdkModule))
	if sdkSrc == "" {
		t.Fatalf("go list -m %s: module not in the module cache", sdkModule)
	}
	work := t.TempDir()
	sdkDir := filepath.Join(work, "sdk")
	if err := copyTree(sdkSrc, sdkDir); err != nil {
		t.Fatalf("copying %s: %v", sdkSrc, err)
	}
	modEnv := []string{"GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"}
	alignModules(t, ctx, goBin, sdkDir, modEnv)

	srv, err := momentotest.NewServer(momentotest.Options{})
	if err != nil {
		t.Fatalf("momentotest.NewServer: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	proxy := newTLSProxy(t, momentotest.DefaultEndpoint, srv.Addr())
	certFile := filepath.Join(work, "proxy-cert.pem")
	if err := os.WriteFile(certFile, proxy.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	names, group := surfaceSpecNames()
	reportFile := filepath.Join(work, "report.json")
	env := append(append([]string(nil), modEnv...),
		"MOMENTO_API_KEY="+srv.APIKey(),
		"HTTPS_PROXY="+proxy.URL(),
		"SSL_CERT_FILE="+certFile,
	)
	start := time.Now()
	out, runErr := goCmd(ctx, goBin, sdkDir, env, "test", "-count=1", "-timeout=15m", "./momento", "-args",
		"-ginkgo.focus="+focusRegexp(ginkgoSuite, names),
		"-ginkgo.json-report="+reportFile,
		"-ginkgo.no-color",
	)
	redact := redactor(srv)
	t.Logf("go test of the SDK's specs took %v (exit: %v)", time.Since(start).Round(time.Second), runErr)

	reports, err := readGinkgoReport(reportFile)
	if err != nil {
		t.Fatalf("no ginkgo report (%v); go test said:\n%s", err, tail(redact(string(out)), 60))
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
		t.Errorf("go test of the SDK's specs failed although every listed spec passed: %v\n%s", runErr, tail(redact(string(out)), 40))
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

// alignModules raises, in the go.mod in dir, every module that this
// project's build also uses to the version this project builds with.
func alignModules(t *testing.T, ctx context.Context, goBin, dir string, env []string) {
	t.Helper()
	ours := moduleVersions(runGo(t, ctx, goBin, ".", nil, "list", "-m", "-f", "{{.Path}} {{.Version}}", "all"))
	theirs := moduleVersions(runGo(t, ctx, goBin, dir, env, "list", "-m", "-f", "{{.Path}} {{.Version}}", "all"))
	args := []string{"mod", "edit"}
	var raised []string
	for path, v := range theirs {
		if o, ok := ours[path]; ok && o != "" && v != "" && o != v {
			args = append(args, "-require="+path+"@"+o)
			raised = append(raised, path+" "+v+" -> "+o)
		}
	}
	sort.Strings(raised)
	t.Logf("SDK module copy: aligned with this project's build: %s", strings.Join(raised, ", "))
	if len(args) > 2 {
		runGo(t, ctx, goBin, dir, env, args...)
	}
}

func moduleVersions(out string) map[string]string {
	m := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// runGo runs the go command in dir and returns its standard output, failing
// the test if it fails.
func runGo(t *testing.T, ctx context.Context, goBin, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, tail(stderr.String(), 30))
	}
	return string(out)
}

// goCmd runs the go command in dir and returns its combined output.
func goCmd(ctx context.Context, goBin, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(env)
	return cmd.CombinedOutput()
}

// childEnv is this process's environment without anything that would point a
// Momento client elsewhere or change how go builds, plus env.
func childEnv(env []string) []string {
	drop := []string{"MOMENTO_", "CONSISTENT_READS=", "HTTPS_PROXY=", "https_proxy=", "HTTP_PROXY=", "http_proxy=",
		"NO_PROXY=", "no_proxy=", "ALL_PROXY=", "all_proxy=", "SSL_CERT_FILE=", "SSL_CERT_DIR=", "GOFLAGS=", "GOTOOLCHAIN="}
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
