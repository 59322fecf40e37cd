package idtoken

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
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
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "r", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
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

// TestNoAlgorithmConfusion checks that a signature is checked only with
// the algorithm its header names, and only with a key that fits it: a
// PKCS #1 v1.5 signature relabelled with another hash or as PSS, a PSS
// signature relabelled as PKCS #1 v1.5, an RS256 token for a key that
// names PS256, and an ES256 token naming an RSA key are all refused.
func TestNoAlgorithmConfusion(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "r", Use: "sig"}
	psKey := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "p", Use: "sig", Algorithm: "PS256"}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaKey, psKey}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parseKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	// signed returns a token whose header says alg and kid, signed over
	// its signing input by sign.
	signed := func(alg, kid string, sign func(input []byte) ([]byte, error)) jws.Token {
		t.Helper()
		input := b64([]byte(`{"alg":"`+alg+`","kid":"`+kid+`","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"mallory"}`))
		sig, err := sign([]byte(input))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jws.Parse(input+"."+b64(sig), MaxTokenBytes, algorithms)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pkcs1 := func(h crypto.Hash) func([]byte) ([]byte, error) {
		return func(input []byte) ([]byte, error) {
			w := h.New()
			w.Write(input)
			return rsa.SignPKCS1v15(rand.Reader, priv, h, w.Sum(nil))
		}
	}
	pss := func(input []byte) ([]byte, error) {
		d := sha256.Sum256(input)
		return rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d[:], nil)
	}
	ks := &keySet{}
	// The right labels verify, so that what follows fails for its label.
	for _, tok := range []jws.Token{signed("RS256", "r", pkcs1(crypto.SHA256)), signed("RS384", "r", pkcs1(crypto.SHA384)), signed("PS256", "r", pss), signed("PS256", "p", pss)} {
		if _, err := ks.verifyWith(tok, keys); err != nil {
			t.Fatalf("%s with key %s: %v", tok.Header.Alg, tok.Header.KeyID, err)
		}
	}
	for name, tok := range map[string]jws.Token{
		"an RS256 signature labelled RS384":    signed("RS384", "r", pkcs1(crypto.SHA256)),
		"an RS384 signature labelled RS256":    signed("RS256", "r", pkcs1(crypto.SHA384)),
		"an RS256 signature labelled PS256":    signed("PS256", "r", pkcs1(crypto.SHA256)),
		"a PS256 signature labelled RS256":     signed("RS256", "r", pss),
		"RS256 for a key that names PS256":     signed("RS256", "p", pkcs1(crypto.SHA256)),
		"ES256 naming an RSA key (an RSA sig)": signed("ES256", "r", pkcs1(crypto.SHA256)),
	} {
		if _, err := ks.verifyWith(tok, keys); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}
