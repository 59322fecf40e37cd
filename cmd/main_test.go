package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/momentohq/client-sdk-go/auth"
	"github.com/momentohq/client-sdk-go/config"
	"github.com/momentohq/client-sdk-go/config/logger"
	"github.com/momentohq/client-sdk-go/momento"

	"example.com/tokenvendingmachine/internal/functest"
)

// binDir holds the runner binary that buildRunner builds, once per test
// binary; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// built builds the runner the first time it is called.
var built = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tvm-runner-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "tvm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// buildRunner returns the runner binary, built once per test binary.
func buildRunner(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := built()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestRefusesAnInvalidConfiguration runs the built runner with a bad
// setting. Deployed, the function answers 500 and logs why; locally the
// runner must not print its banner and serve 500s, but exit non-zero with
// a message that names the variable and says to start again (not to
// redeploy).
// testV2Key is a Momento v2 API key's shape: a JWT whose claims hold
// "t": "g" and no endpoint.
var testV2Key = "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"t":"g"}`)) + ".c2ln"

func TestRefusesAnInvalidConfiguration(t *testing.T) {
	bin := buildRunner(t)
	tests := []struct {
		name string
		env  map[string]string // on top of a fresh shell's
		want string            // in the message
	}{
		{"token ttl over 1h", map[string]string{"TOKEN_TTL": "5h"}, "TOKEN_TTL must be from 6m"},
		{"origin not a URL", map[string]string{"ALLOWED_ORIGINS": "notaurl"}, "ALLOWED_ORIGINS"},
		{"cache name set but empty", map[string]string{"CACHE_NAME": ""}, "CACHE_NAME"},
		{"with a key, cache ttl over token ttl", map[string]string{"MOMENTO_API_KEY": "k", "CACHE_TTL": "2h"}, "CACHE_TTL"},
		// A v2 key, as Momento's console issues them, needs its endpoint.
		{"v2 key without endpoint", map[string]string{"MOMENTO_API_KEY": testV2Key}, "set MOMENTO_ENDPOINT"},
		{"endpoint with a path", map[string]string{"MOMENTO_API_KEY": testV2Key, "MOMENTO_ENDPOINT": "https://cell-1.example.com/v1"}, "MOMENTO_ENDPOINT must be a Momento endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, err := functest.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-port", strconv.Itoa(port), "-demo-port", "0")
			cmd.Env = functest.Env(os.Environ(), tt.env)
			p, err := functest.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Exited():
			case <-time.After(30 * time.Second):
				p.Kill()
				t.Fatalf("still running after 30s:\n%s", p.Output)
			}
			out := p.Output.String()
			var exit *exec.ExitError
			if err := p.Err(); !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("exit: %v, want a non-zero exit code\n%s", err, out)
			}
			if !strings.Contains(out, tt.want) || !strings.Contains(out, "start again") {
				t.Errorf("output lacks %q or \"start again\":\n%s", tt.want, out)
			}
			for _, bad := range []string{"EMULATOR MODE", "Serving", "redeploy"} {
				if strings.Contains(out, bad) {
					t.Errorf("output has %q:\n%s", bad, out)
				}
			}
		})
	}
}

