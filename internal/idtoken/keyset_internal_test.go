package idtoken

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"example.com/tokenvendingmachine/internal/jws"
)

// TestRSAKeysVerifyEveryRSAlgorithm checks that an RSA key of a key set
// verifies RS256, RS384 and RS512 with its prepared modulus, PS256 through
// golang-jwt, and refuses an altered signature either way; and that
// without the prepared modulus it verifies the same tokens.
func TestRSAKeysVerifyEveryRSAlgorithm(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "r", Use: "sig"}}})
	keys, err := parseKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].rsa == nil {
		t.Fatalf("parseKeySet: %d keys, want one RSA key with its modulus prepared", len(keys))
	}
	unprepared := []key{{JSONWebKey: keys[0].JSONWebKey}}
	ks := &keySet{}
	for _, method := range []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodRS384, jwt.SigningMethodRS512, jwt.SigningMethodPS256} {
		tok := jwt.NewWithClaims(method, jwt.MapClaims{"sub": "alice"})
		tok.Header["kid"] = "r"
		raw, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jws.Parse(raw, MaxTokenBytes, algorithms)
		if err != nil {
			t.Fatal(err)
		}
		for name, keys := range map[string][]key{"prepared": keys, "unprepared": unprepared} {
			if kid, err := ks.verifyWith(parsed, keys); err != nil || kid != "r" {
				t.Errorf("%s, %s: verifyWith = %q, %v; want r, nil", method.Alg(), name, kid, err)
			}
			// One character of the signature changed, not its last.
			i := strings.LastIndexByte(raw, '.') + 5
			c := byte('A')
			if raw[i] == c {
				c = 'B'
			}
			fp, err := jws.Parse(raw[:i]+string(c)+raw[i+1:], MaxTokenBytes, algorithms)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ks.verifyWith(fp, keys); !errors.Is(err, ErrSignature) {
				t.Errorf("%s, %s: an altered signature: %v, want ErrSignature", method.Alg(), name, err)
			}
		}
	}
}
