package tokenvendingmachine

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"example.com/tokenvendingmachine/internal/vending"
)

// response is the body of a successful request.
type response struct {
	Token string `json:"token"`
	// Exp is when the token expires, in unix seconds.
	Exp int64 `json:"exp"`
	// ExpiresIn is the seconds left when this response was made, for a
	// browser whose clock is wrong.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshIn is the seconds, to the millisecond, after which the page
	// should fetch its next token (see refreshIn). Pages that predate it
	// ignore it; the browser helper falls back to expires_in without it.
	RefreshIn float64 `json:"refresh_in"`
}

// writeToken answers with tok, as of now; margin is the least life a
// served token has left.
func writeToken(w http.ResponseWriter, tok vending.Token, now time.Time, margin time.Duration) {
	w.Header()["Cache-Control"] = noStore
	bp := bodies.Get().(*[]byte)
	b := appendResponse((*bp)[:0], response{
		Token:     tok.Value,
		Exp:       tok.Expires.Unix(),
		ExpiresIn: max(0, tok.Expires.Unix()-now.Unix()),
		RefreshIn: float64(refreshIn(tok, now, margin).Milliseconds()) / 1000,
	})
	writeBody(w, http.StatusOK, b)
	*bp = b[:0] // w kept none of it
	bodies.Put(bp)
}

// bodies are buffers for token responses.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendResponse appends r's JSON and a newline, as json.Marshal writes
// it: by hand when the token holds nothing JSON escapes (a Momento token
// is base64), which costs a tenth of json.Marshal's reflection.
func appendResponse(b []byte, r response) []byte {
	if !jsonVerbatim(r.Token) {
		j, err := json.Marshal(r)
		if err != nil {
			panic(err) // only strings and numbers: it always marshals
		}
		return append(append(b, j...), '\n')
	}
	b = append(b, `{"token":"`...)
	b = append(b, r.Token...)
	b = append(b, `","exp":`...)
	b = strconv.AppendInt(b, r.Exp, 10)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, r.ExpiresIn, 10)
	b = append(b, `,"refresh_in":`...)
	b = strconv.AppendFloat(b, r.RefreshIn, 'f', -1, 64)
	return append(b, "}\n"...)
}

// jsonVerbatim reports whether json.Marshal writes s, in quotes, as it is:
// printable ASCII but for '"', '\\' and the characters it escapes for
// HTML ('<', '>', '&').
func jsonVerbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		if jsonEscapes[s[i]] {
			return false
		}
	}
	return true
}

// jsonEscapes are the bytes json.Marshal does not write as they are: a
// table, twice as fast as comparisons on a token of kilobytes.
var jsonEscapes = func() (t [256]bool) {
	for c := range len(t) {
		t[c] = c < ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
	}
	return t
}()

// Header values every response shares, set as hdr[key] = value: what
// Header.Set does, but for the canonicalization and a new slice each time.
// net/http only reads them (it copies the header when it writes it), and
// nothing here changes a value in place.
var (
	nosniff          = []string{"nosniff"}
	anyOrigin        = []string{"*"}
	exposeRetryAfter = []string{"Retry-After"}
	noStore          = []string{"no-store"}
	jsonContent      = []string{"application/json"}
)

// refreshIn returns how long after now a page holding tok should fetch the
// next token: at a point in the first half of tok's last margin of life.
// From that margin on the function no longer serves tok, so the fetch gets
// a newer token, and the second half is left for retries. Where in the
// first half follows from a hash of the token (its Spread, computed once),
// so the point is the same in every answer that carries tok: callers whose
// tokens were minted together (after a deploy, say) refresh spread over
// half the margin, while the pages of one caller, which share a token, ask
// together and cost one mint. The function chooses, not the page, so that a
// new margin or spread reaches pages already open without a change to them.
func refreshIn(tok vending.Token, now time.Time, margin time.Duration) time.Duration {
	at := tok.Expires.Add(-margin + time.Duration(tok.Spread*float64(margin/2)))
	return min(max(at.Sub(now), 0), tok.Expires.Sub(now))
}

// writeBody answers with code and body, JSON.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContent
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}
