// Command loadtest measures the function under load: it runs the real HTTP
// server, through the functions framework, in a child process against the
// Momento emulator with a per-call latency, and drives it from many client
// IPs at a chosen concurrency.
//
//	go run ./cmd/loadtest -requests 100000 -ips 1000 -concurrency 8
//
// It prints the cold start (from starting the server process to its first
// token), requests per second, p50/p90/p99 latency, Momento calls per
// request and per true miss, mints, the server's CPU time per request, and
// its peak and final resident memory. It exits 1 if any request was not
// answered as it should be or, but with -shapes, the mints differ from the
// distinct IPs.
//
// Each request carries X-Forwarded-For with its client's IP, as Google's
// front end adds it. Request i comes from IP i mod -ips, so the first -ips
// requests mint and the rest are repeat visits. The server's limits
// (FLEET_MINT_*, and the per-instance limits derived from it) are raised so
// that they do not shape the run; the fleet budget is still counted.
//
// # CPU per request, and the floor
//
// The server is its own process (this binary, started again as the
// server), so its CPU time is the function's own: user plus system time,
// from /proc, over the run's requests, divided by them. It includes what
// serving costs whoever serves: net/http, the functions framework, the
// runtime. -compare-floor serves, after the function and under the same
// load, the framework's floor (package floor: a constant token response,
// nothing called) in a process of its own, and prints both side by side.
// It also serves the floor of a miss (floor.ServeMiss: a true miss's Get,
// mint and Set, and nothing else, against an emulator of its own with the
// same latency), and prints its p99 beside the function's: what three
// round trips cost at the p99 of this load, which no function that makes
// them can beat.
//
//	go run ./cmd/loadtest -requests 100000 -ips 5000 -concurrency 8 -compare-floor -rounds 3
//
// # Request shapes
//
// -shapes measures, instead, one shape of request at a time against one
// server that accepts tickets and ID tokens (from a fake issuer, in this
// process like the emulator): repeat visits (anonymous, with a ticket,
// with an ID token, with a 7 KB ticket of 20 long topics), and forged
// credentials, which must be refused with a 401, or a 429 once their
// client was refused too often (a ticket signed with another key, an ID
// token under the issuer's published kid with a signature of nobody's, the
// same from a new address each time, 8 KB versions of both whose header
// holds a deeply nested member, and an 8 KB ID token under the published
// kid, the costliest to refuse). Each shape is sent once from
// every IP before it is measured, so that a hit is a hit. With
// -compare-floor, the floor is sent each shape too, right after the
// function, and answers it with its token: what reading the request costs
// net/http.
//
//	go run ./cmd/loadtest -shapes -requests 20000 -ips 1000 -concurrency 8 -compare-floor -rounds 3
//
// The machine's other work moves these numbers. -rounds N measures N
// times, the function and the floor in turns (fresh servers each round,
// or, with -shapes, the same servers and each shape in turn), and prints
// each round's CPU per request, the median and the range; with -shapes,
// each shape's ratio to the hit and to the floor per round, the median and
// the range.
//
// -cpuprofile writes a CPU profile of the function's server over the
// measured requests (the first round's; with -shapes, from the first
// shape's to the end), for go tool pprof.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/momentotest"
)

