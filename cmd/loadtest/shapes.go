package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"example.com/tokenvendingmachine/internal/credential"
	"example.com/tokenvendingmachine/internal/functest"
	"example.com/tokenvendingmachine/internal/oidctest"
	"example.com/tokenvendingmachine/internal/scope"
	"example.com/tokenvendingmachine/internal/ticket"
)

// Shape is what one shape of request cost a server.
type Shape struct {
	// Name says what the requests were.
	Name string
	// Status is the status each request should get: 200 for a hit, 401
	// for a forged credential.
	Status int
	// Requests is how many were measured in each round, Limited how many
	// of all rounds' were refused with 429 before their signature check
	// (their client had been refused too often: internal/credential), and
	// Unexpected how many got another status.
	Requests, Limited, Unexpected int
	// CPU is the server's CPU time over each round's requests.
	CPU []CPUTime
	// P50 and P99 are the latencies of the last round.
	P50, P99 time.Duration
}

// over returns, for each round, s's CPU per request over other's in the
// same round: the machine's drift from round to round cancels out.
func (s Shape) over(other Shape) []float64 {
	a, b := s.perRequest(), other.perRequest()
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] / max(b[i], 0.001)
	}
	return out
}

// perRequest returns each round's CPU per request, in µs.
func (s Shape) perRequest() []float64 {
	var out []float64
	for _, c := range s.CPU {
		out = append(out, us(c.Per(s.Requests)))
	}
	return out
}

// requestShape is a shape of request: its credential, built when the shape
// is measured, and the status it should get.
type requestShape struct {
	name   string
	bearer func() (string, error) // nil: no Authorization header
	status int
	// fresh sends each measured request from an address of its own: an
	// attacker with as many addresses as requests. Each round refuses each
	// address twice (warm-up and measurement) against a burst of 5 that
	// refills at 1 a second, so it stays within its refusals for the few
	// rounds a run has.
	fresh bool
}

// shapeServer is the environment of the function that -shapes measures:
// tickets signed with ticketKey and ID tokens from issuer accepted, and
// anonymous callers still served (TOPICS is the default).
func shapeServer(ticketKey string, issuer *oidctest.Server) map[string]string {
	return map[string]string{
		"TICKET_KEY":    ticketKey,
		"OIDC_ISSUER":   issuer.Issuer(),
		"OIDC_AUDIENCE": issuer.Audience(),
		"OIDC_TOPICS":   "user-{sub}-*",
	}
}

