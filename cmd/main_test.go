package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/functest"
)

// buildRunner builds the runner once per test binary.
func buildRunner(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "tvm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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
			cmd := exec.Command(bin, "-demo-port", strconv.Itoa(demoPort))
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
			// Wait for the banner's last line.
			for banner := false; !banner; {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatalf("the runner exited before its banner:\n%s", output.String())
					}
					output.WriteString(line + "\n")
					banner = strings.HasPrefix(line, "  fetch(")
				case <-time.After(30 * time.Second):
					t.Fatalf("no banner after 30s:\n%s", output.String())
				}
			}
			for _, want := range []string{"EMULATOR MODE", "NOT valid on real Momento", `one cache, "pizza" (CACHE_NAME)`, fmt.Sprintf("curl -s http://127.0.0.1:%d/", port)} {
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
			demo, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/demo", demoPort))
			if err != nil || demo.StatusCode != http.StatusOK {
				t.Errorf("demo page: %v %v", err, demo)
			} else {
				page, _ := io.ReadAll(demo.Body)
				demo.Body.Close()
				if !strings.Contains(string(page), url) {
					t.Errorf("demo page does not call %s", url)
				}
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
			getenv := func(string) string { return "" }
			setenv := func(string, string) error { return nil }
			err := run(context.Background(), tt.args, getenv, setenv, &out)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("run(%q) = %v, want %v", tt.args, err, tt.wantErr)
			}
			if got := out.String(); !strings.Contains(got, tt.want) || strings.Count(got, "Usage") != 1 {
				t.Errorf("run(%q) printed %q, want %q and the usage once", tt.args, got, tt.want)
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
	banner(&out, "127.0.0.1:1", "pizza", "http://127.0.0.1:8080/", "http://127.0.0.1:8081/demo", "the demo is refused")
	if !strings.Contains(out.String(), "WARNING: the demo is refused") {
		t.Errorf("banner with a warning:\n%s", out.String())
	}
}
