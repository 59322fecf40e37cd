package momentotest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Authentication and authorisation: which account key or minted token a
// call carries, and what its grants allow.

// caller is who made a call: an account key (mint == nil) or a minted token.
type caller struct {
	keyID string
	mint  *Mint
}

// authenticate identifies the caller from the authorization header. s.mu must
// be held.
func (s *Server) authenticateLocked(ctx context.Context) (caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 || vals[0] == "" {
		return caller{}, status.Error(codes.Unauthenticated, "momentotest: missing authorization")
	}
	secret := vals[0]
	if id, ok := s.keys[secret]; ok {
		return caller{keyID: id}, nil
	}
	if i, ok := s.minted[secret]; ok {
		m := &s.mints[i]
		if !s.nowLocked().Before(m.ValidUntil) {
			return caller{}, status.Error(codes.Unauthenticated, "momentotest: token has expired")
		}
		return caller{mint: m}, nil
	}
	return caller{}, status.Error(codes.Unauthenticated, "momentotest: invalid API key")
}

// allowed reports whether c may act on cache and name (an item key or a topic)
// with a grant of kind whose role is one of roles.
func (c caller) allowed(kind, cache, name string, roles ...string) bool {
	if c.mint == nil || c.mint.SuperUser {
		return true
	}
	for _, g := range c.mint.Grants {
		if g.Kind != kind || !matches(g.Cache, cache) {
			continue
		}
		sel := g.Item
		if kind == "topic" {
			sel = g.Topic
		}
		if !matches(sel, name) {
			continue
		}
		for _, r := range roles {
			if g.Role == r {
				return true
			}
		}
	}
	return false
}

// mayCall reports whether c may call the unmodelled RPC fullMethod on cache
// ("" if the call names none). Account keys may call anything. A minted
// token may call no control-plane or token RPC, and a cache RPC only with a
// cache grant on that cache: the fake cannot tell which item an unmodelled
// call touches, so any cache grant on the cache lets it through.
func (c caller) mayCall(fullMethod, cache string) bool {
	if c.mint == nil {
		return true
	}
	if !strings.HasPrefix(fullMethod, "/cache_client.Scs/") {
		return false
	}
	if c.mint.SuperUser {
		return true
	}
	for _, g := range c.mint.Grants {
		if g.Kind == "cache" && matches(g.Cache, cache) && !strings.HasSuffix(g.Role, "None") {
			return true
		}
	}
	return false
}

// matches reports whether selector ("*", "prefix*" or an exact name) selects name.
func matches(selector, name string) bool {
	if selector == "*" {
		return true
	}
	if n := len(selector); n > 0 && selector[n-1] == '*' {
		return len(name) >= n-1 && name[:n-1] == selector[:n-1]
	}
	return selector == name
}

// v1Token encodes secret and endpoint in Momento's v1 key form, exactly as
// the SDK encodes a disposable token.
func v1Token(secret, endpoint string) string {
	b, _ := json.Marshal(map[string]string{"api_key": secret, "endpoint": endpoint})
	return base64.StdEncoding.EncodeToString(b)
}

// v2Key returns an account key in Momento's v2 form: a JWT whose claims
// hold "t": "g" (and here the key's id and issue time, which a real key
// does not promise), signed with a random HMAC key, so that no two are
// alike and none can be made without the fake issuing it.
func v2Key(id string, now time.Time) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"t": "g", "id": id, "iat": now.Unix()})
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(randomHex(32)))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
