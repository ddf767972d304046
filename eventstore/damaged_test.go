package eventstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/storetest"
)

var updateFixtures = flag.Bool("update", false, "rewrite the damaged database fixtures in testdata/damaged")

const fixtureDir = "../testdata/damaged"

// marker is a payload written into the middle of the fixture log, so the
// bad-record fixture can find that envelope's bytes in the file.
const marker = `{"marker":"damage-me-here"}`

// TestDamagedFiles opens each shipped damaged file: the result is a clear
// ErrCorrupt, never a panic, and the file is left as it was.
func TestDamagedFiles(t *testing.T) {
	if *updateFixtures {
		writeFixtures(t)
	}
	cases := []struct {
		file   string
		atOpen bool   // Open itself must refuse it
		says   string // the error names the problem
	}{
		{"truncated.db", true, "truncated"},
		{"garbage.db", true, "no valid bbolt meta page"},
		{"badmeta.db", true, "restore it from a backup"},
		{"badrecord.db", false, "does not decode"},
		{"tiny.db", true, "no valid bbolt meta page"},
		{"good.db", false, ""}, // the control: the same file, undamaged
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join(fixtureDir, c.file))
			require.NoError(t, err, "fixture missing: run go test ./eventstore -run TestDamagedFiles -update")
			path := filepath.Join(t.TempDir(), c.file)
			require.NoError(t, os.WriteFile(path, orig, 0o600))

			s, err := eventstore.Open(path, nil)
			if c.atOpen {
				require.ErrorIs(t, err, eventstore.ErrCorrupt)
				assert.Contains(t, err.Error(), c.says)
				assert.Contains(t, err.Error(), path, "the error names the file")
			} else if c.says == "" {
				require.NoError(t, err)
				rep, err := s.Check(context.Background())
				require.NoError(t, err)
				assert.Equal(t, uint64(200), rep.Events)
				require.NoError(t, s.Close())
			} else {
				require.NoError(t, err)
				_, err = s.Check(context.Background())
				require.ErrorIs(t, err, eventstore.ErrCorrupt)
				assert.Contains(t, err.Error(), c.says)
				var readErr error
				for _, err := range s.Read(1, 0) {
					if err != nil {
						readErr = err
					}
				}
				require.ErrorIs(t, readErr, eventstore.ErrCorrupt, "reading past the bad record")
				require.NoError(t, s.Close())
			}
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			if c.atOpen {
				assert.True(t, bytes.Equal(orig, after), "a refused file was modified")
			}
		})
	}
}

func writeFixtures(t *testing.T) {
	require.NoError(t, os.MkdirAll(fixtureDir, 0o755))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := eventstore.Open(good, nil)
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		e := storetest.Ev("default", "web", "tick", i)
		if i == 100 {
			e.Data = []byte(marker)
		}
		_, err := s.Append(ctx, e)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	// bbolt grows files in large steps; cut the file to its high-water
	// mark (meta page at byte 16, page id at meta+40), which bbolt accepts,
	// so the fixtures stay small and "truncated" really cuts into data.
	high := int(binary.LittleEndian.Uint64(b[16+40:]))
	if h1 := int(binary.LittleEndian.Uint64(b[4096+16+40:])); h1 > high {
		high = h1
	}
	b = b[:high*4096]

	write := func(name string, data []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(fixtureDir, name), data, 0o644))
	}
	write("truncated.db", b[:len(b)-4096-100])
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + i/13)
	}
	write("garbage.db", garbage)
	badmeta := bytes.Clone(b)
	for _, off := range []int{16 + 56, 4096 + 16 + 56} { // both meta checksums
		badmeta[off] ^= 0xff
	}
	write("badmeta.db", badmeta)
	badrecord := bytes.Clone(b)
	i := bytes.Index(badrecord, []byte("damage-me-here"))
	require.Positive(t, i, "marker not found in the file")
	badrecord[i] ^= 0x01
	write("badrecord.db", badrecord)
	write("tiny.db", []byte("not a database"))
	write("good.db", b)
}
