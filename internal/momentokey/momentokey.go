// Package momentokey reads Momento API keys and the endpoints they are used
// with, without calling Momento: which kind of key a string is, whether it
// needs an endpoint from elsewhere, and the host names the SDK dials.
//
// Momento has issued three kinds of key:
//   - v2 API keys, the default since December 2025: a JWT-shaped string whose
//     unverified claims hold "t": "g". It carries no endpoint; the SDKs take
//     it with a regional endpoint, MOMENTO_ENDPOINT, such as
//     cell-us-east-1-1.prod.a.momentohq.com.
//   - v1 API keys: base64 of {"api_key": "...", "endpoint": "..."}.
//   - legacy keys: a JWT whose claims name the cache and control hosts.
//
// A key's secret part is never in an error or a String of this package.
package momentokey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind is the kind of a Momento API key.
type Kind int

const (
	// V1 is base64 of {"api_key", "endpoint"}: the key carries its endpoint.
	V1 Kind = iota + 1
	// V2 is a JWT-shaped key whose claims hold "t": "g"; it needs an
	// endpoint from elsewhere.
	V2
	// Legacy is a JWT whose claims name the cache ("c") and control ("cp")
	// hosts.
	Legacy
)

func (k Kind) String() string {
	switch k {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Legacy:
		return "legacy"
	}
	return "unknown"
}

// ErrNotAKey means a string is not a Momento API key of any kind. The error
// never quotes the string.
var ErrNotAKey = errors.New("not a Momento API key (v2, v1 or legacy)")

// Key is a parsed Momento API key.
type Key struct {
	kind     Kind
	raw      string // the key as given
	token    string // what the SDK sends as authorization
	endpoint string // the endpoint a v1 key carries; "" for the others
}

// Parse tells which kind of Momento API key raw is. It reads claims without
// verifying them: only Momento can, and it does on every call. The error, if
// any, wraps ErrNotAKey and never quotes raw.
func Parse(raw string) (Key, error) {
	if raw == "" {
		return Key{}, fmt.Errorf("%w: it is empty", ErrNotAKey)
	}
	if strings.Count(raw, ".") == 2 {
		return parseJWT(raw)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return Key{}, fmt.Errorf("%w: neither a JWT nor base64", ErrNotAKey)
	}
	var v1 struct {
		APIKey   string `json:"api_key"`
		Endpoint string `json:"endpoint"`
	}
	if !json.Valid(b) || json.Unmarshal(b, &v1) != nil || v1.APIKey == "" || v1.Endpoint == "" {
		return Key{}, fmt.Errorf("%w: base64, but not of {\"api_key\", \"endpoint\"}", ErrNotAKey)
	}
	return Key{kind: V1, raw: raw, token: v1.APIKey, endpoint: v1.Endpoint}, nil
}

func parseJWT(raw string) (Key, error) {
	parts := strings.Split(raw, ".")
	for _, p := range parts {
		if p == "" || strings.Trim(p, base64url) != "" {
			return Key{}, fmt.Errorf("%w: JWT-shaped, but not three base64url segments", ErrNotAKey)
		}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Key{}, fmt.Errorf("%w: JWT-shaped, but its claims are not base64url", ErrNotAKey)
	}
	var claims struct {
		Type        string `json:"t"`
		CacheHost   string `json:"c"`
		ControlHost string `json:"cp"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		return Key{}, fmt.Errorf("%w: JWT-shaped, but its claims are not a JSON object", ErrNotAKey)
	}
	switch {
	case claims.Type == "g":
		return Key{kind: V2, raw: raw, token: raw}, nil
	case claims.CacheHost != "" && claims.ControlHost != "":
		return Key{kind: Legacy, raw: raw, token: raw}, nil
	}
	return Key{}, fmt.Errorf("%w: a JWT, but its claims hold neither \"t\": \"g\" (v2) nor the hosts of a legacy key", ErrNotAKey)
}

const base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// Kind returns the key's kind.
func (k Key) Kind() Kind { return k.kind }

// String returns the key as given. It is a secret: never log it.
func (k Key) String() string { return k.raw }

// Endpoint returns the endpoint a v1 key carries, and "" for a v2 or legacy
// key.
func (k Key) Endpoint() string { return k.endpoint }

// NeedsEndpoint reports whether the key can be used only with an endpoint
// from elsewhere (a v2 key).
func (k Key) NeedsEndpoint() bool { return k.kind == V2 }

// AuthToken returns what the SDK sends to Momento as authorization: the
// api_key inside a v1 key, or the key itself. It is a secret: never log it.
func (k Key) AuthToken() string { return k.token }

// ErrEndpoint means an endpoint is not a Momento cell's host name. The
// error quotes the endpoint, which is not a secret.
var ErrEndpoint = errors.New("not a Momento endpoint")

// NormalizeEndpoint returns the Momento endpoint s names, in the form the
// SDKs prefix with "cache.", "control.", "token." and "storage.": it accepts
// what a user pastes from Momento's console or docs, such as
// "https://api.cache.cell-us-east-1-1.prod.a.momentohq.com/", and strips an
// http(s) scheme, a trailing "/", a ":443" port and a leading "api.cache."
// or "cache.". What is left must be a plain DNS host name with at least two
// labels; anything else (a path, another port, an IP address, a user) wraps
// ErrEndpoint.
func NormalizeEndpoint(s string) (string, error) {
	in := s
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, scheme) {
			s = s[len(scheme):]
			break
		}
	}
	s = strings.TrimSuffix(s, "/")
	s = strings.TrimSuffix(s, ":443")
	s = strings.ToLower(s)
	for _, prefix := range []string{"api.cache.", "cache."} {
		if strings.HasPrefix(s, prefix) {
			s = s[len(prefix):]
			break
		}
	}
	if !isHostName(s) {
		return "", fmt.Errorf("%w: %q (want a host name such as cell-us-east-1-1.prod.a.momentohq.com, with no path or port)", ErrEndpoint, in)
	}
	return s, nil
}

// isHostName reports whether s is a DNS host name of two or more labels,
// each 1 to 63 letters, digits or hyphens not at either end, with a
// top-level label that is not all digits (so no IPv4 address).
func isHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 || strings.ContainsAny(s, "/:@?#[] ") || url.PathEscape(s) != s {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// Hosts are the host:port addresses of Momento's services at one endpoint.
type Hosts struct {
	Cache, Control, Token, Storage string
}

// HostsOf returns the addresses the SDKs dial for endpoint (a normalized
// one): "cache." + endpoint + ":443", and likewise control., token. and
// storage., as client-sdk-go v1.40's v2-key provider builds them.
func HostsOf(endpoint string) Hosts {
	return Hosts{
		Cache:   "cache." + endpoint + ":443",
		Control: "control." + endpoint + ":443",
		Token:   "token." + endpoint + ":443",
		Storage: "storage." + endpoint + ":443",
	}
}
