package session_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/kernel"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// mustOpenRuntime opens a runtime on a temp dir with kernels run by the
// test's python; it is shut down at cleanup.
func mustOpenRuntime(tb testing.TB) *solo.Runtime {
	tb.Helper()
	py := kerneltest.Python(tb)
	dir, err := os.MkdirTemp("", "solo-sess-")
	require.NoError(tb, err)
	rt, err := solo.Open(context.Background(), solo.Options{DataDir: dir, Python: py})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		rt.Shutdown(context.Background(), "test", 5*time.Second)
		os.RemoveAll(dir)
	})
	return rt
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// run submits code and waits for its end.
func run(tb testing.TB, m *session.Manager, name, code string) *state.Task {
	tb.Helper()
	ctx := ctxT(tb)
	t, err := m.Submit(ctx, "", name, code, session.SubmitOptions{})
	require.NoError(tb, err)
	t, err = m.Wait(ctx, t.ID)
	require.NoError(tb, err)
	return t
}

// text returns what `solo task output` prints for tk.
func text(tb testing.TB, m *session.Manager, tk *state.Task) string {
	tb.Helper()
	var b strings.Builder
	require.NoError(tb, m.Output(ctxT(tb), tk.ID, false, func(p []byte) error { b.Write(p); return nil }))
	return b.String()
}

func TestManager_Exec(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	v, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	assert.Equal(t, "session.nb", v.Service)
	_, err = m.Create(ctx, "", "nb", "", "")
	assert.ErrorIs(t, err, session.ErrExists)
	_, err = m.Create(ctx, "", "r", "ruby", "")
	assert.ErrorIs(t, err, session.ErrInvalid)

	st, err := os.Stat(filepath.Join(rtDir(t, rt), "sessions", "default", "nb", "kernel.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the connection file holds the key")

	// Submitted before the kernel is up: they queue, and run in order.
	var ids []string
	for i := range 5 {
		tk, err := m.Submit(ctx, "", "nb", "seen = globals().get('seen', []) + ["+string(rune('0'+i))+"]", session.SubmitOptions{})
		require.NoError(t, err)
		assert.Equal(t, state.TaskStatePending, tk.State)
		ids = append(ids, tk.ID)
	}
	for _, id := range ids {
		tk, err := m.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, state.TaskStateCompleted, tk.State)
	}
	assert.Equal(t, "[0, 1, 2, 3, 4]\n", text(t, m, run(t, m, "nb", "seen")))

	tk := run(t, m, "nb", "x = 41\nprint('hello')\nx + 1")
	assert.Equal(t, state.TaskStateCompleted, tk.State)
	assert.Equal(t, "hello\n42\n", text(t, m, tk))

	tk = run(t, m, "nb", "1/0")
	assert.Equal(t, state.TaskStateFailed, tk.State)
	assert.Equal(t, state.FailError, tk.Reason)
	assert.Equal(t, "ZeroDivisionError", tk.EName)
	assert.NotEmpty(t, tk.Traceback)
	assert.Equal(t, "42\n", text(t, m, run(t, m, "nb", "x + 1")), "an error does not stop the queue")

	v, err = m.Get("", "nb")
	require.NoError(t, err)
	assert.Equal(t, "ready", v.State)
	// The kernel bound ports of its own choosing and wrote them to a file
	// of its instance; the session's file keeps ports 0 for the next start.
	assertKernelFile(t, rt, "nb", v.PID)

	// Sessions run, and the runtime's follower is the one subscriber of
	// the log: the manager reads its sessions there and has none of its
	// own. (A subscription counts once live, and stays live unless it
	// falls behind.)
	stats := rt.Store().Stats()
	require.Zero(t, stats.Overflows, "a subscriber fell behind: the count proves nothing")
	assert.Equal(t, 1, stats.Subscribers, "subscribers of the log once sessions run")

	require.NoError(t, m.Remove(ctx, "", "nb"))
	_, err = m.Get("", "nb")
	assert.ErrorIs(t, err, session.ErrNotFound)
	_, err = m.Submit(ctx, "", "nb", "1", session.SubmitOptions{})
	assert.ErrorIs(t, err, session.ErrNotFound)
}

