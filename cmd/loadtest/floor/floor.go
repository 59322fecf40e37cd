// Package floor is the functions framework's floor: a function that answers
// every request with one constant token response and calls nothing. What
// it costs per request is what the framework, net/http and the connection
// cost; cmd/loadtest serves it beside the token vending machine, under the
// same load, so that the machine's CPU per request reads against it. The
// package also holds the floor of a miss (ServeMiss), against whose
// latency the machine's reads.
//
// Its answer has the headers of the machine's answer to an anonymous
// caller (default configuration) and a body of the same size, so that both
// write the same bytes; the floor only does no work to find them.
package floor

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

// EntryPoint is the floor's name, for FUNCTION_TARGET.
const EntryPoint = "Floor"

func init() {
	functions.HTTP(EntryPoint, Serve)
}

// TokenLen is the length of the floor's token: that of a token the Momento
// emulator mints for an anonymous caller.
const TokenLen = 372

// constant is the floor's one answer.
var constant = newAnswer(strings.Repeat("x", TokenLen))

// answer is a token response's body and its Content-Length, made once.
type answer struct {
	body   []byte
	length []string
}

// newAnswer returns the answer with tok, which holds nothing JSON escapes.
func newAnswer(tok string) *answer {
	b := []byte(`{"token":"` + tok + `","exp":1765000000,"expires_in":3600,"refresh_in":3326.123}` + "\n")
	return &answer{body: b, length: []string{strconv.Itoa(len(b))}}
}

// header is the floor's answer's header. Every answer shares its value
// slices: net/http only reads them.
var header = http.Header{
	"Access-Control-Allow-Origin":   {"*"},
	"Access-Control-Expose-Headers": {"Retry-After"},
	"Cache-Control":                 {"no-store"},
	"Content-Type":                  {"application/json"},
	"X-Content-Type-Options":        {"nosniff"},
}

// Serve answers any request with the constant token response.
func Serve(w http.ResponseWriter, _ *http.Request) { write(w, constant) }

// write answers with a, and the shared header.
func write(w http.ResponseWriter, a *answer) {
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	h["Content-Length"] = a.length
	w.WriteHeader(http.StatusOK)
	w.Write(a.body)
}
