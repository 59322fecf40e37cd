package ticket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// MinKeyLen is the shortest HMAC key accepted, in bytes: HS256 wants at
// least as many key bytes as its 256-bit output.
const MinKeyLen = 32

// maxKeyIDLen is the longest key id.
const maxKeyIDLen = 64

// maxKeys is the most keys a KeySet holds; rotation needs two or three.
const maxKeys = 16

// ErrKeys is wrapped by every error about keys: a payload or set that
// NewKeySet or ParseKeys refuses, or a key that Sign refuses.
var ErrKeys = errors.New("invalid ticket keys")

// Key is one HMAC key and the id that tickets name it by in their "kid"
// header. Its String, GoString and LogValue never show the secret.
type Key struct {
	// ID is the key's id, or "" for the key of tickets without "kid".
	ID string
	// Secret is the HMAC key, at least MinKeyLen bytes.
	Secret []byte
}

// String returns the key's id and length, never the secret.
func (k Key) String() string {
	return fmt.Sprintf("ticket.Key{ID: %q, %d bytes}", k.ID, len(k.Secret))
}

// GoString is String, so that %#v hides the secret too.
func (k Key) GoString() string { return k.String() }

// LogValue hides the secret from log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// KeySet is the keys a Verifier accepts, by id. The zero value holds no
// key. A KeySet is immutable once made and safe for concurrent use.
type KeySet struct {
	keys map[string][]byte
}

// NewKeySet returns the set of keys, which must number 1 to 16, each with a
// distinct id ("" or 1 to 64 bytes of ASCII letters, digits, '.', '_' and
// '-') and a Secret of at least MinKeyLen bytes. It copies the secrets.
func NewKeySet(keys ...Key) (KeySet, error) {
	if len(keys) == 0 || len(keys) > maxKeys {
		return KeySet{}, fmt.Errorf("%w: %d keys, want 1 to %d", ErrKeys, len(keys), maxKeys)
	}
	s := KeySet{keys: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return KeySet{}, err
		}
		if _, dup := s.keys[k.ID]; dup {
			return KeySet{}, fmt.Errorf("%w: key id %q appears twice", ErrKeys, k.ID)
		}
		s.keys[k.ID] = bytes.Clone(k.Secret)
	}
	return s, nil
}

// checkKey returns an error wrapping ErrKeys if k cannot sign or verify.
func checkKey(k Key) error {
	if k.ID != "" && !validKeyID(k.ID) {
		return fmt.Errorf("%w: key id %q is not 1 to %d bytes of [A-Za-z0-9._-]", ErrKeys, k.ID, maxKeyIDLen)
	}
	if len(k.Secret) < MinKeyLen {
		return fmt.Errorf("%w: key %q is %d bytes, want at least %d", ErrKeys, k.ID, len(k.Secret), MinKeyLen)
	}
	return nil
}

// validKeyID reports whether id is 1 to 64 bytes of [A-Za-z0-9._-].
func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keysPayload is the JSON form of a key payload.
type keysPayload struct {
	Keys map[string]string `json:"keys"`
}

// ParseKeys parses a key payload, as stored in the TICKET_SECRET_ID secret
// or the TICKET_KEY variable, in one of two forms:
//
//   - Raw: the payload is the key. Surrounding whitespace, such as the
//     newline that echo adds, is not part of it. The key has the id "", so
//     tickets carry no "kid".
//   - JSON, when the payload starts with '{': {"keys": {"<kid>": "<key>",
//     ...}}, one entry per key, tickets naming their key by "kid". No other
//     field is allowed.
//
// A key is the bytes of its text, used as they are (not base64-decoded), and
// must be at least MinKeyLen bytes: generate one with
// `openssl rand -base64 32` (44 characters). Errors wrap ErrKeys and never
// show a key.
func ParseKeys(payload []byte) (KeySet, error) {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' {
		return NewKeySet(Key{Secret: payload})
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var p keysPayload
	// The decoder's error could quote part of a key; it is not wrapped.
	if err := dec.Decode(&p); err != nil || dec.More() {
		return KeySet{}, fmt.Errorf(`%w: the payload starts with '{' but is not {"keys": {"<kid>": "<key>", ...}}`, ErrKeys)
	}
	keys := make([]Key, 0, len(p.Keys))
	for _, id := range slices.Sorted(maps.Keys(p.Keys)) {
		keys = append(keys, Key{ID: id, Secret: []byte(p.Keys[id])})
	}
	return NewKeySet(keys...)
}

// Key returns the key with the id, and whether the set holds it.
func (s KeySet) Key(id string) (Key, bool) {
	secret, ok := s.keys[id]
	if !ok {
		return Key{}, false
	}
	return Key{ID: id, Secret: bytes.Clone(secret)}, true
}

// IDs returns the ids of the keys, sorted.
func (s KeySet) IDs() []string { return slices.Sorted(maps.Keys(s.keys)) }

// Len returns the number of keys.
func (s KeySet) Len() int { return len(s.keys) }

// String lists the key ids, never the secrets.
func (s KeySet) String() string {
	ids := s.IDs()
	for i, id := range ids {
		ids[i] = fmt.Sprintf("%q", id)
	}
	return "ticket.KeySet{" + strings.Join(ids, ", ") + "}"
}

// GoString is String, so that %#v hides the secrets too.
func (s KeySet) GoString() string { return s.String() }

// LogValue hides the secrets from log/slog.
func (s KeySet) LogValue() slog.Value { return slog.StringValue(s.String()) }
