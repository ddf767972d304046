package solo_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// waitStarted waits for the attempt the write at pos asked for.
func waitStarted(t *testing.T, rt *solo.Runtime, name string, pos uint64) (solo.ServiceView, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return rt.WaitStarted(ctx, "default", name, pos)
}

// mustStart deploys spec and returns its view once it started.
func mustStart(t *testing.T, rt *solo.Runtime, spec solo.Spec) solo.ServiceView {
	t.Helper()
	res, err := rt.Deploy(context.Background(), spec)
	require.NoError(t, err)
	v, err := waitStarted(t, rt, spec.Name, res.Pos)
	require.NoError(t, err)
	require.NotZero(t, v.PID)
	return v
}

// lastEvent returns the last envelope of the log.
func lastEvent(t *testing.T, rt *solo.Runtime) eventstore.Envelope {
	t.Helper()
	var last eventstore.Envelope
	for env, err := range rt.Store().Read(rt.Store().Head(), 0) {
		require.NoError(t, err)
		last = env
	}
	return last
}

func TestRuntime_Start(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	first := mustStart(t, rt, sleeper("web"))
	require.NoError(t, rt.Kill(ctx, "default", "web"))
	assert.False(t, alive(first.PID))

	res, err := rt.Start(solo.WithActor(ctx, "tok_tester"), "default", "web")
	require.NoError(t, err)
	require.True(t, res.Changed)
	env := lastEvent(t, rt)
	assert.Equal(t, string(state.TypeServiceStartRequested), env.Type)
	assert.Equal(t, "tok_tester", env.Actor)
	v, err := waitStarted(t, rt, "web", res.Pos)
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, v.State)
	assert.Equal(t, uint64(1), v.Generation, "start keeps the generation")
	assert.NotEqual(t, first.PID, v.PID)
	assert.True(t, alive(v.PID))
	assert.Zero(t, v.Restarts, "a requested start is not a restart")

	t.Run("a running service: nothing written", func(t *testing.T) {
		head := rt.Store().Head()
		res, err := rt.Start(ctx, "default", "web")
		require.NoError(t, err)
		assert.False(t, res.Changed)
		assert.Equal(t, head, rt.Store().Head())
	})
	t.Run("never deployed: not found, nothing written", func(t *testing.T) {
		head := rt.Store().Head()
		_, err := rt.Start(ctx, "default", "ghost")
		require.ErrorIs(t, err, solo.ErrNotFound)
		assert.Equal(t, head, rt.Store().Head())
	})
	t.Run("a failed service starts again", func(t *testing.T) {
		zero := 0
		spec := solo.Spec{Name: "crash", Command: []string{"sh", "-c", "exit 3"}, MaxRestarts: &zero}
		res, err := rt.Deploy(ctx, spec)
		require.NoError(t, err)
		ev := follow(t, rt, res.Pos)
		ev.next(state.Key{Tenant: "default", Name: "crash"}, state.TypeServiceFailed)
		st, err := rt.Status("default", "crash")
		require.NoError(t, err)
		require.Equal(t, state.StateFailed, st.State)
		res, err = rt.Start(ctx, "default", "crash")
		require.NoError(t, err)
		_, p := ev.next(state.Key{Tenant: "default", Name: "crash"}, state.TypeServiceStarted)
		assert.Equal(t, 2, p.(state.Started).Attempt)
		assert.Greater(t, res.Pos, uint64(0))
	})
}

