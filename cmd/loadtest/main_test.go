package main

import (
	"context"
	"errors"
	"flag"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
}
