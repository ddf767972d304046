package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzKey signs every checkpoint of the fuzzer, so that the committed
// corpus holds valid files.
var fuzzKey = []byte("solo fuzz checkpoint key, 32 b.!")

// FuzzReadCheckpoint checks [ReadCheckpoint], which reads a file the
// kernel's user could have written to, before anything of it is loaded
// into a kernel:
//
//   - any file: it never panics, refuses with ErrCheckpointRefused, and
//     accepts only a file whose signature verifies (checked here
//     independently) and which was written for the session and label asked
//     for;
//   - a file signed with the key but with any header line: accepted
//     exactly when that header is JSON for the session, label and size;
//   - a file [WriteCheckpoint] wrote reads back as its payload; with one
//     byte changed, cut short, extended, under another key or for another
//     label it is refused, and no payload is returned.
func FuzzReadCheckpoint(f *testing.F) {
	good := checkpointBytes(CheckpointHeader{Tenant: "default", Session: "nb", Label: "one"}, []byte("\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01x\x94K\x01s."))
	f.Add(good, []byte(`{"tenant":"default","session":"nb","label":"one","size":20}`), []byte("\x80\x05pickle"), "default", "nb", "one", uint(40), byte(1))
	f.Add([]byte{}, []byte(`{}`), []byte{}, "t", "s", "l", uint(0), byte(0x80))
	f.Add([]byte(checkpointMagic), []byte(`{"size":-1}`), []byte("x"), "", "", "", uint(17), byte(0xff))
	f.Add([]byte(checkpointMagic+"{}\n\n"), []byte("{\"label\":\"one\"}\n{}"), []byte("\n\n"), "default", "nb", "one", uint(3), byte('\n'))
	f.Add([]byte("SOLO-CHECKPOINT 2\n{}\nab\n"), []byte(`{"tenant":"default","session":"nb","label":"one","size":1e3}`), bytes.Repeat([]byte{0}, 64), "default", "nb", "\xff", uint(99), byte(0x20))

	dir := fastTempDir(f)
	f.Fuzz(func(t *testing.T, file, headerLine, payload []byte, tenant, session, label string, at uint, mask byte) {
		// Labels and names are ASCII in practice; JSON would replace
		// invalid UTF-8 and so change them.
		want := CheckpointHeader{
			Tenant:  strings.ToValidUTF8(tenant, "?"),
			Session: strings.ToValidUTF8(session, "?"),
			Label:   strings.ToValidUTF8(label, "?"),
		}
		path := filepath.Join(dir, "c.ckpt")
		read := func(b []byte, key []byte, want CheckpointHeader) ([]byte, error) {
			t.Helper()
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return ReadCheckpoint(path, key, want)
		}

		// Any file.
		if got, err := read(file, fuzzKey, want); err != nil {
			checkRefused(t, "any file", got, err)
		} else if !verifies(file, got, want) {
			t.Fatalf("ReadCheckpoint accepted %q (payload %q), which does not verify for %+v", file, got, want)
		}

		// Any header line, signed.
		signed := signedFile(headerLine, payload)
		got, err := read(signed, fuzzKey, want)
		var h CheckpointHeader
		ok := !bytes.ContainsRune(headerLine, '\n') && json.Unmarshal(headerLine, &h) == nil &&
			h.Size == int64(len(payload)) && h.Tenant == want.Tenant && h.Session == want.Session && h.Label == want.Label
		switch {
		case ok && err != nil:
			t.Fatalf("signed file with header %q refused: %v", headerLine, err)
		case ok && !bytes.Equal(got, payload):
			t.Fatalf("signed file with header %q read as %q, want %q", headerLine, got, payload)
		case !ok && err == nil:
			t.Fatalf("signed file with header %q accepted for %+v", headerLine, want)
		case !ok:
			checkRefused(t, "signed file", got, err)
		}

		// What WriteCheckpoint writes.
		if err := WriteCheckpoint(path, fuzzKey, want, payload); err != nil {
			t.Fatal(err)
		}
		valid, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ReadCheckpoint(path, fuzzKey, want); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("ReadCheckpoint(WriteCheckpoint(%q)) = %q, %v", payload, got, err)
		}
		if mask == 0 {
			mask = 0x01
		}
		i := int(at % uint(len(valid)))
		flipped := bytes.Clone(valid)
		flipped[i] ^= mask
		for what, b := range map[string][]byte{
			"one byte changed": flipped,
			"cut short":        valid[:i],
			"extended":         append(bytes.Clone(valid), mask),
		} {
			got, err := read(b, fuzzKey, want)
			checkRefused(t, what, got, err)
		}
		got, err = read(valid, []byte("another key of thirty-two bytes!"), want)
		checkRefused(t, "another key", got, err)
		other := want
		other.Label += "x"
		got, err = read(valid, fuzzKey, other)
		checkRefused(t, "another label", got, err)
	})
}

// fastTempDir is a temporary directory in memory where there is one:
// WriteCheckpoint syncs the file and its directory, which on a shared disk
// takes milliseconds and stalls for seconds while others write, and the
// fuzzer calls it on every input.
func fastTempDir(tb testing.TB) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "solo-fuzz-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

func checkRefused(t *testing.T, what string, got []byte, err error) {
	t.Helper()
	if !errors.Is(err, ErrCheckpointRefused) {
		t.Fatalf("%s: ReadCheckpoint gave %v, want ErrCheckpointRefused", what, err)
	}
	if got != nil {
		t.Fatalf("%s: refused, yet %d bytes of payload were returned", what, len(got))
	}
}

// signedFile is a checkpoint file with header line hl, signed with
// fuzzKey, in the documented layout, made without the package's writer.
func signedFile(hl, payload []byte) []byte {
	head := append([]byte(checkpointMagic), hl...)
	head = append(head, '\n')
	m := hmac.New(sha256.New, fuzzKey)
	m.Write(head)
	m.Write(payload)
	var b bytes.Buffer
	b.Write(head)
	b.WriteString(hex.EncodeToString(m.Sum(nil)))
	b.WriteByte('\n')
	b.Write(payload)
	return b.Bytes()
}

// verifies reports whether file is a checkpoint of payload for want,
// signed with fuzzKey: the reference reading of the layout.
func verifies(file, payload []byte, want CheckpointHeader) bool {
	magic, rest, ok := bytes.Cut(file, []byte("\n"))
	if !ok || string(magic)+"\n" != checkpointMagic {
		return false
	}
	hl, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return false
	}
	var h CheckpointHeader
	if json.Unmarshal(hl, &h) != nil || h.Tenant != want.Tenant || h.Session != want.Session || h.Label != want.Label {
		return false
	}
	mac, body, ok := bytes.Cut(rest, []byte("\n"))
	return ok && bytes.Equal(body, payload) && h.Size == int64(len(payload)) && bytes.Equal(signedFile(hl, payload), file) && len(mac) == 64
}

// checkpointBytes is what WriteCheckpoint writes for h and payload under
// fuzzKey.
func checkpointBytes(h CheckpointHeader, payload []byte) []byte {
	h.Size = int64(len(payload))
	hb, err := json.Marshal(h)
	if err != nil {
		panic(err)
	}
	return signedFile(hb, payload)
}