func TestRuntime_Restart(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	zero := 0
	spec := sleeper("web")
	spec.MaxRestarts = &zero // any restart the limit counted would fail it
	v := mustStart(t, rt, spec)
	for i := 0; i < 3; i++ {
		res, err := rt.Restart(ctx, "default", "web")
		require.NoError(t, err)
		next, err := waitStarted(t, rt, "web", res.Pos)
		require.NoError(t, err)
		assert.NotEqual(t, v.PID, next.PID, "a restart gives a new process")
		assert.False(t, alive(v.PID), "the old process was stopped")
		assert.Equal(t, state.StateRunning, next.State)
		assert.Equal(t, uint64(1), next.Generation)
		assert.Zero(t, next.Restarts, "a requested restart is not counted")
		v = next
	}
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, v.PID, st.PID)
	// Each restart is one event, and each old instance's exit was recorded
	// before the next one started.
	var kinds []string
	for env, err := range rt.Store().ReadSubject("default", "web", 1) {
		require.NoError(t, err)
		switch state.EventType(env.Type) {
		case state.TypeServiceRestartRequested, state.TypeServiceExited, state.TypeServiceStarted:
			kinds = append(kinds, env.Type[len("service_"):])
		}
	}
	assert.Equal(t, []string{"started",
		"restart_requested", "exited", "started",
		"restart_requested", "exited", "started",
		"restart_requested", "exited", "started"}, kinds)

	t.Run("a stopped service: started", func(t *testing.T) {
		require.NoError(t, rt.Kill(ctx, "default", "web"))
		res, err := rt.Restart(ctx, "default", "web")
		require.NoError(t, err)
		v, err := waitStarted(t, rt, "web", res.Pos)
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, v.State)
	})
	t.Run("never deployed: not found", func(t *testing.T) {
		head := rt.Store().Head()
		_, err := rt.Restart(ctx, "default", "ghost")
		require.ErrorIs(t, err, solo.ErrNotFound)
		assert.Equal(t, head, rt.Store().Head())
	})
}

func TestRuntime_Signal(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	ready := filepath.Join(dir, "ready")
	// The trap is set before the script says it is ready. The shell then
	// waits in the wait builtin, which a trapped signal interrupts at
	// once, rather than forking a short sleep 20 times a second: a
	// signal that lands while dash forks could be lost to the trap.
	script := `trap 'echo hup >"$0"' HUP; echo >"$1"; while :; do sleep 1000 & wait; done`
	v := mustStart(t, rt, solo.Spec{Name: "trapper", Command: []string{"sh", "-c", script, got, ready}})
	waitPIDFile0(t, ready)

	res, err := rt.Signal(solo.WithActor(ctx, "tok_tester"), "default", "trapper", "hup")
	require.NoError(t, err)
	assert.Equal(t, solo.SignalResult{PID: v.PID, Signal: "SIGHUP"}, res)
	env := lastEvent(t, rt)
	assert.Equal(t, string(state.TypeServiceSignalled), env.Type)
	assert.Equal(t, "tok_tester", env.Actor)
	p, err := state.Decode(env)
	require.NoError(t, err)
	assert.Equal(t, state.Signalled{PID: v.PID, Signal: "SIGHUP"}, p)
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(got)
		return strings.TrimSpace(string(b)) == "hup"
	}, 10*time.Second, 5*time.Millisecond, "the service never saw SIGHUP")
	st, err := rt.Status("default", "trapper")
	require.NoError(t, err)
	assert.Equal(t, v.PID, st.PID, "a trapped signal does not end it")

	refused := func(t *testing.T, name, sig string, want error) {
		t.Helper()
		head := rt.Store().Head()
		_, err := rt.Signal(ctx, "default", name, sig)
		require.ErrorIs(t, err, want)
		assert.Equal(t, head, rt.Store().Head(), "a refused signal wrote something")
	}
	t.Run("an unknown signal", func(t *testing.T) { refused(t, "trapper", "SIGFOO", solo.ErrBadSignal) })
	t.Run("never deployed", func(t *testing.T) { refused(t, "ghost", "HUP", solo.ErrNotFound) })
	t.Run("stopped", func(t *testing.T) {
		mustStart(t, rt, sleeper("down"))
		require.NoError(t, rt.Kill(ctx, "default", "down"))
		refused(t, "down", "HUP", solo.ErrNotRunning)
	})
	t.Run("a recorded pid that another process has now", func(t *testing.T) {
		stranger := exec.Command("sleep", "1000")
		require.NoError(t, stranger.Start())
		defer stranger.Process.Kill()
		real, err := supervisor.ReadIdentity(stranger.Process.Pid)
		require.NoError(t, err)
		mustStart(t, rt, sleeper("reused"))
		require.NoError(t, rt.Kill(ctx, "default", "reused"))
		// The log says the service runs as the stranger's pid, with
		// another start time: a pid reused since the record.
		cur, err := rt.Status("default", "reused")
		require.NoError(t, err)
		ev, err := state.NewEvent("default", "reused", state.StartRequested{Generation: cur.Generation})
		require.NoError(t, err)
		ev2, err := state.NewEvent("default", "reused", state.Started{Generation: cur.Generation, Attempt: 9, PID: real.PID, StartTicks: real.StartTicks + 1, BootID: real.BootID})
		require.NoError(t, err)
		pos, err := rt.Store().Append(ctx, ev, ev2)
		require.NoError(t, err)
		require.NoError(t, rt.Sync(ctx, pos[1]))
		st, err := rt.Status("default", "reused")
		require.NoError(t, err)
		require.Equal(t, real.PID, st.PID)

		refused(t, "reused", "KILL", solo.ErrNotRunning)
		assert.True(t, alive(real.PID), "the identity check let a signal through to another process")
	})
}

