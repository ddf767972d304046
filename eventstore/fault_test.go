package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/storetest"
	"github.com/solo-rt/solo/internal/tmpfs"
)

// TestStore_AppendDiskFull runs the store on a real 8 MiB tmpfs and fills
// it: appends fail with ErrNotWritten wrapping ENOSPC, write nothing, leave
// the file consistent, and succeed again once space is freed; every
// acknowledged event is there after a reopen.
func TestStore_AppendDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	path := filepath.Join(dir, "solo.db")
	s, err := eventstore.Open(path, nil)
	require.NoError(t, err)
	defer func() { s.Close() }()
	ctx := context.Background()
	big := json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 2000)))
	event := func(n int) eventstore.Event {
		return eventstore.Event{Type: "t", Tenant: "default", Subject: fmt.Sprintf("s%d", n%7), Actor: "local", Data: big}
	}
	acked := 0
	for ; acked < 50; acked++ {
		_, err := s.Append(ctx, event(acked))
		require.NoError(t, err)
	}

	tmpfs.Fill(t, dir)
	var failed error
	for i := 0; i < 5000 && failed == nil; i++ {
		if _, err := s.Append(ctx, event(acked)); err != nil {
			failed = err
		} else {
			acked++ // fitted in pages the file already had
		}
	}
	require.Error(t, failed, "appends kept succeeding on a full disk")
	require.ErrorIs(t, failed, eventstore.ErrNotWritten)
	require.ErrorIs(t, failed, syscall.ENOSPC, "the error tells a full disk")
	assert.Equal(t, uint64(acked), s.Head(), "a refused append moved the head")
	assert.NotZero(t, s.Stats().WriteFailures)
	// Still refused while full, and the store stays usable for reads.
	_, err = s.Append(ctx, event(acked))
	require.ErrorIs(t, err, eventstore.ErrNotWritten)
	assert.Len(t, storetest.ReadAll(t, s, 1), acked)

	tmpfs.Free(t, dir)
	for range 20 {
		_, err := s.Append(ctx, event(acked))
		require.NoError(t, err, "append after space came back")
		acked++
	}
	_, err = s.Check(ctx)
	require.NoError(t, err, "the file after a refused commit")
	require.NoError(t, s.Close())

	s, err = eventstore.Open(path, nil)
	require.NoError(t, err)
	_, err = s.Check(ctx)
	require.NoError(t, err)
	envs := storetest.ReadAll(t, s, 1)
	require.Len(t, envs, acked, "every acknowledged event, and nothing else")
	for i, env := range envs {
		require.Equal(t, uint64(i+1), env.Pos, "positions are gapless")
	}
}

// TestOpen_EmptyFile: an existing empty solo.db is damage (truncated or
// replaced), never a new log; Open refuses it and leaves it as it is.
// Before, bbolt initialised it, every service was forgotten and their
// processes stopped as strays.
func TestOpen_EmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err := eventstore.Open(path, nil)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
	assert.Contains(t, err.Error(), "empty")
	assert.Contains(t, err.Error(), path)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "the refused file was written")
}

// TestOpen_Creates: a new log is made whole or not at all, with nothing
// left beside it.
func TestOpen_Creates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "solo.db")
	s, err := eventstore.Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary files left: %v", entries)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.NotZero(t, fi.Size())
	s, err = eventstore.Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestOpen_DamagedHistory overwrites 4 KiB of an old page with random
// bytes while the store is closed: Open refuses the file, naming what is
// damaged, instead of taking appends and failing later in reads.
func TestOpen_DamagedHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	s, err := eventstore.Open(path, nil)
	require.NoError(t, err)
	batch := make([]eventstore.Event, 500)
	for i := 0; i < 4000; i += len(batch) {
		for j := range batch {
			batch[j] = storetest.Ev("default", fmt.Sprintf("svc%d", (i+j)%50), "service_started", i+j)
		}
		_, err := s.Append(context.Background(), batch...)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	junk := make([]byte, 4096)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(rnd.Uint32())
	}
	_, err = f.WriteAt(junk, 16384)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	_, err = eventstore.Open(path, nil)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
	var ce *eventstore.CheckError
	require.ErrorAs(t, err, &ce)
	assert.NotEmpty(t, ce.Problems)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "restore it from a backup")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused file was written")
}

// TestCheckFile checks files no store has open: a good copy passes, a
// damaged one is refused, and neither is modified.
func TestCheckFile(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		file string
		ok   bool
	}{
		{"good.db", true},
		{"badrecord.db", false},
		{"truncated.db", false},
		{"garbage.db", false},
		{"tiny.db", false},
	} {
		t.Run(c.file, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join(fixtureDir, c.file))
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), c.file)
			require.NoError(t, os.WriteFile(path, orig, 0o600))
			rep, err := eventstore.CheckFile(ctx, path)
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, uint64(200), rep.Events)
			} else {
				require.ErrorIs(t, err, eventstore.ErrCorrupt)
				assert.Contains(t, err.Error(), path)
			}
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, orig, after, "CheckFile modified the file")
		})
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err := eventstore.CheckFile(ctx, empty)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
}
