// Package demo serves a one-page demo of the function for local runs: the
// page fetches a token from the function the way a web app would, shows its
// scope and a countdown to its expiry, and fetches the next one five minutes
// before it expires. Only the local runner serves it, and only when it runs
// the embedded emulator; the deployed function never does.
//
// The page has three modes: a visitor (no credentials: the TOPICS scope), a
// customer tracking an order (the demo server plays the app's backend and
// issues a ticket for that order's topics), and a signed-in user (an ID
// token from the runner's fake login issuer).
package demo

import (
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
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
}

// Handler serves the page at /demo, and redirects / there.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		tmpl.Execute(w, struct {
			FunctionURL, SignInURL string
			Tickets                bool
		}{o.FunctionURL, o.SignInURL, o.TicketKey != nil})
	})
	mux.Handle("GET /{$}", http.RedirectHandler("/demo", http.StatusFound))
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
