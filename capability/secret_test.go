package capability

import (
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	pt, hash, err := newPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("fresh token", func(t *testing.T) {
		if err := Validate(pt); err != nil {
			t.Fatal(err)
		}
		if hash == (tokenHash{}) {
			t.Fatal("zero hash")
		}
	})
	for _, tc := range badPlaintexts(pt) {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Fatal("error contains the input")
			}
		})
	}
	t.Run("every single-character typo is caught", func(t *testing.T) {
		for i := len(Prefix); i < len(pt); i++ {
			for j := 0; j < len(alphabet); j++ {
				if alphabet[j] == pt[i] {
					continue
				}
				typo := pt[:i] + alphabet[j:j+1] + pt[i+1:]
				if err := Validate(typo); err == nil {
					t.Fatalf("typo at %d not caught", i)
				}
			}
		}
	})
}

func TestEncodeRandom(t *testing.T) {
	// math/big's base 62 orders digits 0-9a-zA-Z; ours is ASCII order
	// 0-9A-Za-z. Translate to compare.
	const bigDigits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	translate := func(s string) string {
		return strings.Map(func(r rune) rune { return rune(alphabet[strings.IndexRune(bigDigits, r)]) }, s)
	}
	check := func(t *testing.T, b [randomBytes]byte) {
		t.Helper()
		want := translate(new(big.Int).SetBytes(b[:]).Text(62))
		want = strings.Repeat("0", randomChars-len(want)) + want
		if got := encodeRandom(b); got != want {
			t.Fatalf("encodeRandom(%x) = %s, want %s", b, got, want)
		}
	}
	t.Run("zero", func(t *testing.T) {
		if got := encodeRandom([randomBytes]byte{}); got != strings.Repeat("0", randomChars) {
			t.Fatal(got)
		}
	})
	t.Run("max", func(t *testing.T) {
		var b [randomBytes]byte
		for i := range b {
			b[i] = 0xff
		}
		check(t, b)
		if maxRandom[0] == '0' || len(maxRandom) != randomChars {
			t.Fatalf("maxRandom %s: 43 digits should be needed", maxRandom)
		}
	})
	t.Run("random", func(t *testing.T) {
		for range 1000 {
			var b [randomBytes]byte
			_, _ = rand.Read(b[:])
			check(t, b)
		}
	})
	t.Run("small", func(t *testing.T) {
		var b [randomBytes]byte
		b[31] = 61
		if got := encodeRandom(b); got != strings.Repeat("0", 42)+"z" {
			t.Fatal(got)
		}
	})
}

func TestScope_Parse(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		got, err := ParseScopes(" read, logs,,admin ")
		if err != nil || len(got) != 3 || got[2] != ScopeAdmin {
			t.Fatalf("%v, %v", got, err)
		}
	})
	for _, tc := range []struct{ in, names string }{
		{"", "no scope"},
		{" , ", "no scope"},
		{"read,Write", `"Write"`},
		{"READ", `"READ"`},
	} {
		t.Run("bad "+tc.in, func(t *testing.T) {
			_, err := ParseScopes(tc.in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tc.names)
			}
		})
	}
}
