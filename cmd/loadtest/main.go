// Command loadtest measures the function under load: it runs the real HTTP
// server, through the functions framework, in a child process against the
// Momento emulator with a per-call latency, and drives it from many client
// IPs at a chosen concurrency.
//
//	go run ./cmd/loadtest -requests 100000 -ips 1000 -concurrency 8
//
// It prints the cold start (from starting the server process to its first
// token), requests per second, p50/p90/p99 latency, Momento calls per
// request and per true miss, mints, and the server's peak and final
// resident memory. It exits
// 1 if any request failed or the mints differ from the distinct IPs.
//
// Each request carries X-Forwarded-For with its client's IP, as Google's
// front end adds it. Request i comes from IP i mod -ips, so the first -ips
// requests mint and the rest are repeat visits. The server's limits
// (FLEET_MINT_*, and the per-instance limits derived from it) are raised so
// that they do not shape the run; the fleet budget is still counted.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "example.com/tokenvendingmachine" // registers the function, for the server role
	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/momentotest"
)

// serverRoleEnv, set in the child's environment, makes the binary serve the
// function instead of driving it.
const serverRoleEnv = "LOADTEST_SERVER_PORT"

func main() {
	if port := os.Getenv(serverRoleEnv); port != "" {
		if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errUsage):
		os.Exit(2) // the flag package has said why
	case err != nil:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if rep.Failed > 0 || rep.Mints != rep.IPs {
		os.Exit(1)
	}
}

// Report is what a run measured.
type Report struct {
	// Requests, IPs and Concurrency are the run's shape.
	Requests, IPs, Concurrency int
	// Latency is what the emulator added to each Momento call.
	Latency time.Duration
	// Listening is the time from starting the server process until it
	// accepted connections, and ColdStart until it served a token.
	Listening, ColdStart time.Duration
	// Elapsed is how long the run's requests took.
	Elapsed time.Duration
	// P50, P90, P99 and Max are request latencies.
	P50, P90, P99, Max time.Duration
	// Failed counts requests without a 200.
	Failed int
	// Calls counts Momento calls during the run, by method.
	Calls map[string]int
	// Mints counts the tokens the server minted in its life.
	Mints int
	// PeakRSS and FinalRSS are the server's resident memory in bytes; 0 if
	// unknown.
	PeakRSS, FinalRSS int64
}

// RPS returns requests per second.
func (r Report) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// CallsPerRequest returns Momento calls per request.
func (r Report) CallsPerRequest() float64 {
	n := 0
	for _, c := range r.Calls {
		n += c
	}
	return float64(n) / float64(r.Requests)
}

// CallsPerMiss returns Momento calls per true miss, a request that minted:
// all of the run's calls over its mints. A miss costs a Get, a mint and a
// Set at least, so 3 is the floor when every other request hits L1.
func (r Report) CallsPerMiss() float64 {
	n := 0
	for _, c := range r.Calls {
		n += c
	}
	return float64(n) / float64(max(r.Calls["GenerateDisposableToken"], 1))
}

// errUsage means the arguments were wrong, and the flag package has
// printed why and the usage.
var errUsage = errors.New("usage")

// run drives one load test. -h returns flag.ErrHelp, wrong arguments
// errUsage, once the flag package has printed them.
func run(ctx context.Context, args []string, stdout io.Writer) (Report, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stdout)
	requests := fs.Int("requests", 100_000, "requests to send")
	ips := fs.Int("ips", 1000, "distinct client IPs")
	concurrency := fs.Int("concurrency", 8, "requests in flight at once")
	latency := fs.Duration("latency", 2*time.Millisecond, "latency the emulator adds to each Momento call")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return Report{}, err
	} else if err != nil {
		return Report{}, errUsage
	}
	if *requests < 1 || *ips < 1 || *ips > 1<<24 || *concurrency < 1 {
		return Report{}, errors.New("-requests, -ips (at most 16777216) and -concurrency must be positive")
	}
	rep := Report{Requests: *requests, IPs: *ips, Concurrency: *concurrency, Latency: *latency}

	emu, err := momentotest.NewServer(momentotest.Options{Caches: []string{config.DefaultCacheName}})
	if err != nil {
		return rep, err
	}
	defer emu.Close()
	emu.SetLatency(*latency)

	srv, err := startServer(emu)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	rep.Listening, rep.ColdStart = srv.listening, srv.firstToken
	emu.ResetCounts() // count the run's calls, not the cold start's

	lat, failed, elapsed := load(ctx, srv.url, *requests, *ips, *concurrency)
	rep.Elapsed = elapsed
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	rep.P50, rep.P90, rep.P99, rep.Max = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1]
	rep.Failed = failed
	rep.Calls = map[string]int{}
	for _, m := range []momentotest.Method{momentotest.MethodGet, momentotest.MethodIncrement, momentotest.MethodMint, momentotest.MethodSet} {
		rep.Calls[string(m)] = emu.Count(m)
	}
	rep.Mints = len(emu.Mints()) // all of the server's life: the cold start's request came from ipOf(0)
	rep.PeakRSS, rep.FinalRSS = srv.rss()
	printReport(stdout, rep)
	return rep, nil
}

