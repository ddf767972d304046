package solo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// fastBackoff keeps restart tests short while still growing.
var fastBackoff = supervisor.Backoff{Base: 30 * time.Millisecond, Max: time.Second, Jitter: 0.1}

// MustOpen opens a runtime on a temp dir and closes it at cleanup, then
// checks the log.
func MustOpen(tb testing.TB, opts solo.Options) *solo.Runtime {
	tb.Helper()
	if opts.DataDir == "" {
		opts.DataDir = tb.TempDir()
	}
	if opts.Backoff == (supervisor.Backoff{}) {
		opts.Backoff = fastBackoff
	}
	rt, err := solo.Open(context.Background(), opts)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		rt.Close(context.Background())
		checkLog(tb, opts.DataDir)
		if opts.Cgroups == nil {
			// A drain leaves the empty cgroups of the services that come
			// back; none may hold a process.
			cgroup.Open(opts.DataDir).Prune()
			assertNoCgroups(tb, opts.DataDir)
		}
	})
	return rt
}

func checkLog(tb testing.TB, dir string) {
	tb.Helper()
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(tb, err)
	defer s.Close()
	_, err = s.Check(context.Background())
	assert.NoError(tb, err)
}

// events follows the log and lets a test wait for the events it expects,
// instead of sleeping.
type events struct {
	t   testing.TB
	rt  *solo.Runtime
	sub *eventstore.Subscription
}

func follow(t testing.TB, rt *solo.Runtime, from uint64) *events {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &events{t: t, rt: rt, sub: rt.Events(ctx, from)}
}

// next returns the next event about key (any key if zero) of type typ.
func (e *events) next(key state.Key, typ state.EventType) (eventstore.Envelope, state.Payload) {
	e.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case env, ok := <-e.sub.C():
			require.True(e.t, ok, "event stream ended: %v", e.sub.Err())
			if env.Type != string(typ) || (key != state.Key{} && (env.Tenant != key.Tenant || env.Subject != key.Name)) {
				continue
			}
			p, err := state.Decode(env)
			require.NoError(e.t, err)
			require.NoError(e.t, e.rt.Sync(context.Background(), env.Pos))
			return env, p
		case <-deadline:
			e.t.Fatalf("no %s event for %v within 30s", typ, key)
		}
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is dead for our purposes.
	s := string(b)
	return !strings.Contains(s[strings.LastIndexByte(s, ')'):], ") Z ")
}

func sleeper(name string) solo.Spec {
	return solo.Spec{Name: name, Command: []string{"sleep", "1000"}}
}

func TestRuntime_Deploy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rt := MustOpen(t, solo.Options{DataDir: dir})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "web"}

	res, err := rt.Deploy(ctx, sleeper("web"))
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, uint64(1), res.Service.Generation)
	_, p := ev.next(key, state.TypeServiceStarted)
	pid := p.(state.Started).PID
	require.True(t, alive(pid))

	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	assert.Equal(t, pid, st.PID)

	t.Run("the child is marked and in its own process group", func(t *testing.T) {
		v, ok, err := supervisor.ReadEnvVar(pid, supervisor.MarkerEnv)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Contains(t, v, "|default|web|1|1")
		pgid, err := syscall.Getpgid(pid)
		require.NoError(t, err)
		assert.Equal(t, pid, pgid)
	})

	t.Run("the same spec again is a no-op", func(t *testing.T) {
		head := rt.Store().Head()
		res, err := rt.Deploy(ctx, sleeper("web"))
		require.NoError(t, err)
		assert.False(t, res.Changed)
		assert.Equal(t, head, rt.Store().Head(), "an unchanged deploy wrote events")
		assert.True(t, alive(pid))
	})

	t.Run("a new spec replaces the instance with generation 2", func(t *testing.T) {
		spec := sleeper("web")
		spec.Env = map[string]string{"PORT": "8080"}
		res, err := rt.Deploy(ctx, spec)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), res.Service.Generation)
		_, p := ev.next(key, state.TypeServiceExited)
		assert.Equal(t, pid, p.(state.Exited).PID)
		_, p = ev.next(key, state.TypeServiceStarted)
		assert.Equal(t, uint64(2), p.(state.Started).Generation)
		assert.False(t, alive(pid), "the old generation still runs")
		newPID := p.(state.Started).PID
		v, _, err := supervisor.ReadEnvVar(newPID, "PORT")
		require.NoError(t, err)
		assert.Equal(t, "8080", v)
		_, ok, _ := supervisor.ReadEnvVar(newPID, "SOLO_TOKEN")
		assert.False(t, ok)
	})

	t.Run("invalid input names the field and writes nothing", func(t *testing.T) {
		head := rt.Store().Head()
		cases := []struct {
			spec  solo.Spec
			field string
		}{
			{solo.Spec{Name: "../etc", Command: []string{"true"}}, "name"},
			{solo.Spec{Name: "Bad", Command: []string{"true"}}, "name"},
			{solo.Spec{Name: "x\x01", Command: []string{"true"}}, "name"},
			{solo.Spec{Name: "ok"}, "command"},
			{solo.Spec{Name: "ok", Command: []string{"true"}, Env: map[string]string{"1BAD": "x"}}, "env"},
			{solo.Spec{Name: "ok", Command: []string{"true"}, StopSignal: "SIGNOPE"}, "stop_signal"},
			{solo.Spec{Name: "ok", Kind: "nope"}, "kind"},
		}
		for _, c := range cases {
			_, err := rt.Deploy(ctx, c.spec)
			require.Error(t, err, "%+v", c.spec)
			assert.Contains(t, err.Error(), c.field)
		}
		assert.Equal(t, head, rt.Store().Head())
	})
}

