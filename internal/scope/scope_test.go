package scope

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	long := strings.Repeat("a", MaxTopicLen)
	many := strings.TrimSuffix(strings.Repeat("t-,", MaxSelectors), ",")
	tests := []struct {
		name    string
		list    string
		want    string // canonical String of the result
		wantAll bool
		wantErr error
	}{
		{name: "all", list: "*", want: "*", wantAll: true},
		{name: "all with spaces", list: " * ", want: "*", wantAll: true},
		{name: "none", list: "none", want: "none"},
		{name: "one name", list: "new-order", want: "new-order"},
		{name: "name and prefix sorted", list: "order-*, new-order", want: "new-order,order-*"},
		{name: "every delimiter", list: "a-*,b_*,c.*,d:*,e/*", want: "a-*,b_*,c.*,d:*,e/*"},
		{name: "duplicates removed", list: "x,x,y-*,y-*", want: "x,y-*"},
		{name: "covered name dropped", list: "order-42,order-*", want: "order-*"},
		{name: "covered prefix dropped", list: "order-42-*,order-*", want: "order-*"},
		{name: "prefix covers equal name", list: "order-,order-*", want: "order-*"},
		{name: "uncovered sibling kept", list: "order-*,orders", want: "order-*,orders"},
		{name: "nested chain", list: "a-b-c-*,a-*,a-b-*,a-b-c-d", want: "a-*"},
		{name: "max length", list: long, want: long},
		{name: "max length prefix", list: long[1:] + "-*", want: long[1:] + "-*"},
		{name: "twenty entries", list: many, want: "t-"},
		{name: "mixed case and digits", list: "Order-7:Status", want: "Order-7:Status"},

		{name: "empty", list: "", wantErr: ErrEmpty},
		{name: "blank", list: "  ", wantErr: ErrEmpty},
		{name: "empty entry", list: "a,,b", wantErr: ErrEmpty},
		{name: "trailing comma", list: "a,", wantErr: ErrEmpty},
		{name: "undelimited prefix", list: "order*", wantErr: ErrUndelimited},
		{name: "undelimited id prefix", list: "order-12*", wantErr: ErrUndelimited},
		{name: "bare star in list", list: "a,*", wantErr: ErrKeyword},
		{name: "none in list", list: "none,a", wantErr: ErrKeyword},
		{name: "star inside", list: "a*b", wantErr: ErrCharacter},
		{name: "double star", list: "a-**", wantErr: ErrCharacter},
		{name: "space inside", list: "new order", wantErr: ErrCharacter},
		{name: "non-ASCII", list: "caf\u00e9", wantErr: ErrCharacter},
		{name: "invalid UTF-8", list: "a\xff", wantErr: ErrCharacter},
		{name: "at sign", list: "user@example", wantErr: ErrCharacter},
		{name: "placeholder", list: "user-{sub}", wantErr: ErrCharacter},
		{name: "control character", list: "a\x00", wantErr: ErrCharacter},
		{name: "too long", list: long + "a", wantErr: ErrTooLong},
		{name: "too long prefix", list: long + "-*", wantErr: ErrTooLong},
		{name: "twenty-one entries", list: many + ",u", wantErr: ErrTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.list)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.list, err, tt.wantErr)
			}
			if err != nil {
				if !got.IsEmpty() {
					t.Errorf("Parse(%q) = %v with an error, want the zero Scope", tt.list, got)
				}
				return
			}
			if got.String() != tt.want || got.IsAll() != tt.wantAll {
				t.Errorf("Parse(%q) = %q (all %v), want %q (all %v)", tt.list, got, got.IsAll(), tt.want, tt.wantAll)
			}
		})
	}
}

