package scope

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks Parse's invariants on arbitrary lists: a result is in
// canonical form, within the limits, survives a round trip through String,
// and allows exactly what the entries it was parsed from allow.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*", "none", "", "new-order, order-*", "order*", "a,,b", "a-*,a-b,a-b-*",
		"x,x,x", "caf\u00e9", "a*b", " a-* ", "none,a", strings.Repeat("a-,", 21),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		got, err := Parse(list)
		if err != nil {
			if !got.IsEmpty() {
				t.Errorf("Parse(%q) = %v, %v; want the zero Scope with an error", list, got, err)
			}
			if !isKnown(err) {
				t.Errorf("Parse(%q) error = %v, wraps no sentinel error", list, err)
			}
			return
		}
		if got.IsAll() {
			if strings.TrimSpace(list) != "*" {
				t.Errorf("Parse(%q) = All, want All only for \"*\"", list)
			}
			return
		}
		sels := got.Selectors()
		if len(sels) > MaxSelectors {
			t.Errorf("Parse(%q) has %d selectors", list, len(sels))
		}
		for i, s := range sels {
			if _, err := ParseSelector(s.String()); err != nil {
				t.Errorf("Parse(%q) holds invalid selector %q: %v", list, s, err)
			}
			if i > 0 && compare(sels[i-1], s) >= 0 {
				t.Errorf("Parse(%q) selectors %q, %q are out of order", list, sels[i-1], s)
			}
			for j, o := range sels {
				if i != j && o.covers(s) {
					t.Errorf("Parse(%q) keeps %q, covered by %q", list, s, o)
				}
			}
		}
		again, err := Parse(got.String())
		if err != nil || !again.Equal(got) || again.Key() != got.Key() {
			t.Errorf("Parse(%q) = %q, which parses again as %q, %v", list, got, again, err)
		}
		if got.IsEmpty() {
			return // "none"
		}
		// Every entry as written is allowed, and every kept selector was
		// written.
		written := map[string]bool{}
		for _, e := range strings.Split(list, ",") {
			e = strings.TrimSpace(e)
			written[e] = true
			if s, _ := ParseSelector(e); !got.Allows(s.Topic) {
				t.Errorf("Parse(%q) = %q does not allow entry %q", list, got, e)
			}
		}
		for _, s := range sels {
			if !written[s.String()] {
				t.Errorf("Parse(%q) = %q holds %q, which was not written", list, got, s)
			}
		}
	})
}

// isKnown reports whether err wraps one of the package's sentinel errors.
func isKnown(err error) bool {
	for _, e := range []error{ErrEmpty, ErrTooLong, ErrCharacter, ErrUndelimited, ErrTooMany, ErrKeyword} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
