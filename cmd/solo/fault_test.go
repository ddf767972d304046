package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/internal/tmpfs"
	"github.com/solo-rt/solo/pkg/state"
)

// sockGet GETs path from dir's daemon over its unix socket.
func sockGet(t *testing.T, dir, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	resp, err := hc.Get("http://solo" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// metric returns the value of an unlabelled metric from dir's /metrics.
func metric(t *testing.T, dir, name string) string {
	t.Helper()
	_, body := sockGet(t, dir, "/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

func statusOf(t *testing.T, dir, name string) state.ServiceView {
	t.Helper()
	var v state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", name, "--json")), &v))
	return v
}

// runningPID waits until name runs with a pid other than not, and returns it.
func runningPID(t *testing.T, dir, name string, not int) int {
	t.Helper()
	var v state.ServiceView
	require.Eventually(t, func() bool {
		v = statusOf(t, dir, name)
		return v.State == state.StateRunning && v.PID > 0 && v.PID != not
	}, 60*time.Second, 20*time.Millisecond, "%s never ran (last: %+v)", name, v)
	return v.PID
}

// TestDaemon_DiskFull is the first fault of issue 11 through the real
// binary: a data dir on a small tmpfs that fills up. The daemon keeps its
// services, says what is wrong on /readyz, in /metrics and its log, refuses
// deploys with a clear message, and catches up once space is back.
func TestDaemon_DiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 16<<20)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "keep", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "victim", "--", "sleep", "1000")
	keep := runningPID(t, dir, "keep", 0)
	victim := runningPID(t, dir, "victim", 0)

	tmpfs.Fill(t, dir)
	// bbolt reuses free pages of its file, so small commits can succeed on
	// a full disk: deploy fillers, large then small, until one is refused.
	// Each is a new service, deployed without waiting for its start: a
	// redeploy would wait for the old instance's exit to be recorded,
	// which a full disk holds back (see the note on issue 11).
	for _, size := range []int{16000, 1000, 1} {
		refused := false
		for i := 0; i < 10000 && !refused; i++ {
			r := cli(t, dir, "deploy", fmt.Sprintf("filler-%d-%d", size, i), "--no-wait", "--env", "PAD="+strings.Repeat("x", size), "--", "sleep", "1000")
			refused = r.code != 0
			if refused {
				require.Contains(t, r.stderr, "no space left on device")
			}
		}
		require.True(t, refused, "deploys still succeed on a full disk")
	}
	// Then the smallest event there is, a signal (SIGWINCH: sleep ignores
	// it), until refused too: a deploy carries the caller's directory, so
	// how full "too full for a deploy" is depends on where the test runs;
	// the victim's exit, larger than a signal, must find no room either.
	for i := 0; ; i++ {
		r := cli(t, dir, "signal", "keep", "WINCH")
		if r.code != 0 {
			require.Contains(t, r.stderr, "no space left on device")
			break
		}
		require.Less(t, i, 10000, "signals still recorded on a full disk")
	}
	// The last accepted filler's own facts (the old instance's exit, the
	// new one's start) may be waiting for the log too, however the event
	// sizes fall: count from what waits before the kill.
	before, err := strconv.Atoi(metric(t, dir, "solo_store_pending_facts"))
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	// The victim's exit waits for the log: one more fact waits, the victim
	// is gone, and the log (the world) still has it running.
	require.Eventually(t, func() bool {
		n, err := strconv.Atoi(metric(t, dir, "solo_store_pending_facts"))
		return err == nil && n > before && !alive(victim) && statusOf(t, dir, "victim").PID == victim
	}, 60*time.Second, 20*time.Millisecond, "the victim's exit is not waiting for the log")
	assert.Equal(t, "0", metric(t, dir, "solo_store_writable"))
	code, body := sockGet(t, dir, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "event log cannot be written (no space left on device)")
	assert.Contains(t, d.logs.String(), "the event log cannot be written")

	r := cli(t, dir, "deploy", "new", "--", "sleep", "1000")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no space left on device")
	assert.Contains(t, r.stderr, "nothing was changed")
	assert.True(t, alive(keep), "keep was stopped because the log could not be written")

	tmpfs.Free(t, dir)
	runningPID(t, dir, "victim", victim)
	require.Eventually(t, func() bool {
		code, _ := sockGet(t, dir, "/readyz")
		return code == http.StatusOK
	}, 60*time.Second, 20*time.Millisecond, "/readyz did not recover")
	assert.Equal(t, "1", metric(t, dir, "solo_store_writable"))
	assert.Equal(t, keep, statusOf(t, dir, "keep").PID)
	events := mustCLI(t, dir, "events", "--json")
	assert.Contains(t, events, `"signal":"SIGKILL"`, "the exit that waited for space is in the log")
	mustCLI(t, dir, "verify")
}

// crashedDaemon runs a daemon with two services, SIGKILLs it, and returns
// the services' pids, which live on.
func crashedDaemon(t *testing.T, dir string) []int {
	t.Helper()
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "a", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "b", "--", "sleep", "1000")
	pids := []int{runningPID(t, dir, "a", 0), runningPID(t, dir, "b", 0)}
	d.kill()
	return pids
}