// load sends requests GETs to url from ips client addresses in turn, with
// concurrency in flight, until done or ctx ends. It returns the latencies,
// sorted, how many failed, and how long it took.
func load(ctx context.Context, url string, requests, ips, concurrency int) (lat []time.Duration, failed int, elapsed time.Duration) {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxIdleConns: concurrency},
	}
	var next, failures atomic.Int64
	lats := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= requests {
					return
				}
				t0 := time.Now()
				ok := get(client, url, ipOf(i%ips))
				lats[w] = append(lats[w], time.Since(t0))
				if !ok {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	lat = slices.Concat(lats...)
	slices.Sort(lat)
	return lat, int(failures.Load()), time.Since(start)
}

// ipOf returns the i-th client IP, in 10.0.0.0/8.
func ipOf(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
}

// get sends one request from ip and reports whether it got a 200.
func get(c *http.Client, url, ip string) bool {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func printReport(w io.Writer, r Report) {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
	}
	fmt.Fprintf(w, "%d requests over %d IPs, concurrency %d, Momento latency %v per call\n", r.Requests, r.IPs, r.Concurrency, r.Latency)
	fmt.Fprintf(w, "cold start     %s from starting the server process to its first token; listening after %s\n", ms(r.ColdStart), ms(r.Listening))
	fmt.Fprintf(w, "throughput     %.0f requests/s (%v)\n", r.RPS(), r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "latency        p50 %s   p90 %s   p99 %s   max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	fmt.Fprintf(w, "momento calls  %.4f per request, %.3f per true miss (Get %d, Increment %d, GenerateDisposableToken %d, Set %d)\n",
		r.CallsPerRequest(), r.CallsPerMiss(), r.Calls["Get"], r.Calls["Increment"], r.Calls["GenerateDisposableToken"], r.Calls["Set"])
	verdict := "= distinct IPs"
	if r.Mints != r.IPs {
		verdict = fmt.Sprintf("!= %d distinct IPs", r.IPs)
	}
	fmt.Fprintf(w, "mints          %d %s\n", r.Mints, verdict)
	fmt.Fprintf(w, "failed         %d\n", r.Failed)
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "server memory  peak RSS %.1f MiB, RSS at the end %.1f MiB\n", float64(r.PeakRSS)/(1<<20), float64(r.FinalRSS)/(1<<20))
	}
}

// server is the function, served by a child process.
type server struct {
	proc       *functest.Process
	url        string
	listening  time.Duration
	firstToken time.Duration
}

// startServer starts this binary as the function's server against emu, as
// Cloud Functions runs it, and waits for its first token.
func startServer(emu *momentotest.Server) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := functest.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	// The function's defaults, whatever the caller's shell has set, but
	// for the limits, which would shape the run.
	cmd.Env = functest.Env(os.Environ(), map[string]string{
		serverRoleEnv:           strconv.Itoa(port),
		"FUNCTION_TARGET":       "TokenVendingMachine",
		"MOMENTO_API_KEY":       emu.APIKey(),
		"MOMENTO_EMULATOR_HOST": emu.Addr(),
		// The per-instance limits derive from the fleet's budget; it is
		// still counted, in Momento, but never refuses.
		"FLEET_MINT_RATE":  "1000000",
		"FLEET_MINT_BURST": "1000000",
	})
	cmd.Stdout = io.Discard // one log line per request; not what is measured
	cmd.Stderr = os.Stderr
	start := time.Now()
	proc, err := functest.Start(cmd)
	if err != nil {
		return nil, err
	}
	s := &server{proc: proc, url: "http://127.0.0.1:" + strconv.Itoa(port) + "/"}
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			s.listening = time.Since(start)
			break
		}
		if time.Since(start) > 30*time.Second {
			s.stop()
			return nil, errors.New("the server did not listen within 30s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		if get(client, s.url, ipOf(0)) {
			s.firstToken = time.Since(start)
			return s, nil
		}
		if time.Since(start) > 30*time.Second {
			s.stop()
			return nil, errors.New("the server gave no token within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// rss returns the server's peak and current resident memory, from /proc.
func (s *server) rss() (peak, now int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.proc.Cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmHWM":
			peak = kb << 10
		case "VmRSS":
			now = kb << 10
		}
	}
	return peak, now
}

func (s *server) stop() { s.proc.Stop(5 * time.Second) }
