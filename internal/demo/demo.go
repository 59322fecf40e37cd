// Package demo serves a one-page demo of the function for local runs. Its
// live view shows, through the browser helper (web/tvm.js) and the Momento
// web SDK, what each kind of caller receives from the topics that the
// runner's pizzeria (RunPizzeria) publishes on, with each token's refreshes:
// a visitor (no credentials: the TOPICS scope, every order with TOPICS=*),
// the customer of order 42 (the demo server plays the app's backend and
// issues a ticket for that order's topics), and a user signed in as alice
// (an ID token from the runner's fake login issuer). Below it, the page
// fetches a token as a web app would and shows its scope and a countdown
// to its expiry. Only the local runner serves it, and only when it runs the
// embedded emulator; the deployed function never does.
package demo

import (
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"os"
	"time"

	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
	"example.com/tokenvendingmachine/web"
)

//go:embed index.html
var page string

var tmpl = template.Must(template.New("demo").Parse(page))

// Options configure the demo.
type Options struct {
	// FunctionURL is the function the page calls.
	FunctionURL string
	// TicketKey, if set, lets the demo server play the app's backend:
	// GET /ticket?order=ID answers {"ticket": ...}, a ticket for the topics
	// order-ID-*, signed with it for TicketAudience.
	TicketKey      []byte
	TicketAudience string
	// Now is the clock tickets are issued by; nil means time.Now.
	Now func() time.Time
	// SignInURL, if set, is the fake login issuer's token endpoint; the
	// page's sign-in mode gets an ID token there for ?sub=NAME.
	SignInURL string
	// GRPCWebURL, if set, is the emulator's gRPC-web endpoint, such as
	// http://127.0.0.1:8082: the page's live view subscribes there. Without
	// it, the page has no live view.
	GRPCWebURL string
	// CacheName is the cache the topics are in; "" means "pizza".
	CacheName string
	// WebSDKFile, if set, is an ES module bundle of @gomomento/sdk-web
	// (npm --prefix web run bundle writes web/dist/sdk-web.js): while it
	// exists, the page loads the SDK from it, at /sdk-web.js, and otherwise
	// from WebSDKURL. It is looked for on every page load, so that building
	// it needs no restart.
	WebSDKFile string
	// WebSDKURL is where the page loads the SDK without a WebSDKFile; ""
	// means DefaultWebSDKURL.
	WebSDKURL string
}

// DefaultWebSDKURL is the web SDK, pinned, as an ES module from esm.sh.
const DefaultWebSDKURL = "https://esm.sh/@gomomento/sdk-web@1.118.0"

// BundleCommand is the command that builds the local bundle of the web SDK
// from the repository's lockfile, run from the repository's root.
const BundleCommand = "npm --prefix web run bundle"

// Handler serves the page at /demo, and redirects / there; the browser
// helper at /tvm.js, and the web SDK at /sdk-web.js while o.WebSDKFile exists.
func Handler(o Options) http.Handler {
	if o.CacheName == "" {
		o.CacheName = "pizza"
	}
	if o.WebSDKURL == "" {
		o.WebSDKURL = DefaultWebSDKURL
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
		sdk, local := o.WebSDKURL, false
		if o.WebSDKFile != "" {
			if _, err := os.Stat(o.WebSDKFile); err == nil {
				sdk, local = "/sdk-web.js", true
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		tmpl.Execute(w, struct {
			FunctionURL, SignInURL, GRPCWebURL, CacheName string
			WebSDKURL, BundleCommand                      string
			LocalSDK, Tickets                             bool
		}{o.FunctionURL, o.SignInURL, o.GRPCWebURL, o.CacheName, sdk, BundleCommand, local, o.TicketKey != nil})
	})
	mux.Handle("GET /{$}", http.RedirectHandler("/demo", http.StatusFound))
	mux.HandleFunc("GET /tvm.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write([]byte(web.Module))
	})
	if o.WebSDKFile != "" {
		mux.HandleFunc("GET /sdk-web.js", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFile(w, r, o.WebSDKFile)
		})
	}
	if o.TicketKey != nil {
		mux.HandleFunc("GET /ticket", func(w http.ResponseWriter, r *http.Request) {
			issueTicket(w, r, o)
		})
	}
	return mux
}

// issueTicket answers {"ticket": ...} for the order r names, as an app's
// backend would once it has checked that the caller placed that order.
func issueTicket(w http.ResponseWriter, r *http.Request, o Options) {
	order := r.URL.Query().Get("order")
	sc, err := scope.New([]string{"order-" + order + "-*"})
	if err != nil || order == "" || len(order) > 32 {
		http.Error(w, "order must be 1 to 32 letters and digits", http.StatusBadRequest)
		return
	}
	for _, c := range order {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			http.Error(w, "order must be 1 to 32 letters and digits", http.StatusBadRequest)
			return
		}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	tkt, err := ticket.Sign(ticket.Key{Secret: o.TicketKey}, o.TicketAudience, ticket.Claims{
		Subject: "customer-of-order-" + order,
		Scope:   sc,
		Expires: now().Add(5 * time.Minute),
	})
	if err != nil {
		http.Error(w, "cannot sign a ticket", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"ticket": tkt})
}
