package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"example.com/tokenvendingmachine/internal/ticket"
)

const testKey = "q0M3z1Yd5m0E9rVvKpX2c7bN4hTfWjLs8uGyRaQiOe0="

func TestRun(t *testing.T) {
	twoKeys := `{"keys": {"a": "` + testKey + `", "b": "` + strings.Repeat("b", 32) + `"}}`
	tests := []struct {
		name    string
		args    []string
		key     string
		wantKID string // of the printed ticket, if no error
		wantTTL time.Duration
		wantErr bool
	}{
		{name: "raw key", args: []string{"-sub", "alice", "-topics", "order-42-*"}, key: testKey, wantTTL: 5 * time.Minute},
		{name: "ttl and several topics", args: []string{"-sub", "alice", "-topics", "new-order, order-*", "-ttl", "2m"}, key: testKey, wantTTL: 2 * time.Minute},
		{name: "kid chosen", args: []string{"-sub", "alice", "-topics", "a", "-kid", "b"}, key: twoKeys, wantKID: "b", wantTTL: 5 * time.Minute},
		{name: "single named key", args: []string{"-sub", "alice", "-topics", "a"}, key: `{"keys": {"only": "` + testKey + `"}}`, wantKID: "only", wantTTL: 5 * time.Minute},

		{name: "no key", args: []string{"-sub", "alice", "-topics", "a"}, wantErr: true},
		{name: "short key", args: []string{"-sub", "alice", "-topics", "a"}, key: "short", wantErr: true},
		{name: "several keys without kid", args: []string{"-sub", "alice", "-topics", "a"}, key: twoKeys, wantErr: true},
		{name: "unknown kid", args: []string{"-sub", "alice", "-topics", "a", "-kid", "c"}, key: twoKeys, wantErr: true},
		{name: "no sub", args: []string{"-topics", "a"}, key: testKey, wantErr: true},
		{name: "bad sub", args: []string{"-sub", "a b", "-topics", "a"}, key: testKey, wantErr: true},
		{name: "no topics", args: []string{"-sub", "alice"}, key: testKey, wantErr: true},
		{name: "undelimited prefix", args: []string{"-sub", "alice", "-topics", "order-42*"}, key: testKey, wantErr: true},
		{name: "all topics", args: []string{"-sub", "alice", "-topics", "*"}, key: testKey, wantErr: true},
		{name: "negative ttl", args: []string{"-sub", "alice", "-topics", "a", "-ttl", "-1m"}, key: testKey, wantErr: true},
		{name: "extra argument", args: []string{"-sub", "alice", "-topics", "a", "extra"}, key: testKey, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			getenv := func(k string) string {
				if k == "TICKET_KEY" {
					return tt.key
				}
				return ""
			}
			start := time.Now()
			err := run(tt.args, getenv, &out, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("run(%q) printed %q, want an error", tt.args, out.String())
				}
				if out.Len() != 0 {
					t.Errorf("run(%q) error %v, and printed %q", tt.args, err, out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("run(%q) error = %v", tt.args, err)
			}
			keys, err := ticket.ParseKeys([]byte(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			v, err := ticket.NewVerifier(keys, ticket.Options{})
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := strings.CutSuffix(out.String(), "\n")
			if !ok || strings.Contains(raw, "\n") {
				t.Fatalf("run(%q) printed %q, want one line", tt.args, out.String())
			}
			c, err := v.Verify(raw)
			if err != nil {
				t.Fatalf("Verify(printed ticket) error = %v", err)
			}
			if c.Subject != "alice" || c.KeyID != tt.wantKID {
				t.Errorf("ticket claims = %+v, want subject alice and key %q", c, tt.wantKID)
			}
			if ttl := c.Expires.Sub(start); ttl < tt.wantTTL-time.Second || ttl > tt.wantTTL+time.Second {
				t.Errorf("ticket expires in %v, want about %v", ttl, tt.wantTTL)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out, stderr strings.Builder
	var usage strings.Builder
	err := run([]string{"-h"}, func(string) string { return "" }, &out, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(-h) error = %v, want %v", err, flag.ErrHelp)
	}
	if !strings.Contains(usage.String(), "-topics") || out.Len() != 0 {
		t.Errorf("run(-h) printed %q to stdout and %q to stderr, want the usage on stderr only", out.String(), usage.String())
	}
	if code := exitCode(err, &stderr); code != 0 || stderr.Len() != 0 {
		t.Errorf("exitCode(-h) = %d, printed %q; want 0, nothing", code, stderr.String())
	}
}

// TestErrorsPrintOnce checks that each error reaches the user once: a bad
// flag by the flag package, with the usage; any other by exitCode.
func TestErrorsPrintOnce(t *testing.T) {
	var out, stderr strings.Builder
	err := run([]string{"-nope"}, func(string) string { return "" }, &out, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Errorf("exitCode(%v) = %d, want 2", err, code)
	}
	if got := strings.Count(out.String()+stderr.String(), "-nope"); got != 1 {
		t.Errorf("bad flag reported %d times, want 1: stdout %q, stderr %q", got, out.String(), stderr.String())
	}

	out.Reset()
	stderr.Reset()
	err = run([]string{"-sub", "alice", "-topics", "a"}, func(string) string { return "" }, &out, &stderr)
	if code := exitCode(err, &stderr); code != 1 {
		t.Errorf("exitCode(%v) = %d, want 1", err, code)
	}
	if got := strings.Count(out.String()+stderr.String(), "TICKET_KEY is not set"); got != 1 {
		t.Errorf("missing key reported %d times, want 1: stdout %q, stderr %q", got, out.String(), stderr.String())
	}
}