func rtDir(t *testing.T, rt *solo.Runtime) string {
	return rt.DataDir()
}

// assertKernelFile checks that session name's kernels/ holds the
// connection file of the instance pid alone, bound, mode 0600, and that
// the session's own connection file still has no ports.
func assertKernelFile(t *testing.T, rt *solo.Runtime, name string, pid int) {
	t.Helper()
	dir := filepath.Join(rtDir(t, rt), "sessions", "default", name)
	tpl, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	require.NoError(t, err)
	var conn kernel.ConnectionInfo
	require.NoError(t, json.Unmarshal(tpl, &conn))
	assert.False(t, conn.Bound(), "the session's connection file leaves the ports to each start: %s", tpl)
	ents, err := os.ReadDir(filepath.Join(dir, "kernels"))
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	mine := strconv.Itoa(pid) + ".json"
	assert.Equal(t, []string{mine}, names, "the files of earlier instances are removed")
	info, err := kernel.ReadConnectionFile(filepath.Join(dir, "kernels", mine))
	require.NoError(t, err)
	assert.Equal(t, conn.Key, info.Key, "the kernel keeps the session's key")
	st, err := os.Stat(filepath.Join(dir, "kernels", mine))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the connection file holds the key")
}

func TestManager_OutputFollow(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	tk, err := m.Submit(ctx, "", "nb", "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.1)", session.SubmitOptions{})
	require.NoError(t, err)

	// Two readers; one never reads. Neither may block the task or the other.
	var fast strings.Builder
	slowStarted := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		assert.NoError(t, m.Output(ctx, tk.ID, true, func(b []byte) error { fast.Write(b); return nil }))
	}()
	block := make(chan struct{})
	go func() {
		defer wg.Done()
		once := sync.Once{}
		m.Output(ctx, tk.ID, true, func(b []byte) error {
			once.Do(func() { close(slowStarted) })
			<-block
			return nil
		})
	}()
	done, err := m.Wait(ctx, tk.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateCompleted, done.State)
	<-slowStarted
	close(block)
	wg.Wait()
	assert.Equal(t, "0\n1\n2\n3\n4\n", fast.String())
}

func TestManager_Cancel(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	long, err := m.Submit(ctx, "", "nb", "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\nafter = 1", session.SubmitOptions{})
	require.NoError(t, err)
	next, err := m.Submit(ctx, "", "nb", "nxt = 1", session.SubmitOptions{})
	require.NoError(t, err)

	c, err := m.Cancel(ctx, next.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateCancelled, c.State)

	// Wait until it runs (its first output), then cancel it.
	waitOutput(t, m, long.ID)
	_, err = m.Cancel(ctx, long.ID)
	require.NoError(t, err)
	l, err := m.Wait(ctx, long.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateFailed, l.State)
	assert.Equal(t, state.FailCancelled, l.Reason)
	// The interrupt ends it as a KeyboardInterrupt; on a loaded machine
	// the kernel can take longer than CancelGrace to act on it, and is
	// then killed and restarted: a cancel too, with no exception name.
	// Either way the cancelled code went no further.
	assert.Contains(t, []string{"KeyboardInterrupt", ""}, l.EName)
	assert.Contains(t, text(t, m, run(t, m, "nb", "print('after' in globals(), 'nxt' in globals())")), "False False")
}

var errStop = stopErr{}