// waitPIDFile0 waits for a file the service writes once it is ready.
func waitPIDFile0(t *testing.T, path string) {
	t.Helper()
	require.Eventually(t, func() bool { _, err := os.Stat(path); return err == nil },
		10*time.Second, 5*time.Millisecond, "the service never wrote %s", path)
}

func TestRuntime_Remove(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	v := mustStart(t, rt, sleeper("web"))

	head := rt.Store().Head()
	err := rt.Remove(ctx, "default", "web")
	require.ErrorIs(t, err, solo.ErrRunning)
	assert.Contains(t, err.Error(), "stop it first")
	assert.Equal(t, head, rt.Store().Head(), "a refused remove wrote something")
	assert.True(t, alive(v.PID))

	require.NoError(t, rt.Kill(ctx, "default", "web"))
	require.NoError(t, rt.Remove(solo.WithActor(ctx, "tok_tester"), "default", "web"))
	env := lastEvent(t, rt)
	assert.Equal(t, string(state.TypeServiceRemoved), env.Type)
	assert.Equal(t, "tok_tester", env.Actor)
	_, err = rt.Status("default", "web")
	require.ErrorIs(t, err, solo.ErrNotFound)
	for _, s := range rt.List("") {
		assert.NotEqual(t, "web", s.Name, "a removed service is still listed")
	}
	_, err = rt.Start(ctx, "default", "web")
	require.ErrorIs(t, err, solo.ErrNotFound, "a removed service cannot be started")
	require.ErrorIs(t, rt.Remove(ctx, "default", "web"), solo.ErrNotFound)

	// The name is free: a deploy starts again at generation 1.
	again := mustStart(t, rt, sleeper("web"))
	assert.Equal(t, uint64(1), again.Generation)
	assert.Zero(t, again.Restarts)
}

