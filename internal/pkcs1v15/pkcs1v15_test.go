package pkcs1v15

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"math/big"
	"sync"
	"testing"
)

// keys are test keys, made once: of the sizes issuers use, and one of a
// size that is not a whole number of 64-bit words.
var keys = sync.OnceValue(func() []*rsa.PrivateKey {
	var ks []*rsa.PrivateKey
	// 1040 bits is not a whole number of 64-bit words: a signature
	// with a zero byte before it still fits the modulus's words, so only
	// the length check refuses it.
	for _, bits := range []int{1024, 2048, 3072, 1040} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		ks = append(ks, k)
	}
	return ks
})

var hashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

func digest(h crypto.Hash, msg string) []byte {
	w := h.New()
	w.Write([]byte(msg))
	return w.Sum(nil)
}

// agree checks that Verify and rsa.VerifyPKCS1v15 give the same answer,
// and returns it.
func agree(t *testing.T, pub *rsa.PublicKey, k *PublicKey, h crypto.Hash, hashed, sig []byte) bool {
	t.Helper()
	std := rsa.VerifyPKCS1v15(pub, h, hashed, sig) == nil
	ours := k.Verify(h, hashed, sig) == nil
	if std != ours {
		t.Fatalf("%d-bit key, %v, signature %x: crypto/rsa verifies %v, Verify %v", pub.N.BitLen(), h, sig, std, ours)
	}
	return ours
}

func prepared(t *testing.T, pub *rsa.PublicKey) *PublicKey {
	t.Helper()
	k, err := NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyAgreesWithCryptoRSA(t *testing.T) {
	for _, priv := range keys() {
		pub := &priv.PublicKey
		k := prepared(t, pub)
		for _, h := range hashes {
			hashed := digest(h, "header.payload")
			sig, err := rsa.SignPKCS1v15(rand.Reader, priv, h, hashed)
			if err != nil {
				t.Fatal(err)
			}
			if !agree(t, pub, k, h, hashed, sig) {
				t.Fatalf("%d-bit key, %v: a valid signature does not verify", pub.N.BitLen(), h)
			}
			// Every other hash, digest and signature is refused.
			for _, other := range hashes {
				if other != h && agree(t, pub, k, other, digest(other, "header.payload"), sig) {
					t.Fatalf("a %v signature verifies as %v", h, other)
				}
			}
			if agree(t, pub, k, h, digest(h, "header.payloaD"), sig) {
				t.Fatal("the signature of another message verifies")
			}
			for i := range sig {
				bad := bytes.Clone(sig)
				bad[i] ^= 1 << (i % 8)
				if agree(t, pub, k, h, hashed, bad) {
					t.Fatalf("a signature with byte %d altered verifies", i)
				}
			}
			for _, bad := range [][]byte{nil, sig[1:], append(bytes.Clone(sig), 0), append([]byte{0}, sig...), pub.N.Bytes(), bytes.Repeat([]byte{0xff}, len(sig)), make([]byte, len(sig))} {
				if agree(t, pub, k, h, hashed, bad) {
					t.Fatalf("signature %x verifies", bad)
				}
			}
			if agree(t, pub, k, h, hashed[1:], sig) || k.Verify(crypto.SHA1, digest(crypto.SHA1, "x"), sig) == nil {
				t.Fatal("a digest of the wrong length or hash verifies")
			}
		}
	}
}

// TestVerifyRefusesMisencodedMessages signs, with the private key's raw
// operation, encoded messages that are one mistake away from the right
// one: each must be refused, by crypto/rsa and by Verify, and the right one
// accepted (which shows the raw signing is right).
func TestVerifyRefusesMisencodedMessages(t *testing.T) {
	priv := keys()[1]
	pub := &priv.PublicKey
	k := prepared(t, pub)
	size := pub.Size()
	hashed := digest(crypto.SHA256, "header.payload")
	encode := func(psLen int, prefix []byte, tail []byte) []byte {
		em := []byte{0x00, 0x01}
		em = append(em, bytes.Repeat([]byte{0xff}, psLen)...)
		em = append(em, 0x00)
		em = append(em, prefix...)
		em = append(em, hashed...)
		return append(em, tail...)
	}
	right := size - len(prefixes[crypto.SHA256]) - len(hashed) - 3
	sha1Prefix := []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}
	cases := map[string][]byte{
		"right":                     encode(right, prefixes[crypto.SHA256], nil),
		"padding short, tail bytes": encode(right-8, prefixes[crypto.SHA256], make([]byte, 8)),
		"another hash's prefix":     encode(right+len(prefixes[crypto.SHA256])-len(sha1Prefix), sha1Prefix, nil),
		"no prefix":                 encode(right+len(prefixes[crypto.SHA256]), nil, nil),
	}
	pad := encode(right, prefixes[crypto.SHA256], nil)
	pad[10] = 0xfe
	cases["a padding byte not 0xff"] = pad
	sep := encode(right, prefixes[crypto.SHA256], nil)
	sep[2+right] = 0x01
	cases["no zero after the padding"] = sep
	block := encode(right, prefixes[crypto.SHA256], nil)
	block[1] = 0x02
	cases["block type 2"] = block

	for name, em := range cases {
		if len(em) != size {
			t.Fatalf("%s: %d bytes, want %d", name, len(em), size)
		}
		m := new(big.Int).SetBytes(em)
		sig := new(big.Int).Exp(m, priv.D, pub.N).FillBytes(make([]byte, size))
		if got := agree(t, pub, k, crypto.SHA256, hashed, sig); got != (name == "right") {
			t.Errorf("%s: verifies %v", name, got)
		}
	}
}