func main() {
	if port := os.Getenv(serverRoleEnv); port != "" {
		if err := serve(port); err != nil {
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
	if !rep.OK() {
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
	// CPU is the server process's CPU time, user and system, over the
	// run's requests; 0 if unknown.
	CPU CPUTime
	// Answer is the server's first token response.
	Answer Answer

	// Floor is the framework's floor under the same load, with
	// -compare-floor and without -shapes; nil otherwise. Its Calls and
	// Mints are zero: it calls nothing.
	Floor *Report
	// MissFloor is the floor of a miss under the same load, when Floor is
	// set: a function that makes a true miss's three calls and nothing
	// else (floor.ServeMiss). Its p99 is what three round trips cost at
	// the p99 of this load.
	MissFloor *Report
	// Rounds are the reports of each round, the first being this one's,
	// with -rounds above 1; nil otherwise.
	Rounds []Report
	// Shapes are the request shapes measured, with -shapes; nil otherwise.
	// Then the fields above but the run's shape are zero. FloorShapes are
	// the same requests sent to the floor, with -compare-floor too.
	Shapes, FloorShapes []Shape
}

// CPUTime is a process's CPU time.
type CPUTime struct{ User, System time.Duration }

// Total returns user plus system time.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// Per returns the time per one of n.
func (c CPUTime) Per(n int) time.Duration { return c.Total() / time.Duration(max(n, 1)) }

// Answer describes a response: its header's names and its body's size.
type Answer struct {
	Header []string // canonical names, sorted, without Date
	Body   int
}

// Like reports whether a and b write about the same bytes: the same
// header names, and bodies within 5% of each other's size (a token's
// length varies with the emulator's address).
func (a Answer) Like(b Answer) bool {
	return slices.Equal(a.Header, b.Header) && 20*abs(a.Body-b.Body) <= max(a.Body, b.Body)
}

func abs(n int) int { return max(n, -n) }

// RPS returns requests per second.
func (r Report) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// CPUPerRequest returns the server's CPU time per request.
func (r Report) CPUPerRequest() time.Duration { return r.CPU.Per(r.Requests) }

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

// OK reports whether the run went as it should: every request answered as
// expected and, for the function under load, one mint per distinct IP.
func (r Report) OK() bool {
	if r.Shapes != nil {
		for _, s := range slices.Concat(r.Shapes, r.FloorShapes) {
			if s.Unexpected > 0 {
				return false
			}
		}
		return true
	}
	for _, r := range append([]Report{r}, r.Rounds...) {
		if r.Failed != 0 || r.Mints != r.IPs || (r.Floor != nil && r.Floor.Failed != 0) || (r.MissFloor != nil && (r.MissFloor.Failed != 0 || r.MissFloor.Mints != r.IPs)) {
			return false
		}
	}
	return true
}

// errUsage means the arguments were wrong, and the flag package has
// printed why and the usage.
var errUsage = errors.New("usage")

// options are a run's flags.
type options struct {
	requests, ips, concurrency int
	rounds                     int
	latency                    time.Duration
	compareFloor, shapes       bool
	cpuprofile                 string
}

// run drives one load test. -h returns flag.ErrHelp, wrong arguments
// errUsage, once the flag package has printed them.
func run(ctx context.Context, args []string, stdout io.Writer) (Report, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o options
	fs.IntVar(&o.requests, "requests", 100_000, "requests to send (with -shapes, of each shape)")
	fs.IntVar(&o.ips, "ips", 1000, "distinct client IPs")
	fs.IntVar(&o.concurrency, "concurrency", 8, "requests in flight at once")
	fs.IntVar(&o.rounds, "rounds", 1, "measure this many times, in turns, and report each round, the median and the range")
	fs.DurationVar(&o.latency, "latency", 2*time.Millisecond, "latency the emulator adds to each Momento call")
	fs.BoolVar(&o.compareFloor, "compare-floor", false, "also serve, under the same load, the functions framework's floor (a constant token, nothing called), to compare CPU per request, and the floor of a miss (Get, mint, Set, nothing else), to compare p99")
	fs.BoolVar(&o.shapes, "shapes", false, "measure CPU per request of each shape of request (hits, forged credentials) instead of a mix of new and repeat visits")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the function's server over the measured requests to `file`")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return Report{}, err
	} else if err != nil {
		return Report{}, errUsage
	}
	if o.requests < 1 || o.ips < 1 || o.ips > 1<<24 || o.concurrency < 1 || o.rounds < 1 {
		return Report{}, errors.New("-requests, -ips (at most 16777216), -concurrency and -rounds must be positive")
	}
	if o.shapes {
		if o.ips > 1<<20 || o.requests > 1<<20 {
			// Each shape has 2^20 addresses of its own (measureShape).
			return Report{}, errors.New("with -shapes, -ips and -requests must be at most 1048576")
		}
		return runShapes(ctx, o, stdout)
	}
	var rep Report
	for round := range o.rounds {
		r, err := loadFunction(ctx, o)
		if err != nil {
			return r, err
		}
		o.cpuprofile = "" // of the first round only
		if o.compareFloor {
			floor, err := loadFloor(ctx, o)
			if err != nil {
				return r, fmt.Errorf("floor: %w", err)
			}
			r.Floor = &floor
			miss, err := loadMissFloor(ctx, o)
			if err != nil {
				return r, fmt.Errorf("miss floor: %w", err)
			}
			r.MissFloor = &miss
		}
		if round == 0 {
			rep = r
		}
		if o.rounds > 1 {
			rep.Rounds = append(rep.Rounds, r)
		}
	}
	printReport(stdout, rep)
	return rep, nil
}

// newEmulator starts the Momento emulator with the function's default
// cache and latency per call.
func newEmulator(latency time.Duration) (*momentotest.Server, error) {
	emu, err := momentotest.NewServer(momentotest.Options{Caches: []string{config.DefaultCacheName}})
	if err != nil {
		return nil, err
	}
	emu.SetLatency(latency)
	return emu, nil
}

// loadFunction runs the function against the emulator and sends it o's
// load.
func loadFunction(ctx context.Context, o options) (Report, error) {
	return loadWithEmulator(ctx, o, func(emu *momentotest.Server) target { return functionTarget(emu, nil) }, o.cpuprofile)
}

// loadMissFloor serves the floor of a miss against its own emulator, with
// o's latency, and sends it o's load.
func loadMissFloor(ctx context.Context, o options) (Report, error) {
	return loadWithEmulator(ctx, o, missFloorTarget, "")
}

// loadWithEmulator serves the target of an emulator with o's latency, and
// sends it o's load; cpuprofile as startServer's.
func loadWithEmulator(ctx context.Context, o options, targetOf func(*momentotest.Server) target, cpuprofile string) (Report, error) {
	rep := Report{Requests: o.requests, IPs: o.ips, Concurrency: o.concurrency, Latency: o.latency}
	emu, err := newEmulator(o.latency)
	if err != nil {
		return rep, err
	}
	defer emu.Close()
	srv, err := startServer(targetOf(emu), cpuprofile)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	emu.ResetCounts() // count the run's calls, not the cold start's
	if err := srv.measure(ctx, &rep); err != nil {
		return rep, err
	}
	rep.Calls = map[string]int{}
	for _, m := range []momentotest.Method{momentotest.MethodGet, momentotest.MethodIncrement, momentotest.MethodMint, momentotest.MethodSet} {
		rep.Calls[string(m)] = emu.Count(m)
	}
	rep.Mints = len(emu.Mints()) // all of the server's life: the cold start's request came from ipOf(0)
	return rep, nil
}

// loadFloor serves the framework's floor and sends it o's load.
func loadFloor(ctx context.Context, o options) (Report, error) {
	rep := Report{Requests: o.requests, IPs: o.ips, Concurrency: o.concurrency}
	srv, err := startServer(floorTarget(), "")
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	return rep, srv.measure(ctx, &rep)
}

// measure sends rep's load to s and fills in what it measured.
func (s *server) measure(ctx context.Context, rep *Report) error {
	rep.Listening, rep.ColdStart, rep.Answer = s.listening, s.firstToken, s.answer
	cpu0, err := s.cpu()
	if err != nil {
		return err
	}
	s.startProfile()
	lat, failed, _, elapsed := load(ctx, s.url, loadSpec{requests: rep.Requests, ips: rep.IPs, concurrency: rep.Concurrency, want: http.StatusOK})
	if err := ctx.Err(); err != nil {
		return err
	}
	cpu1, err := s.cpu()
	if err != nil {
		return err
	}
	rep.CPU = CPUTime{User: cpu1.User - cpu0.User, System: cpu1.System - cpu0.System}
	rep.Elapsed, rep.Failed = elapsed, failed
	rep.P50, rep.P90, rep.P99, rep.Max = percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), lat[len(lat)-1]
	rep.PeakRSS, rep.FinalRSS = s.rss()
	return nil
}

// percentile returns the p-th quantile of lat, sorted.
func percentile(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// loadSpec is one load to send.
type loadSpec struct {
	requests, ips, concurrency int
	header                     http.Header // on every request, besides X-Forwarded-For
	want                       int         // the status every request should get
	// firstIP is the number of the first client address (see ipOf): loads
	// of different clients start far apart.
	firstIP int
	// also is a status that is not unexpected either, counted apart (429
	// for a forged credential: refused before its signature check); 0 for
	// none.
	also int
}

// load sends l.requests GETs to url from l.ips client addresses in turn,
// with l.concurrency in flight, until done or ctx ends. It returns the
// latencies, sorted, how many were answered with neither l.want nor l.also,
// how many with l.also, and how long it took.
func load(ctx context.Context, url string, l loadSpec) (lat []time.Duration, unexpected, also int, elapsed time.Duration) {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: l.concurrency, MaxIdleConns: l.concurrency},
	}
	defer client.CloseIdleConnections()
	var next, failures, alsos atomic.Int64
	lats := make([][]time.Duration, l.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= l.requests {
					return
				}
				t0 := time.Now()
				code := get(client, url, ipOf(l.firstIP+i%l.ips), l.header)
				lats[w] = append(lats[w], time.Since(t0))
				switch {
				case code == l.want:
				case l.also != 0 && code == l.also:
					alsos.Add(1)
				default:
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	lat = slices.Concat(lats...)
	slices.Sort(lat)
	return lat, int(failures.Load()), int(alsos.Load()), time.Since(start)
}

// ipOf returns the i-th client IP, in 10.0.0.0/8.
func ipOf(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
}

// get sends one request from ip, with header, and returns its status; 0
// if there was no answer.
func get(c *http.Client, url, ip string, header http.Header) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// µs formats d in microseconds, with one decimal.
func µs(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Nanoseconds())/1000, 'f', 1, 64) + " µs"
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(msf(d), 'f', 2, 64) + " ms"
}

