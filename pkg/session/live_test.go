package session

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/state"
)

func mustOpenLive(t *testing.T, path string, attempt int, limit int64) *liveTask {
	t.Helper()
	l, err := openLiveTask(path, attempt, limit, time.Hour, hclog.NewNullLogger())
	require.NoError(t, err)
	t.Cleanup(l.finish)
	return l
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestLiveTask_Write(t *testing.T) {
	t.Run("each output is in the file as it arrives, rendered", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tasks", "a.out")
		l := mustOpenLive(t, path, 1, 100)
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "outputs may hold anything: the file is private")

		l.addOutput(stream("a"))
		assert.Equal(t, "a", readFile(t, path), "written at once, without waiting for a sync or the end")
		l.addOutput(stream("b\n"))
		l.addOutput(resultOut("42"))
		want := "ab\n42\n"
		assert.Equal(t, want, readFile(t, path))
		assert.Equal(t, want, string(Render([]state.TaskOutput{stream("a"), stream("b\n"), resultOut("42")}, false)),
			"the file is what Render gives")
		size, done, _ := l.written()
		assert.Equal(t, int64(len(want)), size)
		assert.False(t, done)

		size, trunc := l.flush()
		assert.Equal(t, int64(len(want)), size)
		assert.False(t, trunc)
		l.addOutput(stream("late"))
		assert.Equal(t, want, readFile(t, path), "nothing is written after the flush that precedes the end")
	})
	t.Run("bounded: the bound is kept and the cut is said", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.out")
		l := mustOpenLive(t, path, 1, 20)
		l.addOutput(stream("0123456789"))
		l.addOutput(stream("abcdefghijklmnop"))
		l.addOutput(stream("never"))
		got := readFile(t, path)
		assert.Equal(t, "0123456789abcdefghij"+truncatedNote, got)
		size, trunc := l.flush()
		assert.True(t, trunc)
		assert.Equal(t, int64(len(got)), size)
	})
	t.Run("a cut never splits a character", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.out")
		l := mustOpenLive(t, path, 1, 4)
		l.addOutput(stream("abcé")) // é is 2 bytes, at 3 and 4
		assert.Equal(t, "abc"+truncatedNote, readFile(t, path))
	})
	t.Run("a retry appends after a note, within the same bound", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.out")
		l := mustOpenLive(t, path, 1, 60)
		l.addOutput(stream("first try"))
		l.finish()
		l2 := mustOpenLive(t, path, 2, 60)
		l2.addOutput(stream("second\n"))
		assert.Equal(t, "first try\n[solo: attempt 2]\nsecond\n", readFile(t, path))

		full := filepath.Join(t.TempDir(), "b.out")
		l3 := mustOpenLive(t, full, 1, 4)
		l3.addOutput(stream("too long"))
		l3.finish()
		l4 := mustOpenLive(t, full, 2, 4)
		l4.addOutput(stream("more"))
		_, trunc := l4.flush()
		assert.True(t, trunc)
		assert.Equal(t, "too "+truncatedNote, readFile(t, full), "a file already cut stays as it is")
	})
	t.Run("a start that was not recorded leaves no empty file behind", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.out")
		l := mustOpenLive(t, path, 1, 100)
		l.discard()
		assert.NoFileExists(t, path)
		l2 := mustOpenLive(t, path, 1, 100)
		l2.addOutput(stream("kept"))
		l2.discard()
		assert.FileExists(t, path, "a file with output is never discarded")
	})
	t.Run("a file that cannot be opened: the task runs, its output is lost and marked cut", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks"), nil, 0o600)) // a file where the directory goes
		l, err := openLiveTask(filepath.Join(dir, "tasks", "a.out"), 1, 100, time.Hour, hclog.NewNullLogger())
		require.Error(t, err)
		l.addOutput(stream("x"))
		size, trunc := l.flush()
		assert.Zero(t, size)
		assert.True(t, trunc)
		l.finish()
	})
}