func TestRuntime_Kill(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)

	t.Run("stops the whole process group", func(t *testing.T) {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "grandchild")
		_, err := rt.Deploy(ctx, solo.Spec{Name: "parent", Command: []string{"sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; wait"}})
		require.NoError(t, err)
		_, p := ev.next(state.Key{Tenant: "default", Name: "parent"}, state.TypeServiceStarted)
		grandchild := waitPIDFile(t, pidFile)
		require.True(t, alive(grandchild))

		require.NoError(t, rt.Kill(ctx, "default", "parent"))
		assert.False(t, alive(p.(state.Started).PID))
		// Kill returns once the group has been sent SIGKILL and the leader
		// reaped; the kernel delivers the grandchild's SIGKILL on its own
		// time, so wait for the death that SIGKILL guarantees.
		require.Eventually(t, func() bool { return !alive(grandchild) }, 10*time.Second, time.Millisecond,
			"a grandchild survived the kill")
		st, err := rt.Status("default", "parent")
		require.NoError(t, err)
		assert.Equal(t, state.StateKilled, st.State)
	})

	t.Run("a service that ignores SIGTERM is killed after its stop timeout", func(t *testing.T) {
		spec := solo.Spec{Name: "stubborn", Command: []string{"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"},
			StopTimeout: state.Duration(300 * time.Millisecond)}
		_, err := rt.Deploy(ctx, spec)
		require.NoError(t, err)
		key := state.Key{Tenant: "default", Name: "stubborn"}
		ev.next(key, state.TypeServiceStarted)
		waitLog(t, rt, "stubborn", "ready")
		start := time.Now()
		require.NoError(t, rt.Kill(ctx, "default", "stubborn"))
		assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "killed before the stop timeout")
		_, p := ev.next(key, state.TypeServiceExited)
		assert.Equal(t, "SIGKILL", p.(state.Exited).Signal)
	})

	t.Run("unknown service", func(t *testing.T) {
		head := rt.Store().Head()
		err := rt.Kill(ctx, "default", "ghost")
		require.ErrorIs(t, err, solo.ErrNotFound)
		assert.Equal(t, head, rt.Store().Head())
	})

	t.Run("killing twice writes one event", func(t *testing.T) {
		_, err := rt.Deploy(ctx, sleeper("twice"))
		require.NoError(t, err)
		require.NoError(t, rt.Kill(ctx, "default", "twice"))
		head := rt.Store().Head()
		require.NoError(t, rt.Kill(ctx, "default", "twice"))
		assert.Equal(t, head, rt.Store().Head())
	})
}

func waitPIDFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "the service never wrote %s", path)
	return pid
}