func printReport(w io.Writer, r Report) {
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
	if r.CPU.Total() > 0 {
		fmt.Fprintf(w, "server CPU     %s per request (user %s, system %s)\n", µs(r.CPUPerRequest()), µs(r.CPU.User/time.Duration(r.Requests)), µs(r.CPU.System/time.Duration(r.Requests)))
	}
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "server memory  peak RSS %.1f MiB, RSS at the end %.1f MiB\n", float64(r.PeakRSS)/(1<<20), float64(r.FinalRSS)/(1<<20))
	}
	if f := r.Floor; f != nil {
		fmt.Fprintf(w, "\nthe framework's floor (a constant token, nothing called), the same load in a process of its own:\n")
		fmt.Fprintf(w, "%-10s %14s %9s %9s %12s %10s %10s %8s\n", "server", "CPU/request", "user", "system", "requests/s", "p50", "p99", "failed")
		type row struct {
			name string
			r    Report
		}
		rows := []row{{"function", r}, {"floor", *f}}
		if r.MissFloor != nil {
			rows = append(rows, row{"miss floor", *r.MissFloor})
		}
		for _, rw := range rows {
			n := time.Duration(rw.r.Requests)
			fmt.Fprintf(w, "%-10s %14s %9.1f %9.1f %12.0f %10s %10s %8d\n", rw.name, µs(rw.r.CPUPerRequest()),
				us(rw.r.CPU.User/n), us(rw.r.CPU.System/n), rw.r.RPS(), ms(rw.r.P50), ms(rw.r.P99), rw.r.Failed)
		}
		fmt.Fprintf(w, "ratio      %.2f× the floor's CPU per request\n", float64(r.CPU.Total())/float64(max(f.CPU.Total(), 1)))
		if m := r.MissFloor; m != nil {
			fmt.Fprintf(w, "p99        %s, the miss floor's (Get, mint, Set and nothing else) %s: %+.2f ms\n", ms(r.P99), ms(m.P99), msf(r.P99-m.P99))
		}
		if !r.Answer.Like(f.Answer) {
			fmt.Fprintf(w, "note       the answers differ: function %v, %d bytes; floor %v, %d bytes\n", r.Answer.Header, r.Answer.Body, f.Answer.Header, f.Answer.Body)
		}
	}
	if len(r.Rounds) > 1 {
		printRounds(w, r.Rounds)
	}
}