// requestShapes are the shapes -shapes measures. The forged credentials
// are what anyone can write: a ticket signed with a key of their own, an
// ID token with the claims and published kid of the issuer and a
// signature of nobody's, both stretched to credential.MaxLen with a
// header whose one member nests arrays as deep as fits, and the ID token
// stretched by its claims instead.
func requestShapes(ticketKey string, issuer *oidctest.Server) []requestShape {
	ticketFor := func(secret []byte, topics ...string) func() (string, error) {
		if topics == nil {
			topics = []string{"order-42-*"}
		}
		return func() (string, error) {
			sc, err := scope.New(topics)
			if err != nil {
				return "", err
			}
			// Signed when its shape is measured: exp is at most
			// ticket.DefaultMaxTTL ahead.
			return ticket.Sign(ticket.Key{Secret: secret}, ticket.DefaultAudience,
				ticket.Claims{Subject: "customer-7", Scope: sc, Expires: time.Now().Add(ticket.DefaultMaxTTL - time.Minute)})
		}
	}
	idClaims := func() string {
		now := time.Now()
		b, _ := json.Marshal(map[string]any{
			"iss": issuer.Issuer(), "aud": issuer.Audience(), "sub": "mallory",
			"iat": now.Unix(), "auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		return string(b)
	}
	kid, _ := json.Marshal(issuer.KeyID())
	ticketHeader := `{"alg":"HS256","typ":"JWT"`
	idHeader := `{"alg":"RS256","kid":` + string(kid) + `,"typ":"JWT"`
	const hmacLen, rsaLen = 32, 256 // signature bytes: HS256's, and RS256's with a 2048-bit key
	return []requestShape{
		{name: "hit, anonymous", status: http.StatusOK},
		{name: "hit, ticket", status: http.StatusOK, bearer: ticketFor([]byte(ticketKey))},
		{name: "hit, ID token", status: http.StatusOK, bearer: func() (string, error) { return issuer.IDToken("alice") }},
		// An honest request as long as the 8 KB forgeries: what reading
		// such a header costs whoever sends it.
		{name: "hit, 7 KB ticket (20 long topics)", status: http.StatusOK, bearer: ticketFor([]byte(ticketKey), functest.LongTopics()...)},
		{name: "forged ticket (another key)", status: http.StatusUnauthorized, bearer: ticketFor([]byte(strings.Repeat("k", 32)))},
		{name: "forged ID token (published kid)", status: http.StatusUnauthorized, bearer: func() (string, error) {
			return forge(idHeader+"}", idClaims(), rsaLen), nil
		}},
		{name: "the same, a new address each", status: http.StatusUnauthorized, fresh: true, bearer: func() (string, error) {
			return forge(idHeader+"}", idClaims(), rsaLen), nil
		}},
		{name: "8 KB ticket, nested header member", status: http.StatusUnauthorized, bearer: func() (string, error) {
			tkt, err := ticketFor([]byte(strings.Repeat("k", 32)))()
			if err != nil {
				return "", err
			}
			return nested(ticketHeader, strings.Split(tkt, ".")[1], hmacLen), nil
		}},
		{name: "8 KB ID token, nested header member", status: http.StatusUnauthorized, bearer: func() (string, error) {
			return nested(idHeader, b64(idClaims()), rsaLen), nil
		}},
		// The longest refusal: a token of a JWS's shape, so hashed for
		// the verified callers, then refused by one signature check.
		{name: "8 KB ID token, published kid", status: http.StatusUnauthorized, bearer: func() (string, error) {
			return long(idHeader+"}", idClaims(), rsaLen), nil
		}},
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// forge returns a compact JWS of header and payload, as written, and
// sigLen random bytes for a signature.
func forge(header, payload string, sigLen int) string {
	return b64(header) + "." + b64(payload) + "." + randomSig(sigLen)
}

// nested returns a compact JWS of credential.MaxLen bytes at most: a header
// that opens with open (an unclosed JSON object), then a member "x" whose
// value nests as many arrays as fit, then payload (base64url) and sigLen
// random bytes for a signature.
func nested(open, payload string, sigLen int) string {
	sig := randomSig(sigLen)
	prefix := open + `,"x":`
	room := (credential.MaxLen-len(payload)-len(sig)-2)/4*3 - len(prefix) - 1
	depth := room / 2
	header := prefix + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
	return b64(header) + "." + payload + "." + sig
}

// long returns a compact JWS of credential.MaxLen bytes at most: header
// and payload, the payload's JSON padded with a claim "x" as long as fits,
// and sigLen random bytes for a signature.
func long(header, payload string, sigLen int) string {
	sig := randomSig(sigLen)
	room := (credential.MaxLen-len(b64(header))-len(sig)-2)/4*3 - len(payload) - len(`,"x":""`)
	padded := strings.TrimSuffix(payload, "}") + `,"x":"` + strings.Repeat("x", room) + `"}`
	return b64(header) + "." + b64(padded) + "." + sig
}

// randomSig returns n random bytes for a signature, the first of them zero:
// as a number below every RSA modulus of n bytes, so an RS256 check runs to
// the end instead of refusing it at once as too large (the costliest
// forgery, not a lucky one).
func randomSig(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	b[0] = 0
	return base64.RawURLEncoding.EncodeToString(b)
}

// header returns the request header of rs: its Authorization, if any.
func (rs requestShape) header() (http.Header, error) {
	if rs.bearer == nil {
		return nil, nil
	}
	raw, err := rs.bearer()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rs.name, err)
	}
	return http.Header{"Authorization": {"Bearer " + raw}}, nil
}

// runShapes measures each request shape in turn against one server, and
// with o.compareFloor against the floor too, right after; o.rounds times.
func runShapes(ctx context.Context, o options, stdout io.Writer) (Report, error) {
	rep := Report{Requests: o.requests, IPs: o.ips, Concurrency: o.concurrency, Latency: o.latency}
	emu, err := newEmulator(o.latency)
	if err != nil {
		return rep, err
	}
	defer emu.Close()
	issuer, err := oidctest.NewServer(oidctest.Options{})
	if err != nil {
		return rep, err
	}
	defer issuer.Close()
	key := make([]byte, 32)
	rand.Read(key)
	ticketKey := hex.EncodeToString(key)
	shapes := requestShapes(ticketKey, issuer)

	srv, err := startServer(functionTarget(emu, shapeServer(ticketKey, issuer)), o.cpuprofile)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	var fl *server
	if o.compareFloor {
		if fl, err = startServer(floorTarget(), ""); err != nil {
			return rep, fmt.Errorf("floor: %w", err)
		}
		defer fl.stop()
		rep.FloorShapes = make([]Shape, len(shapes))
	}
	rep.Shapes = make([]Shape, len(shapes))
	for range o.rounds {
		for i, rs := range shapes {
			// Built anew each round: a ticket's exp is at most minutes
			// ahead.
			header, err := rs.header()
			if err != nil {
				return rep, err
			}
			so := o
			if rs.fresh {
				so.ips = o.requests
			}
			if err := srv.measureShape(ctx, so, &rep.Shapes[i], i, rs.name, header, rs.status); err != nil {
				return rep, err
			}
			if fl != nil {
				// The floor refuses nothing.
				if err := fl.measureShape(ctx, so, &rep.FloorShapes[i], i, rs.name, header, http.StatusOK); err != nil {
					return rep, fmt.Errorf("floor: %w", err)
				}
			}
		}
	}
	printShapes(stdout, rep)
	return rep, nil
}

// measureShape sends header from every IP once, to warm s up and cache
// what a hit needs, then measures o.requests more, and adds that round
// to sh. Shape number n has IPs of its own: hits and forgeries come from
// different clients, as an attacker's and its victims' would.
func (s *server) measureShape(ctx context.Context, o options, sh *Shape, n int, name string, header http.Header, status int) error {
	l := loadSpec{requests: min(o.ips, o.requests), ips: o.ips, firstIP: n << 20, concurrency: o.concurrency, header: header, want: status}
	if status == http.StatusUnauthorized {
		l.also = http.StatusTooManyRequests
	}
	load(ctx, s.url, l)
	l.requests = o.requests
	s.startProfile() // the first time counts; the profile ends with the server
	cpu0, err := s.cpu()
	if err != nil {
		return err
	}
	lat, unexpected, limited, _ := load(ctx, s.url, l)
	if err := ctx.Err(); err != nil {
		return err
	}
	cpu1, err := s.cpu()
	if err != nil {
		return err
	}
	sh.Name, sh.Status, sh.Requests = name, status, o.requests
	sh.Unexpected += unexpected
	sh.Limited += limited
	sh.CPU = append(sh.CPU, CPUTime{User: cpu1.User - cpu0.User, System: cpu1.System - cpu0.System})
	sh.P50, sh.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return nil
}

func printShapes(w io.Writer, r Report) {
	rounds := len(r.Shapes[0].CPU)
	fmt.Fprintf(w, "%d requests of each shape over %d IPs, concurrency %d, %d round(s); each shape sent once from every IP first\n", r.Requests, r.IPs, r.Concurrency, rounds)
	fmt.Fprintf(w, "CPU per request of the server process, user+system, in µs: the median of the rounds [their range];\n")
	fmt.Fprintf(w, "× hit: each round's CPU per request over the anonymous hit's in that round, the median [the range]")
	if r.FloorShapes != nil {
		fmt.Fprintf(w, ";\nthe floor is sent the same requests, each right after the function, and answers each with its token (× floor: per round, as × hit)")
	}
	fmt.Fprintf(w, ";\n429s: the share of a forged shape's requests refused before their signature check, their client past its refusals")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-36s %6s %6s %5s %22s %17s", "shape", "status", "429s", "unexp", "function", "× hit")
	if r.FloorShapes != nil {
		fmt.Fprintf(w, " %22s %17s", "floor", "× floor")
	}
	fmt.Fprintf(w, " %9s %9s\n", "p50", "p99")
	hit := r.Shapes[0]
	for i, s := range r.Shapes {
		fmt.Fprintf(w, "%-36s %6d %5.1f%% %5d %22s %17s", s.Name, s.Status, 100*float64(s.Limited)/float64(max(1, s.Requests*len(s.CPU))), s.Unexpected, medianRange(s.perRequest(), "%.1f"), medianRange(s.over(hit), "%.2f"))
		if i < len(r.FloorShapes) {
			f := r.FloorShapes[i]
			fmt.Fprintf(w, " %22s %17s", medianRange(f.perRequest(), "%.1f"), medianRange(s.over(f), "%.2f"))
		}
		fmt.Fprintf(w, " %9s %9s\n", ms(s.P50), ms(s.P99))
	}
}

// medianRange formats one value per round, with format: the median [the
// range], or the value of a single round.
func medianRange(xs []float64, format string) string {
	if len(xs) == 1 {
		return fmt.Sprintf(format, xs[0])
	}
	return fmt.Sprintf(format+" [%s]", median(xs), spread(xs, format))
}
