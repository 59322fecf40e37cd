// Package scope is the set of Momento topics a minted token may subscribe
// to: all topics of the cache, or a list of selectors, each an exact topic
// name or a delimited prefix.
//
//	s, err := scope.Parse("new-order, order-*")  // the TOPICS variable
//	s.Selectors()  // [{Topic:new-order} {Topic:order- Prefix:true}]
//	s.Key()        // "V6Q…", 22 characters, the same for every spelling of s
//
// # Topic names
//
// Momento itself asks little of a topic name: its SDKs (Go v1.38.0's
// prepareName, the JavaScript SDK's validateTopicName) reject only an empty
// or blank name, and its documentation gives no character set or length
// limit. This package allows a stricter, safe subset, so that names are the
// same in URLs, logs and cache keys, and so that a delimited prefix means
// what it says:
//
//   - 1 to [MaxTopicLen] (256) bytes;
//   - ASCII letters and digits, and the delimiters '-', '_', '.', ':' and '/'
//     (see [Delimiters]); nothing else (no spaces, no '*', no ',', no
//     non-ASCII).
//
// # Prefixes
//
// A selector ending in '*' is a prefix: "order-*" allows every topic whose
// name starts with "order-". Momento compares a prefix as a raw string, so
// "order-12" would also allow "order-123"; a prefix must therefore end in a
// delimiter, and "order*" or "order-12*" is refused. The prefix without its
// '*' must be a valid topic name in its own right, so "*" alone is not a
// selector (in [Parse] it means all topics).
//
// # Canonical form and keys
//
// A Scope is kept in canonical form: selectors sorted, duplicates removed,
// and selectors covered by a prefix in the same scope dropped ("order-*"
// covers "order-42" and "order-42-*"). Two lists that allow the same topics
// through the same prefixes have the same canonical form, String and Key.
//
// # Limits
//
// A list holds at most [MaxSelectors] (20) selectors, counted as written,
// before duplicates are removed, so the limit bounds the input. Every
// selector becomes one permission of the minted token.
package scope

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxTopicLen is the longest topic name or prefix (without its '*'), in
// bytes. Momento documents no limit; this one keeps a ticket with
// MaxSelectors selectors under a few kilobytes.
const MaxTopicLen = 256

// MaxSelectors is the most selectors a list may hold.
const MaxSelectors = 20

// Delimiters are the characters a prefix may end in. They are also the only
// characters besides ASCII letters and digits that a topic name may hold.
const Delimiters = "-_.:/"

// Errors returned, wrapped, by this package. Each says what is wrong with a
// selector; the wrapping says which one.
var (
	// ErrEmpty means a selector, or the whole list, is empty.
	ErrEmpty = errors.New("empty topic selector")
	// ErrTooLong means a topic name or prefix is longer than MaxTopicLen.
	ErrTooLong = errors.New("topic selector longer than 256 bytes")
	// ErrCharacter means a selector holds a character other than an ASCII
	// letter, digit or delimiter (or a '*' anywhere but at its end).
	ErrCharacter = errors.New("forbidden character in topic selector")
	// ErrUndelimited means a prefix does not end in a delimiter.
	ErrUndelimited = errors.New("topic prefix does not end in a delimiter (- _ . : /)")
	// ErrTooMany means a list holds more than MaxSelectors selectors.
	ErrTooMany = errors.New("more than 20 topic selectors")
	// ErrKeyword means "*" or "none" appears in a list of selectors, where
	// it would be ambiguous; they are only allowed alone.
	ErrKeyword = errors.New(`"*" and "none" are only allowed alone`)
)

// Selector is an exact topic name, or a prefix of topic names.
type Selector struct {
	// Topic is the topic's name, or the prefix without its '*'.
	Topic string
	// Prefix reports that Topic is a prefix: the selector allows every topic
	// whose name starts with Topic.
	Prefix bool
}

// String returns the selector as written: the name, or the prefix followed
// by '*'.
func (s Selector) String() string {
	if s.Prefix {
		return s.Topic + "*"
	}
	return s.Topic
}

// Allows reports whether the selector allows the topic named topic.
func (s Selector) Allows(topic string) bool {
	if s.Prefix {
		return strings.HasPrefix(topic, s.Topic)
	}
	return topic == s.Topic
}

// covers reports whether every topic t allows is allowed by s.
func (s Selector) covers(t Selector) bool {
	if !s.Prefix {
		return s == t
	}
	return strings.HasPrefix(t.Topic, s.Topic)
}

// compare orders selectors by topic, a prefix before the exact name with
// the same text, so that a prefix sorts before every selector it covers.
func compare(a, b Selector) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	switch {
	case a.Prefix == b.Prefix:
		return 0
	case a.Prefix:
		return -1
	}
	return 1
}

// ParseSelector parses one selector: a topic name, or a delimited prefix
// followed by '*'. Its errors wrap ErrEmpty, ErrTooLong, ErrCharacter or
// ErrUndelimited and do not quote sel.
func ParseSelector(sel string) (Selector, error) {
	s := Selector{Topic: sel}
	if t, ok := strings.CutSuffix(sel, "*"); ok {
		s = Selector{Topic: t, Prefix: true}
	}
	if err := ValidTopic(s.Topic); err != nil {
		return Selector{}, err
	}
	if s.Prefix && !isDelimiter(s.Topic[len(s.Topic)-1]) {
		return Selector{}, ErrUndelimited
	}
	return s, nil
}

// ValidTopic reports whether name is a valid topic name, as the package
// comment defines it. Its error is ErrEmpty, ErrTooLong or ErrCharacter.
func ValidTopic(name string) error {
	switch {
	case name == "":
		return ErrEmpty
	case len(name) > MaxTopicLen:
		return ErrTooLong
	}
	for i := 0; i < len(name); i++ {
		if !isTopicByte(name[i]) {
			return ErrCharacter
		}
	}
	return nil
}