// refused starts a daemon on dir that must refuse to start, touching none
// of pids, and returns what it said.
func refused(t *testing.T, dir string, pids []int) string {
	t.Helper()
	d, err := spawnDaemon(dir)
	require.NoError(t, err)
	d.t = t
	t.Cleanup(d.kill)
	code := d.wait(60 * time.Second)
	assert.NotEqual(t, 0, code, "the daemon started:\n%s", d.logs)
	for _, pid := range pids {
		assert.True(t, alive(pid), "pid %d was stopped by a daemon that could not read its log", pid)
	}
	return d.logs.String()
}

// TestDaemon_EmptyDatabase: solo.db truncated to zero bytes under running
// services is damage, not a new log; before, every service was stopped as
// a stray.
func TestDaemon_EmptyDatabase(t *testing.T) {
	dir := dataDir(t)
	pids := crashedDaemon(t, dir)
	db := filepath.Join(dir, "solo.db")
	require.NoError(t, os.Truncate(db, 0))
	out := refused(t, dir, pids)
	assert.Contains(t, out, "the file is empty")
	assert.Contains(t, out, "restore it from a backup")
	fi, err := os.Stat(db)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "the empty file was written")
}

// TestDaemon_MissingDatabase: solo.db deleted under running services; the
// daemon does not start a new log that would take them for strays.
func TestDaemon_MissingDatabase(t *testing.T) {
	dir := dataDir(t)
	pids := crashedDaemon(t, dir)
	db := filepath.Join(dir, "solo.db")
	require.NoError(t, os.Remove(db))
	out := refused(t, dir, pids)
	assert.Contains(t, out, "does not exist, but 2 processes started from this data dir still run")
	_, err := os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "a new log was created")
}

// TestDaemon_DamagedHistory: 4 KiB of random bytes over the page that
// holds the first deploy, in the log of a crashed daemon; the next daemon
// refuses the file, names the damage, and touches no process. Before, it
// started, took deploys, and failed later in `solo events` and backups.
func TestDaemon_DamagedHistory(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	const mark = "damage-this-page"
	mustCLI(t, dir, "deploy", "a", "--env", "MARK="+mark, "--", "sleep", "1000")
	for i := range 20 {
		mustCLI(t, dir, "deploy", "h", "--env", "I="+strings.Repeat("x", 1000)+string(rune('a'+i)), "--", "sleep", "1000")
	}
	pids := []int{runningPID(t, dir, "a", 0), runningPID(t, dir, "h", 0)}
	d.kill()

	path := filepath.Join(dir, "solo.db")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	at := strings.Index(string(b), mark)
	require.Positive(t, at, "the deploy is not in the file")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	junk := make([]byte, 4096)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range junk {
		junk[i] = byte(rnd.Uint32())
	}
	_, err = f.WriteAt(junk, int64(at/4096*4096))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	out := refused(t, dir, pids)
	assert.Contains(t, out, "database is damaged")
	// With no daemon, db check reads the file itself and lists the damage.
	r := cli(t, dir, "db", "check")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "bbolt: ")
}

// TestCLI_BackupOfDamagedLog: a log whose pages are whole but one event is
// not (no daemon can start on it: the fold reads that event); its backup is
// refused, and FILE is not written. Before, the damaged copy was written
// and the command exited 0.
func TestCLI_BackupOfDamagedLog(t *testing.T) {
	dir := dataDir(t)
	b, err := os.ReadFile("../../testdata/damaged/badrecord.db")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "solo.db"), b, 0o600))
	dst := filepath.Join(dir, "backup.db")
	r := cli(t, dir, "db", "backup", dst)
	assert.Equal(t, 1, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "the copy is damaged")
	_, err = os.Stat(dst)
	assert.ErrorIs(t, err, os.ErrNotExist, "the damaged backup was written")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".solo-backup-"), "temporary copy left: %s", e.Name())
	}

	// A good log's backup, through a daemon, is written and checks clean.
	good := dataDir(t)
	startDaemon(t, good)
	mustCLI(t, good, "deploy", "x", "--", "sleep", "1000")
	dst = filepath.Join(good, "backup.db")
	mustCLI(t, good, "db", "backup", dst)
	_, err = os.Stat(dst)
	require.NoError(t, err)
}
