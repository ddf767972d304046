package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
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
	assert.Equal(t, exitcode.Error, r.code)
	assert.Contains(t, r.stdout, "from stdin")
	assert.Contains(t, r.stdout, "ZeroDivisionError")
	assert.Contains(t, r.stderr, "failed (error): ZeroDivisionError")

	mustCLI(t, dir, "session", "rm", "nb")
	assert.Equal(t, exitcode.NotFound, cli(t, dir, "exec", "nb", "--", "1").code)
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
	assert.Equal(t, exitcode.Error, r.code)
	assert.Contains(t, r.stderr, "CheckpointRefused")
	assert.Contains(t, r.stderr, "truncated")
	assert.Equal(t, "1\n", mustCLI(t, dir, "exec", "nb", "--wait", "--", "x + 1"), "nothing of a refused checkpoint was loaded")

	r = cli(t, dir, "session", "restore", "nb", "nope")
	assert.Equal(t, exitcode.Error, r.code)
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
	assert.Equal(t, exitcode.NotFound, cli(t, dir, "task", "status", "nope").code)
}

// followOutput runs `solo task output -f ID` and returns once it printed
// want: then the daemon has it in the task's output file. The follower is
// stopped (by its pid) before it returns.
func followOutput(t *testing.T, dir, id, want string) {
	t.Helper()
	cmd := exec.Command(soloBin, "--data-dir", dir, "task", "output", "-f", id)
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	got := make(chan string)
	go func() {
		defer close(got)
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			b.Write(buf[:n])
			if strings.Contains(b.String(), want) {
				got <- b.String()
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case s, ok := <-got:
		require.True(t, ok, "the follow of %s ended before it printed %q", id, want)
		require.Contains(t, s, want)
	case <-time.After(90 * time.Second):
		t.Fatalf("the follow of %s never printed %q", id, want)
	}
}

func eventCount(t *testing.T, dir string) int {
	t.Helper()
	return strings.Count(mustCLI(t, dir, "events", "--json"), "\n")
}

// TestCLI_TaskOutputSurvivesDaemonKill: what a task printed before the
// daemon was SIGKILLed is there after the restart, and the task is
// reported interrupted.
func TestCLI_TaskOutputSurvivesDaemonKill(t *testing.T) {
	dir, d := newSession(t)
	code := "import time\nfor i in range(5):\n    print('line', i, flush=True)\ntime.sleep(60)\nprint('never')"
	id := strings.TrimSpace(mustCLI(t, dir, "exec", "nb", "--", code))
	printed := "line 0\nline 1\nline 2\nline 3\nline 4\n"
	followOutput(t, dir, id, printed)
	crash(t, dir, d)

	assert.Equal(t, printed, mustCLI(t, dir, "task", "output", id), "what it printed before the kill")
	tk := taskJSON(t, dir, id, "--wait")
	assert.Equal(t, state.TaskStateFailed, tk.State)
	assert.Equal(t, state.FailInterrupted, tk.Reason, "%+v", tk)
	assert.Equal(t, int64(len(printed)), tk.OutputBytes)
	assert.False(t, tk.Truncated)
	assert.Equal(t, printed, mustCLI(t, dir, "task", "output", id), "settling it kept its output")
	assert.Contains(t, mustCLI(t, dir, "task", "status", id), "interrupted")

	var as []session.AssetView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "session", "assets", "nb", "--json")), &as))
	require.NotEmpty(t, as)
	assert.Equal(t, id, as[len(as)-1].ID)
	assert.Equal(t, state.AssetOutput, as[len(as)-1].Kind)
	assert.Equal(t, int64(len(printed)), as[len(as)-1].Size)
	assert.False(t, as[len(as)-1].Held, "its lease started when it was settled")
}

