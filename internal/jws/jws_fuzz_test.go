package jws

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzPrecheck checks Parse against its contract on arbitrary input: it
// never panics; it refuses with exactly ErrMalformed or ErrAlgorithm; what
// it accepts is within every bound, spelled canonically and Shaped; and its header
// scanner agrees with a reference built on encoding/json's streaming
// Decoder, both ways. The header argument is the header's JSON, to reach
// the scanner; raw, if not "", is the whole token instead.
//
//	go test ./internal/jws -run '^$' -fuzz FuzzPrecheck -fuzztime 60s
func FuzzPrecheck(f *testing.F) {
	f.Add(`{"alg":"RS256","kid":"k","typ":"JWT"}`, "")
	f.Add(`{"typ":"JWT","alg":"RS256","x5t":"a","kid":"a"}`, "")
	f.Add(`{"alg":"RS256","kid":7}`, "")
	f.Add(`{"alg":"RS256","x":[[[[]]]]}`, "")
	f.Add(`{"alg":"RS256","ALG":"none"}`, "")
	f.Add(`{"alg":"RS256","ſub":1,"sub":2}`, "")
	f.Add(`{"alg":"\u0052S256","kid":"\ud800"}`, "")
	f.Add(`{"alg":"none"}`, "")
	f.Add("", "..")
	f.Add("", "e30.e30.")
	f.Add("", "eyJhbGciOiJSUzI1NiJ9.e30.AB")
	algs := []string{"RS256", "HS256"}
	f.Fuzz(func(t *testing.T, header, raw string) {
		const maxLen = 2048
		fromHeader := raw == ""
		if fromHeader {
			raw = base64.RawURLEncoding.EncodeToString([]byte(header)) + ".e30." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
		}
		tok, err := Parse(raw, maxLen, algs)
		if err == nil && !Shaped(raw, maxLen) {
			t.Fatalf("Parse(%q) accepted a token Shaped refuses", raw)
		}
		if fromHeader && len(raw) <= maxLen && len(raw) < MaxHeaderLen {
			want, werr := referenceHeader([]byte(header))
			if werr == nil && !slices.Contains(algs, want.Alg) {
				werr = ErrAlgorithm
			}
			if werr != nil {
				want = Header{} // a refusal returns no token
			}
			if err != werr || tok.Header != want {
				t.Fatalf("Parse(header %q) = %+v, %v; the reference reads %+v, %v", header, tok.Header, err, want, werr)
			}
		}
		if err != nil {
			if err != ErrMalformed && err != ErrAlgorithm {
				t.Fatalf("Parse(%q) error = %v, want ErrMalformed or ErrAlgorithm", raw, err)
			}
			return
		}
		segs := strings.Split(raw, ".")
		switch {
		case len(raw) > maxLen, len(segs) != 3, segs[0] == "", segs[1] == "":
			t.Fatalf("Parse(%q) accepted a token of %d bytes, %d segments", raw, len(raw), len(segs))
		case len(segs[0]) > MaxHeaderLen || len(segs[2]) > MaxSignatureLen:
			t.Fatalf("Parse(%q) accepted segments of %d and %d characters", raw, len(segs[0]), len(segs[2]))
		case !slices.Contains(algs, tok.Header.Alg):
			t.Fatalf("Parse(%q) accepted alg %q", raw, tok.Header.Alg)
		case tok.SigningInput() != segs[0]+"."+segs[1] || tok.Raw() != raw:
			t.Fatalf("Parse(%q): SigningInput() = %q", raw, tok.SigningInput())
		case base64.RawURLEncoding.EncodeToString(tok.Signature()) != segs[2]:
			t.Fatalf("Parse(%q) accepted a non-canonical signature", raw)
		}
		hb, err := base64.RawURLEncoding.DecodeString(segs[0])
		if err != nil || base64.RawURLEncoding.EncodeToString(hb) != segs[0] {
			t.Fatalf("Parse(%q) accepted a non-canonical header", raw)
		}
		if want, err := referenceHeader(hb); err != nil || want != tok.Header {
			t.Fatalf("Parse(%q).Header = %+v; the reference reads %+v, %v", raw, tok.Header, want, err)
		}
		// Nor may a decoder that folds case read another alg.
		var folded struct {
			Alg any `json:"alg"`
		}
		if err := json.Unmarshal(hb, &folded); err != nil || folded.Alg != tok.Header.Alg {
			t.Fatalf("Parse(%q): Alg = %q, a case-folding decoder reads %v", raw, tok.Header.Alg, folded.Alg)
		}
		if _, err := tok.Payload(); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Payload() = %v", err)
		}
	})
}

// FuzzDecodeClaims checks DecodeClaims against a reference built on
// encoding/json's streaming Decoder: it accepts exactly the objects whose
// names are distinct regardless of case (less those with a registered
// claim of the wrong type), and holds every member by its exact name.
func FuzzDecodeClaims(f *testing.F) {
	f.Add(`{"iss":"i","sub":"s","aud":["a"],"exp":1.5,"topics":["x"],"n":{"a":[1,"]"]}}`)
	f.Add(`{"sub":"a","SUB":"b"}`)
	f.Add(`{"s\u0075b":"a","sub":"b"}`)
	f.Add(`{"nbf":"0"}`)
	f.Add(` { } `)
	f.Fuzz(func(t *testing.T, payload string) {
		c, err := DecodeClaims([]byte(payload))
		names, rerr := referenceMembers([]byte(payload), false)
		if err != nil && err != ErrMalformed {
			t.Fatalf("DecodeClaims(%q) error = %v, want ErrMalformed", payload, err)
		}
		switch {
		case rerr != nil && err == nil:
			t.Fatalf("DecodeClaims(%q) accepted what the reference refuses: %v", payload, rerr)
		case rerr == nil && err != nil:
			if !slices.ContainsFunc(names, func(n string) bool {
				return slices.Contains([]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}, n)
			}) {
				t.Fatalf("DecodeClaims(%q) = %v; the reference accepts it and it has no registered claim", payload, err)
			}
		case err == nil:
			for _, n := range names {
				if !c.Has(n) {
					t.Fatalf("DecodeClaims(%q) lacks member %q", payload, n)
				}
			}
			if len(c.members) != len(names) {
				t.Fatalf("DecodeClaims(%q) has %d members, the reference %d", payload, len(c.members), len(names))
			}
		}
	})
}

// referenceMembers returns the names of the members of b, one JSON object
// with names distinct regardless of case (and, if flat, scalar values), as
// encoding/json's streaming Decoder reads them.
func referenceMembers(b []byte, flat bool) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, ErrMalformed
	}
	var names []string
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return nil, ErrMalformed
		}
		for _, other := range names {
			if bytes.EqualFold([]byte(name), []byte(other)) {
				return nil, ErrMalformed
			}
		}
		names = append(names, name)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, ErrMalformed
		}
		if flat && (v[0] == '{' || v[0] == '[') {
			return nil, ErrMalformed
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, ErrMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrMalformed
	}
	return names, nil
}

// referenceHeader reads a header as Parse should, with encoding/json.
func referenceHeader(b []byte) (Header, error) {
	if _, err := referenceMembers(b, true); err != nil {
		return Header{}, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return Header{}, ErrMalformed
	}
	if _, ok := m["crit"]; ok {
		return Header{}, ErrMalformed
	}
	var h Header
	h.Alg, _ = m["alg"].(string)
	kid, present := m["kid"]
	h.KeyID, _ = kid.(string)
	_, isString := kid.(string)
	h.BadKeyID = present && !isString
	return h, nil
}