// waitOutput returns once task id has written something.
func waitOutput(tb testing.TB, m *session.Manager, id string) {
	tb.Helper()
	err := m.Output(ctxT(tb), id, true, func([]byte) error { return errStop })
	require.ErrorIs(tb, err, errStop)
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

func TestManager_Checkpoint(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, run(t, m, "nb", "import os\nx = 41\nd = {'a': [1, 2]}\nf = open('/dev/null')").State)

	tk, err := m.Checkpoint(ctx, "", "nb", "one")
	require.NoError(t, err)
	tk, err = m.Wait(ctx, tk.ID)
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, tk.State, "%+v", tk)
	assert.Contains(t, text(t, m, tk), "saved 2 names (d, x)")
	assert.Contains(t, text(t, m, tk), "f, os", "unpicklable names are reported")
	v, _ := m.Get("", "nb")
	assert.Equal(t, []string{"one"}, v.Checkpoints)

	run(t, m, "nb", "x = 0\ndel d")
	tk, err = m.Restore(ctx, "", "nb", "one")
	require.NoError(t, err)
	tk, err = m.Wait(ctx, tk.ID)
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, tk.State, "%+v", tk)
	assert.Equal(t, "42 [1, 2]\n", text(t, m, run(t, m, "nb", "print(x + 1, d['a'])")))

	// Tamper with the file: refused, nothing loaded.
	path := filepath.Join(rtDir(t, rt), "sessions", "default", "nb", "checkpoints", "one.ckpt")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-2] ^= 0x20
	require.NoError(t, os.WriteFile(path, b, 0o600))
	run(t, m, "nb", "x = 0")
	tk, err = m.Restore(ctx, "", "nb", "one")
	require.NoError(t, err)
	tk, err = m.Wait(ctx, tk.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateFailed, tk.State)
	assert.Equal(t, "CheckpointRefused", tk.EName)
	assert.Contains(t, tk.EValue, "signature does not match")
	assert.Equal(t, "0\n", text(t, m, run(t, m, "nb", "x")), "a refused checkpoint loads nothing")
}

func TestManager_KernelDies(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	run(t, m, "nb", "x = 41")
	v, err := m.Get("", "nb")
	require.NoError(t, err)
	pid := v.PID
	require.NotZero(t, pid)

	long, err := m.Submit(ctx, "", "nb", "import time\nprint('go', flush=True)\ntime.sleep(60)", session.SubmitOptions{})
	require.NoError(t, err)
	retry, err := m.Submit(ctx, "", "nb", "import time\nprint('go', flush=True)\ntime.sleep(60)", session.SubmitOptions{Retryable: true})
	require.NoError(t, err)
	after, err := m.Submit(ctx, "", "nb", "print('x' in globals())", session.SubmitOptions{})
	require.NoError(t, err)
	waitOutput(t, m, long.ID)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	l, err := m.Wait(ctx, long.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateFailed, l.State)
	assert.Equal(t, state.FailKernelDied, l.Reason)

	// The retryable one runs on the new kernel; kill that one too, while it
	// runs: it runs a third time, and is then cancelled.
	waitOutput(t, m, retry.ID)
	v, err = m.Get("", "nb")
	require.NoError(t, err)
	assert.Equal(t, 1, v.StateLost, "the restart is recorded as state lost")
	assert.NotEqual(t, pid, v.PID)
	assertKernelFile(t, rt, "nb", v.PID)
	_, err = m.Cancel(ctx, retry.ID)
	require.NoError(t, err)
	r, err := m.Wait(ctx, retry.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateFailed, r.State)
	assert.Equal(t, state.FailCancelled, r.Reason)

	a, err := m.Wait(ctx, after.ID)
	require.NoError(t, err)
	assert.Equal(t, "False\n", text(t, m, a), "the new kernel starts empty")
}