// printRounds prints the function's CPU per request in each round, and the
// floor's and their ratio if the rounds measured it, then the function's
// p99 and the miss floor's; then the medians and ranges.
func printRounds(w io.Writer, rounds []Report) {
	type column struct {
		heading      string
		width        int
		format, unit string // a value is written format+unit
		of           func(Report) float64
	}
	cpu := func(r Report) float64 { return us(r.CPUPerRequest()) }
	columns := []column{{"function", 17, "%.1f", " µs", cpu}}
	if rounds[0].Floor != nil {
		floorCPU := func(r Report) float64 { return us(r.Floor.CPUPerRequest()) }
		columns = append(columns,
			column{"floor", 17, "%.1f", " µs", floorCPU},
			column{"ratio", 10, "%.2f", "×", func(r Report) float64 { return cpu(r) / floorCPU(r) }},
			column{"p99", 12, "%.2f", " ms", func(r Report) float64 { return msf(r.P99) }},
			column{"miss floor's p99", 16, "%.2f", " ms", func(r Report) float64 { return msf(r.MissFloor.P99) }})
	}
	values := make([][]float64, len(columns))
	for i, c := range columns {
		for _, r := range rounds {
			values[i] = append(values[i], c.of(r))
		}
	}
	row := func(name string, cell func(i int, c column) string) {
		fmt.Fprintf(w, "%-10s", name)
		for i, c := range columns {
			fmt.Fprintf(w, " %*s", c.width, cell(i, c))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	row("round", func(_ int, c column) string { return c.heading })
	for n := range rounds {
		row(strconv.Itoa(n+1), func(i int, c column) string { return fmt.Sprintf(c.format+c.unit, values[i][n]) })
	}
	row("median", func(i int, c column) string { return fmt.Sprintf(c.format+c.unit, median(values[i])) })
	row("range", func(i int, c column) string { return spread(values[i], c.format) + c.unit })
}

// median returns the median of xs.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// spread formats the range of xs, each with format.
func spread(xs []float64, format string) string {
	return fmt.Sprintf(format+"–"+format, slices.Min(xs), slices.Max(xs))
}

// us returns d in microseconds.
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// msf returns d in milliseconds, to the microsecond.
func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
