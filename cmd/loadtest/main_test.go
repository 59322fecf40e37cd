package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/tokenvendingmachine/internal/credential"
)

// TestMain lets the test binary serve the function when run's child starts
// it, as the loadtest binary does.
func TestMain(m *testing.M) {
	if os.Getenv(serverRoleEnv) != "" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	var out strings.Builder
	rep, err := run(context.Background(), []string{"-requests", "3000", "-ips", "1200", "-concurrency", "16", "-latency", "0"}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if rep.Failed != 0 {
		t.Errorf("%d requests failed", rep.Failed)
	}
	// More IPs than the server's default lookup and mint bursts: the run
	// must not be shaped by them.
	if rep.Mints != 1200 {
		t.Errorf("mints = %d, want one per distinct IP, 1200", rep.Mints)
	}
	// The cold start minted for the first IP; the run minted for the other
	// 1199 (Get, mint, Set each) and found the first in L1.
	want := map[string]int{"Get": 1199, "GenerateDisposableToken": 1199, "Set": 1199}
	got := maps.Clone(rep.Calls)
	delete(got, "Increment")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Momento calls (-want +got):\n%s", diff)
	}
	// The fleet budget's permits are reserved in batches of a quarter of
	// the mints per window: a few dozen Increments, not one per mint.
	if n := rep.Calls["Increment"]; n < 1 || n > 1199/8 {
		t.Errorf("%d Increments for 1199 mints, want 1 to %d", n, 1199/8)
	}
	if rep.P50 <= 0 || rep.P99 < rep.P50 || rep.ColdStart <= 0 {
		t.Errorf("report %+v has impossible latencies", rep)
	}
	for _, want := range []string{"requests/s", "p50", "p99", "per request", "per true miss", "mints          1200 = distinct IPs", "cold start"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestCompareFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six server processes")
	}
	var out strings.Builder
	rep, err := run(context.Background(), []string{"-requests", "2000", "-ips", "100", "-concurrency", "4", "-latency", "0", "-compare-floor", "-rounds", "2"}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if len(rep.Rounds) != 2 || rep.Rounds[1].Floor == nil || rep.Rounds[1].Mints != 100 {
		t.Errorf("-rounds 2 reported %d rounds, want 2, each with its own servers and mints", len(rep.Rounds))
	}
	if rep.Floor == nil {
		t.Fatal("-compare-floor reported no floor")
	}
	if !rep.OK() || rep.Floor.Failed != 0 {
		t.Errorf("function failed %d, mints %d of %d IPs; floor failed %d", rep.Failed, rep.Mints, rep.IPs, rep.Floor.Failed)
	}
	if rep.Floor.Mints != 0 || rep.Floor.Calls != nil {
		t.Errorf("the floor minted %d and called Momento %v; it calls nothing", rep.Floor.Mints, rep.Floor.Calls)
	}
	// The floor of a miss makes a true miss's three calls, once per client.
	if m := rep.MissFloor; m == nil {
		t.Error("-compare-floor reported no miss floor")
	} else if m.Failed != 0 || m.Mints != m.IPs || m.Calls["Get"] != m.IPs-1 || m.Calls["Set"] != m.IPs-1 || m.Calls["Increment"] != 0 {
		// Its first client's calls were the cold start's, before the count.
		t.Errorf("the miss floor failed %d, minted %d for %d IPs, called %v: want Get, mint and Set once per IP", m.Failed, m.Mints, m.IPs, m.Calls)
	}
	// Side by side only if both write the same bytes.
	if !rep.Answer.Like(rep.Floor.Answer) {
		t.Errorf("the function answers %+v, the floor %+v: want the same header names and body size", rep.Answer, rep.Floor.Answer)
	}
	for _, want := range []string{"server CPU", "× the floor's CPU per request", "miss floor", "the miss floor's (Get, mint, Set and nothing else)", "median", "range"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestShapes checks that each shape is what it says: hits are answered,
// forged credentials refused with a 401, and the floor answers all.
func TestShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	var out strings.Builder
	rep, err := run(context.Background(), []string{"-shapes", "-requests", "300", "-ips", "30", "-concurrency", "4", "-latency", "0", "-compare-floor", "-rounds", "2"}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	type row struct {
		Name       string
		Status     int
		Unexpected int
		Rounds     int
	}
	rows := func(shapes []Shape) []row {
		var out []row
		for _, s := range shapes {
			out = append(out, row{s.Name, s.Status, s.Unexpected, len(s.CPU)})
		}
		return out
	}
	want := []row{
		{"hit, anonymous", 200, 0, 2},
		{"hit, ticket", 200, 0, 2},
		{"hit, ID token", 200, 0, 2},
		{"hit, 7 KB ticket (20 long topics)", 200, 0, 2},
		{"forged ticket (another key)", 401, 0, 2},
		{"forged ID token (published kid)", 401, 0, 2},
		{"the same, a new address each", 401, 0, 2},
		{"8 KB ticket, nested header member", 401, 0, 2},
		{"8 KB ID token, nested header member", 401, 0, 2},
		{"8 KB ID token, published kid", 401, 0, 2},
	}
	if diff := cmp.Diff(want, rows(rep.Shapes)); diff != "" {
		t.Errorf("function's shapes (-want +got):\n%s", diff)
	}
	for i := range want {
		want[i].Status = 200
	}
	if diff := cmp.Diff(want, rows(rep.FloorShapes)); diff != "" {
		t.Errorf("floor's shapes (-want +got):\n%s", diff)
	}
	if !rep.OK() {
		t.Error("Report.OK() = false, want true")
	}
	// Forgeries repeated from one client are refused before their check
	// once it has had its refusals; from a new address each, never.
	for _, s := range rep.Shapes {
		switch s.Name {
		case "forged ID token (published kid)":
			if s.Limited == 0 {
				t.Errorf("%s: no request refused before its check, want some (10 from each address)", s.Name)
			}
		case "the same, a new address each":
			if s.Limited != 0 {
				t.Errorf("%s: %d requests refused before their check, want none", s.Name, s.Limited)
			}
		}
	}
}

func TestNestedIsAsLongAsAllowed(t *testing.T) {
	for _, open := range []string{`{"alg":"HS256","typ":"JWT"`, `{"alg":"RS256","kid":"oidctest-1","typ":"JWT"`} {
		tok := nested(open, b64(`{"sub":"mallory"}`), 256)
		if len(tok) > credential.MaxLen || len(tok) < credential.MaxLen-8 {
			t.Errorf("nested(%s) is %d bytes long, want just under %d", open, len(tok), credential.MaxLen)
		}
		header, _, _ := strings.Cut(tok, ".")
		if b, err := base64.RawURLEncoding.DecodeString(header); err != nil || !json.Valid(b) || !strings.Contains(string(b), "[[[[") {
			t.Errorf("nested(%s) header %.40s...: not JSON with a nested member (%v)", open, b, err)
		}
	}
}

func TestLongIsAsLongAsAllowed(t *testing.T) {
	tok := long(`{"alg":"RS256","kid":"oidctest-1","typ":"JWT"}`, `{"sub":"mallory"}`, 256)
	if len(tok) > credential.MaxLen || len(tok) < credential.MaxLen-8 {
		t.Errorf("long() is %d bytes long, want just under %d", len(tok), credential.MaxLen)
	}
	p := strings.Split(tok, ".")
	if b, err := base64.RawURLEncoding.DecodeString(p[1]); err != nil || !json.Valid(b) {
		t.Errorf("long() payload %.40s...: not JSON (%v)", b, err)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    CPUTime
		wantErr bool
	}{
		{name: "plain", stat: "4242 (loadtest) S 1 4242 4242 0 -1 4194560 3000 0 0 0 1234 567 0 0 20 0 9 0 100 0 0",
			want: CPUTime{User: 12340 * time.Millisecond, System: 5670 * time.Millisecond}},
		{name: "command with spaces and parentheses", stat: "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 0 0",
			want: CPUTime{User: 10 * time.Millisecond, System: 20 * time.Millisecond}},
		{name: "short", stat: "7 (a) R 1 7", wantErr: true},
		{name: "no command", stat: "7 a R", wantErr: true},
		{name: "not a number", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 2 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStat(%q) = %v, %v; want %v, error %v", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	var out strings.Builder
	if _, err := run(context.Background(), []string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(-h) = %v, want flag.ErrHelp (exit 0)", err)
	}
	out.Reset()
	if _, err := run(context.Background(), []string{"-requests", "x"}, &out); !errors.Is(err, errUsage) {
		t.Errorf("run(-requests x) = %v, want errUsage", err)
	}
	if got := out.String(); strings.Count(got, `invalid value "x"`) != 1 {
		t.Errorf("run(-requests x) printed %q, want the error once", got)
	}
	for _, flag := range []string{"-ips", "-requests"} {
		// More would reach the next shape's addresses.
		if _, err := run(context.Background(), []string{"-shapes", flag, "1048577"}, &out); err == nil || !strings.Contains(err.Error(), "at most 1048576") {
			t.Errorf("run(-shapes %s 1048577) = %v, want refused", flag, err)
		}
	}
}