// TestManager_KernelHangs: a kernel that stops answering heartbeats (here
// stopped with SIGSTOP, as a kernel wedged in C code would be) is killed
// through the identity check and restarted; the loss of its state is
// recorded and the next task runs on the new kernel.
func TestManager_KernelHangs(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	run(t, m, "nb", "x = 41")
	v, err := m.Get("", "nb")
	require.NoError(t, err)
	pid := v.PID
	require.NotZero(t, pid)

	events := rt.Events(ctx, rt.Store().Head()+1)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })

	// The hung kernel's exit: killed by SIGKILL, the only way to end a
	// stopped process.
	for {
		env, ok := <-events.C()
		require.True(t, ok, "events ended: %v", events.Err())
		if env.Type != string(state.TypeServiceExited) {
			continue
		}
		p, err := state.Decode(env)
		require.NoError(t, err)
		if ex := p.(state.Exited); ex.PID == pid {
			assert.Equal(t, "SIGKILL", ex.Signal)
			break
		}
	}
	after := run(t, m, "nb", "print('x' in globals())")
	assert.Equal(t, state.TaskStateCompleted, after.State)
	assert.Equal(t, "False\n", text(t, m, after), "the restarted kernel starts empty")
	v, err = m.Get("", "nb")
	require.NoError(t, err)
	assert.NotEqual(t, pid, v.PID)
	assert.Equal(t, 1, v.StateLost, "the restart is recorded as state lost")
}

// TestManager_OutputBounded: a task that prints more than the bound keeps
// the bound, in its output file, and says it was truncated; the file is an
// asset of its session, leased from the task's end.
func TestManager_OutputBounded(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	// 300 lines of 1 KiB: over the 256 KiB bound.
	tk := run(t, m, "nb", "for i in range(300):\n    print('%04d' % i + 'x' * 1019)")
	require.Equal(t, state.TaskStateCompleted, tk.State)
	assert.True(t, tk.Truncated)
	got := text(t, m, tk)
	const note = "\n[solo: output truncated]\n"
	assert.Len(t, got, session.DefaultMaxOutputBytes+len(note))
	assert.True(t, strings.HasSuffix(got, note), "the cut is said at the end")
	assert.True(t, strings.HasPrefix(got, "0000xxx"), "the start is kept")
	assert.Equal(t, int64(len(got)), tk.OutputBytes)

	path := filepath.Join(rtDir(t, rt), "sessions", "default", "nb", "tasks", tk.ID+".out")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, got, string(b), "the output is its file")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Nothing of the output went into the log.
	for env, err := range rt.Store().Read(1, 0) {
		require.NoError(t, err)
		assert.NotContains(t, string(env.Data), "0000xxx", "%s holds output", env.Type)
	}

	vs, err := m.Assets(ctx, "", "nb")
	require.NoError(t, err)
	var found bool
	for _, v := range vs {
		if v.ID == tk.ID {
			found = true
			assert.Equal(t, state.AssetOutput, v.Kind)
			assert.Equal(t, filepath.Join("tasks", tk.ID+".out"), v.Path)
			assert.Equal(t, tk.OutputBytes, v.Size)
			assert.False(t, v.Held)
			assert.WithinDuration(t, time.Now().Add(session.DefaultAssetTTL), v.ExpiresAt, time.Minute)
		}
	}
	assert.True(t, found, "the output is not listed as an asset: %+v", vs)
}

// TestManager_RemoveAndCreateAgain: a session removed and made again under
// the same name runs its tasks. Before, the removed session's worker ended
// without being marked stopped, so the new session got no worker and its
// tasks waited for good.
func TestManager_RemoveAndCreateAgain(t *testing.T) {
	rt := mustOpenRuntime(t)
	m := rt.Sessions()
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateCompleted, run(t, m, "nb", "x = 1").State)
	require.NoError(t, m.Remove(ctx, "", "nb"))
	_, err = m.Create(ctx, "", "nb", "", "")
	require.NoError(t, err)
	tk := run(t, m, "nb", "print(globals().get('x', 'fresh'))")
	assert.Equal(t, state.TaskStateCompleted, tk.State)
	assert.Equal(t, "fresh\n", text(t, m, tk))
}
