package buildpack

// The tests in this file check that Google Cloud Functions' Go buildpack
// (github.com/GoogleCloudPlatform/buildpacks, cmd/go/functions_framework)
// can build this module, and that what it builds serves a token. They
// mirror what the buildpack does: it moves the upload into
// serverless_function_source_code/, checks that the root holds exactly one
// package (test files included), writes a main package at functions.local/app
// inside our own module that blank-imports ours, runs go mod tidy, and builds
// that main package.

import (
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"go/version"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/momentotest"
)

// moduleRoot is the function's module, whose root package is the function.
const moduleRoot = "../.."

// deployDocs are the pages whose deploy commands name the runtime and the
// entry point: the README's gcloud functions deploy, the operations page's
// gcloud run deploy.
var deployDocs = []string{filepath.Join(moduleRoot, "README.md"), filepath.Join(moduleRoot, "docs", "operations.md")}

// deployCommands returns the text of deployDocs, where the deploy commands
// are.
func deployCommands(t *testing.T) []byte {
	t.Helper()
	var all []byte
	for _, p := range deployDocs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v; the deploy commands (gcloud functions deploy ... --runtime goNNN in the README, gcloud run deploy ... --base-image goNNN in docs/operations.md) name the Go runtime that go.mod must not outrun and the entry point", err)
		}
		all = append(append(all, b...), '\n')
	}
	return all
}

// What the buildpack uses and requires.
const (
	// deployFunctionsPackage is the import that makes the buildpack choose
	// its declarative template.
	deployFunctionsPackage = "github.com/GoogleCloudPlatform/functions-framework-go/functions"
	// deployFrameworkModule is added to go.mod at deployFrameworkVersion
	// when go.mod does not already require it.
	deployFrameworkModule  = "github.com/GoogleCloudPlatform/functions-framework-go"
	deployFrameworkVersion = "v1.9.2"
	// deploySourceDir is where the buildpack moves the upload.
	deploySourceDir = "serverless_function_source_code"
	// deployAppDir is where, inside the source, it writes the main package.
	deployAppDir = "functions.local/app"
)

// Errors from the checks, for errors.Is.
var (
	errDeployMultiplePackages = errors.New("multiple packages in user code directory")
	errDeployNotImportable    = errors.New("package cannot be imported by the buildpack's main")
	errDeployModulePath       = errors.New("module path must contain a dot in its first element")
	errDeployTooNew           = errors.New("newer than the deploy runtime")
	errDeployNoRuntime        = errors.New("no --runtime or --base-image goNNN")
)

// deployMainTemplate is the buildpack's declarative template
// (cmd/go/functions_framework/lib/template_declarative.go), verbatim.
var deployMainTemplate = template.Must(template.New("main").Parse(`package main

import (
	"log"
	"net/http"
	"os"

	// Blank import the function package to run the init(), which is where
	// declarative function signatures are expected to be registered.
	_ "{{.Package}}"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	// Don't invoke the function for reserved URLs.
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("Function failed to start: %v\n", err)
	}
}
`))

// deployPackage parses the Go files in dir as the buildpack does: every
// file ending in .go, test files included, imports only. It returns the one
// package's name and the imports of all its files.
func deployPackage(dir string) (name string, imports map[string]bool, err error) {
	// ParseDir is deprecated, but it is what the buildpack calls, and it
	// ignores build constraints and _test suffixes just as the buildpack does.
	//lint:ignore SA1019 the buildpack calls ParseDir; mirroring it is the point
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, nil, parser.ImportsOnly)
	if err != nil {
		return "", nil, err
	}
	var names []string
	for n := range pkgs {
		names = append(names, n)
	}
	slices.Sort(names)
	switch {
	case len(names) == 0:
		return "", nil, fmt.Errorf("no Go package in %s", dir)
	case len(names) > 1:
		return "", nil, fmt.Errorf("%w: %s", errDeployMultiplePackages, strings.Join(names, ", "))
	}
	name = names[0]
	if name == "main" || strings.HasSuffix(name, "_test") {
		return "", nil, fmt.Errorf("package %s: %w", name, errDeployNotImportable)
	}
	imports = make(map[string]bool)
	for _, f := range pkgs[name].Files {
		for _, spec := range f.Imports {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return "", nil, err
			}
			imports[path] = true
		}
	}
	return name, imports, nil
}