// TestRunWithoutConfiguration runs the built binary as the README's quick
// start does, with no configuration, and fetches a token from it; and again
// with K_SERVICE set, as a shell that once deployed may have it.
func TestRunWithoutConfiguration(t *testing.T) {
	bin := buildRunner(t)
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		{"fresh shell", nil},
		{"K_SERVICE set", map[string]string{"K_SERVICE": "token-vending-machine"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port, err := functest.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			demoPort, err := functest.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			webPort, err := functest.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-demo-port", strconv.Itoa(demoPort), "-grpcweb-port", strconv.Itoa(webPort))
			cmd.Env = append(functest.Env(os.Environ(), tt.env), "PORT="+strconv.Itoa(port))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			p, err := functest.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Kill)
			lines := make(chan string, 100)
			var output strings.Builder
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			// Wait for the banner, and the sign-in command after it: the
			// last line before the runner serves.
			var signIn string
			for signIn == "" {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatalf("the runner exited before its banner:\n%s", output.String())
					}
					output.WriteString(line + "\n")
					if strings.Contains(line, "Authorization: Bearer") {
						signIn = strings.TrimSpace(line)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("no banner after 30s:\n%s", output.String())
				}
			}
			webURL := fmt.Sprintf("http://127.0.0.1:%d", webPort)
			for _, want := range []string{"EMULATOR MODE", "NOT valid on real Momento", `one cache, "pizza" (CACHE_NAME)`, fmt.Sprintf("curl -s http://127.0.0.1:%d/", port), "\n  gRPC-web: " + webURL + "\n"} {
				if !strings.Contains(output.String(), want) {
					t.Errorf("banner lacks %q:\n%s", want, output.String())
				}
			}

			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			if err := p.WaitUp(url+"robots.txt", 20*time.Second); err != nil {
				t.Fatalf("runner: %v\n%s", err, output.String())
			}
			resp, body, err := functest.Get(url, "")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %v %s (%v), want 200\n%s", url, resp, body, err, output.String())
			}
			tok, err := functest.DecodeToken(body)
			if err != nil || tok.ExpiresIn < 3500 {
				t.Fatalf("GET %s: %+v (%v), want a token for about an hour", url, tok, err)
			}
			// The banner's command for a signed-in user's token, as a
			// newcomer pastes it into a shell.
			if _, err := exec.LookPath("curl"); err != nil {
				t.Logf("no curl: the banner's sign-in command is not tried")
			} else {
				body, err := exec.Command("sh", "-c", signIn).Output()
				if err != nil {
					t.Fatalf("the banner's sign-in command %s: %v", signIn, err)
				}
				tok, err := functest.DecodeToken(body)
				if err != nil {
					t.Fatalf("the banner's sign-in command %s: %v", signIn, err)
				}
				if claims := emulatorClaims(t, tok.Token); !strings.Contains(claims, `"topic":"user-alice-*"`) || !strings.Contains(claims, `"token_id":"u-`) {
					t.Errorf("the banner's sign-in command got a token with claims %s, want alice's scope and tokenId", claims)
				}
			}
			// The web SDK's preflight to the emulator's gRPC-web port.
			pre, _ := http.NewRequest(http.MethodOptions, webURL+"/cache_client.Scs/Get", nil)
			pre.Header.Set("Origin", fmt.Sprintf("http://127.0.0.1:%d", demoPort))
			pre.Header.Set("Access-Control-Request-Method", "POST")
			pre.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web,authorization,cache")
			if resp, err := http.DefaultClient.Do(pre); err != nil || resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
				t.Errorf("gRPC-web preflight from the demo's origin: %v %v, want it allowed", resp, err)
			} else {
				resp.Body.Close()
			}
			demo, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/demo", demoPort))
			if err != nil || demo.StatusCode != http.StatusOK {
				t.Errorf("demo page: %v %v", err, demo)
			} else {
				page, _ := io.ReadAll(demo.Body)
				demo.Body.Close()
				if !strings.Contains(string(page), url) {
					t.Errorf("demo page does not call %s", url)
				}
				if want := fmt.Sprintf("const GRPC_WEB = %q", webURL); !strings.Contains(string(page), want) {
					t.Errorf("demo page's live view lacks %s", want)
				}
			}
			// The pizzeria publishes order 42's progress, which the
			// visitor's token may read.
			if item := runnerTopicItem(t, output.String(), tok.Token, "order-42-status-updated"); !strings.HasPrefix(item, "order 42: ") {
				t.Errorf("first item on order-42-status-updated = %q, want order 42's status", item)
			}

			start := time.Now()
			go func() {
				for line := range lines {
					output.WriteString(line + "\n")
				}
			}()
			err = p.Stop(10 * time.Second)
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				t.Fatalf("after SIGTERM: %v, want exit code 0", err)
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("exited 0 %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestStopWhenOrphaned checks that the runner's context ends, with the
// cause errParentGone, once its parent process is another than at start,
// and not before.
func TestStopWhenOrphaned(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(4242)
	ctx, cancel := stopWhenOrphaned(context.Background(), func() int { return int(ppid.Load()) }, time.Millisecond)
	defer cancel()
	select {
	case <-ctx.Done():
		t.Fatalf("context ended while the parent lives: %v", context.Cause(ctx))
	case <-time.After(50 * time.Millisecond):
	}
	ppid.Store(1) // reparented to init
	select {
	case <-ctx.Done():
		if cause := context.Cause(ctx); !errors.Is(cause, errParentGone) {
			t.Errorf("context.Cause = %v, want %v", cause, errParentGone)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("context did not end within 5s of the parent's exit")
	}
}

// TestStopsWhenItsParentIsGone starts the built runner from a shell, as go
// run starts it, and kills the shell: the runner must notice and exit, and
// free its port, within a few seconds (go run, stopped by SIGTERM, passes
// nothing on).
func TestStopsWhenItsParentIsGone(t *testing.T) {
	bin := buildRunner(t)
	port, err := functest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	parent := exec.Command("sh", "-c", `"$@" & echo "runner pid $!"; wait`, "sh", bin, "-port", strconv.Itoa(port), "-demo-port", "0")
	parent.Env = functest.Env(os.Environ(), nil)
	parent.Stdout, parent.Stderr = w, w
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the shell and the runner hold the only write ends now
	var (
		mu        sync.Mutex
		output    strings.Builder
		runnerPID int
	)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			mu.Lock()
			output.WriteString(sc.Text() + "\n")
			if pid, ok := strings.CutPrefix(sc.Text(), "runner pid "); ok {
				runnerPID, _ = strconv.Atoi(pid)
			}
			mu.Unlock()
		}
	}()
	out := func() string { mu.Lock(); defer mu.Unlock(); return output.String() }
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if runnerPID > 0 {
			syscall.Kill(runnerPID, syscall.SIGKILL) // if it outlived the test
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/robots.txt", port)
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			parent.Process.Kill()
			t.Fatalf("the runner did not answer within 30s:\n%s", out())
		}
	}

	parent.Process.Kill()
	parent.Wait()
	start := time.Now()
	select {
	case <-eof: // every write end is closed: the runner has exited
	case <-time.After(10 * time.Second):
		t.Fatalf("the runner still runs 10s after its parent was killed:\n%s", out())
	}
	t.Logf("the runner exited %v after its parent", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out(), "The parent process has exited") {
		t.Errorf("the runner did not say why it stopped:\n%s", out())
	}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("port %d still answers after the runner stopped", port)
	}
}

