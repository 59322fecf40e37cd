// Package pkcs1v15 verifies RSASSA-PKCS1-v1_5 signatures (JWS's RS256,
// RS384 and RS512) with a public key prepared once, as crypto/rsa does, but
// for the preparation.
//
// crypto/rsa prepares the modulus (R² mod N, for Montgomery arithmetic) on
// every VerifyPKCS1v15: about a third of a 2048-bit check, 10 of 30 µs here.
// An ID token's signature check is what a forged token from a new address
// costs the function, and a key set holds a few keys for hours, so the
// modulus is prepared when the key set is read and kept with the key.
//
// Nothing else differs from crypto/rsa. The arithmetic is filippo.io/bigmod,
// the standard library's own (crypto/internal/fips140/bigmod) published as a
// module, frozen at Go 1.24's: a fix to the standard library's copy reaches
// it only through a new release of the module. The key checks are
// crypto/rsa's. The check builds the whole encoded message the signature
// must be and compares it, byte for byte, with the signature raised to e,
// parsing nothing (RFC 8017 8.2.2 and 9.2). Tests hold it to crypto/rsa's
// answers on valid, altered, misencoded and random signatures.
package pkcs1v15

import (
	"bytes"
	"crypto"
	"crypto/fips140"
	"crypto/rsa"
	"errors"

	"filippo.io/bigmod"
)

// ErrVerification means a signature does not verify.
var ErrVerification = errors.New("pkcs1v15: verification error")

// PublicKey is an RSA public key with its modulus prepared.
type PublicKey struct {
	n *bigmod.Modulus
	e uint
}

// MaxBits is the largest modulus NewPublicKey prepares: preparing costs at
// least the square of the size, and issuers use 2048 to 4096 bits.
const MaxBits = 8192

// NewPublicKey prepares pub. It refuses what crypto/rsa refuses to verify
// with (a modulus that is even or under 1024 bits, an exponent that is even,
// under 3 or over 2³¹ − 1), a modulus over MaxBits, and any key while Go's
// FIPS 140-3 mode is on, where crypto/rsa applies rules of its own. A caller
// verifies with crypto/rsa those keys it refuses.
func NewPublicKey(pub *rsa.PublicKey) (*PublicKey, error) {
	switch {
	case fips140.Enabled():
		return nil, errors.New("pkcs1v15: FIPS 140-3 mode: verify with crypto/rsa")
	case pub == nil || pub.N == nil:
		return nil, errors.New("pkcs1v15: missing public modulus")
	case pub.N.BitLen() < 1024:
		return nil, errors.New("pkcs1v15: key under 1024 bits")
	case pub.N.BitLen() > MaxBits:
		return nil, errors.New("pkcs1v15: key over MaxBits")
	case pub.N.Bit(0) == 0:
		return nil, errors.New("pkcs1v15: public modulus is even")
	case pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1:
		return nil, errors.New("pkcs1v15: public exponent out of range or even")
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, err
	}
	return &PublicKey{n: n, e: uint(pub.E)}, nil
}

// prefixes are the DER prefixes of the DigestInfo of each hash a JWS may
// use (RFC 8017 9.2, note 1).
var prefixes = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// Verify checks that sig is k's RSASSA-PKCS1-v1_5 signature of hashed, the
// digest of the message by hash (SHA-256, SHA-384 or SHA-512). It returns
// nil or ErrVerification, as rsa.VerifyPKCS1v15 would.
func (k *PublicKey) Verify(hash crypto.Hash, hashed, sig []byte) error {
	prefix, ok := prefixes[hash]
	size := k.n.Size()
	// RFC 8017 8.2.2 step 1: a signature of the modulus's length; and the
	// encoded message must fit (RFC 8017 9.2 step 3).
	if !ok || len(hashed) != hash.Size() || len(sig) != size || size < len(prefix)+len(hashed)+11 {
		return ErrVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, k.n) // refuses sig ≥ N
	if err != nil {
		return ErrVerification
	}
	em := bigmod.NewNat().ExpShortVarTime(s, k.e, k.n).Bytes(k.n)

	// EM = 0x00 || 0x01 || PS (0xff…) || 0x00 || DigestInfo prefix || hashed
	var buf [512]byte // a 4096-bit key's; a larger one allocates
	want := buf[:0]
	if size > len(buf) {
		want = make([]byte, 0, size)
	}
	want = append(want, 0x00, 0x01)
	for range size - len(prefix) - len(hashed) - 3 {
		want = append(want, 0xff)
	}
	want = append(want, 0x00)
	want = append(want, prefix...)
	want = append(want, hashed...)
	if !bytes.Equal(em, want) {
		return ErrVerification
	}
	return nil
}