// TestVerifyRefusesSignaturesNotBelowN checks that a valid signature plus
// the modulus, congruent to it and still of the modulus's length, is
// refused.
func TestVerifyRefusesSignaturesNotBelowN(t *testing.T) {
	for _, priv := range keys() {
		pub := &priv.PublicKey
		k := prepared(t, pub)
		tried := 0
		for i := 0; tried < 3 && i < 1000; i++ {
			hashed := digest(crypto.SHA256, fmt.Sprint("message ", i))
			sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
			if err != nil {
				t.Fatal(err)
			}
			over := new(big.Int).Add(new(big.Int).SetBytes(sig), pub.N)
			if len(over.Bytes()) > len(sig) {
				continue
			}
			tried++
			if agree(t, pub, k, crypto.SHA256, hashed, over.FillBytes(make([]byte, len(sig)))) {
				t.Fatalf("%d-bit key: the signature plus the modulus verifies", pub.N.BitLen())
			}
		}
		if tried == 0 {
			t.Fatalf("%d-bit key: no signature plus the modulus had the modulus's length", pub.N.BitLen())
		}
	}
}

func TestVerifyAgreesOnRandomSignatures(t *testing.T) {
	priv := keys()[0]
	pub := &priv.PublicKey
	k := prepared(t, pub)
	hashed := digest(crypto.SHA256, "x")
	for range 200 {
		sig := make([]byte, pub.Size())
		rand.Read(sig)
		agree(t, pub, k, crypto.SHA256, hashed, sig)
	}
}

func TestNewPublicKeyRefusesWhatCryptoRSARefuses(t *testing.T) {
	n := keys()[1].N
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, pub := range map[string]*rsa.PublicKey{
		"nil modulus":    {E: 65537},
		"512 bits":       {N: new(big.Int).Rsh(small.N, 512), E: 65537},
		"even modulus":   {N: new(big.Int).Add(n, big.NewInt(1)), E: 65537},
		"even exponent":  {N: n, E: 65536},
		"exponent 1":     {N: n, E: 1},
		"exponent ≥ 2³¹": {N: n, E: 1 << 31},
		"over MaxBits":   {N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), MaxBits), big.NewInt(1)), E: 65537},
	} {
		if _, err := NewPublicKey(pub); err == nil {
			t.Errorf("%s: prepared", name)
		}
		if pub.N != nil {
			sig := make([]byte, (pub.N.BitLen()+7)/8)
			if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest(crypto.SHA256, "x"), sig) == nil {
				t.Errorf("%s: crypto/rsa verifies", name)
			}
		}
	}
	if _, err := NewPublicKey(&rsa.PublicKey{N: n, E: 3}); err != nil {
		t.Errorf("exponent 3: %v", err)
	}
}

// FuzzVerify holds Verify to crypto/rsa's answer for any signature and
// digest, starting from a valid signature.
func FuzzVerify(f *testing.F) {
	priv := keys()[3] // 1040 bits: see keys
	pub := &priv.PublicKey
	k, err := NewPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	hashed := digest(crypto.SHA256, "header.payload")
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig, hashed)
	f.Add(sig[1:], hashed)
	f.Fuzz(func(t *testing.T, sig, hashed []byte) {
		std := rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashed, sig) == nil
		if ours := k.Verify(crypto.SHA256, hashed, sig) == nil; ours != std {
			t.Fatalf("crypto/rsa verifies %v, Verify %v", std, ours)
		}
	})
}

// BenchmarkVerify compares one RS256 check by crypto/rsa, which prepares
// the modulus each time, with Verify on a key prepared once.
//
//	go test -run '^$' -bench Verify -benchmem ./internal/pkcs1v15/
func BenchmarkVerify(b *testing.B) {
	priv := keys()[1]
	hashed := digest(crypto.SHA256, "header.payload")
	sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, hashed, sig) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		k, _ := NewPublicKey(&priv.PublicKey)
		for b.Loop() {
			if k.Verify(crypto.SHA256, hashed, sig) != nil {
				b.Fatal("refused")
			}
		}
	})
}