// TestHelp runs the built runner with -h, as a newcomer does: it must exit
// 0 with a usage a newcomer can act on, each flag's true default, and the
// variables to set first.
func TestHelp(t *testing.T) {
	bin := buildRunner(t)
	cmd := exec.Command(bin, "-h")
	cmd.Env = functest.Env(os.Environ(), nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v, want exit 0\n%s", bin, err, out)
	}
	got := string(out)
	if !strings.HasPrefix(got, "Usage: go run ./cmd [flags]\n") {
		t.Errorf("-h output does not start with the usage line naming the command:\n%s", got)
	}
	for _, bad := range []string{"Usage of", "(default -1)", "(default 0)", "(default 8080)", "(default 0s)"} {
		if strings.Contains(got, bad) {
			t.Errorf("-h output has %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{
		"(default: $PORT, else 8080)", "(default: the function's port + 1; 0 turns it off)", `(default "127.0.0.1")`,
		"SECRET_ID", "MOMENTO_API_KEY", "MOMENTO_ENDPOINT", "CACHE_NAME", "TOPICS", "README's Configuration table",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("-h output lacks %q:\n%s", want, got)
		}
	}
}

// emulatorClaims returns the claims of an emulator's token, as JSON: the
// token is base64 of {"api_key", "endpoint"}, and the api_key a JWT whose
// claims spell out the scope.
func emulatorClaims(t *testing.T, token string) string {
	t.Helper()
	outer, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("token is not base64: %v", err)
	}
	var v struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(outer, &v); err != nil {
		t.Fatalf("token does not hold JSON: %v", err)
	}
	parts := strings.Split(v.APIKey, ".")
	if len(parts) != 3 {
		t.Fatalf("token's api_key is not a JWT")
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token's claims: %v", err)
	}
	return string(claims)
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		want    string // in the output
	}{
		{"help", []string{"-h"}, nil, "-demo-port"},
		// Loopback unless told otherwise, with or without the emulator.
		{"host defaults to loopback", []string{"-h"}, nil, `interface to listen on (0.0.0.0 or :: for all interfaces) (default "127.0.0.1")`},
		{"bad value", []string{"-port", "x"}, errUsage, `invalid value "x" for flag -port`},
		{"unknown flag", []string{"-nope"}, errUsage, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			lookupenv := func(string) (string, bool) { return "", false }
			setenv := func(string, string) error { return nil }
			err := run(context.Background(), tt.args, lookupenv, setenv, &out)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("run(%q) = %v, want %v", tt.args, err, tt.wantErr)
			}
			if got := out.String(); !strings.Contains(got, tt.want) || strings.Count(got, "Usage") != 1 {
				t.Errorf("run(%q) printed %q, want %q and the usage once", tt.args, got, tt.want)
			}
		})
	}
}

