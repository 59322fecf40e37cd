package tokenvendingmachine

import (
	"net/http"
	"slices"
	"strings"

	"example.com/tokenvendingmachine/internal/config"
)

// The methods the function answers, for Allow headers.
const allowedMethods = "GET, HEAD, OPTIONS"

// preflightMaxAge is how long a browser may cache a preflight: Chromium's
// upper limit.
const preflightMaxAge = "7200"

// allowOrigin sets the CORS headers on hdr for a request from origin (the
// Origin header, "" if none) and reports whether the request may go on:
// false for an origin not in allowed. A nil allowed means any origin. A
// request without an Origin is not a CORS request and goes on without them.
func allowOrigin(hdr http.Header, origin string, allowed []string) bool {
	if allowed == nil {
		hdr["Access-Control-Allow-Origin"] = anyOrigin
		hdr["Access-Control-Expose-Headers"] = exposeRetryAfter // so a page can back off
		return true
	}
	hdr.Add("Vary", "Origin")
	if origin == "" {
		return true
	}
	if canon, ok := config.CanonicalOrigin(origin); ok && slices.Contains(allowed, canon) {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr["Access-Control-Expose-Headers"] = exposeRetryAfter
		return true
	}
	return false
}

// unreadable reports whether a request with headers req came from a
// browser that will not let its page read the answer: a navigation, an
// <img>, a no-cors fetch, anything but a CORS request with an Origin. A
// browser says so in the Sec-Fetch-* headers every current one sends; a
// request without them (curl, a server, an old browser) is not judged.
// With an ALLOWED_ORIGINS list, such a request is refused before it can
// cost a mint: on a popular page elsewhere, every visitor's browser would
// otherwise spend the budget from its own address.
func unreadable(req http.Header) bool {
	mode, site := req.Get("Sec-Fetch-Mode"), req.Get("Sec-Fetch-Site")
	if mode == "" && site == "" {
		return false
	}
	return mode != "cors" || req.Get("Origin") == ""
}

// preflight sets on hdr the answer to a CORS preflight with request
// headers req: the methods, the headers asked for if they are a list of
// names, and how long to cache it. An OPTIONS request that is not a
// preflight only gets Allow.
func preflight(hdr, req http.Header) {
	hdr.Set("Allow", allowedMethods)
	if req.Get("Access-Control-Request-Method") == "" {
		return
	}
	hdr.Set("Access-Control-Allow-Methods", allowedMethods)
	if asked := req.Get("Access-Control-Request-Headers"); asked != "" && validHeaderList(asked) {
		hdr.Set("Access-Control-Allow-Headers", asked)
	}
	hdr.Add("Vary", "Access-Control-Request-Headers")
	hdr.Set("Access-Control-Max-Age", preflightMaxAge)
}

// validHeaderList reports whether s is a comma-separated list of header
// names, short enough to echo.
func validHeaderList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c == '-' || c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}
