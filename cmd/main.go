// Command cmd runs the token vending machine locally, through the
// functions framework, as Cloud Functions runs it.
//
//	go run ./cmd
//
// With neither SECRET_ID nor MOMENTO_API_KEY set it starts an embedded
// Momento emulator and serves tokens from it (they are not valid on real
// Momento), plus a demo page on the next port and the emulator's gRPC-web
// endpoint, for @gomomento/sdk-web in a page, on the one after (-grpcweb-port),
// and plays the pizza shop's backend, publishing orders' progress, which the
// demo page shows live.
// Otherwise it uses the
// configuration in the environment, as the deployed function does; see the
// README.
//
// go run ./cmd -h prints its flags and the main variables.
//
// SIGINT or SIGTERM stops it, and so does the exit of the process that
// started it (go run does not pass SIGTERM on); it exits 0. An invalid
// configuration exits 1, naming each bad variable; a bad flag exits 2.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	tvm "example.com/tokenvendingmachine"
	"example.com/tokenvendingmachine/internal/config"
	"example.com/tokenvendingmachine/internal/demo"
	"example.com/tokenvendingmachine/internal/momentotest"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/ticket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, stopWatching := stopWhenOrphaned(ctx, os.Getppid, time.Second)
	defer stopWatching()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Setenv, os.Stdout)
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2) // the flag package has said why
	case errors.Is(err, errConfig):
		fmt.Fprintf(os.Stderr, "error: %v\nFix the variables named above and start again.\n", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// errUsage means the arguments were wrong, and the flag package has
// printed why and the usage.
var errUsage = errors.New("usage")

// errParentGone is the cause of the runner's context once the process
// that started it has exited.
var errParentGone = errors.New("the parent process has exited")

// stopWhenOrphaned returns ctx, cancelled with the cause errParentGone once
// getppid, asked every interval, returns another process than at first: the
// process that started the runner has exited, and the runner was handed to
// another (init, or a subreaper). go run does not pass SIGTERM on to the
// program it runs, so without this, stopping go run by its PID would leave
// the server running, orphaned, holding its port. A runner started by init
// (or on a system where a parent's exit leaves the number alone) is never
// stopped by this.
func stopWhenOrphaned(ctx context.Context, getppid func() int, interval time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	parent := getppid()
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if getppid() != parent {
					cancel(errParentGone)
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// errConfig means the configuration in the environment is invalid; the
// error lists why, a line per variable.
var errConfig = errors.New("invalid configuration")

// run serves the function until ctx ends. The function reads its
// configuration from the process environment, as it does on Cloud Functions,
// so run passes what it decides (emulator hosts, the emulator's key, the
// target) through setenv, and lookupenv must see it. The configuration is
// checked, as the function will read it, before anything is served: an
// invalid one is an error that wraps errConfig.
func run(ctx context.Context, args []string, lookupenv func(string) (string, bool), setenv func(string, string) error, stdout io.Writer) error {
	getenv := func(name string) string {
		v, _ := lookupenv(name)
		return v
	}
	o, err := parseFlags(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	env := &envSetter{setenv: setenv}
	if o.momentoHost != "" {
		env.set("MOMENTO_EMULATOR_HOST", o.momentoHost)
	}
	if o.smHost != "" {
		env.set("SECRETMANAGER_EMULATOR_HOST", o.smHost)
	}
	if getenv("FUNCTION_TARGET") == "" {
		env.set("FUNCTION_TARGET", tvm.EntryPoint)
	}

	emulated := getenv("SECRET_ID") == "" && getenv("MOMENTO_API_KEY") == "" && getenv("MOMENTO_EMULATOR_HOST") == ""
	addr := net.JoinHostPort(o.host, strconv.Itoa(o.port))
	// Fail early, with a clear message, if the port is taken: the framework
	// would only say so after the banner.
	if l, err := net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	} else {
		l.Close()
	}

	var local *localStack
	if emulated {
		if local, err = startLocal(o, getenv, env); err != nil {
			return err
		}
		defer local.close()
	}
	if env.err != nil {
		return env.err
	}
	// The function reads the environment only on its first request, and
	// deployed answers 500 until it is fixed; here, refuse to start.
	cfg, err := config.FromLookupEnv(lookupenv)
	if err != nil {
		return fmt.Errorf("%w:\n%s", errConfig, indent(err.Error()))
	}

	if local == nil {
		fmt.Fprintf(stdout, "Serving %s on %s with the configuration in the environment.\n", tvm.EntryPoint, localURL(o.host, o.port, "/"))
	} else if err := local.announce(stdout, o, cfg, getenv); err != nil {
		return err
	}

	return serve(ctx, o, stdout)
}

// serve runs the functions framework on o's host and port until ctx ends.
func serve(ctx context.Context, o options, stdout io.Writer) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- funcframework.StartHostPort(o.host, strconv.Itoa(o.port)) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("functions framework: %w", err)
	case <-ctx.Done():
	}
	if errors.Is(context.Cause(ctx), errParentGone) {
		fmt.Fprintln(stdout, "The parent process has exited (go run, stopped by a signal?); shutting down.")
	} else {
		fmt.Fprintln(stdout, "Shutting down.")
	}
	// The functions framework's server has no shutdown; the process exits
	// with it, as a Cloud Functions instance does on SIGTERM. run's
	// deferred close stops what the runner started itself.
	return nil
}

// defaultWebSDK is where "npm --prefix web run bundle" writes the web SDK,
// relative to the repository's root, where go run ./cmd runs.
const defaultWebSDK = "web/dist/sdk-web.js"

// options are the runner's flags, with their defaults applied.
type options struct {
	port, demoPort      int
	grpcWebPort         int
	host                string
	momentoHost, smHost string
	latency             time.Duration
	webSDK              string // the demo's local web SDK bundle, absolute
}

// parseFlags parses args, giving -port its default from PORT and
// -demo-port the function's port + 1.
func parseFlags(args []string, getenv func(string) string, stdout io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { usage(fs) }
	// Defaults computed after parsing are 0 here, so that the usage does
	// not print a placeholder as the default.
	fs.IntVar(&o.port, "port", 0, "`port` of the function (default: $PORT, else 8080)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "interface to listen on (0.0.0.0 or :: for all interfaces)")
	fs.IntVar(&o.demoPort, "demo-port", 0, "`port` of the demo page, with the emulator (default: the function's port + 1; 0 turns it off)")
	fs.IntVar(&o.grpcWebPort, "grpcweb-port", 0, "`port` of the emulator's gRPC-web endpoint, for @gomomento/sdk-web in a page (default: the function's port + 2; 0 turns it off)")
	fs.StringVar(&o.momentoHost, "momento-emulator", "", "`host:port` of a Momento-compatible server to use instead of Momento (sets MOMENTO_EMULATOR_HOST)")
	fs.StringVar(&o.smHost, "secretmanager-emulator", "", "`host:port` of a Secret Manager-compatible server (sets SECRETMANAGER_EMULATOR_HOST)")
	fs.DurationVar(&o.latency, "emulator-latency", 0, "latency the embedded emulator adds to each call, such as 2ms")
	fs.StringVar(&o.webSDK, "web-sdk", defaultWebSDK, "`file` of the web SDK bundle the demo's live view loads while it exists, else esm.sh ("+demo.BundleCommand+" builds it)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return o, err
	} else if err != nil {
		return o, errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["port"] {
		o.port = 8080
		if p := getenv("PORT"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return o, fmt.Errorf("PORT must be a port number, got %q", p)
			}
			o.port = n
		}
	} else if o.port < 1 || o.port > 65535 {
		return o, fmt.Errorf("-port must be from 1 to 65535, got %d", o.port)
	}
	if !given["demo-port"] {
		o.demoPort = o.port + 1
	} else if o.demoPort < 0 || o.demoPort > 65535 {
		return o, fmt.Errorf("-demo-port must be from 0 (no demo page) to 65535, got %d", o.demoPort)
	}
	if abs, err := filepath.Abs(o.webSDK); err == nil {
		o.webSDK = abs
	}
	if !given["grpcweb-port"] {
		o.grpcWebPort = o.port + 2
	} else if o.grpcWebPort < 0 || o.grpcWebPort > 65535 {
		return o, fmt.Errorf("-grpcweb-port must be from 0 (no gRPC-web) to 65535, got %d", o.grpcWebPort)
	}
	return o, nil
}

// envSetter sets variables, keeping the first error.
type envSetter struct {
	setenv func(string, string) error
	err    error
}

func (e *envSetter) set(name, value string) {
	if err := e.setenv(name, value); err != nil && e.err == nil {
		e.err = fmt.Errorf("set %s: %w", name, err)
	}
}

// localStack is what the runner starts when no Momento key is configured:
// the emulator, a ticket key of its own, a local login issuer, and, once
// announced, the demo page.
type localStack struct {
	emu       *momentotest.Server
	issuer    *oidctest.Server // nil when OIDC_ISSUER is set
	ticketKey string           // "" when TICKET_SECRET_ID is set
	signInURL string           // the local login issuer's token endpoint
	stopDemo  func()
	// stopPizzeria stops the backend that publishes orders; nil until announce.
	stopPizzeria func()
}

// startLocal starts the emulator (with no cache yet: CACHE_NAME is made
// once the configuration is known to be valid) and, unless configured,
// a ticket key and a login issuer, and sets the variables that point the
// function at them.
func startLocal(o options, getenv func(string) string, env *envSetter) (*localStack, error) {
	emu, err := momentotest.NewServer(momentotest.Options{})
	if err != nil {
		return nil, fmt.Errorf("start the Momento emulator: %w", err)
	}
	l := &localStack{emu: emu}
	emu.SetLatency(o.latency)
	env.set("MOMENTO_EMULATOR_HOST", emu.Addr())
	// A v2 key, as Momento's console issues them; the emulator host
	// stands in for its endpoint.
	env.set("MOMENTO_API_KEY", emu.APIKeyV2())

	// Tickets: a key of the runner's own unless one is set, so that the
	// demo (and cmd/ticket) can play the app's backend.
	l.ticketKey = getenv("TICKET_KEY")
	if l.ticketKey == "" && getenv("TICKET_SECRET_ID") == "" {
		l.ticketKey = rand.Text() + rand.Text() // 2 × 26 base32 characters, 260 bits
		env.set("TICKET_KEY", l.ticketKey)
	}
	// Sign-in: a fake login issuer on loopback, unless one is set.
	if getenv("OIDC_ISSUER") == "" {
		if l.issuer, err = oidctest.NewServer(oidctest.Options{Addr: net.JoinHostPort(o.host, "0")}); err != nil {
			l.close()
			return nil, fmt.Errorf("start the local login issuer: %w", err)
		}
		env.set("OIDC_ISSUER", l.issuer.Issuer())
		env.set("OIDC_AUDIENCE", l.issuer.Audience())
		if getenv("OIDC_TOPICS") == "" {
			env.set("OIDC_TOPICS", "user-{sub}-*")
		}
		l.signInURL = l.issuer.Issuer() + string(oidctest.EndpointToken)
	}
	return l, nil
}

// announce creates the emulator's cache, serves the demo page, and prints
// the banner and what to try.
func (l *localStack) announce(stdout io.Writer, o options, cfg config.Config, getenv func(string) string) error {
	if err := l.emu.CreateCache(cfg.CacheName); err != nil {
		return fmt.Errorf("create the emulator's cache: %w", err)
	}
	fnURL := localURL(o.host, o.port, "/")
	grpcWebURL := ""
	if o.grpcWebPort > 0 {
		// The emulator's tokens are worthless elsewhere, so any origin may
		// use its gRPC-web endpoint.
		if _, err := l.emu.ServeGRPCWeb(net.JoinHostPort(o.host, strconv.Itoa(o.grpcWebPort)), "*"); err != nil {
			return fmt.Errorf("gRPC-web: cannot listen on port %d: %w (set -grpcweb-port, or 0 to turn it off)", o.grpcWebPort, err)
		}
		grpcWebURL = localURL(o.host, o.grpcWebPort, "")
	}
	l.startPizzeria(stdout, cfg.CacheName)
	demoURL, err := l.serveDemoPage(o, cfg, fnURL, grpcWebURL)
	if err != nil {
		return err
	}
	var warning string
	if demoURL != "" && !originAllowed(getenv("ALLOWED_ORIGINS"), demoURL) {
		warning = fmt.Sprintf("ALLOWED_ORIGINS does not list the demo page's origin, %s, so the\n"+
			"  function refuses the demo: add that origin to ALLOWED_ORIGINS, or unset it.",
			strings.TrimSuffix(demoURL, "/demo"))
	}
	banner(stdout, l.emu.Addr(), cfg.CacheName, fnURL, demoURL, grpcWebURL, warning)
	l.printTryThis(stdout, o, fnURL, demoURL != "" && grpcWebURL != "", getenv)
	return nil
}

// startPizzeria plays the pizza shop's backend, publishing to cacheName as
// the account, for the demo's live view and for anyone who subscribes,
// until l.stopPizzeria.
func (l *localStack) startPizzeria(stdout io.Writer, cacheName string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var reported sync.Once
	go func() {
		defer close(done)
		demo.RunPizzeria(ctx, demo.DefaultPizzeriaTick, func(topic, text string) error {
			_, err := l.emu.Publish(cacheName, topic, text)
			return err
		}, func(err error) {
			reported.Do(func() { fmt.Fprintf(stdout, "The pizzeria cannot publish (it goes on trying): %v\n", err) })
		})
	}()
	l.stopPizzeria = func() { cancel(); <-done }
}

// serveDemoPage serves the demo page, unless -demo-port is 0, and returns
// its URL ("" when off).
func (l *localStack) serveDemoPage(o options, cfg config.Config, fnURL, grpcWebURL string) (string, error) {
	if o.demoPort <= 0 {
		return "", nil
	}
	opts := demo.Options{FunctionURL: fnURL, SignInURL: l.signInURL, TicketAudience: cfg.TicketAudience,
		GRPCWebURL: grpcWebURL, CacheName: cfg.CacheName, WebSDKFile: o.webSDK}
	if opts.TicketAudience == "" {
		opts.TicketAudience = ticket.DefaultAudience
	}
	if l.ticketKey != "" && !strings.HasPrefix(l.ticketKey, "{") {
		opts.TicketKey = []byte(l.ticketKey)
	}
	stop, err := serveDemo(net.JoinHostPort(o.host, strconv.Itoa(o.demoPort)), opts)
	if err != nil {
		return "", err
	}
	l.stopDemo = stop
	return localURL(o.host, o.demoPort, "/demo"), nil
}

// printTryThis prints, after the banner, what the pizzeria publishes and
// the commands that get each kind of caller's token.
func (l *localStack) printTryThis(stdout io.Writer, o options, fnURL string, liveDemo bool, getenv func(string) string) {
	fmt.Fprintf(stdout, "The pizzeria publishes orders 42's and 43's progress every %v on %s,\n  %s, %s, %s and %s;\n  the demo page shows them live.\n",
		demo.DefaultPizzeriaTick, demo.TopicOrder42, demo.TopicOrder43, demo.TopicNewOrder, demo.TopicAliceInbox, demo.TopicBobInbox)
	if liveDemo {
		if _, err := os.Stat(o.webSDK); err == nil {
			fmt.Fprintf(stdout, "The demo's live view loads the web SDK from %s.\n", o.webSDK)
		} else {
			fmt.Fprintf(stdout, "The demo's live view loads the web SDK from esm.sh; offline, build it once, from the\n  repository's root, and reload the page:\n  %s\n", demo.BundleCommand)
		}
	}
	if l.ticketKey != "" {
		fmt.Fprintf(stdout, "Tickets are signed with TICKET_KEY; try one:\n  TICKET_KEY='%s' go run ./cmd/ticket -sub alice -topics 'order-42-*'\n", l.ticketKey)
	}
	if l.signInURL != "" {
		fmt.Fprintf(stdout, "Local login issuer: %s (OIDC_TOPICS=%s); a token for alice, signed in:\n  %s\n",
			getenv("OIDC_ISSUER"), getenv("OIDC_TOPICS"), signInCurl(l.signInURL, fnURL, "alice"))
	}
}

// close stops what startLocal and announce started.
func (l *localStack) close() {
	if l.stopPizzeria != nil {
		l.stopPizzeria()
	}
	if l.stopDemo != nil {
		l.stopDemo()
	}
	if l.issuer != nil {
		l.issuer.Close()
	}
	l.emu.Close()
}

// signInCurl returns a shell command that gets an ID token for sub from
// the local login issuer's token endpoint (which answers JSON,
// {"id_token": ...}) and sends it to the function at fnURL as the bearer.
func signInCurl(tokenURL, fnURL, sub string) string {
	return fmt.Sprintf(`curl -s -H "Authorization: Bearer $(curl -s '%s?sub=%s' | sed -E 's/.*"id_token":"([^"]+)".*/\1/')" %s`,
		tokenURL, url.QueryEscape(sub), fnURL)
}

// usage prints what -h prints: what the runner does, its flags, and the
// variables a newcomer sets first.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: go run ./cmd [flags]

Runs the token vending machine on this machine, through the functions
framework, as Cloud Functions runs it: by default on http://127.0.0.1:8080/.

With neither SECRET_ID nor MOMENTO_API_KEY set, it needs no account: it
starts an embedded Momento emulator (its tokens are NOT valid on real
Momento), a local login issuer, and a demo page on the next port. Otherwise
it serves real tokens with the configuration in the environment, which it
checks before it starts. Ctrl-C stops it.

Flags:
`)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Environment (the README's Configuration table lists every variable):
  SECRET_ID         Secret Manager secret that holds the Momento API key,
                    projects/PROJECT/secrets/SECRET (read with Application
                    Default Credentials: gcloud auth application-default login)
  MOMENTO_API_KEY   the Momento API key itself; set this or SECRET_ID
  MOMENTO_ENDPOINT  Momento's endpoint for the key's region, which a v2 API key
                    (Momento's default since December 2025) does not carry
  CACHE_NAME        the cache tokens may subscribe in; it must exist in
                    Momento (default: pizza)
  TOPICS            what a visitor's token may subscribe to: *, a list such as
                    order-*,news, or none (default: *)
  PORT              the function's port when -port is not given
`)
}

