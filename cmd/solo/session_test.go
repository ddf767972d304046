package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
)

// newSession starts a daemon on a fresh dir and creates session nb on a
// real ipykernel.
func newSession(t *testing.T) (string, *daemon) {
	t.Helper()
	py := kerneltest.Python(t)
	dir := dataDir(t)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "session", "create", "nb", "--python", py)
	return dir, d
}

// crash SIGKILLs the daemon and starts another on dir.
func crash(t *testing.T, dir string, d *daemon) *daemon {
	t.Helper()
	d.signal(syscall.SIGKILL)
	d.wait(10 * time.Second)
	return startDaemon(t, dir)
}

func taskJSON(t *testing.T, dir, id string, args ...string) state.Task {
	t.Helper()
	var tk state.Task
	out := mustCLI(t, dir, append([]string{"task", "status", id, "--json"}, args...)...)
	require.NoError(t, json.Unmarshal([]byte(out), &tk), out)
	return tk
}

func TestCLI_SessionSurvivesDaemonKill(t *testing.T) {
	dir, d := newSession(t)
	out := mustCLI(t, dir, "exec", "nb", "--wait", "--", "x = 41")
	assert.Empty(t, out)
	var before []session.View
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "session", "ls", "--json")), &before))
	require.Len(t, before, 1)
	require.Equal(t, "ready", before[0].State)

	crash(t, dir, d)
	assert.Equal(t, "42\n", mustCLI(t, dir, "exec", "nb", "--wait", "--", "x + 1"), "the kernel was re-adopted with its variables")

	var after []session.View
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "session", "ls", "--json")), &after))
	require.Len(t, after, 1)
	assert.Equal(t, before[0].PID, after[0].PID, "the same kernel process")
	assert.Equal(t, 0, after[0].StateLost)

	// Code on stdin; a failing task exits 1 with its error.
	r := cliIn(t, dir, strings.NewReader("print('from stdin')\n1/0\n"), "exec", "nb", "--wait")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stdout, "from stdin")
	assert.Contains(t, r.stdout, "ZeroDivisionError")
	assert.Contains(t, r.stderr, "failed (error): ZeroDivisionError")

	mustCLI(t, dir, "session", "rm", "nb")
	assert.Equal(t, exitNotFound, cli(t, dir, "exec", "nb", "--", "1").code)
}

func TestCLI_SessionCrashWhileRunning(t *testing.T) {
	dir, d := newSession(t)
	mustCLI(t, dir, "exec", "nb", "--wait", "--", "order = []")
	long := strings.TrimSpace(mustCLI(t, dir, "exec", "nb", "--", "import time\nprint('go', flush=True)\ntime.sleep(30)\norder.append('long')"))
	var pending []string
	for i := range 3 {
		pending = append(pending, strings.TrimSpace(mustCLI(t, dir, "exec", "nb", "--", "order.append("+string(rune('1'+i))+")")))
	}
	// Once it runs (its first output), kill the daemon.
	r := cli(t, dir, "task", "output", long)
	require.Eventually(t, func() bool {
		r = cli(t, dir, "task", "output", long)
		return strings.Contains(r.stdout, "go")
	}, 60*time.Second, 50*time.Millisecond, "%+v", r)
	crash(t, dir, d)

	tk := taskJSON(t, dir, long, "--wait")
	assert.Equal(t, state.TaskStateFailed, tk.State)
	assert.Equal(t, state.FailInterrupted, tk.Reason, "%+v", tk)
	assert.Equal(t, 1, tk.Attempts, "never run again")
	for _, id := range pending {
		assert.Equal(t, state.TaskStateCompleted, taskJSON(t, dir, id, "--wait").State)
	}
	assert.Equal(t, "[1, 2, 3]\n", mustCLI(t, dir, "exec", "nb", "--wait", "--", "print(order)"),
		"the pending tasks ran in order, the interrupted one neither finished nor ran again")
	st := mustCLI(t, dir, "task", "status", long)
	assert.Contains(t, st, "interrupted")
}

func TestCLI_SessionCheckpoint(t *testing.T) {
	dir, _ := newSession(t)
	mustCLI(t, dir, "exec", "nb", "--wait", "--", "import os\nx = 41")
	out := mustCLI(t, dir, "session", "checkpoint", "nb", "one")
	assert.Contains(t, out, "saved 1 names (x)")
	assert.Contains(t, out, "skipped 1 that cannot be pickled: os")
	mustCLI(t, dir, "exec", "nb", "--wait", "--", "x = 0")
	mustCLI(t, dir, "session", "restore", "nb", "one")
	assert.Equal(t, "42\n", mustCLI(t, dir, "exec", "nb", "--wait", "--", "x + 1"))

	path := filepath.Join(dir, "sessions", "default", "nb", "checkpoints", "one.ckpt")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b[:len(b)-1], 0o600))
	mustCLI(t, dir, "exec", "nb", "--wait", "--", "x = 0")
	r := cli(t, dir, "session", "restore", "nb", "one")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "CheckpointRefused")
	assert.Contains(t, r.stderr, "truncated")
	assert.Equal(t, "1\n", mustCLI(t, dir, "exec", "nb", "--wait", "--", "x + 1"), "nothing of a refused checkpoint was loaded")

	r = cli(t, dir, "session", "restore", "nb", "nope")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "CheckpointNotFound")
}

func TestCLI_TaskCancel(t *testing.T) {
	dir, _ := newSession(t)
	long := strings.TrimSpace(mustCLI(t, dir, "exec", "nb", "--", "import time\nprint('go', flush=True)\ntime.sleep(60)"))
	next := strings.TrimSpace(mustCLI(t, dir, "exec", "nb", "--", "nxt = 1"))
	assert.Contains(t, mustCLI(t, dir, "task", "cancel", next), "cancelled")
	require.Eventually(t, func() bool {
		return strings.Contains(cli(t, dir, "task", "output", long).stdout, "go")
	}, 60*time.Second, 50*time.Millisecond)
	assert.Contains(t, mustCLI(t, dir, "task", "cancel", long), "interrupting")
	tk := taskJSON(t, dir, long, "--wait")
	assert.Equal(t, state.FailCancelled, tk.Reason)
	assert.Equal(t, "KeyboardInterrupt", tk.EName)
	assert.Equal(t, state.TaskStateCancelled, taskJSON(t, dir, next).State)
	assert.Equal(t, exitNotFound, cli(t, dir, "task", "status", "nope").code)
}