// waitLog waits until the service's log contains want. The log file is
// written by the child directly; there is no event for a line.
func waitLog(t *testing.T, rt *solo.Runtime, name, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, err := rt.Logs("default", name, 100)
		return err == nil && strings.Contains(string(b), want)
	}, 10*time.Second, 5*time.Millisecond, "log of %s never showed %q", name, want)
}

func TestRuntime_RestartPolicy(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	maxRestarts := 3

	t.Run("non-zero exits restart with growing backoff until the limit, then failed", func(t *testing.T) {
		key := state.Key{Tenant: "default", Name: "crasher"}
		_, err := rt.Deploy(ctx, solo.Spec{Name: "crasher", Command: []string{"sh", "-c", "exit 3"}, MaxRestarts: &maxRestarts})
		require.NoError(t, err)
		var gaps, recorded []time.Duration
		var lastExit time.Time
		for attempt := 1; attempt <= maxRestarts+1; attempt++ {
			env, p := ev.next(key, state.TypeServiceStarted)
			assert.Equal(t, attempt, p.(state.Started).Attempt)
			if attempt > 1 {
				gaps = append(gaps, env.Time.Sub(lastExit))
			}
			env, p = ev.next(key, state.TypeServiceExited)
			exit := p.(state.Exited)
			assert.Equal(t, 3, exit.ExitCode)
			// The exit says which restart follows and after what delay;
			// the last one, past the limit, says none follows.
			if attempt <= maxRestarts {
				assert.Equal(t, attempt, exit.Restart)
				recorded = append(recorded, exit.Backoff.Std())
			} else {
				assert.Zero(t, exit.Restart)
				assert.Zero(t, exit.Backoff)
			}
			lastExit = env.Time
		}
		_, p := ev.next(key, state.TypeServiceFailed)
		assert.Equal(t, maxRestarts, p.(state.Failed).Restarts)
		// Each restart waited at least its backoff's lower bound (the
		// delay with the most jitter taken off), which grows: load can
		// only make a gap longer, so this never fails for want of CPU.
		for i, gap := range gaps {
			least := fastBackoff.Delay(i+1, 0)
			assert.GreaterOrEqual(t, gap, least, "restart %d came after %v, before its backoff %v: %v", i+1, gap, least, gaps)
			assert.GreaterOrEqual(t, gap, recorded[i], "restart %d came before the delay its exit recorded", i+1)
			assert.GreaterOrEqual(t, recorded[i], least, "restart %d: recorded delay below the backoff's bound", i+1)
		}
		st, err := rt.Status("default", "crasher")
		require.NoError(t, err)
		assert.Equal(t, state.StateFailed, st.State)
		assert.Equal(t, maxRestarts, st.Restarts)
	})

	t.Run("never is not restarted", func(t *testing.T) {
		key := state.Key{Tenant: "default", Name: "once"}
		_, err := rt.Deploy(ctx, solo.Spec{Name: "once", Command: []string{"sh", "-c", "exit 1"}, Restart: state.RestartNever})
		require.NoError(t, err)
		ev.next(key, state.TypeServiceExited)
		st, err := rt.Status("default", "once")
		require.NoError(t, err)
		assert.Equal(t, state.StateExited, st.State)
		assertNoStart(t, rt, key, 2)
	})

	t.Run("on-failure is not restarted after exit 0", func(t *testing.T) {
		key := state.Key{Tenant: "default", Name: "clean"}
		_, err := rt.Deploy(ctx, solo.Spec{Name: "clean", Command: []string{"true"}, Restart: state.RestartOnFailure})
		require.NoError(t, err)
		ev.next(key, state.TypeServiceExited)
		st, err := rt.Status("default", "clean")
		require.NoError(t, err)
		assert.Equal(t, state.StateExited, st.State)
		assertNoStart(t, rt, key, 2)
	})

	t.Run("on-failure is restarted after exit 1", func(t *testing.T) {
		key := state.Key{Tenant: "default", Name: "flaky"}
		_, err := rt.Deploy(ctx, solo.Spec{Name: "flaky", Command: []string{"sh", "-c", "exit 1"}, Restart: state.RestartOnFailure, MaxRestarts: &maxRestarts})
		require.NoError(t, err)
		_, p := ev.next(key, state.TypeServiceStarted)
		assert.Equal(t, 1, p.(state.Started).Attempt)
		_, p = ev.next(key, state.TypeServiceStarted)
		assert.Equal(t, 2, p.(state.Started).Attempt)
	})
}