// TestCLI_SessionAssets: outputs are bounded and listed as assets; files
// are added as assets; bad input is refused, clearly, and writes nothing.
func TestCLI_SessionAssets(t *testing.T) {
	dir, _ := newSession(t)

	// Over the bound: the bound is kept, and the cut said.
	r := cli(t, dir, "exec", "nb", "--wait", "--", "for i in range(300):\n    print('%04d' % i + 'x' * 1019)")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	note := "\n[solo: output truncated]\n"
	assert.Len(t, r.stdout, session.DefaultMaxOutputBytes+len(note))
	assert.True(t, strings.HasSuffix(r.stdout, note), "the cut is not said")
	var tasks []string
	for _, l := range strings.Split(mustCLI(t, dir, "events", "--json"), "\n") {
		if strings.Contains(l, `"task_started"`) {
			var env struct {
				Data struct{ ID string } `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(l), &env))
			tasks = append(tasks, env.Data.ID)
		}
	}
	require.Len(t, tasks, 1)
	big := taskJSON(t, dir, tasks[0])
	assert.True(t, big.Truncated)
	assert.Equal(t, int64(len(r.stdout)), big.OutputBytes)
	assert.Equal(t, r.stdout, mustCLI(t, dir, "task", "output", big.ID))

	mustCLI(t, dir, "exec", "nb", "--wait", "--", "import os\nos.makedirs('out', exist_ok=True)\nopen('out/result.csv', 'w').write('a,b\\n')")
	out := mustCLI(t, dir, "session", "asset", "add", "nb", "out/result.csv")
	assert.Contains(t, out, "out/result.csv (4 bytes), kept until")
	table := mustCLI(t, dir, "session", "assets", "nb")
	assert.Contains(t, table, "LEASE EXPIRES")
	assert.Contains(t, table, "out/result.csv")
	assert.Contains(t, table, "tasks/"+big.ID+".out")
	var as []session.AssetView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "session", "assets", "nb", "--json")), &as))
	kinds := map[state.AssetKind]int{}
	for _, a := range as {
		kinds[a.Kind]++
		assert.False(t, a.ExpiresAt.IsZero(), "%+v", a)
	}
	assert.Equal(t, map[state.AssetKind]int{state.AssetOutput: 2, state.AssetFile: 1}, kinds)

	before := eventCount(t, dir)
	for _, tc := range []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"session", "asset", "add", "nb", "../nb/kernel.json"}, exitcode.Error, "escapes the session's directory"},
		{[]string{"session", "asset", "add", "nb", "out/../../../solo.db"}, exitcode.Error, "escapes the session's directory"},
		{[]string{"session", "asset", "add", "nb", filepath.Join(dir, "solo.db")}, exitcode.Error, "absolute"},
		{[]string{"session", "asset", "add", "nb", "kernel.json"}, exitcode.Error, "Solo's own"},
		{[]string{"session", "asset", "add", "nb", "out"}, exitcode.Error, "not a regular file"},
		{[]string{"session", "asset", "add", "nb", "nope.csv"}, exitcode.Error, "no such file"},
		{[]string{"session", "asset", "add", "ghost", "out/result.csv"}, exitcode.NotFound, "default/ghost"},
		{[]string{"session", "assets", "ghost"}, exitcode.NotFound, "default/ghost"},
		{[]string{"task", "output", session.NewTaskID()}, exitcode.NotFound, "not found"},
		{[]string{"session", "asset", "add", "nb"}, exitcode.Usage, "PATH"},
		{[]string{"session", "assets"}, exitcode.Usage, "NAME"},
	} {
		r := cli(t, dir, tc.args...)
		assert.Equal(t, tc.code, r.code, "solo %v: %s%s", tc.args, r.stdout, r.stderr)
		assert.Contains(t, r.stderr, tc.mention, "solo %v", tc.args)
		assert.Empty(t, r.stdout, "solo %v", tc.args)
	}
	assert.Equal(t, before, eventCount(t, dir), "a refused request wrote to the log")
	assert.FileExists(t, filepath.Join(dir, "solo.db"))
}
