package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/config"
)

// freePort returns a port nothing listens on just now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cleanEnv is the test's environment without any of the function's
// configuration, as on a fresh machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(config.Variables, name) || slices.Contains([]string{"PORT", "FUNCTION_TARGET", "K_SERVICE"}, name) {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// TestRunWithoutConfiguration runs the built binary as the README's quick
// start does, with no configuration, and fetches a token from it.
func TestRunWithoutConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "tvm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port, demoPort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "-demo-port", strconv.Itoa(demoPort))
	cmd.Env = append(cleanEnv(), "PORT="+strconv.Itoa(port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
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
	resp, err := getWhenUp(url)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, output.String())
	}
	var body struct {
		Token     string `json:"token"`
		Exp       int64  `json:"exp"`
		ExpiresIn int64  `json:"expires_in"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || body.Token == "" || body.ExpiresIn < 3500 {
		t.Fatalf("GET %s = %d %+v (%v), want 200 with a token for about an hour", url, resp.StatusCode, body, err)
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
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		for line := range lines {
			output.WriteString(line + "\n")
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("after SIGTERM: exit code %d, want 0\n%s", exit.ExitCode(), output.String())
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("exited 0 %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", output.String())
	}
	if !strings.Contains(output.String(), "Shutting down.") {
		t.Errorf("no shutdown message:\n%s", output.String())
	}
}

// getWhenUp GETs url, retrying while the server is still starting.
func getWhenUp(url string) (*http.Response, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