// isTopicByte reports whether c may appear in a topic name.
func isTopicByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || isDelimiter(c)
}

// isDelimiter reports whether c is one of Delimiters.
func isDelimiter(c byte) bool {
	return c == '-' || c == '_' || c == '.' || c == ':' || c == '/'
}

// Scope is a set of topics: all topics, none, or those some selectors allow.
// The zero value allows no topic. A Scope is immutable; copies share its
// storage safely.
type Scope struct {
	// all reports that every topic is allowed; sels is then nil.
	all bool
	// sels is in canonical form: sorted by compare, without duplicates or
	// selectors covered by another.
	sels []Selector
}

// All returns the scope that allows every topic.
func All() Scope { return Scope{all: true} }

// Parse parses the TOPICS variable: "*" for all topics, "none" for no topic
// (the zero Scope), or a comma-separated list of 1 to MaxSelectors
// selectors, each trimmed of surrounding spaces. An empty list, an empty
// entry ("a,,b") and "*" or "none" inside a list are errors. Its errors
// quote the offending entry, so use it for configuration, not for text a
// caller sent; for that use [New].
func Parse(list string) (Scope, error) {
	switch strings.TrimSpace(list) {
	case "*":
		return All(), nil
	case "none":
		return Scope{}, nil
	case "":
		return Scope{}, fmt.Errorf("topic list: %w", ErrEmpty)
	}
	entries := strings.Split(list, ",")
	if len(entries) > MaxSelectors {
		return Scope{}, fmt.Errorf("topic list has %d entries: %w", len(entries), ErrTooMany)
	}
	sels := make([]Selector, 0, len(entries))
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "*" || e == "none" {
			return Scope{}, fmt.Errorf("topic list entry %d %q: %w", i+1, e, ErrKeyword)
		}
		s, err := ParseSelector(e)
		if err != nil {
			return Scope{}, fmt.Errorf("topic list entry %d %q: %w", i+1, e, err)
		}
		sels = append(sels, s)
	}
	return fromSelectors(sels), nil
}

// New returns the scope of 1 to MaxSelectors selectors, each parsed with
// ParseSelector and taken as is (not trimmed). It is the parser for a
// caller's list, as in a ticket's topics claim: its errors name an entry by
// its index and never quote it.
func New(selectors []string) (Scope, error) {
	switch {
	case len(selectors) == 0:
		return Scope{}, fmt.Errorf("topic list: %w", ErrEmpty)
	case len(selectors) > MaxSelectors:
		return Scope{}, fmt.Errorf("topic list has %d entries: %w", len(selectors), ErrTooMany)
	}
	sels := make([]Selector, 0, len(selectors))
	for i, e := range selectors {
		s, err := ParseSelector(e)
		if err != nil {
			return Scope{}, fmt.Errorf("topics[%d]: %w", i, err)
		}
		sels = append(sels, s)
	}
	return fromSelectors(sels), nil
}

// fromSelectors returns the scope of valid selectors sels, which it may
// reorder, in canonical form.
func fromSelectors(sels []Selector) Scope {
	slices.SortFunc(sels, compare)
	sels = slices.Compact(sels)
	// After sorting, a prefix sorts before everything it covers; keep a
	// selector only if no kept prefix covers it. The kept prefixes that can
	// cover later selectors are a chain of nested prefixes; checking them
	// all keeps this simple, and n is at most MaxSelectors.
	out := sels[:0]
	for _, s := range sels {
		if !slices.ContainsFunc(out, func(k Selector) bool { return k.covers(s) }) {
			out = append(out, s)
		}
	}
	return Scope{sels: slices.Clip(out)}
}

// Bytes returns the bytes of s's topic names and prefixes, for estimates of
// what keeping s costs.
func (s Scope) Bytes() int {
	n := 0
	for _, sel := range s.sels {
		n += len(sel.Topic)
	}
	return n
}

// IsAll reports whether s allows every topic.
func (s Scope) IsAll() bool { return s.all }

// IsEmpty reports whether s allows no topic, as the zero Scope and
// Parse("none") do.
func (s Scope) IsEmpty() bool { return !s.all && len(s.sels) == 0 }

// Len returns the number of selectors in canonical form: 0 for All and for
// an empty scope.
func (s Scope) Len() int { return len(s.sels) }

// Selectors returns a copy of the selectors in canonical order, or nil for
// All and for an empty scope.
func (s Scope) Selectors() []Selector { return slices.Clone(s.sels) }

// Allows reports whether s allows subscribing to the topic named topic.
func (s Scope) Allows(topic string) bool {
	if s.all {
		return true
	}
	return slices.ContainsFunc(s.sels, func(sel Selector) bool { return sel.Allows(topic) })
}

// Equal reports whether s and t are the same set of selectors.
func (s Scope) Equal(t Scope) bool {
	return s.all == t.all && slices.Equal(s.sels, t.sels)
}

// String returns the canonical form: "*" for All, "none" for an empty
// scope, or the selectors joined by commas without spaces. Parse(s.String())
// returns s.
func (s Scope) String() string {
	switch {
	case s.all:
		return "*"
	case len(s.sels) == 0:
		return "none"
	}
	var b strings.Builder
	for i, sel := range s.sels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sel.String())
	}
	return b.String()
}

// Key returns a short string derived from the canonical form: 22 characters
// of unpadded base64url, the first 128 bits of the SHA-256 of s.String().
// Equal scopes have equal keys; different scopes have different keys except
// with negligible probability. It is meant as part of a cache key. It is
// not secret and not keyed: the scope is not a secret.
func (s Scope) Key() string {
	sum := sha256.Sum256([]byte(s.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