// deployCheckModulePath reports whether the buildpack accepts a module path.
func deployCheckModulePath(path string) error {
	first, _, _ := strings.Cut(path, "/")
	if !strings.Contains(first, ".") {
		return fmt.Errorf("%q: %w", path, errDeployModulePath)
	}
	return nil
}

// deployGoMod is what the checks read from a go.mod.
type deployGoMod struct {
	Module    string
	Go        string // the go directive, e.g. "1.25.0"; "" if absent
	Toolchain string // the toolchain directive, e.g. "go1.25.3"; "" if absent
}

// deployParseGoMod reads the module, go and toolchain directives of a
// go.mod. It reads no other directive.
func deployParseGoMod(data []byte) (deployGoMod, error) {
	var m deployGoMod
	for line := range strings.Lines(string(data)) {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "module":
			m.Module = f[1]
			if unq, err := strconv.Unquote(f[1]); err == nil {
				m.Module = unq
			}
		case "go":
			m.Go = f[1]
		case "toolchain":
			m.Toolchain = f[1]
		}
	}
	if m.Module == "" {
		return m, errors.New("go.mod has no module directive")
	}
	return m, nil
}

// deployRuntimeRE matches a deploy command's runtime: gcloud functions
// deploy's --runtime goNNN, or gcloud run deploy's --base-image goNNN (or a
// stack's or registry's path ending in it, such as google-22/go125).
var deployRuntimeRE = regexp.MustCompile(`(?:--runtime|--base-image)[= ]+(?:[\w.:-]+/)*go(\d)(\d+)\b`)

// deployDocsRuntime returns the Go version, as "go1.25", of the runtime
// the deploy commands in docs (the text of deployDocs) name with --runtime
// goNNN or --base-image goNNN. They must all name the same one.
func deployDocsRuntime(docs []byte) (string, error) {
	var runtime string
	for _, m := range deployRuntimeRE.FindAllSubmatch(docs, -1) {
		v := fmt.Sprintf("go%s.%s", m[1], m[2])
		if runtime != "" && v != runtime {
			return "", fmt.Errorf("deploy commands name runtimes %s and %s", runtime, v)
		}
		runtime = v
	}
	if runtime == "" {
		return "", errDeployNoRuntime
	}
	return runtime, nil
}

// deployEntryPointRE matches the entry point a deploy command names:
// gcloud functions deploy's --entry-point, or gcloud run deploy's --function.
var deployEntryPointRE = regexp.MustCompile(`--(?:entry-point|function)[ =]([A-Za-z_][A-Za-z0-9_]*)`)

// deployEntryPoint returns the entry point the README's deploy commands
// name, which must be the name the function registers with functions.HTTP:
// the built function is started with it as FUNCTION_TARGET.
func deployEntryPoint(t *testing.T) string {
	t.Helper()
	var name string
	for _, m := range deployEntryPointRE.FindAllSubmatch(deployCommands(t), -1) {
		if name != "" && string(m[1]) != name {
			t.Fatalf("%s: deploy commands name entry points %s and %s", deployDocs, name, m[1])
		}
		name = string(m[1])
	}
	if name == "" {
		t.Fatalf("%s: no deploy command names the entry point (--entry-point or --function)", deployDocs)
	}
	return name
}