func TestRuntime_WaitStarted(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	dir := t.TempDir()
	badInterp := filepath.Join(dir, "bad.sh")
	require.NoError(t, os.WriteFile(badInterp, []byte("#!/nonexistent/sh\necho hi\n"), 0o755))
	gone := filepath.Join(dir, "gone")
	require.NoError(t, os.WriteFile(gone, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755))

	for _, tc := range []struct {
		name    string
		command []string
		before  func()
		restart state.RestartPolicy
	}{
		{name: "badinterp", command: []string{badInterp}, restart: state.RestartNever},
		{name: "badinterp-always", command: []string{badInterp}, restart: state.RestartAlways},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rt.Deploy(ctx, solo.Spec{Name: tc.name, Command: tc.command, Restart: tc.restart})
			require.NoError(t, err)
			v, err := waitStarted(t, rt, tc.name, res.Pos)
			require.ErrorIs(t, err, solo.ErrStartFailed)
			assert.Contains(t, err.Error(), "no such file or directory")
			assert.Contains(t, v.StartError, "no such file or directory")
			assert.Zero(t, v.PID)
			assert.True(t, v.StartedAt.IsZero(), "a service that never ran shows no start time")
			logs, err := rt.Logs("default", tc.name, 10)
			require.NoError(t, err)
			assert.Contains(t, string(logs), "could not start")
			assert.Contains(t, string(logs), "no such file or directory")
		})
	}
	t.Run("a command that does not exist is refused at deploy, nothing written", func(t *testing.T) {
		head := rt.Store().Head()
		_, err := rt.Deploy(ctx, solo.Spec{Name: "notfound", Command: []string{"/nonexistent/bin"}, Restart: state.RestartNever})
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "command", fe.Field)
		assert.Contains(t, err.Error(), "no such file or directory")
		assert.Equal(t, head, rt.Store().Head())
	})
	t.Run("a program removed after its deploy: restart says so", func(t *testing.T) {
		v := mustStart(t, rt, solo.Spec{Name: "gone", Command: []string{gone}})
		require.NoError(t, os.Remove(gone))
		res, err := rt.Restart(ctx, "default", "gone")
		require.NoError(t, err)
		_, err = waitStarted(t, rt, "gone", res.Pos)
		require.ErrorIs(t, err, solo.ErrStartFailed)
		assert.False(t, alive(v.PID))
	})
	t.Run("the context ends first", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		// A position no attempt has passed yet.
		_, err := rt.WaitStarted(cctx, "default", "gone", rt.Store().Head()+100)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestRuntime_ShutdownIsNotARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pruneCgroups(t, dir)
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
	require.NoError(t, err)
	v := mustStart(t, rt, sleeper("web"))
	require.NoError(t, rt.Close(ctx))
	assert.False(t, alive(v.PID))

	rt = MustOpen(t, solo.Options{DataDir: dir})
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	assert.NotEqual(t, v.PID, st.PID)
	assert.Zero(t, st.Restarts, "a clean daemon stop and start counted as a restart")
}

func TestRecovery_Verbs(t *testing.T) {
	t.Run("stop, crash: stays stopped; start brings it back", func(t *testing.T) {
		dir := t.TempDir()
		pids := crashChild(t, dir, "deploy:x,kill:x,deploy:keep")
		assert.False(t, alive(pids["x"]))
		rt := MustOpen(t, solo.Options{DataDir: dir})
		st, err := rt.Status("default", "x")
		require.NoError(t, err)
		assert.Equal(t, state.StateKilled, st.State)
		live, err := recovery.Scan(dirAbs(t, dir))
		require.NoError(t, err)
		assert.Len(t, live, 1, "only keep runs")
		res, err := rt.Start(context.Background(), "default", "x")
		require.NoError(t, err)
		v, err := waitStarted(t, rt, "x", res.Pos)
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, v.State)
	})
	t.Run("stop, start, crash: re-adopted", func(t *testing.T) {
		dir := t.TempDir()
		pids := crashChild(t, dir, "deploy:x,kill:x,start:x")
		rt := MustOpen(t, solo.Options{DataDir: dir})
		st, err := rt.Status("default", "x")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State)
		assert.Equal(t, pids["x"], st.PID)
		assert.Equal(t, 1, rt.RecoveryReport().Readopted)
	})
	t.Run("restart, crash: the new instance is re-adopted, alone", func(t *testing.T) {
		dir := t.TempDir()
		pids := crashChild(t, dir, "deploy:x,restart:x")
		rt := MustOpen(t, solo.Options{DataDir: dir})
		st, err := rt.Status("default", "x")
		require.NoError(t, err)
		assert.Equal(t, pids["x"], st.PID)
		live, err := recovery.Scan(dirAbs(t, dir))
		require.NoError(t, err)
		assert.Len(t, live, 1, "more than one instance runs")
	})
	t.Run("remove, crash: never started", func(t *testing.T) {
		dir := t.TempDir()
		crashChild(t, dir, "deploy:x,kill:x,rm:x,deploy:keep")
		rt := MustOpen(t, solo.Options{DataDir: dir})
		_, err := rt.Status("default", "x")
		require.ErrorIs(t, err, solo.ErrNotFound)
		live, err := recovery.Scan(dirAbs(t, dir))
		require.NoError(t, err)
		require.Len(t, live, 1)
		assert.Equal(t, "keep", live[0].Marker.Name)
	})
}