// TestBadPorts checks that a port that cannot be listened on as given is
// refused before anything starts, naming the flag or variable.
func TestBadPorts(t *testing.T) {
	tests := []struct {
		name string
		args []string
		port string // $PORT
		want string // in the error
	}{
		{"port 0", []string{"-port", "0"}, "", "-port must be from 1 to 65535"},
		{"port too high", []string{"-port", "65536"}, "", "-port must be from 1 to 65535"},
		{"negative demo port", []string{"-demo-port", "-1"}, "", "-demo-port must be from 0"},
		{"gRPC-web port out of range", []string{"-grpcweb-port", "70000"}, "", "-grpcweb-port must be from 0"},
		{"PORT not a number", nil, "http", "PORT must be a port number"},
		{"PORT 0", nil, "0", "PORT must be a port number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookupenv := func(name string) (string, bool) {
				if name == "PORT" && tt.port != "" {
					return tt.port, true
				}
				return "", false
			}
			setenv := func(string, string) error { return nil }
			err := run(context.Background(), tt.args, lookupenv, setenv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) with PORT=%q = %v, want an error with %q", tt.args, tt.port, err, tt.want)
			}
		})
	}
}

func TestOriginAllowed(t *testing.T) {
	const page = "http://127.0.0.1:8081/demo"
	tests := []struct {
		allowed string
		want    bool
	}{
		{"", true},
		{"*", true},
		{"http://127.0.0.1:8081", true},
		{"https://shop.example.com, http://127.0.0.1:8081/", true},
		{"https://shop.example.com", false},
		{"http://127.0.0.1:8080", false},
		{"http://localhost:8081", false},
	}
	for _, tt := range tests {
		if got := originAllowed(tt.allowed, page); got != tt.want {
			t.Errorf("originAllowed(%q, %q) = %v, want %v", tt.allowed, page, got, tt.want)
		}
	}
}

func TestBannerWarnsOfARefusedDemo(t *testing.T) {
	var out strings.Builder
	banner(&out, "127.0.0.1:1", "pizza", "http://127.0.0.1:8080/", "http://127.0.0.1:8081/demo", "", "the demo is refused")
	if !strings.Contains(out.String(), "WARNING: the demo is refused") {
		t.Errorf("banner with a warning:\n%s", out.String())
	}
}

// runnerTopicItem subscribes with token to topic on the emulator whose
// address the runner's banner (in output) names, and returns the first item.
func runnerTopicItem(t *testing.T, output, token, topic string) string {
	t.Helper()
	_, addr, _ := strings.Cut(output, "embedded Momento emulator on ")
	addr, _, _ = strings.Cut(addr, ".\n")
	cp, err := auth.FromString(token)
	if err != nil {
		t.Fatalf("the runner's token: %v", err)
	}
	ep := auth.Endpoint{Endpoint: addr, InsecureConnection: true}
	if cp, err = cp.WithEndpoints(auth.AllEndpoints{ControlEndpoint: ep, CacheEndpoint: ep, TokenEndpoint: ep, StorageEndpoint: ep}); err != nil {
		t.Fatal(err)
	}
	// Not closed: in SDK v1.38.0 TopicClient.Close races with its pool.
	c, err := momento.NewTopicClient(config.TopicsDefaultWithLogger(logger.NewNoopMomentoLoggerFactory()), cp)
	if err != nil {
		t.Fatalf("NewTopicClient: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, &momento.TopicSubscribeRequest{CacheName: "pizza", TopicName: topic})
	if err != nil {
		t.Fatalf("Subscribe(%s) on the runner's emulator at %s: %v", topic, addr, err)
	}
	defer sub.Close()
	item, err := sub.Item(ctx)
	if err != nil {
		t.Fatalf("no item on %s within 10s: %v", topic, err)
	}
	s, _ := item.(momento.String)
	return string(s)
}
