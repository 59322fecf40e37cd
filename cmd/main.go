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
// Flags:
//
//	-port N                 port of the function (default $PORT, else 8080)
//	-host H                 interface to listen on (default 127.0.0.1; 0.0.0.0
//	                        or :: for all interfaces)
//	-demo-port N            port of the demo page with the emulator (default
//	                        port+1; 0 turns it off)
//	-momento-emulator A     host:port of a Momento-compatible server
//	                        (sets MOMENTO_EMULATOR_HOST)
//	-secretmanager-emulator A
//	                        host:port of a Secret Manager-compatible server
//	                        (sets SECRETMANAGER_EMULATOR_HOST)
//	-emulator-latency D     latency the embedded emulator adds to each call
//
// SIGINT or SIGTERM stops it; it exits 0. -h prints this usage and exits 0;
// a bad flag exits 2.
package main

import (
	"cmp"
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
	err := run(ctx, os.Args[1:], os.Getenv, os.Setenv, os.Stdout)
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2) // the flag package has said why
	case err != nil:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// errUsage means the arguments were wrong, and the flag package has
// printed why and the usage.
var errUsage = errors.New("usage")

// run serves the function until ctx ends. The function reads its
// configuration from the process environment, as it does on Cloud Functions,
// so run passes what it decides (emulator hosts, the emulator's key, the
// target) through setenv.
func run(ctx context.Context, args []string, getenv func(string) string, setenv func(string, string) error, stdout io.Writer) error {
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.SetOutput(stdout)
	defaultPort := 8080
	if p := getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("PORT must be a port number, got %q", p)
		}
		defaultPort = n
	}
	port := fs.Int("port", defaultPort, "port of the function")
	host := fs.String("host", "127.0.0.1", "interface to listen on (0.0.0.0 or :: for all interfaces)")
	demoPort := fs.Int("demo-port", -1, "port of the demo page with the emulator (default port+1; 0 turns it off)")
	momentoHost := fs.String("momento-emulator", "", "host:port of a Momento-compatible server")
	smHost := fs.String("secretmanager-emulator", "", "host:port of a Secret Manager-compatible server")
	latency := fs.Duration("emulator-latency", 0, "latency the embedded emulator adds to each call")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
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

	var stopDemo func()
	if emulated {
		cache := cmp.Or(strings.TrimSpace(getenv("CACHE_NAME")), config.DefaultCacheName)
		emu, err := momentotest.NewServer(momentotest.Options{Caches: []string{cache}})
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
		ticketKey := getenv("TICKET_KEY")
		if ticketKey == "" && getenv("TICKET_SECRET_ID") == "" {
			ticketKey = rand.Text() // 26 base32 characters, 130 bits
			ticketKey += rand.Text()
			set("TICKET_KEY", ticketKey)
		}
		// Sign-in: a fake login issuer on loopback, unless one is set.
		signInURL := ""
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

		fnURL := localURL(*host, *port, "/")
		demoURL := ""
		if *demoPort < 0 {
			*demoPort = *port + 1
		}
		if *demoPort > 0 {
			opts := demo.Options{FunctionURL: fnURL, SignInURL: signInURL,
				TicketAudience: cmp.Or(getenv("TICKET_AUDIENCE"), ticket.DefaultAudience)}
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
		banner(stdout, emu.Addr(), cache, fnURL, demoURL, warning)
		if ticketKey != "" {
			fmt.Fprintf(stdout, "Tickets are signed with TICKET_KEY; try one:\n  TICKET_KEY='%s' go run ./cmd/ticket -sub alice -topics 'order-42-*'\n", ticketKey)
		}
		if signInURL != "" {
			fmt.Fprintf(stdout, "Local login issuer: %s (an ID token: %s?sub=alice; OIDC_TOPICS=%s)\n",
				getenv("OIDC_ISSUER"), signInURL, getenv("OIDC_TOPICS"))
		}
	} else {
		fmt.Fprintf(stdout, "Serving %s on %s with the configuration in the environment.\n",
			tvm.EntryPoint, localURL(*host, *port, "/"))
	}
	if setErr != nil {
		return setErr
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- funcframework.StartHostPort(*host, strconv.Itoa(*port)) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("functions framework: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "Shutting down.")
	if stopDemo != nil {
		stopDemo()
	}
	// The functions framework's server has no shutdown; the process exits
	// with it, as a Cloud Functions instance does on SIGTERM.
	return nil
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
