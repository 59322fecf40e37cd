// Package functest is what the tests that run the function as a process
// share: a free port, an environment without the function's configuration
// or the platform's variables, starting the process and waiting until it
// answers, and the one check of a token response.
//
// It does not import testing, so that a command (cmd/loadtest) can use it
// too.
package functest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/logbuf"
	"example.com/tokenvendingmachine/internal/scope"
)

// Env returns environ without the function's configuration and the
// platform's variables, as on a fresh machine, plus set.
func Env(environ []string, set map[string]string) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(config.Variables, name) || slices.Contains(config.Deprecated, name) || slices.Contains(config.PlatformVariables, name) {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// FreePort returns a loopback port nothing listens on just now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a running function (or runner) process.
type Process struct {
	Cmd *exec.Cmd
	// Output is what the process wrote to stdout and stderr, unless the
	// caller set them.
	Output *logbuf.Buffer

	exited chan struct{}
	err    error // Wait's; set before exited closes
}

// Start starts cmd, with its output in Output unless cmd sets its own.
func Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Cmd: cmd, Output: &logbuf.Buffer{}, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Output
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Output
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// WaitUp polls url until it answers (any status), the process exits, or
// timeout passes. Poll a URL that mints nothing, such as /robots.txt.
func (p *Process) WaitUp(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); ; {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before answering: %v", p.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not answer within %v: %w", timeout, err)
		}
	}
}

// Exited returns a channel closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err returns Wait's error, once Exited is closed.
func (p *Process) Err() error {
	<-p.exited
	return p.err
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns Wait's error.
func (p *Process) Stop(grace time.Duration) error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Cmd.Process.Kill()
		<-p.exited
	}
	return p.err
}

// Kill kills the process and waits for it.
func (p *Process) Kill() {
	p.Cmd.Process.Kill()
	<-p.exited
}

// Token is a token response's body.
type Token struct {
	Token     string  `json:"token"`
	Exp       int64   `json:"exp"`
	ExpiresIn int64   `json:"expires_in"`
	RefreshIn float64 `json:"refresh_in"`
}

// DecodeToken decodes a token response's body, which must be a JSON object
// with exactly the fields token (a non-empty string), exp and expires_in
// (whole numbers), and refresh_in (seconds, from 0 to expires_in).
func DecodeToken(body []byte) (Token, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Token{}, fmt.Errorf("body %q is not a JSON object: %w", body, err)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"exp", "expires_in", "refresh_in", "token"}; !slices.Equal(keys, want) {
		return Token{}, fmt.Errorf("body has fields %v, want %v", keys, want)
	}
	var t Token
	if err := json.Unmarshal(body, &t); err != nil {
		return Token{}, fmt.Errorf("body %q: %w", body, err)
	}
	if t.Token == "" {
		return Token{}, errors.New("body has an empty token")
	}
	if !(t.RefreshIn >= 0 && t.RefreshIn <= float64(t.ExpiresIn)) {
		return Token{}, fmt.Errorf("body has refresh_in %v, want 0 to expires_in (%d)", t.RefreshIn, t.ExpiresIn)
	}
	return t, nil
}

// Get sends a GET to url from a client behind Google's front end at ip (as
// X-Forwarded-For tells; "" for none), and returns the response and its
// body.
func Get(url, ip string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// LongTopics are the longest topic list a ticket may hold: scope.MaxSelectors
// delimited prefixes, each of scope.MaxTopicLen bytes.
func LongTopics() []string {
	topics := make([]string, scope.MaxSelectors)
	for i := range topics {
		p := fmt.Sprintf("order-%02d-", i)
		topics[i] = p + strings.Repeat("x", scope.MaxTopicLen-len(p)-1) + "-*"
	}
	return topics
}