// assertNoStart checks that attempt n of key was never started, after
// giving the loop longer than its backoff would have taken: the policy
// decision happens before any backoff, so a loop that ended has ended.
func assertNoStart(t *testing.T, rt *solo.Runtime, key state.Key, attempt int) {
	t.Helper()
	// Kill returns only after the loop is gone: if a restart were pending,
	// the kill would stop it and we would see its start in the stream.
	require.NoError(t, rt.Kill(context.Background(), key.Tenant, key.Name))
	for env, err := range rt.Store().ReadSubject(key.Tenant, key.Name, 0) {
		require.NoError(t, err)
		if env.Type == string(state.TypeServiceStarted) {
			p, err := state.Decode(env)
			require.NoError(t, err)
			assert.Less(t, p.(state.Started).Attempt, attempt, "%s was restarted", key)
		}
	}
}

// panicky is an in-process service that panics on its first run and then
// serves until stopped.
type panicky struct{ runs *int }

func (p panicky) Serve(ctx context.Context) error {
	*p.runs++
	if *p.runs == 1 {
		panic("boom")
	}
	<-ctx.Done()
	return nil
}

func TestRuntime_GoService(t *testing.T) {
	ctx := context.Background()
	reg := solo.NewRegistry()
	runs := 0
	require.NoError(t, reg.Register("panicky", func(cfg json.RawMessage, log io.Writer) (solo.GoService, error) {
		return panicky{runs: &runs}, nil
	}))
	rt := MustOpen(t, solo.Options{Registry: reg})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "inproc"}
	_, err := rt.Deploy(ctx, solo.Spec{Name: "inproc", Kind: "panicky"})
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceExited)
	ex := p.(state.Exited)
	assert.Equal(t, supervisor.GoExitPanic, ex.ExitCode)
	assert.Contains(t, ex.Error, "boom")
	_, p = ev.next(key, state.TypeServiceStarted)
	assert.Equal(t, 2, p.(state.Started).Attempt, "a panic must count as a failure and restart")
	logs, err := rt.Logs("default", "inproc", 50)
	require.NoError(t, err)
	assert.Contains(t, string(logs), "panic: boom")
	require.NoError(t, rt.Kill(ctx, "default", "inproc"))

	head := rt.Store().Head()
	_, err = rt.Deploy(ctx, solo.Spec{Name: "other", Kind: "unregistered"})
	require.ErrorIs(t, err, solo.ErrUnknownKind)
	assert.Equal(t, head, rt.Store().Head())
}

func TestRuntime_ShutdownIsNotAKill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pruneCgroups(t, dir)
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Backoff: fastBackoff})
	require.NoError(t, err)
	ev := follow(t, rt, 0)
	_, err = rt.Deploy(ctx, sleeper("keep"))
	require.NoError(t, err)
	_, p := ev.next(state.Key{Tenant: "default", Name: "keep"}, state.TypeServiceStarted)
	oldPID := p.(state.Started).PID
	_, err = rt.Deploy(ctx, sleeper("gone"))
	require.NoError(t, err)
	require.NoError(t, rt.Kill(ctx, "default", "gone"))

	res, err := rt.Shutdown(ctx, "test", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, exitcode.OK, res.ExitCode)
	assert.Equal(t, 1, res.Stopped)
	assert.False(t, alive(oldPID), "shutdown left a service running")
	_, err = rt.Deploy(ctx, sleeper("late"))
	require.True(t, errors.Is(err, solo.ErrClosed) || errors.Is(err, solo.ErrShuttingDown), "got %v", err)

	rt2 := MustOpen(t, solo.Options{DataDir: dir})
	ev2 := follow(t, rt2, 0)
	// The first start of "keep" in this log was before the shutdown; the
	// second is the one the new runtime made.
	ev2.next(state.Key{Tenant: "default", Name: "keep"}, state.TypeServiceStarted)
	_, p = ev2.next(state.Key{Tenant: "default", Name: "keep"}, state.TypeServiceStarted)
	assert.NotEqual(t, oldPID, p.(state.Started).PID)
	keep, err := rt2.Status("default", "keep")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, keep.State)
	gone, err := rt2.Status("default", "gone")
	require.NoError(t, err)
	assert.Equal(t, state.StateKilled, gone.State)

	// The log tells the whole story, in order.
	var types []string
	for env, err := range rt2.Store().Read(1, 0) {
		require.NoError(t, err)
		if env.Tenant == "" {
			types = append(types, env.Type)
		}
	}
	assert.Equal(t, []string{"system_started", "system_shutdown_started", "system_shutdown_complete", "system_started"}, types)
}

