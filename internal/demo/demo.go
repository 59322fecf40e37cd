// Package demo serves a one-page demo of the function for local runs: the
// page fetches a token from the function the way a web app would, shows its
// scope and a countdown to its expiry, and fetches the next one five minutes
// before it expires. Only the local runner serves it, and only when it runs
// the embedded emulator; the deployed function never does.
package demo

import (
	_ "embed"
	"html/template"
	"net/http"
)

//go:embed index.html
var page string

var tmpl = template.Must(template.New("demo").Parse(page))

// Handler serves the page at /demo, with functionURL as the function to
// call, and redirects / there.
func Handler(functionURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		tmpl.Execute(w, struct{ FunctionURL string }{functionURL})
	})
	mux.Handle("GET /{$}", http.RedirectHandler("/demo", http.StatusFound))
	return mux
}
