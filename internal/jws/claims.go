package jws

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxNumericDate bounds a NumericDate, in seconds either side of the epoch:
// the largest integer a float64 holds exactly, some 285 million years.
const maxNumericDate = 1 << 53

// Claims is a JWT claims set decoded by DecodeClaims.
type Claims struct {
	// RegisteredClaims are "iss", "sub", "aud", "exp", "nbf", "iat" and
	// "jti", each read by its exact name; an absent one is "" or nil. Times
	// are whole seconds, as golang-jwt reads them.
	jwt.RegisteredClaims

	// members is every member's JSON value, by exact name.
	members map[string]json.RawMessage
}

// DecodeClaims decodes payload, a verified JWT payload: a JSON object with
// no two member names equal or equal but for case, registered claims of
// their types, and nothing after it. Its error is ErrMalformed.
func DecodeClaims(payload []byte) (Claims, error) {
	c := Claims{members: make(map[string]json.RawMessage)}
	folded := make(map[string]struct{})
	err := members(payload, false, func(name string, v []byte) error {
		key := foldName(name)
		if _, dup := folded[key]; dup {
			return ErrMalformed
		}
		folded[key] = struct{}{}
		c.members[name] = v
		return nil
	})
	if err != nil {
		return Claims{}, err
	}
	if err := c.registered(); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// registered reads the registered claims, checking their types.
func (c *Claims) registered() error {
	var err error
	str := func(name string, dst *string) {
		if err == nil {
			*dst, _, err = c.String(name)
		}
	}
	date := func(name string, dst **jwt.NumericDate) {
		if err == nil {
			*dst, err = c.date(name)
		}
	}
	str("iss", &c.Issuer)
	str("sub", &c.Subject)
	str("jti", &c.ID)
	date("exp", &c.ExpiresAt)
	date("nbf", &c.NotBefore)
	date("iat", &c.IssuedAt)
	if err != nil {
		return err
	}
	raw, ok := c.members["aud"]
	if !ok {
		return nil
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ErrMalformed
		}
		c.Audience = jwt.ClaimStrings{s}
		return nil
	}
	list, _, err := c.Strings("aud")
	c.Audience = list
	return err
}

// date reads a NumericDate: a JSON number of seconds since the epoch, maybe
// fractional, less than maxNumericDate from the epoch.
func (c *Claims) date(name string) (*jwt.NumericDate, error) {
	raw, ok := c.members[name]
	if !ok {
		return nil, nil
	}
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return nil, ErrMalformed
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.Abs(f) >= maxNumericDate {
		return nil, ErrMalformed
	}
	sec, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9))), nil
}

// Has reports whether the claims set has a member named name, exactly.
func (c Claims) Has(name string) bool {
	_, ok := c.members[name]
	return ok
}

// String returns the member named name, which must be a JSON string; ok is
// false if there is none. Its error is ErrMalformed.
func (c Claims) String(name string) (s string, ok bool, err error) {
	raw, ok := c.members[name]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", true, ErrMalformed
	}
	return s, true, nil
}

// Strings returns the member named name, which must be a JSON array of
// strings; ok is false if there is none. Its error is ErrMalformed.
func (c Claims) Strings(name string) (list []string, ok bool, err error) {
	raw, ok := c.members[name]
	if !ok {
		return nil, false, nil
	}
	var elems []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, true, ErrMalformed
	}
	list = make([]string, len(elems))
	for i, e := range elems {
		if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &list[i]) != nil {
			return nil, true, ErrMalformed
		}
	}
	return list, true, nil
}
