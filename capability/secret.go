package capability

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// The plaintext format, after GitHub's tokens: a prefix that secret scanners
// can recognise, 32 random bytes in base62, and a base62 CRC-32 of the
// random part that catches a typo without a database lookup.
//
//	solo_ + 43 chars of base62 (256 random bits, left-padded with '0') + 6 chars of base62 CRC-32
const (
	// Prefix starts every plaintext token. The Go client, which must not
	// link this package, knows it as wire.TokenPrefix; a test of package
	// api keeps the two equal.
	Prefix = "solo_"

	randomBytes = 32
	randomChars = 43 // 62^43 > 2^256
	checkChars  = 6  // 62^6 > 2^32
	// PlaintextLen is the length of every plaintext token.
	PlaintextLen = len(Prefix) + randomChars + checkChars
)

// base62 in ASCII order, so that comparing encodings of equal width as
// strings compares the numbers.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// maxRandom is the encoding of 2^256-1: a random part above it cannot have
// come from 32 bytes.
var maxRandom = encodeRandom([randomBytes]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
})

// tokenHash is what the store keeps instead of a plaintext: SHA-256 of the
// whole plaintext.
type tokenHash [sha256.Size]byte

// newPlaintext returns a fresh plaintext token and its hash.
func newPlaintext() (string, tokenHash, error) {
	var b [randomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", tokenHash{}, fmt.Errorf("read random bytes: %w", err)
	}
	random := encodeRandom(b)
	clear(b[:])
	check := checksum(random)
	pt := Prefix + random + string(check[:])
	return pt, sha256.Sum256([]byte(pt)), nil
}

// encodeRandom writes 32 bytes as 43 base62 digits, most significant first.
func encodeRandom(b [randomBytes]byte) string {
	var n [4]uint64 // big-endian limbs
	for i := range n {
		for j := range 8 {
			n[i] = n[i]<<8 | uint64(b[i*8+j])
		}
	}
	var out [randomChars]byte
	for i := randomChars - 1; i >= 0; i-- {
		var rem uint64
		for k := range n {
			n[k], rem = bits.Div64(rem, n[k], 62)
		}
		out[i] = alphabet[rem]
	}
	return string(out[:])
}

// checksum is the CRC-32 (IEEE) of the random part's text, as 6 base62
// digits.
func checksum(random string) [checkChars]byte {
	c := crc32.ChecksumIEEE([]byte(random))
	var out [checkChars]byte
	for i := checkChars - 1; i >= 0; i-- {
		out[i] = alphabet[c%62]
		c /= 62
	}
	return out
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// Validate checks a plaintext token's form and checksum without any lookup:
// the CLI can catch a mistyped token before it reaches the daemon. It
// returns nil, [ErrMalformed] or [ErrChecksum]; the error never contains the
// token. A valid form says nothing about whether the token was ever granted.
func Validate(plaintext string) error {
	if len(plaintext) != PlaintextLen || plaintext[:len(Prefix)] != Prefix {
		return ErrMalformed
	}
	body := plaintext[len(Prefix):]
	for i := 0; i < len(body); i++ {
		if !isBase62(body[i]) {
			return ErrMalformed
		}
	}
	random, check := body[:randomChars], body[randomChars:]
	if random > maxRandom {
		return ErrMalformed
	}
	// Not a secret comparison: both sides derive from the presented text.
	if sum := checksum(random); string(sum[:]) != check {
		return ErrChecksum
	}
	return nil
}
