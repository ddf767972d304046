package capability

import (
	"bytes"
	"crypto/sha256"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"
)

// FuzzValidateToken checks [Validate], the parser of presented plaintext
// tokens, against an independent reading of the format (math/big for the
// base62 numbers, hash/crc32 for the checksum):
//
//   - it never panics, and answers nil, ErrMalformed or ErrChecksum exactly
//     when the reference reading does: in particular it never accepts a
//     string whose checksum does not match;
//   - a token built by the generator from any 32 bytes validates, and its
//     random part reads back as those bytes;
//   - changing any one character of such a token is refused.
func FuzzValidateToken(f *testing.F) {
	var ones [randomBytes]byte
	for i := range ones {
		ones[i] = 0xff
	}
	pt := Prefix + maxRandom + sumOf(maxRandom)
	f.Add(pt, ones[:], uint(len(pt)-1), byte('0'))
	zero := strings.Repeat("0", randomChars)
	f.Add(Prefix+zero+sumOf(zero), []byte{}, uint(len(Prefix)), byte('z'))
	f.Add("solo_", []byte("x"), uint(0), byte('S'))
	f.Add("", []byte(nil), uint(3), byte(0))
	f.Add(Prefix+strings.Repeat("z", randomChars)+"000000", []byte("y"), uint(10), byte('A')) // random part over 2^256-1
	f.Add("SOLO_"+zero+sumOf(zero), bytes.Repeat([]byte{0x5a}, 32), uint(60), byte(0xff))

	f.Fuzz(func(t *testing.T, s string, raw []byte, at uint, c byte) {
		if got, want := Validate(s), referenceValidate(s); got != want {
			t.Fatalf("Validate(%q) = %v, the format says %v", s, got, want)
		}

		// A token of the generator's making.
		var b [randomBytes]byte
		copy(b[:], raw)
		random := encodeRandom(b)
		sum := checksum(random)
		token := Prefix + random + string(sum[:])
		if err := Validate(token); err != nil {
			t.Fatalf("generated token %q: %v", token, err)
		}
		if err := referenceValidate(token); err != nil {
			t.Fatalf("generated token %q breaks the format: %v", token, err)
		}
		back, ok := new(big.Int).SetString(fromAlphabet(random), 62)
		if !ok || !bytes.Equal(back.FillBytes(make([]byte, randomBytes)), b[:]) {
			t.Fatalf("random part %s does not read back as %x", random, b)
		}

		// One character changed.
		i := int(at % uint(len(token)))
		if token[i] != c {
			typo := token[:i] + string([]byte{c}) + token[i+1:]
			if err := Validate(typo); err == nil {
				t.Fatalf("byte %d of %q changed to %q: accepted", i, token, c)
			}
		}
	})
}

// TestNewPlaintext_Validates checks the live generator, which reads
// crypto/rand and so cannot be fuzzed, with the same reference reading.
func TestNewPlaintext_Validates(t *testing.T) {
	for range 200 {
		pt, hash, err := newPlaintext()
		if err != nil {
			t.Fatal(err)
		}
		if err := referenceValidate(pt); err != nil {
			t.Fatalf("newPlaintext gave %q: %v", pt, err)
		}
		if hash != sha256.Sum256([]byte(pt)) {
			t.Fatalf("hash of %q is not its SHA-256", pt)
		}
	}
}

// referenceValidate reads s by the documented format, independently of
// the package's encoder: solo_, 43 base62 digits of a number below 2^256,
// 6 base62 digits of the CRC-32 (IEEE) of those 43 digits' text.
func referenceValidate(s string) error {
	if len(s) != len(Prefix)+randomChars+checkChars || !strings.HasPrefix(s, Prefix) {
		return ErrMalformed
	}
	body := s[len(Prefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return ErrMalformed
		}
	}
	random, check := body[:randomChars], body[randomChars:]
	n, ok := new(big.Int).SetString(fromAlphabet(random), 62)
	if !ok || n.BitLen() > 8*randomBytes {
		return ErrMalformed
	}
	c, ok := new(big.Int).SetString(fromAlphabet(check), 62)
	if !ok || !c.IsUint64() || c.Uint64() != uint64(crc32.ChecksumIEEE([]byte(random))) {
		return ErrChecksum
	}
	return nil
}

// sumOf is the check part of a token with random part random, computed
// the reference way.
func sumOf(random string) string {
	s := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(random)))).Text(62)
	return toAlphabet(strings.Repeat("0", checkChars-len(s)) + s)
}

// math/big writes base 62 as 0-9a-zA-Z; tokens use ASCII order, 0-9A-Za-z.
const bigDigits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func fromAlphabet(s string) string {
	return strings.Map(func(r rune) rune { return rune(bigDigits[strings.IndexRune(alphabet, r)]) }, s)
}

func toAlphabet(s string) string {
	return strings.Map(func(r rune) rune { return rune(alphabet[strings.IndexRune(bigDigits, r)]) }, s)
}

func TestReferenceValidate_Agrees(t *testing.T) {
	// The reference must itself tell the cases apart, or the fuzzer's
	// comparison proves nothing.
	zero := strings.Repeat("0", randomChars)
	good := Prefix + zero + sumOf(zero)
	last := byte('1')
	if good[len(good)-1] == last {
		last = '2'
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{good, nil},
		{good[:len(good)-1] + string(last), ErrChecksum},
		{good[:len(good)-1], ErrMalformed},
		{Prefix + strings.Repeat("z", randomChars) + "000000", ErrMalformed},
		{strings.Replace(good, "0", "-", 1), ErrMalformed},
	} {
		if got := referenceValidate(tc.in); got != tc.want {
			t.Errorf("referenceValidate(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if got := Validate(tc.in); got != tc.want {
			t.Errorf("Validate(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
