package solo_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/internal/tmpfs"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// waitFault waits until the runtime reports (or stops reporting) a store
// fault. The fault is a state, not an event (the log cannot be written),
// so it is read until it holds.
func waitFault(t *testing.T, rt *solo.Runtime, want bool) solo.StoreFault {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, ok := rt.StoreFault()
		if ok == want {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("store fault = %v after 30s, want %v", ok, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exhaust fills the disk under dir and then the free pages inside the
// event log's file (bbolt reuses them, so small commits can still succeed
// on a full disk), until an append is refused: from then on the log cannot
// be written. The fillers are of a type the fold skips.
func exhaust(t *testing.T, rt *solo.Runtime, dir string) {
	t.Helper()
	tmpfs.Fill(t, dir)
	// Large fillers first, then ones as small as a service's exit, so
	// that no page a small record could use is left.
	for _, size := range []int{8000, 1000, 10} {
		filler := eventstore.Event{Type: "test_filler", Tenant: "default", Subject: "filler", Actor: "local",
			Data: []byte(`{"pad":"` + strings.Repeat("x", size) + `"}`)}
		refused := false
		for range 100000 {
			if _, err := rt.Store().Append(context.Background(), filler); err != nil {
				require.ErrorIs(t, err, eventstore.ErrNotWritten)
				refused = true
				break
			}
		}
		require.True(t, refused, "the log could still be written after 100,000 fillers on a full disk")
	}
}

// TestRuntime_DiskFull puts the data dir on a real 16 MiB tmpfs and fills
// it while services run. A service that dies meanwhile cannot have its
// exit recorded: its loop must not end (before, it did, silently, and
// nothing supervised the service again). The daemon says so, refuses new
// writes with a clear error, keeps the other service running, and once
// space comes back records the exit, restarts the service and verifies
// clean.
func TestRuntime_DiskFull(t *testing.T) {
	ctx := context.Background()
	dir := tmpfs.Mount(t, 16<<20)
	rt := MustOpen(t, solo.Options{DataDir: dir, Logs: supervisor.LogOptions{MaxSize: 64 << 10, MaxFiles: 1}})
	ev := follow(t, rt, rt.Store().Head()+1)
	for _, name := range []string{"keep", "victim"} {
		_, err := rt.Deploy(ctx, sleeper(name))
		require.NoError(t, err)
	}
	keepKey, victimKey := state.Key{Tenant: "default", Name: "keep"}, state.Key{Tenant: "default", Name: "victim"}
	pids := startedPIDs(t, ev, keepKey, victimKey)

	exhaust(t, rt, dir)
	// The victim dies (an OOM kill, say) while nothing can be written.
	require.NoError(t, syscall.Kill(pids[victimKey], syscall.SIGKILL))
	f := waitFault(t, rt, true)
	require.ErrorIs(t, f.Err, syscall.ENOSPC)
	assert.NotZero(t, rt.StoreWriteFailures())

	// A write asked for fails at once, clearly, and writes nothing.
	head := rt.Store().Head()
	_, err := rt.Deploy(ctx, sleeper("new"))
	require.ErrorIs(t, err, eventstore.ErrNotWritten)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, head, rt.Store().Head())
	assert.True(t, alive(pids[keepKey]), "a service was stopped because the log could not be written")

	tmpfs.Free(t, dir)
	// Catching up: the exit is recorded, the service restarted.
	_, p := ev.next(victimKey, state.TypeServiceExited)
	assert.Equal(t, "SIGKILL", p.(state.Exited).Signal)
	_, p = ev.next(victimKey, state.TypeServiceStarted)
	assert.Equal(t, 2, p.(state.Started).Attempt)
	waitFault(t, rt, false)
	assert.True(t, alive(pids[keepKey]))
	v, err := rt.Verify(ctx, false)
	require.NoError(t, err)
	assert.True(t, v.Clean, "verify after the fault cleared: %+v", v.Findings)
}

// TestRuntime_DiskFullShutdown drains while a fact waits for space: the
// drain ends within its grace instead of waiting for the disk forever.
func TestRuntime_DiskFullShutdown(t *testing.T) {
	ctx := context.Background()
	dir := tmpfs.Mount(t, 16<<20)
	pruneCgroups(t, dir)
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Backoff: fastBackoff})
	require.NoError(t, err)
	ev := follow(t, rt, rt.Store().Head()+1)
	_, err = rt.Deploy(ctx, sleeper("victim"))
	require.NoError(t, err)
	key := state.Key{Tenant: "default", Name: "victim"}
	pid := startedPIDs(t, ev, key)[key]

	exhaust(t, rt, dir)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFault(t, rt, true)
	done := make(chan error, 1)
	go func() {
		_, err := rt.Shutdown(ctx, "test", 200*time.Millisecond)
		done <- err
	}()
	select {
	case err := <-done:
		// The shutdown events could not be written either; it says so
		// rather than pretend.
		if err != nil && !errors.Is(err, eventstore.ErrNotWritten) {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown on a full disk did not end: a waiting fact held it")
	}
}

// TestOpen_LogMissing: a data dir whose solo.db is gone while processes it
// started still run refuses to open, creates nothing and stops nothing:
// a new log would take every one of them for a stray.
func TestOpen_LogMissing(t *testing.T) {
	dir := dirAbs(t, t.TempDir())
	orphan := exec.Command("sleep", "1000")
	orphan.Env = []string{supervisor.MarkerEnv + "=" + supervisor.Marker{Home: dir, Tenant: "default", Name: "web", Generation: 3, Attempt: 1}.String()}
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, orphan.Start())
	t.Cleanup(func() { orphan.Process.Kill(); orphan.Wait() })

	_, err := solo.Open(context.Background(), solo.Options{DataDir: dir})
	require.ErrorIs(t, err, solo.ErrLogMissing)
	assert.Contains(t, err.Error(), strconv.Itoa(orphan.Process.Pid))
	_, statErr := os.Stat(filepath.Join(dir, "solo.db"))
	assert.ErrorIs(t, statErr, os.ErrNotExist, "a new log was created")
	assert.True(t, alive(orphan.Process.Pid), "the service was stopped")

	// Without such processes, a missing log is a new installation.
	require.NoError(t, orphan.Process.Kill())
	orphan.Wait()
	pruneCgroups(t, dir)
	rt, err := solo.Open(context.Background(), solo.Options{DataDir: dir})
	require.NoError(t, err)
	require.NoError(t, rt.Close(context.Background()))
}
