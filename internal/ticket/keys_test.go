package ticket

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKeys(t *testing.T) {
	k32 := strings.Repeat("a", MinKeyLen)
	k44 := "q0M3z1Yd5m0E9rVvKpX2c7bN4hTfWjLs8uGyRaQiOe0="
	tests := []struct {
		name    string
		payload string
		want    map[string]string // id -> secret
		wantErr bool
	}{
		{name: "raw", payload: k44, want: map[string]string{"": k44}},
		{name: "raw with newline", payload: k44 + "\n", want: map[string]string{"": k44}},
		{name: "raw minimum", payload: k32, want: map[string]string{"": k32}},
		{name: "json", payload: `{"keys": {"2026-03": "` + k44 + `", "2025-12": "` + k32 + `"}}`, want: map[string]string{"2026-03": k44, "2025-12": k32}},
		{name: "json unnamed and named", payload: `{"keys": {"": "` + k32 + `", "n": "` + k44 + `"}}` + "\n", want: map[string]string{"": k32, "n": k44}},

		{name: "empty", payload: "", wantErr: true},
		{name: "blank", payload: " \n", wantErr: true},
		{name: "raw too short", payload: k32[1:], wantErr: true},
		{name: "raw too short after trim", payload: " " + k32[1:] + " ", wantErr: true},
		{name: "json not an object", payload: `{"keys": ["` + k44 + `"]}`, wantErr: true},
		{name: "json unknown field", payload: `{"keys": {"a": "` + k44 + `"}, "current": "a"}`, wantErr: true},
		{name: "json trailing data", payload: `{"keys": {"a": "` + k44 + `"}} {}`, wantErr: true},
		{name: "json no keys", payload: `{"keys": {}}`, wantErr: true},
		{name: "json short key", payload: `{"keys": {"a": "` + k44 + `", "b": "short-key-xxxxxxxxxxxxxxxxxxxxx"}}`, wantErr: true},
		{name: "json bad kid", payload: `{"keys": {"a b": "` + k44 + `"}}`, wantErr: true},
		{name: "json long kid", payload: `{"keys": {"` + strings.Repeat("k", 65) + `": "` + k44 + `"}}`, wantErr: true},
		{name: "json syntax", payload: `{"keys": {"a": "` + k44 + `"`, wantErr: true},
		{name: "too many keys", payload: func() string {
			var b strings.Builder
			b.WriteString(`{"keys": {`)
			for i := range maxKeys + 1 {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `"k%d": %q`, i, k44)
			}
			b.WriteString("}}")
			return b.String()
		}(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := ParseKeys([]byte(tt.payload))
			if tt.wantErr {
				if !errors.Is(err, ErrKeys) {
					t.Fatalf("ParseKeys() = %v, %v; want an error matching ErrKeys", ks, err)
				}
				for _, secret := range []string{k44, k32[1:]} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("ParseKeys() error %q shows a key", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys() error = %v", err)
			}
			got := map[string]string{}
			for _, id := range ks.IDs() {
				k, ok := ks.Key(id)
				if !ok {
					t.Fatalf("Key(%q) not found, but listed by IDs", id)
				}
				got[id] = string(k.Secret)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseKeys() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewKeySetRefuses(t *testing.T) {
	if _, err := NewKeySet(key1, Key{ID: "k1", Secret: key2.Secret}); !errors.Is(err, ErrKeys) {
		t.Errorf("NewKeySet(duplicate id) error = %v, want %v", err, ErrKeys)
	}
	if _, err := NewKeySet(); !errors.Is(err, ErrKeys) {
		t.Errorf("NewKeySet() error = %v, want %v", err, ErrKeys)
	}
}

func TestKeySetCopies(t *testing.T) {
	secret := []byte(strings.Repeat("s", MinKeyLen))
	ks, err := NewKeySet(Key{ID: "a", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	secret[0] = 'X'
	k, _ := ks.Key("a")
	k.Secret[1] = 'Y'
	if again, _ := ks.Key("a"); string(again.Secret) != strings.Repeat("s", MinKeyLen) {
		t.Errorf("KeySet secret changed through a caller's slice: %q", again.Secret)
	}
}

// TestKeysNeverPrinted checks that formatting or logging keys shows no
// secret.
func TestKeysNeverPrinted(t *testing.T) {
	ks, err := NewKeySet(key1, unnamed)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("keys", "set", ks, "key", key1)
	outputs := []string{
		fmt.Sprint(ks), fmt.Sprintf("%v %+v %#v %s", ks, ks, ks, ks),
		fmt.Sprint(key1), fmt.Sprintf("%v %+v %#v %s", key1, key1, key1, key1),
		fmt.Sprintf("%v %+v", []Key{key1}, struct{ K KeySet }{ks}),
		b.String(),
	}
	for _, out := range outputs {
		for _, secret := range [][]byte{key1.Secret, unnamed.Secret} {
			if strings.Contains(out, string(secret)) || strings.Contains(out, fmt.Sprint(secret)) {
				t.Errorf("output %q shows a secret", out)
			}
		}
	}
	if got, want := ks.String(), `ticket.KeySet{"", "k1"}`; got != want {
		t.Errorf("KeySet.String() = %q, want %q", got, want)
	}
}
