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
//	-host H                 interface to listen on (default 127.0.0.1 with the
//	                        emulator, all interfaces otherwise)
//	-demo-port N            port of the demo page with the emulator (default
//	                        port+1; 0 turns it off)
//	-momento-emulator A     host:port of a Momento-compatible server
//	                        (sets MOMENTO_EMULATOR_HOST)
//	-secretmanager-emulator A
//	                        host:port of a Secret Manager-compatible server
//	                        (sets SECRETMANAGER_EMULATOR_HOST)
//	-emulator-latency D     latency the embedded emulator adds to each call
//
// SIGINT or SIGTERM stops it; it exits 0.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Setenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

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
	host := fs.String("host", "", "interface to listen on (default 127.0.0.1 with the emulator, all interfaces otherwise)")
	demoPort := fs.Int("demo-port", -1, "port of the demo page with the emulator (default port+1; 0 turns it off)")
	momentoHost := fs.String("momento-emulator", "", "host:port of a Momento-compatible server")
	smHost := fs.String("secretmanager-emulator", "", "host:port of a Secret Manager-compatible server")
	latency := fs.Duration("emulator-latency", 0, "latency the embedded emulator adds to each call")
	if err := fs.Parse(args); err != nil {
		return err
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
	if *host == "" && emulated {
		*host = "127.0.0.1"
	}
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
		set("MOMENTO_API_KEY", emu.APIKey())
		fnURL := localURL(*host, *port, "/")
		demoURL := ""
		if *demoPort < 0 {
			*demoPort = *port + 1
		}
		if *demoPort > 0 {
			stop, err := serveDemo(net.JoinHostPort(*host, strconv.Itoa(*demoPort)), fnURL)
			if err != nil {
				return err
			}
			stopDemo = stop
			demoURL = localURL(*host, *demoPort, "/demo")
		}
		banner(stdout, emu.Addr(), cache, fnURL, demoURL)
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
func serveDemo(addr, fnURL string) (func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo page: cannot listen on %s: %w (set -demo-port, or 0 to turn it off)", addr, err)
	}
	srv := &http.Server{Handler: demo.Handler(fnURL), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			srv.Close()
		}
	}, nil
}

func banner(w io.Writer, emulator, cache, fnURL, demoURL string) {
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
	fmt.Fprintln(w, line)
}
