package scope

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    string // String of the result
		wantErr error
	}{
		{name: "all", list: "*", want: "*"},
		{name: "prefix and name", list: "user-{sub}-*, announcements", want: "user-{sub}-*,announcements"},
		{name: "placeholder first", list: "{sub}-*", want: "{sub}-*"},
		{name: "placeholder mid prefix", list: "user-{sub}.chat/*", want: "user-{sub}.chat/*"},
		{name: "placeholder ends a name", list: "inbox-{sub}", want: "inbox-{sub}"},
		{name: "placeholder is the name", list: "{sub}", want: "{sub}"},
		{name: "no placeholder", list: "news-*", want: "news-*"},

		{name: "none", list: "none", wantErr: ErrKeyword},
		{name: "empty", list: "", wantErr: ErrEmpty},
		{name: "empty entry", list: "a,,b", wantErr: ErrEmpty},
		{name: "star in list", list: "a,*", wantErr: ErrKeyword},
		{name: "placeholder ends a prefix", list: "user-{sub}*", wantErr: ErrPlaceholder},
		{name: "placeholder not followed by delimiter", list: "user-{sub}x-*", wantErr: ErrPlaceholder},
		{name: "placeholder alone as prefix", list: "{sub}*", wantErr: ErrPlaceholder},
		{name: "two placeholders", list: "{sub}-{sub}", wantErr: ErrPlaceholder},
		{name: "undelimited prefix", list: "user-{sub}-x*", wantErr: ErrUndelimited},
		{name: "other braces", list: "user-{id}", wantErr: ErrCharacter},
		{name: "misspelt placeholder", list: "user-{sub", wantErr: ErrCharacter},
		{name: "too long literal", list: strings.Repeat("a", MaxTopicLen) + "{sub}", wantErr: ErrTooLong},
		{name: "too many", list: strings.Repeat("a,", MaxSelectors) + "a", wantErr: ErrTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTemplate(tt.list)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseTemplate(%q) error = %v, want %v", tt.list, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("ParseTemplate(%q) = %q, want %q", tt.list, got, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name     string
		template string
		sub      string
		want     string // String of the scope
		wantErr  error
	}{
		{name: "prefix and name", template: "user-{sub}-*,announcements", sub: "42", want: "announcements,user-42-*"},
		{name: "name may hold the delimiter", template: "inbox-{sub}", sub: "a-b_c", want: "inbox-a-b_c"},
		{name: "only the guard delimiter is refused", template: "user-{sub}-*", sub: "a.b_c:d", want: "user-a.b_c:d-*"},
		{name: "all ignores the subject", template: "*", sub: "", want: "*"},
		{name: "same for two entries", template: "{sub}-*,{sub}-*", sub: "a", want: "a-*"},

		{name: "guard delimiter", template: "user-{sub}-*", sub: "7-1", wantErr: ErrSubject},
		{name: "guard in one entry of two", template: "inbox-{sub},user-{sub}.*", sub: "a.b", wantErr: ErrSubject},
		{name: "empty subject", template: "inbox-{sub}", sub: "", wantErr: ErrSubject},
		{name: "forbidden character", template: "inbox-{sub}", sub: "auth0|42", wantErr: ErrSubject},
		{name: "email", template: "inbox-{sub}", sub: "a@example.com", wantErr: ErrSubject},
		{name: "star in subject", template: "inbox-{sub}", sub: "*", wantErr: ErrSubject},
		{name: "subject too long", template: "inbox-{sub}", sub: strings.Repeat("a", MaxTopicLen+1), wantErr: ErrSubject},
		{name: "expansion too long", template: "inbox-{sub}", sub: strings.Repeat("a", MaxTopicLen), wantErr: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := ParseTemplate(tt.template)
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", tt.template, err)
			}
			got, err := tmpl.Expand(tt.sub)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Expand(%q) error = %v, want %v", tt.sub, err, tt.wantErr)
			}
			if err != nil {
				if tt.sub != "" && strings.Contains(err.Error(), tt.sub) {
					t.Errorf("Expand(%q) error = %q, quotes the subject", tt.sub, err)
				}
				return
			}
			if got.String() != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.sub, got, tt.want)
			}
		})
	}
	if _, err := (Template{}).Expand("a"); !errors.Is(err, ErrEmpty) {
		t.Errorf("Template{}.Expand = %v, want %v", err, ErrEmpty)
	}
}

// TestExpandSeparatesSubjects checks the property Template promises: one
// subject's scope never allows a topic of another subject's, for every
// pair of subjects that Expand accepts, over small alphabets that include
// the delimiters.
func TestExpandSeparatesSubjects(t *testing.T) {
	var subs []string
	alphabet := []string{"a", "-", "."}
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if prefix != "" {
			subs = append(subs, prefix)
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(prefix+c, n-1)
		}
	}
	gen("", 4)
	for _, template := range []string{"user-{sub}-*", "inbox-{sub}", "user-{sub}-*,user-{sub}", "{sub}.x-*,{sub}"} {
		tmpl, err := ParseTemplate(template)
		if err != nil {
			t.Fatal(err)
		}
		scopes := map[string]Scope{}
		for _, s := range subs {
			if sc, err := tmpl.Expand(s); err == nil {
				scopes[s] = sc
			}
		}
		for s1, sc1 := range scopes {
			for s2, sc2 := range scopes {
				if s1 == s2 {
					continue
				}
				for _, sel := range sc2.Selectors() {
					// The narrowest topic the selector allows is its text.
					if sc1.Allows(sel.Topic) {
						t.Errorf("template %q: subject %q is allowed %q, a topic of subject %q", template, s1, sel, s2)
					}
				}
			}
		}
	}
}
