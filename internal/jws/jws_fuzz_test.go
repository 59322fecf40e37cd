package jws

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzPrecheck checks Parse against its contract on arbitrary input: it
// never panics; it refuses with exactly ErrMalformed or ErrAlgorithm; what
// it accepts is within every bound, spelled canonically, and has a flat
// header without duplicate or case-variant names that encoding/json reads
// as Parse does. The header argument is the header's JSON, to reach the
// scanner; raw, if not "", is the whole token instead.
//
//	go test ./internal/jws -run '^$' -fuzz FuzzPrecheck -fuzztime 60s
func FuzzPrecheck(f *testing.F) {
	f.Add(`{"alg":"RS256","kid":"k","typ":"JWT"}`, "")
	f.Add(`{"typ":"JWT","alg":"RS256","x5t":"a","kid":"a"}`, "")
	f.Add(`{"alg":"RS256","kid":7}`, "")
	f.Add(`{"alg":"RS256","x":[[[[]]]]}`, "")
	f.Add(`{"alg":"RS256","ALG":"none"}`, "")
	f.Add(`{"alg":"RS256","ſub":1,"sub":2}`, "")
	f.Add(`{"alg":"none"}`, "")
	f.Add("", "..")
	f.Add("", "e30.e30.")
	f.Add("", "eyJhbGciOiJSUzI1NiJ9.e30.AB")
	algs := []string{"RS256", "HS256"}
	f.Fuzz(func(t *testing.T, header, raw string) {
		if raw == "" {
			raw = base64.RawURLEncoding.EncodeToString([]byte(header)) + ".e30." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
		}
		const maxLen = 2048
		tok, err := Parse(raw, maxLen, algs)
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
		// The reference: encoding/json reads the same flat object.
		var m map[string]any
		if err := json.Unmarshal(hb, &m); err != nil {
			t.Fatalf("Parse(%q) accepted header %q that encoding/json refuses: %v", raw, hb, err)
		}
		names := make([]string, 0, len(m))
		for name, v := range m {
			switch v.(type) {
			case map[string]any, []any:
				t.Fatalf("Parse(%q) accepted header %q with a nested member", raw, hb)
			}
			for _, other := range names {
				if bytes.EqualFold([]byte(name), []byte(other)) {
					t.Fatalf("Parse(%q) accepted header %q with members %q and %q", raw, hb, name, other)
				}
			}
			names = append(names, name)
		}
		if _, ok := m["crit"]; ok {
			t.Fatalf("Parse(%q) accepted a crit header", raw)
		}
		if m["alg"] != tok.Header.Alg {
			t.Fatalf("Parse(%q): Alg = %q, encoding/json reads %v", raw, tok.Header.Alg, m["alg"])
		}
		kid, isString := m["kid"].(string)
		_, present := m["kid"]
		if tok.Header.KeyID != kid || tok.Header.BadKeyID != (present && !isString) {
			t.Fatalf("Parse(%q): KeyID %q, BadKeyID %v; encoding/json reads %v", raw, tok.Header.KeyID, tok.Header.BadKeyID, m["kid"])
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