// TestRuntime_DeployOutlivesItsCaller: once its intent is durable a deploy is
// carried through even if its caller gives up (an HTTP client that times
// out): the old generation is stopped first, the new one runs, and never
// do two instances run side by side.
func TestRuntime_DeployOutlivesItsCaller(t *testing.T) {
	dir := t.TempDir()
	rt := MustOpen(t, solo.Options{DataDir: dir})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "slow"}
	slow := func(v string) solo.Spec {
		// No exec once started: the scan below must not meet the leader
		// in the middle of an execve, when its marker cannot be read.
		return solo.Spec{Name: "slow", Command: []string{"sh", "-c", "trap '' TERM; echo ready; sleep 1000 & wait"},
			Env: map[string]string{"V": v}, StopTimeout: state.Duration(500 * time.Millisecond)}
	}
	_, err := rt.Deploy(context.Background(), slow("1"))
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	first := p.(state.Started).PID
	waitLog(t, rt, "slow", "ready")

	// The caller gives up as soon as its deploy is durable, long before
	// the old instance's stop timeout: a fact, not a guess at how long the
	// append takes on a loaded machine. (It may give up while the append
	// still returns, with its outcome unknown to it: that is settled too.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from := rt.Store().Head() + 1
	go func() {
		for env := range rt.Events(ctx, from).C() {
			if env.Type == string(state.TypeServiceDeployed) && env.Subject == key.Name {
				cancel()
				return
			}
		}
	}()
	res, err := rt.Deploy(ctx, slow("2"))
	cancel()
	require.NoError(t, err, "a durable deploy must be carried through")
	assert.Equal(t, uint64(2), res.Service.Generation)
	assert.False(t, alive(first), "the old generation still runs")

	_, p = ev.next(key, state.TypeServiceStarted)
	second := p.(state.Started).PID
	assert.Equal(t, uint64(2), p.(state.Started).Generation)
	live, err := recovery.Scan(dirAbs(t, dir))
	require.NoError(t, err)
	leaders := 0
	for _, o := range live {
		if o.Leader() && o.Marker.Name == "slow" {
			leaders++
			assert.Equal(t, second, o.Identity.PID)
		}
	}
	assert.Equal(t, 1, leaders, "I3: exactly one instance of default/slow")
}

// TestRuntime_NeverStartFails: a --restart never service whose start fails
// is failed, with the reason, and verify is clean. Before, it stayed
// "starting" for good and verify said nothing supervised it. (A command
// that does not exist is refused at deploy; a script whose interpreter is
// missing passes that check and fails at exec.)
func TestRuntime_NeverStartFails(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, rt.Store().Head()+1)
	bin := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.WriteFile(bin, []byte("#!/nonexistent/interpreter\n"), 0o755))
	_, err := rt.Deploy(ctx, solo.Spec{Name: "bad", Command: []string{bin}, Restart: state.RestartNever})
	require.NoError(t, err)
	key := state.Key{Tenant: "default", Name: "bad"}
	_, p := ev.next(key, state.TypeServiceExited)
	assert.Contains(t, p.(state.Exited).Error, "no such file or directory")
	v, err := rt.Status("default", "bad")
	require.NoError(t, err)
	assert.Equal(t, state.StateFailed, v.State)
	rep, err := rt.Verify(ctx, false)
	require.NoError(t, err)
	assert.True(t, rep.Clean, "verify: %+v", rep.Findings)
}