// indent indents each line of s by two spaces.
func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// localURL returns the URL to print for path on a server listening on
// host:port, with a loopback address when it listens on every interface.
func localURL(host string, port int, path string) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
}

// serveDemo serves the demo page on addr until the returned func is called.
func serveDemo(addr string, opts demo.Options) (func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo page: cannot listen on %s: %w (set -demo-port, or 0 to turn it off)", addr, err)
	}
	srv := &http.Server{Handler: demo.Handler(opts), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			srv.Close()
		}
	}, nil
}

// originAllowed reports whether an ALLOWED_ORIGINS value lets a page at
// pageURL read the function's answers. Unset, or "*", allows any.
func originAllowed(allowedOrigins, pageURL string) bool {
	allowedOrigins = strings.TrimSpace(allowedOrigins)
	if allowedOrigins == "" || allowedOrigins == "*" {
		return true
	}
	u, err := url.Parse(pageURL)
	if err != nil {
		return false
	}
	page, _ := config.CanonicalOrigin(u.Scheme + "://" + u.Host)
	for _, o := range strings.Split(allowedOrigins, ",") {
		if canon, ok := config.CanonicalOrigin(strings.TrimSpace(o)); ok && canon == page {
			return true
		}
	}
	return false
}

func banner(w io.Writer, emulator, cache, fnURL, demoURL, grpcWebURL, warning string) {
	line := "================================================================================"
	fmt.Fprintln(w, line)
	fmt.Fprintln(w, "  EMULATOR MODE: neither SECRET_ID nor MOMENTO_API_KEY is set.")
	fmt.Fprintf(w, "  Tokens come from an embedded Momento emulator on %s.\n", emulator)
	fmt.Fprintln(w, "  They are NOT valid on real Momento.")
	fmt.Fprintf(w, "  The emulator has one cache, %q (CACHE_NAME), created at start.\n", cache)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  Function:   %s\n", fnURL)
	if demoURL != "" {
		fmt.Fprintf(w, "  Demo page:  %s\n", demoURL)
	}
	if grpcWebURL != "" {
		fmt.Fprintf(w, "  gRPC-web: %s\n", grpcWebURL)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  curl -s %s\n", fnURL)
	fmt.Fprintf(w, "  fetch(%q).then(r => r.json()).then(console.log)\n", fnURL)
	if warning != "" {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  WARNING: %s\n", warning)
	}
	fmt.Fprintln(w, line)
}