// deployCheckGoVersions reports whether the buildpack's toolchain for
// runtime (e.g. "go1.25", the latest 1.25.x) can build a go.mod with the
// given go and toolchain directives without fetching another toolchain.
func deployCheckGoVersions(goDirective, toolchain, runtime string) error {
	if goDirective == "" {
		return errors.New("go.mod has no go directive")
	}
	if err := deployCheckGoVersion("go "+goDirective, "go"+goDirective, runtime); err != nil {
		return err
	}
	if toolchain != "" && toolchain != "default" {
		return deployCheckGoVersion("toolchain "+toolchain, toolchain, runtime)
	}
	return nil
}

// deployCheckGoVersion checks one go.mod directive, what, whose version is v
// (as "go1.25.0"). It compares language versions: the runtime goNNN is the
// newest patch release of Go 1.N.
func deployCheckGoVersion(what, v, runtime string) error {
	if !version.IsValid(v) {
		return fmt.Errorf("%s: not a Go version", what)
	}
	if version.Compare(version.Lang(v), runtime) > 0 {
		return fmt.Errorf("%s is %w %s", what, errDeployTooNew, runtime)
	}
	return nil
}

func TestBuildpackLayout(t *testing.T) {
	name, imports, err := deployPackage(moduleRoot)
	if err != nil {
		t.Errorf("the buildpack would reject the module root: %v", err)
	} else if !imports[deployFunctionsPackage] {
		t.Errorf("package %s does not import %s, so the buildpack would not use its declarative template", name, deployFunctionsPackage)
	}

	data, err := os.ReadFile(filepath.Join(moduleRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := deployParseGoMod(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := deployCheckModulePath(mod.Module); err != nil {
		t.Errorf("go.mod: %v", err)
	}

	runtime := deployRuntime(t)
	if err := deployCheckGoVersions(mod.Go, mod.Toolchain, runtime); err != nil {
		t.Errorf("go.mod: %v", err)
	}
}

// deployRuntime returns the runtime named in deployDocs, as "go1.25".
func deployRuntime(t *testing.T) string {
	t.Helper()
	runtime, err := deployDocsRuntime(deployCommands(t))
	if err != nil {
		t.Fatalf("%s: %v; the deploy commands must name the runtime, as in gcloud functions deploy ... --runtime go125", deployDocs, err)
	}
	return runtime
}

func TestBuildpackChecksCatchMistakes(t *testing.T) {
	tests := []struct {
		name    string
		check   func(t *testing.T) error
		wantErr error // nil means the check passes
	}{
		{"external test package", func(t *testing.T) error {
			return deployPackageIn(t, map[string]string{"a.go": "package foo\n", "a_test.go": "package foo_test\n"})
		}, errDeployMultiplePackages},
		{"internal test package", func(t *testing.T) error {
			return deployPackageIn(t, map[string]string{"a.go": "package foo\n", "a_test.go": "package foo\n"})
		}, nil},
		{"main package", func(t *testing.T) error {
			return deployPackageIn(t, map[string]string{"main.go": "package main\n"})
		}, errDeployNotImportable},
		{"module path without a dot", func(*testing.T) error { return deployCheckModulePath("example/foo") }, errDeployModulePath},
		{"module path with a dot", func(*testing.T) error { return deployCheckModulePath("example.com/foo") }, nil},
		{"go directive newer than the runtime", func(*testing.T) error { return deployCheckGoVersions("1.26.0", "", "go1.25") }, errDeployTooNew},
		{"go directive of the runtime", func(*testing.T) error { return deployCheckGoVersions("1.25.0", "", "go1.25") }, nil},
		{"older go directive", func(*testing.T) error { return deployCheckGoVersions("1.24", "", "go1.25") }, nil},
		{"toolchain newer than the runtime", func(*testing.T) error { return deployCheckGoVersions("1.25.0", "go1.26.1", "go1.25") }, errDeployTooNew},
		{"README without a runtime", func(*testing.T) error {
			_, err := deployDocsRuntime([]byte("gcloud functions deploy tvm --gen2\n"))
			return err
		}, errDeployNoRuntime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(t)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestBuildpackReadmeRuntime(t *testing.T) {
	const (
		functions = "gcloud functions deploy token-vending-machine \\\n  --gen2 --runtime go125 \\\n  --entry-point TokenVendingMachine\n"
		run       = "gcloud run deploy token-vending-machine \\\n  --source . --function TokenVendingMachine --base-image go125 \\\n  --region \"$REGION\"\n"
	)
	tests := []struct {
		name   string
		readme string
		want   string // "" for an error
	}{
		{"gcloud functions deploy", functions, "go1.25"},
		{"gcloud run deploy", run, "go1.25"},
		{"both, one runtime", functions + run, "go1.25"},
		{"--runtime=", "gcloud functions deploy f --runtime=go126\n", "go1.26"},
		{"a stack's base image", "gcloud run deploy f --base-image google-22/go126\n", "go1.26"},
		{"a registry's base image", "gcloud run deploy f --base-image us-central1-docker.pkg.dev/serverless-runtimes/google-22-full/runtimes/go125\n", "go1.25"},
		{"two runtimes", functions + strings.Replace(run, "go125", "go126", 1), ""},
		{"no runtime", "gcloud run deploy f --source . --function F\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := deployDocsRuntime([]byte(tt.readme))
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Errorf("deployDocsRuntime(%q) = %q, %v; want %q", tt.readme, got, err, tt.want)
			}
		})
	}
}

// deployPackageIn writes files into a new directory and runs deployPackage
// on it.
func deployPackageIn(t *testing.T, files map[string]string) error {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := deployPackage(dir)
	return err
}

// TestBuildpackBuildAndServe builds the function as the buildpack does, runs
// it as Cloud Functions does, and fetches a token from it.
func TestBuildpackBuildAndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function as Cloud Functions does")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, deploySourceDir)
	deployCopyModule(t, moduleRoot, src)
	if _, _, err := deployPackage(src); err != nil {
		t.Fatalf("the buildpack would reject the source: %v", err)
	}

	module := strings.TrimSpace(deployGo(t, src, "list", "-m"))
	if err := deployCheckModulePath(module); err != nil {
		t.Fatal(err)
	}
	if _, err := deployGoCmd(src, "list", "-m", deployFrameworkModule); err != nil {
		t.Logf("go.mod does not require %s; adding it as the buildpack does", deployFrameworkModule)
		deployGo(t, src, "mod", "edit", "-require", deployFrameworkModule+"@"+deployFrameworkVersion)
	}
	deployWriteMain(t, filepath.Join(src, deployAppDir, "main.go"), module)

	before := deployReadModFiles(t, src)
	start := time.Now()
	deployGo(t, src, "mod", "tidy")
	t.Logf("go mod tidy: %v", time.Since(start).Round(time.Millisecond))
	after := deployReadModFiles(t, src)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("go mod tidy changed the deployed module; run go mod tidy here (-before +after):\n%s", diff)
	}
	mod, err := deployParseGoMod([]byte(after["go.mod"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(deployDocs[0]); err != nil {
		t.Logf("no %s to check go.mod's go directive against; TestBuildpackLayout reports it", deployDocs[0])
	} else if err := deployCheckGoVersions(mod.Go, mod.Toolchain, deployRuntime(t)); err != nil {
		t.Errorf("go.mod after go mod tidy: %v", err)
	}

	bin := filepath.Join(tmp, "main")
	start = time.Now()
	deployGo(t, src, "build", "-o", bin, "./"+deployAppDir)
	t.Logf("go build: %v", time.Since(start).Round(time.Millisecond))

	fake := momentotest.NewServerT(t, "pizza")
	base := deployStart(t, bin, map[string]string{
		"FUNCTION_TARGET":       deployEntryPoint(t),
		"K_SERVICE":             "token-vending-machine", // as on Cloud Functions
		"MOMENTO_API_KEY":       fake.APIKey(),
		"MOMENTO_EMULATOR_HOST": fake.Addr(),
	})

	resp, body := deployGet(t, base+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d %s, want 200", resp.StatusCode, body)
	}
	tok, err := functest.DecodeToken(body)
	if err != nil || tok.ExpiresIn < 3500 || tok.ExpiresIn > 3600 {
		t.Fatalf("GET / = %+v (%v), want a token for about an hour", tok, err)
	}
	mints := fake.Mints()
	if len(mints) != 1 {
		t.Fatalf("after GET /: %d mints, want 1", len(mints))
	}
	wantScope := []momentotest.Grant{{Kind: "topic", Role: "TopicReadOnly", Cache: "pizza", Topic: "*"}}
	if diff := cmp.Diff(wantScope, mints[0].Grants); diff != "" {
		t.Errorf("minted token's scope (-want +got):\n%s", diff)
	}
	if mints[0].Token != tok.Token {
		t.Errorf("GET / returned a token the fake did not mint")
	}

	// The template's handlers for these paths are on http.DefaultServeMux,
	// which funcframework.Start does not serve: the function must refuse
	// them itself.
	resp, body = deployGet(t, base+"/favicon.ico")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /favicon.ico = %d %s, want 404", resp.StatusCode, body)
	}
	if n := len(fake.Mints()); n != 1 {
		t.Errorf("after GET /favicon.ico: %d mints, want 1", n)
	}
}

// deployCopyModule copies what the function needs from the module in dir
// into dst: go.mod, go.sum, the root's .go files, and internal/, cmd/ and
// web/ (the browser helper, which the demo page embeds), without node_modules.
func deployCopyModule(t *testing.T, dir, dst string) {
	t.Helper()
	roots, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	roots = append(roots, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"),
		filepath.Join(dir, "internal"), filepath.Join(dir, "cmd"), filepath.Join(dir, "web"))
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == ".git" || d.Name() == "testoutput" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			return deployCopyFile(path, filepath.Join(dst, rel))
		})
		if err != nil {
			t.Fatalf("copy the module: %v", err)
		}
	}
}

// deployMaxFileSize is the largest file deployCopyModule copies; larger ones
// are build outputs, not source.
const deployMaxFileSize = 1 << 20

// deployCopyFile copies the regular file src to dst, making dst's directory,
// unless src is larger than deployMaxFileSize.
func deployCopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || fi.Size() > deployMaxFileSize {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// deployWriteMain renders the buildpack's main package for module into path.
func deployWriteMain(t *testing.T, path, module string) {
	t.Helper()
	var b bytes.Buffer
	if err := deployMainTemplate.Execute(&b, struct{ Package string }{module}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deployReadModFiles returns the contents of go.mod and go.sum in dir.
func deployReadModFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := make(map[string]string)
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	return files
}

// deployGo runs the go command in dir and returns its standard output,
// failing t with its output if it fails.
func deployGo(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := deployGoCmd(dir, args...)
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// deployGoCmd runs the go command in dir, with the test's environment (so
// the module cache and proxy settings carry over) and the local toolchain.
func deployGoCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w\n%s%s", err, out, stderr.Bytes())
	}
	return string(out), nil
}

// deployStart runs the function's binary as Cloud Functions does, on a free
// port, with env on top of the test's environment less the function's
// configuration. It returns the function's URL once it answers; the process
// is killed when the test ends.
func deployStart(t *testing.T, bin string, env map[string]string) string {
	t.Helper()
	port, err := functest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = functest.Env(os.Environ(), env)
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port))
	p, err := functest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("function output:\n%s", p.Output)
		}
	})
	// Poll a path the function refuses, so that polling mints no token.
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start := time.Now()
	if err := p.WaitUp(base+"/robots.txt", 20*time.Second); err != nil {
		t.Fatalf("function: %v", err)
	}
	t.Logf("function answered %v after start", time.Since(start).Round(time.Millisecond))
	return base
}

// deployGet sends a GET from a client behind Google's front end, as
// X-Forwarded-For tells, and returns the response and its body.
func deployGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := functest.Get(url, "203.0.113.7")
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}