// A reader of a task's output takes the live task, then asks it for its
// change channel; the task may finish in between (its end recorded, the
// worker done with it). The channel it then gets must already be closed:
// nothing will change any more, and a reader waiting on it would wait for
// good (solo exec --wait hung so under load).
func TestLiveTask_FinishedWakesLateReaders(t *testing.T) {
	l := mustOpenLive(t, filepath.Join(t.TempDir(), "a.out"), 1, 100)
	_, _, early := l.written()
	l.addOutput(stream("a"))
	select {
	case <-early:
	default:
		t.Fatal("an output does not wake the readers")
	}
	_, _, before := l.written()
	l.flush()
	l.finish()
	for _, c := range []<-chan struct{}{before, func() <-chan struct{} { _, _, c := l.written(); return c }()} {
		select {
		case <-c:
		default:
			t.Fatal("a reader of a finished task waits for a change that never comes")
		}
	}
	l.finish() // idempotent
}

func TestLeaseEnd(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := 24 * time.Hour
	running := &state.Task{State: state.TaskStateRunning}
	ended := &state.Task{State: state.TaskStateFailed, EndedAt: t0.Add(time.Hour)}
	cases := []struct {
		name        string
		asset       state.Asset
		task        *state.Task
		now         time.Time
		wantEnd     time.Time
		wantHeld    bool
		wantCollect bool
	}{
		{"a file whose lease runs is kept", state.Asset{Kind: state.AssetFile, ExpiresAt: t0}, nil, t0.Add(-time.Nanosecond), t0, false, false},
		{"a file whose lease ended is collected", state.Asset{Kind: state.AssetFile, ExpiresAt: t0}, nil, t0, t0, false, true},
		{"a running task's output is held whatever the time", state.Asset{Kind: state.AssetOutput, AddedAt: t0}, running, t0.Add(1000 * ttl), time.Time{}, true, false},
		{"... even with a lease recorded just before its end", state.Asset{Kind: state.AssetOutput, ExpiresAt: t0}, running, t0.Add(ttl), time.Time{}, true, false},
		{"an output with a recorded lease follows it", state.Asset{Kind: state.AssetOutput, ExpiresAt: t0.Add(ttl)}, ended, t0.Add(ttl), t0.Add(ttl), false, true},
		{"an ended task's output without a lease: from its end", state.Asset{Kind: state.AssetOutput, AddedAt: t0}, ended, t0.Add(ttl), t0.Add(time.Hour + ttl), false, false},
		{"... collected a ttl after its end", state.Asset{Kind: state.AssetOutput, AddedAt: t0}, ended, t0.Add(time.Hour + ttl), t0.Add(time.Hour + ttl), false, true},
		{"an output whose task is unknown: from when it was added", state.Asset{Kind: state.AssetOutput, AddedAt: t0}, nil, t0.Add(ttl), t0.Add(ttl), false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end, held := leaseEnd(&tc.asset, tc.task, ttl)
			assert.Equal(t, tc.wantEnd, end)
			assert.Equal(t, tc.wantHeld, held)
			assert.Equal(t, tc.wantCollect, collectable(&tc.asset, tc.task, ttl, tc.now))
		})
	}
}

func TestRenewDue(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := 8 * time.Hour
	cases := []struct {
		name string
		end  time.Time
		want bool
	}{
		{"just granted", t0.Add(ttl), false},
		{"less than an eighth of the ttl ago", t0.Add(ttl - time.Hour + time.Second), false},
		{"an eighth of the ttl ago", t0.Add(ttl - time.Hour), true},
		{"about to end", t0.Add(time.Second), true},
		{"ended, not yet collected", t0.Add(-time.Hour), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, renewDue(tc.end, t0, ttl))
		})
	}
}

func TestCleanAssetPath(t *testing.T) {
	cases := []struct {
		in, want, mention string
	}{
		{"out.csv", "out.csv", ""},
		{"data/./b/../out.csv", "data/out.csv", ""},
		{"", "", "empty"},
		{"/etc/passwd", "", "absolute"},
		{"../other/x", "", "escapes"},
		{"data/../../x", "", "escapes"},
		{"..", "", "escapes"},
		{".", "", "session's directory"},
		{"kernel.json", "", "Solo's own"},
		{"checkpoints/one.ckpt", "", "Solo's own"},
		{"tasks/x.out", "", "Solo's own"},
		{"data/../tasks/x.out", "", "Solo's own"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := cleanAssetPath(tc.in)
			if tc.mention == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid), "%v", err)
			assert.True(t, strings.Contains(err.Error(), tc.mention), "%v", err)
		})
	}
}