func TestNew(t *testing.T) {
	twenty := make([]string, MaxSelectors)
	for i := range twenty {
		twenty[i] = "dup"
	}
	tests := []struct {
		name    string
		list    []string
		want    string
		wantErr error
	}{
		{name: "one", list: []string{"order-42-*"}, want: "order-42-*"},
		{name: "canonical", list: []string{"b", "a", "b"}, want: "a,b"},
		{name: "twenty duplicates", list: twenty, want: "dup"},
		{name: "none is a topic name here", list: []string{"none"}, want: "none"},

		{name: "nil", list: nil, wantErr: ErrEmpty},
		{name: "empty entry", list: []string{""}, wantErr: ErrEmpty},
		{name: "all is not a selector", list: []string{"*"}, wantErr: ErrEmpty},
		{name: "not trimmed", list: []string{" a"}, wantErr: ErrCharacter},
		{name: "comma", list: []string{"a,b"}, wantErr: ErrCharacter},
		{name: "undelimited", list: []string{"order-42*"}, wantErr: ErrUndelimited},
		{name: "twenty-one duplicates", list: append(twenty, "dup"), wantErr: ErrTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.list)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New(%q) error = %v, want %v", tt.list, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("New(%q) = %q, want %q", tt.list, got, tt.want)
			}
		})
	}
}

// TestNewErrorsDoNotQuote checks that New's errors, which may reach a log
// line about a caller's ticket, hold none of the caller's text.
func TestNewErrorsDoNotQuote(t *testing.T) {
	for _, bad := range []string{"secret-customer-name*", "secret customer", strings.Repeat("secret", 60)} {
		_, err := New([]string{"fine", bad})
		if err == nil {
			t.Fatalf("New(%q) = nil error, want one", bad)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q) error = %q, quotes the input", bad, err)
		}
	}
}

func TestSelectors(t *testing.T) {
	s, err := Parse("order-*,new-order")
	if err != nil {
		t.Fatal(err)
	}
	want := []Selector{{Topic: "new-order"}, {Topic: "order-", Prefix: true}}
	got := s.Selectors()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Selectors() (-want +got):\n%s", diff)
	}
	got[0].Topic = "changed"
	if s.Selectors()[0].Topic != "new-order" {
		t.Error("changing the result of Selectors changed the Scope")
	}
	if All().Selectors() != nil || (Scope{}).Selectors() != nil {
		t.Error("Selectors() of All or the zero Scope is not nil")
	}
}

func TestAllows(t *testing.T) {
	s, err := Parse("new-order,order-12-*")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic string
		want  bool
	}{
		{"new-order", true},
		{"new-orders", false},
		{"new-orde", false},
		{"order-12-status-updated", true},
		{"order-12-", true},
		{"order-123-status-updated", false},
		{"order-12", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := s.Allows(tt.topic); got != tt.want {
			t.Errorf("%v.Allows(%q) = %v, want %v", s, tt.topic, got, tt.want)
		}
	}
	if !All().Allows("anything") {
		t.Error("All().Allows(anything) = false")
	}
	if (Scope{}).Allows("anything") {
		t.Error("Scope{}.Allows(anything) = true")
	}
}

func TestKey(t *testing.T) {
	mustParse := func(list string) Scope {
		t.Helper()
		s, err := Parse(list)
		if err != nil {
			t.Fatalf("Parse(%q): %v", list, err)
		}
		return s
	}
	a := mustParse("order-*, new-order")
	b := mustParse("new-order,order-*,order-7")
	c := mustParse("new-order")
	if a.Key() != b.Key() {
		t.Errorf("Key differs for equal scopes %v and %v", a, b)
	}
	if !a.Equal(b) {
		t.Errorf("%v.Equal(%v) = false", a, b)
	}
	keys := map[string]string{}
	for _, s := range []Scope{a, c, All(), {}, mustParse("new-order-")} {
		k := s.Key()
		if len(k) != 22 {
			t.Errorf("%v.Key() = %q, want 22 characters", s, k)
		}
		if other, ok := keys[k]; ok {
			t.Errorf("%v and %v have the same Key %q", s, other, k)
		}
		keys[k] = s.String()
	}
	// The key is part of cache keys in use: pin it.
	if got, want := c.Key(), "1n7RbUkbvsFUjYrE_Xq8EA"; got != want {
		t.Errorf("%v.Key() = %q, want %q", c, got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	list := "new-order, order-*, kitchen:display/1, user_42.inbox"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(list); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKey(b *testing.B) {
	s, err := Parse("new-order, order-*, kitchen:display/1, user_42.inbox")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Key()
	}
}
