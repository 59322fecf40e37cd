package scope

import (
	"errors"
	"fmt"
	"strings"
)

// Placeholder is the text in a Template that Expand replaces with the
// subject.
const Placeholder = "{sub}"

// Errors returned, wrapped, by ParseTemplate and Expand.
var (
	// ErrPlaceholder means a template entry holds the placeholder more than
	// once, or a prefix entry does not follow it with a delimiter.
	ErrPlaceholder = errors.New(`"{sub}" must appear at most once per entry, and in a prefix be followed by a delimiter`)
	// ErrSubject means a subject cannot be put in a template: it is not a
	// valid topic name, or it holds a delimiter that follows the
	// placeholder in a prefix entry.
	ErrSubject = errors.New("subject is not a valid topic fragment for the template")
)

// Template is a list of selectors in which Placeholder stands for a
// subject, as in the OIDC_TOPICS variable: "user-{sub}-*,announcements"
// expands, for the subject "42", to the scope "announcements,user-42-*".
// The zero value is invalid; make one with ParseTemplate.
//
// The placeholder may sit anywhere in an exact name ("inbox-{sub}"): the
// name stays valid as long as the subject is a valid topic fragment, and
// different subjects give different names. In a prefix it must be followed
// by a delimiter ("user-{sub}-*", "user-{sub}-chat-*"), never end the
// prefix ("user-{sub}*"), and Expand refuses a subject that holds that
// delimiter. Otherwise one subject's prefix could cover another's topics:
// with "user-{sub}-*", the subject "7" gets "user-7-*", which would cover the
// topics of a subject "7-1" ("user-7-1-…").
//
// The guarantee holds entry by entry. Entries whose literal text overlaps
// (say "room-{sub}-*" and "room-lobby-{sub}") can still give one subject
// another's topic; keep each entry's literal text in its own namespace.
type Template struct {
	// all reports that the template is "*": every subject gets every topic.
	all bool
	// entries are the template's entries, in the order written.
	entries []entry
}

// entry is one selector of a Template.
type entry struct {
	// before and after are the text around the placeholder, or the whole
	// selector (without '*') in before when hasSub is false.
	before, after string
	hasSub        bool
	prefix        bool
}

// ParseTemplate parses a template: "*" (every subject gets all topics), or
// a comma-separated list of 1 to MaxSelectors entries, each trimmed of
// surrounding spaces, and each a selector in which Placeholder may appear
// once, as Template's comment says. "none", an empty list or entry, and "*"
// or "none" inside a list are errors. Errors quote the offending entry;
// templates are configuration.
func ParseTemplate(list string) (Template, error) {
	switch strings.TrimSpace(list) {
	case "*":
		return Template{all: true}, nil
	case "none":
		return Template{}, fmt.Errorf("topic template %q grants nothing: %w", "none", ErrKeyword)
	case "":
		return Template{}, fmt.Errorf("topic template: %w", ErrEmpty)
	}
	raw := strings.Split(list, ",")
	if len(raw) > MaxSelectors {
		return Template{}, fmt.Errorf("topic template has %d entries: %w", len(raw), ErrTooMany)
	}
	t := Template{entries: make([]entry, 0, len(raw))}
	for i, r := range raw {
		r = strings.TrimSpace(r)
		e, err := parseEntry(r)
		if err != nil {
			return Template{}, fmt.Errorf("topic template entry %d %q: %w", i+1, r, err)
		}
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// parseEntry parses one template entry.
func parseEntry(r string) (entry, error) {
	if r == "*" || r == "none" {
		return entry{}, ErrKeyword
	}
	switch strings.Count(r, Placeholder) {
	case 0:
		s, err := ParseSelector(r)
		if err != nil {
			return entry{}, err
		}
		return entry{before: s.Topic, prefix: s.Prefix}, nil
	case 1:
	default:
		return entry{}, ErrPlaceholder
	}
	body, prefix := strings.CutSuffix(r, "*")
	before, after, _ := strings.Cut(body, Placeholder)
	e := entry{before: before, after: after, hasSub: true, prefix: prefix}
	if prefix && (after == "" || !isDelimiter(after[0])) {
		return entry{}, ErrPlaceholder
	}
	// With a one-letter subject the entry must be a valid selector; longer
	// subjects are checked for length by Expand.
	if _, err := ParseSelector(e.expand("x")); err != nil {
		return entry{}, err
	}
	return e, nil
}

// expand returns the entry as written, with sub in place of the
// placeholder.
func (e entry) expand(sub string) string {
	s := e.before
	if e.hasSub {
		s += sub + e.after
	}
	if e.prefix {
		s += "*"
	}
	return s
}

// guard returns the delimiter that sub must not hold for e, or 0.
func (e entry) guard() byte {
	if e.hasSub && e.prefix {
		return e.after[0]
	}
	return 0
}

// Expand returns the scope of t for the subject sub. The subject must be a
// valid topic name (see the package comment) and must not hold a delimiter
// that follows the placeholder in a prefix entry. Expand's errors wrap
// ErrSubject or ErrTooLong and never quote sub. A template "*" returns All
// for any subject.
func (t Template) Expand(sub string) (Scope, error) {
	if t.all {
		return All(), nil
	}
	if len(t.entries) == 0 {
		return Scope{}, fmt.Errorf("topic template: %w", ErrEmpty)
	}
	if err := ValidTopic(sub); err != nil {
		return Scope{}, fmt.Errorf("%w: %w", ErrSubject, err)
	}
	sels := make([]Selector, 0, len(t.entries))
	for i, e := range t.entries {
		if g := e.guard(); g != 0 && strings.IndexByte(sub, g) >= 0 {
			return Scope{}, fmt.Errorf("%w: holds %q, which follows the placeholder in entry %d", ErrSubject, g, i+1)
		}
		s, err := ParseSelector(e.expand(sub))
		if err != nil {
			return Scope{}, fmt.Errorf("topic template entry %d: %w", i+1, err)
		}
		sels = append(sels, s)
	}
	return fromSelectors(sels), nil
}

// String returns the template as ParseTemplate reads it, entries in the
// order written, joined by commas without spaces.
func (t Template) String() string {
	if t.all {
		return "*"
	}
	parts := make([]string, len(t.entries))
	for i, e := range t.entries {
		parts[i] = e.expand(Placeholder)
	}
	return strings.Join(parts, ",")
}

// IsZero reports whether t is the zero Template: no entries, not "*". It
// expands to an empty scope.
func (t Template) IsZero() bool { return !t.all && len(t.entries) == 0 }

// Len returns the number of entries, each a permission of a minted token; 0
// for "*".
func (t Template) Len() int { return len(t.entries) }

// Equal reports whether t and u are the same template, as written.
func (t Template) Equal(u Template) bool { return t.all == u.all && t.String() == u.String() }
