// Command cmd runs the token vending machine locally, through the
// functions framework, as Cloud Functions runs it.
//
//	go run ./cmd
//
// With neither SECRET_ID nor MOMENTO_API_KEY set it starts an embedded
// Momento emulator and serves tokens from it (they are not valid on real
// Momento), plus a demo page on the next port. Otherwise it uses the
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
	"strconv"
	"strings"
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
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { usage(fs) }
	// Defaults computed after parsing are 0 here, so that the usage does
	// not print a placeholder as the default.
	port := fs.Int("port", 0, "`port` of the function (default: $PORT, else 8080)")
	host := fs.String("host", "127.0.0.1", "interface to listen on (0.0.0.0 or :: for all interfaces)")
	demoPort := fs.Int("demo-port", 0, "`port` of the demo page, with the emulator (default: the function's port + 1; 0 turns it off)")
	momentoHost := fs.String("momento-emulator", "", "`host:port` of a Momento-compatible server to use instead of Momento (sets MOMENTO_EMULATOR_HOST)")
	smHost := fs.String("secretmanager-emulator", "", "`host:port` of a Secret Manager-compatible server (sets SECRETMANAGER_EMULATOR_HOST)")
	latency := fs.Duration("emulator-latency", 0, "latency the embedded emulator adds to each call, such as 2ms")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["port"] {
		*port = 8080
		if p := getenv("PORT"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("PORT must be a port number, got %q", p)
			}
			*port = n
		}
	} else if *port < 1 || *port > 65535 {
		return fmt.Errorf("-port must be from 1 to 65535, got %d", *port)
	}
	if !given["demo-port"] {
		*demoPort = *port + 1
	} else if *demoPort < 0 || *demoPort > 65535 {
		return fmt.Errorf("-demo-port must be from 0 (no demo page) to 65535, got %d", *demoPort)
	}
	var setErr error
	set := func(name, value string) {
		if err := setenv(name, value); err != nil && setErr == nil {
			setErr = fmt.Errorf("set %s: %w", name, err)
		}
	}
	if *momentoHost != "" {
		set("MOMENTO_EMULATOR_HOST", *momentoHost)
	}
	if *smHost != "" {
		set("SECRETMANAGER_EMULATOR_HOST", *smHost)
	}
	if getenv("FUNCTION_TARGET") == "" {
		set("FUNCTION_TARGET", tvm.EntryPoint)
	}

	emulated := getenv("SECRET_ID") == "" && getenv("MOMENTO_API_KEY") == "" && getenv("MOMENTO_EMULATOR_HOST") == ""
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	// Fail early, with a clear message, if the port is taken: the framework
	// would only say so after the banner.
	if l, err := net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	} else {
		l.Close()
	}

	var (
		emu       *momentotest.Server
		ticketKey string
		signInURL string // the local login issuer's token endpoint
	)
	if emulated {
		// The emulator's cache is made once the configuration, and so
		// CACHE_NAME, is known to be valid.
		var err error
		emu, err = momentotest.NewServer(momentotest.Options{})
		if err != nil {
			return fmt.Errorf("start the Momento emulator: %w", err)
		}
		defer emu.Close()
		emu.SetLatency(*latency)
		set("MOMENTO_EMULATOR_HOST", emu.Addr())
		// A v2 key, as Momento's console issues them; the emulator host
		// stands in for its endpoint.
		set("MOMENTO_API_KEY", emu.APIKeyV2())

		// Tickets: a key of the runner's own unless one is set, so that the
		// demo (and cmd/ticket) can play the app's backend.
		ticketKey = getenv("TICKET_KEY")
		if ticketKey == "" && getenv("TICKET_SECRET_ID") == "" {
			ticketKey = rand.Text() // 26 base32 characters, 130 bits
			ticketKey += rand.Text()
			set("TICKET_KEY", ticketKey)
		}
		// Sign-in: a fake login issuer on loopback, unless one is set.
		if getenv("OIDC_ISSUER") == "" {
			issuer, err := oidctest.NewServer(oidctest.Options{Addr: net.JoinHostPort(*host, "0")})
			if err != nil {
				return fmt.Errorf("start the local login issuer: %w", err)
			}
			defer issuer.Close()
			set("OIDC_ISSUER", issuer.Issuer())
			set("OIDC_AUDIENCE", issuer.Audience())
			if getenv("OIDC_TOPICS") == "" {
				set("OIDC_TOPICS", "user-{sub}-*")
			}
			signInURL = issuer.Issuer() + string(oidctest.EndpointToken)
		}
	}
	if setErr != nil {
		return setErr
	}
	// The function reads the environment only on its first request, and
	// deployed answers 500 until it is fixed; here, refuse to start.
	cfg, err := config.FromLookupEnv(lookupenv)
	if err != nil {
		return fmt.Errorf("%w:\n%s", errConfig, indent(err.Error()))
	}

	var stopDemo func()
	if emulated {
		if err := emu.CreateCache(cfg.CacheName); err != nil {
			return fmt.Errorf("create the emulator's cache: %w", err)
		}
		fnURL := localURL(*host, *port, "/")
		demoURL := ""
		if *demoPort > 0 && *demoPort <= 65535 {
			opts := demo.Options{FunctionURL: fnURL, SignInURL: signInURL, TicketAudience: cfg.TicketAudience}
			if opts.TicketAudience == "" {
				opts.TicketAudience = ticket.DefaultAudience
			}
			if ticketKey != "" && !strings.HasPrefix(ticketKey, "{") {
				opts.TicketKey = []byte(ticketKey)
			}
			stop, err := serveDemo(net.JoinHostPort(*host, strconv.Itoa(*demoPort)), opts)
			if err != nil {
				return err
			}
			stopDemo = stop
			demoURL = localURL(*host, *demoPort, "/demo")
		}
		var warning string
		if demoURL != "" && !originAllowed(getenv("ALLOWED_ORIGINS"), demoURL) {
			warning = fmt.Sprintf("ALLOWED_ORIGINS does not list the demo page's origin, %s, so the\n"+
				"  function refuses the demo: add that origin to ALLOWED_ORIGINS, or unset it.",
				strings.TrimSuffix(demoURL, "/demo"))
		}
		banner(stdout, emu.Addr(), cfg.CacheName, fnURL, demoURL, warning)
		if ticketKey != "" {
			fmt.Fprintf(stdout, "Tickets are signed with TICKET_KEY; try one:\n  TICKET_KEY='%s' go run ./cmd/ticket -sub alice -topics 'order-42-*'\n", ticketKey)
		}
		if signInURL != "" {
			fmt.Fprintf(stdout, "Local login issuer: %s (OIDC_TOPICS=%s); a token for alice, signed in:\n  %s\n",
				getenv("OIDC_ISSUER"), getenv("OIDC_TOPICS"), signInCurl(signInURL, fnURL, "alice"))
		}
	} else {
		fmt.Fprintf(stdout, "Serving %s on %s with the configuration in the environment.\n",
			tvm.EntryPoint, localURL(*host, *port, "/"))
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- funcframework.StartHostPort(*host, strconv.Itoa(*port)) }()
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
	if stopDemo != nil {
		stopDemo()
	}
	// The functions framework's server has no shutdown; the process exits
	// with it, as a Cloud Functions instance does on SIGTERM.
	return nil
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

func banner(w io.Writer, emulator, cache, fnURL, demoURL, warning string) {
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
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  curl -s %s\n", fnURL)
	fmt.Fprintf(w, "  fetch(%q).then(r => r.json()).then(console.log)\n", fnURL)
	if warning != "" {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  WARNING: %s\n", warning)
	}
	fmt.Fprintln(w, line)
}
