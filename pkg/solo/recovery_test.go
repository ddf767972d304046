package solo_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

const childEnv = "SOLO_RUNTIME_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		runChild(spec) // never returns
	}
	os.Exit(m.Run())
}

// runChild opens a runtime on dir, carries out the script ("deploy:NAME",
// "kill:NAME", "start:NAME", "restart:NAME", "rm:NAME"), prints "started NAME PID" for each service it sees start,
// then "ready", and blocks until it is SIGKILLed.
func runChild(arg string) {
	dir, script, _ := strings.Cut(arg, ";")
	ctx := context.Background()
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sub := rt.Events(ctx, rt.Store().Head()+1)
	running := map[string]bool{} // services that should run once the script is done
	after := map[string]uint64{} // the position of the last write that started each
	for _, step := range strings.Split(script, ",") {
		op, name, _ := strings.Cut(step, ":")
		switch op {
		case "deploy":
			if _, err := rt.Deploy(ctx, sleeper(name)); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			running[name] = true
		case "deploynobody":
			spec := sleeper(name)
			spec.User = "nobody"
			if _, err := rt.Deploy(ctx, spec); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			running[name] = true
		case "deployenvi":
			// A program that clears its environment, marker included, then
			// says so by writing to the FIFO enviFIFO(dir) (see waitFIFO).
			spec := solo.Spec{Name: name, Command: []string{"env", "-i", "/bin/sh", "-c", `echo >"$0"; exec /bin/sleep 1000`, enviFIFO(dir)}}
			if _, err := rt.Deploy(ctx, spec); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			running[name] = true
		case "kill":
			if err := rt.Kill(ctx, "default", name); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			delete(running, name)
		case "start", "restart":
			verb := rt.Start
			if op == "restart" {
				verb = rt.Restart
			}
			res, err := verb(ctx, "default", name)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			running[name] = true
			after[name] = res.Pos
		case "rm":
			if err := rt.Remove(ctx, "default", name); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
	}
	// Wait until each service that should run has started in its latest
	// generation (a killed one may or may not have started before).
	for len(running) > 0 {
		env := <-sub.C()
		if env.Type != string(state.TypeServiceStarted) {
			continue
		}
		p, _ := state.Decode(env)
		st, err := rt.Status("default", env.Subject)
		if err != nil || p.(state.Started).Generation != st.Generation || !running[env.Subject] || env.Pos <= after[env.Subject] {
			continue
		}
		fmt.Printf("started %s %d\n", env.Subject, p.(state.Started).PID)
		delete(running, env.Subject)
	}
	fmt.Println("ready")
	select {}
}

// crashChild runs script in a child runtime on dir, SIGKILLs it once it is
// ready, and returns the pids it saw start, by service (the last one).
func crashChild(t *testing.T, dir, script string) map[string]int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+dir+";"+script)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// A child that never gets ready must not hang the suite.
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	pids := map[string]int{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "started":
			pid, _ := strconv.Atoi(f[2])
			pids[f[1]] = pid
		case len(f) > 0 && f[0] == "error":
			t.Fatalf("child: %s", sc.Text())
		case len(f) == 1 && f[0] == "ready":
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		}
	}
	cmd.Wait()
	require.True(t, deadline.Stop(), "the child runtime never got ready")
	return pids
}

func TestRecovery_ReadoptKeepsThePID(t *testing.T) {
	dir := t.TempDir()
	pids := crashChild(t, dir, "deploy:a,deploy:b")
	require.Len(t, pids, 2)
	for _, pid := range pids {
		require.True(t, alive(pid), "a service died with the daemon")
	}

	rt := MustOpen(t, solo.Options{DataDir: dir})
	rep := rt.RecoveryReport()
	assert.Equal(t, 2, rep.Readopted)
	assert.Equal(t, 0, rep.Restarted, "a live service was started a second time")
	for name, pid := range pids {
		st, err := rt.Status("default", name)
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State)
		assert.Equal(t, pid, st.PID, "re-adoption changed the pid of %s", name)
	}
	v, err := rt.Verify(context.Background(), false)
	require.NoError(t, err)
	assert.True(t, v.Clean, "%+v", v.Findings)

	// A re-adopted process is not our child: its exit is seen through its
	// pidfd, recorded with an unknown status, and the policy restarts it.
	ev := follow(t, rt, rt.Store().Head()+1)
	require.NoError(t, syscall.Kill(pids["a"], syscall.SIGKILL))
	_, p := ev.next(state.Key{Tenant: "default", Name: "a"}, state.TypeServiceExited)
	assert.True(t, p.(state.Exited).Unknown)
	assert.Equal(t, pids["a"], p.(state.Exited).PID)
	_, p = ev.next(state.Key{Tenant: "default", Name: "a"}, state.TypeServiceStarted)
	assert.NotEqual(t, pids["a"], p.(state.Started).PID)

	// Killing a re-adopted service stops it through its pidfd.
	require.NoError(t, rt.Kill(context.Background(), "default", "b"))
	assert.False(t, alive(pids["b"]))
}

func TestRecovery_OrderCases(t *testing.T) {
	t.Run("deploy, kill, crash: stays dead", func(t *testing.T) {
		dir := t.TempDir()
		crashChild(t, dir, "deploy:x,kill:x,deploy:keep")
		rt := MustOpen(t, solo.Options{DataDir: dir})
		st, err := rt.Status("default", "x")
		require.NoError(t, err)
		assert.Equal(t, state.StateKilled, st.State)
		assert.Equal(t, 0, st.PID)
		assert.Equal(t, 1, rt.RecoveryReport().Readopted)
	})
	t.Run("deploy, kill, deploy, crash: recovered", func(t *testing.T) {
		dir := t.TempDir()
		pids := crashChild(t, dir, "deploy:x,kill:x,deploy:x")
		rt := MustOpen(t, solo.Options{DataDir: dir})
		st, err := rt.Status("default", "x")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State)
		assert.Equal(t, pids["x"], st.PID)
		assert.Equal(t, uint64(2), st.Generation)
	})
	t.Run("the service died with the daemon: restarted, exactly once", func(t *testing.T) {
		dir := t.TempDir()
		pids := crashChild(t, dir, "deploy:x")
		require.NoError(t, syscall.Kill(pids["x"], syscall.SIGKILL))
		waitGone(t, pids["x"])
		rt := MustOpen(t, solo.Options{DataDir: dir})
		assert.Equal(t, 1, rt.RecoveryReport().Restarted)
		st, err := rt.Status("default", "x")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State)
		assert.NotEqual(t, pids["x"], st.PID)
		live, err := recovery.Scan(dirAbs(t, dir))
		require.NoError(t, err)
		assert.Len(t, live, 1, "more than one instance runs")
	})
}

func dirAbs(t *testing.T, dir string) string {
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	return abs
}

// waitGone waits until pid is gone or a zombie: the process was SIGKILLed
// and init reaps it when it gets to it; there is no event to wait on.
func waitGone(t *testing.T, pid int) {
	require.Eventually(t, func() bool { return !alive(pid) }, 10*time.Second, time.Millisecond)
}

// TestRecovery_RecycledPIDIsNeverSignalled writes a log whose service claims
// the pid of an unrelated live process (with another start time), as after
// a reboot-less pid reuse. Recovery must restart the service and never touch
// the unrelated process.
func TestRecovery_RecycledPIDIsNeverSignalled(t *testing.T) {
	dir := t.TempDir()
	stranger := exec.Command("sleep", "1000")
	require.NoError(t, stranger.Start())
	defer stranger.Process.Kill()
	real, err := supervisor.ReadIdentity(stranger.Process.Pid)
	require.NoError(t, err)

	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	appendPayloads(t, s, "web",
		state.Deployed{Spec: sleeper("web"), Generation: 1},
		state.Started{Generation: 1, Attempt: 1, PID: real.PID, StartTicks: real.StartTicks + 12345, BootID: real.BootID},
	)
	require.NoError(t, s.Close())

	rt := MustOpen(t, solo.Options{DataDir: dir})
	assert.Equal(t, 1, rt.RecoveryReport().Restarted)
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.NotEqual(t, real.PID, st.PID)
	require.NoError(t, rt.Kill(context.Background(), "default", "web"))
	assert.True(t, alive(real.PID), "recovery signalled a process that was not ours")
}

func TestRecovery_StrayIsStopped(t *testing.T) {
	// A process carrying our marker for a service the log never recorded
	// (the daemon died between fork and append, then the deploy itself was
	// lost... or anything else): provably ours, so it is stopped. The log
	// exists (a data dir without one refuses to start while marked
	// processes run: TestOpen_LogMissing).
	dir := dirAbs(t, t.TempDir())
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	stray := exec.Command("sleep", "1000")
	stray.Env = []string{supervisor.MarkerEnv + "=" + supervisor.Marker{Home: dir, Tenant: "default", Name: "ghost", Generation: 1, Attempt: 1}.String()}
	stray.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, stray.Start())
	exited := make(chan struct{})
	go func() { stray.Wait(); close(exited) }()

	rt := MustOpen(t, solo.Options{DataDir: dir})
	assert.Equal(t, 1, rt.RecoveryReport().Strays)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the stray still runs")
	}
	var found bool
	for env, err := range rt.Store().ReadSubject("default", "ghost", 0) {
		require.NoError(t, err)
		found = found || env.Type == string(state.TypeDriftFixed)
	}
	assert.True(t, found, "stopping the stray was not recorded")
}

func TestRecovery_UnregisteredKind(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	appendPayloads(t, s, "inproc", state.Deployed{Spec: solo.Spec{Name: "inproc", Kind: "missing"}, Generation: 1})
	require.NoError(t, s.Close())

	rt := MustOpen(t, solo.Options{DataDir: dir, Registry: solo.NewRegistry()})
	assert.Equal(t, 1, rt.RecoveryReport().Failed)
	var reasons []string
	for env, err := range rt.Store().ReadSubject("default", "inproc", 0) {
		require.NoError(t, err)
		if env.Type == string(state.TypeServiceRecoveryFailed) {
			var p state.RecoveryFailed
			require.NoError(t, json.Unmarshal(env.Data, &p))
			reasons = append(reasons, p.Reason)
		}
	}
	require.Len(t, reasons, 1, "recovery failed once, and nothing else retried it")
	assert.Contains(t, reasons[0], `"missing" is not registered`)
}

func TestRuntime_Recover(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	zero := 0
	key := state.Key{Tenant: "default", Name: "flaky"}
	_, err := rt.Deploy(ctx, solo.Spec{Name: "flaky", Command: []string{"sh", "-c", "exit 1"}, MaxRestarts: &zero})
	require.NoError(t, err)
	ev.next(key, state.TypeServiceFailed)

	plan, err := rt.Recover(ctx, "default", "flaky", true)
	require.NoError(t, err)
	require.Len(t, plan, 1)
	assert.Equal(t, state.StateFailed, plan[0].State)
	head := rt.Store().Head()
	assert.Equal(t, head, rt.Store().Head(), "a dry run wrote")

	_, err = rt.Recover(ctx, "default", "flaky", false)
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	assert.Equal(t, 2, p.(state.Started).Attempt)

	_, err = rt.Recover(ctx, "default", "nope", false)
	require.ErrorIs(t, err, recovery.ErrNotDesired)
}

func appendPayloads(t *testing.T, s *eventstore.Store, name string, ps ...state.Payload) {
	t.Helper()
	for _, p := range ps {
		ev, err := state.NewEvent("default", name, p)
		require.NoError(t, err)
		_, err = s.Append(context.Background(), ev)
		require.NoError(t, err)
	}
}

// TestRecovery_UnmarkedRecordedInstanceIsReadopted: a service that wiped its
// environment (and so its SOLO_SERVICE marker) is still the recorded
// process, as pid, start time and boot id prove: after a crash it is
// re-adopted, never taken for dead and started a second time.
func TestRecovery_UnmarkedRecordedInstanceIsReadopted(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(enviFIFO(dir), 0o600))
	pids := crashChild(t, dir, "deployenvi:e")
	old := pids["e"]
	require.NotZero(t, old)
	t.Cleanup(func() { syscall.Kill(old, syscall.SIGKILL) })
	// Its start is recorded at the fork, before it has cleared its
	// environment: wait until it says it has.
	waitFIFO(t, enviFIFO(dir))
	_, marked, err := supervisor.ReadEnvVar(old, supervisor.MarkerEnv)
	require.NoError(t, err)
	require.False(t, marked, "the test needs a service without its marker")

	rt := MustOpen(t, solo.Options{DataDir: dir})
	rep := rt.RecoveryReport()
	assert.Equal(t, 1, rep.Readopted)
	assert.Equal(t, 0, rep.Restarted, "an unmarked but recorded instance was started again")
	st, err := rt.Status("default", "e")
	require.NoError(t, err)
	assert.Equal(t, old, st.PID)
	v, err := rt.Verify(context.Background(), false)
	require.NoError(t, err)
	assert.True(t, v.Clean, "%+v", v.Findings)
}

// TestRecovery_PanickingStartFailsAlone: an in-process kind whose factory
// panics fails its own service's recovery, recorded with the panic as the
// reason; Open returns, and the other services are recovered. Before, the
// panic took the whole program down with it.
func TestRecovery_PanickingStartFailsAlone(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	appendPayloads(t, s, "boom", state.Deployed{Spec: solo.Spec{Name: "boom", Kind: "boom"}, Generation: 1})
	appendPayloads(t, s, "calm", state.Deployed{Spec: sleeper("calm"), Generation: 1})
	require.NoError(t, s.Close())

	reg := solo.NewRegistry()
	require.NoError(t, reg.Register("boom", func(json.RawMessage, io.Writer) (solo.GoService, error) {
		panic("factory exploded")
	}))
	// The deadline only bounds a failure: a hung Open fails the test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pruneCgroups(t, dir)
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Registry: reg})
	require.NoError(t, err)
	t.Cleanup(func() {
		rt.Close(context.Background())
		checkLog(t, dir)
	})

	rep := rt.RecoveryReport()
	assert.Equal(t, 1, rep.Failed)
	assert.Equal(t, 1, rep.Restarted)
	st, err := rt.Status("default", "calm")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	assert.True(t, alive(st.PID))

	failures := func() []string {
		var out []string
		for env, err := range rt.Store().ReadSubject("default", "boom", 0) {
			require.NoError(t, err)
			if env.Type == string(state.TypeServiceRecoveryFailed) {
				var p state.RecoveryFailed
				require.NoError(t, json.Unmarshal(env.Data, &p))
				out = append(out, p.Reason)
			}
		}
		return out
	}
	// The pass records it, and the verify pass after it tries once more.
	reasons := failures()
	require.NotEmpty(t, reasons)
	for _, r := range reasons {
		assert.Contains(t, r, "panic")
		assert.Contains(t, r, "factory exploded")
	}

	// `solo recover` reports the same failure, and gives the service's lock
	// back: a second one does not hang.
	for range 2 {
		items, err := rt.Recover(ctx, "default", "boom", false)
		require.NoError(t, err)
		require.Len(t, items, 1)
		assert.Contains(t, items[0].Error, "factory exploded")
	}
	assert.Len(t, failures(), len(reasons)+2)
	require.NoError(t, ctx.Err())
}

// enviFIFO is the FIFO through which the "deployenvi" service of a child
// runtime on dir says that it has cleared its environment.
func enviFIFO(dir string) string { return filepath.Join(dir, "envi.fifo") }

// waitFIFO returns once a writer has written to the FIFO at path and
// closed it: opening a FIFO to read blocks until a writer opens it.
func waitFIFO(t *testing.T, path string) {
	t.Helper()
	read := make(chan error, 1)
	go func() {
		b, err := os.ReadFile(path)
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("read %s: nothing written", path)
		}
		read <- err
	}()
	select {
	case err := <-read:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		// Only a broken test gets here; the reader stays blocked.
		t.Fatalf("nothing wrote to %s", path)
	}
}

// TestRecovery_VerifyFixStopsStrangersBesideABusyLoop: a service whose loop
// restarts it all the time has starts in flight (forked, not yet recorded)
// and their children at any instant; verify --fix must leave those alone,
// and still find and stop a leftover of an older generation, as a dead
// daemon would leave it (I3), children included.
func TestRecovery_VerifyFixStopsStrangersBesideABusyLoop(t *testing.T) {
	ctx := context.Background()
	dir := dirAbs(t, t.TempDir())
	rt := MustOpen(t, solo.Options{DataDir: dir})
	ev := follow(t, rt, rt.Store().Head()+1)
	key := state.Key{Tenant: "default", Name: "web"}
	many := 1_000_000
	spec := solo.Spec{Name: "web", Command: []string{"sh", "-c", "sleep 0.02; exit 1"}, MaxRestarts: &many}
	_, err := rt.Deploy(ctx, spec)
	require.NoError(t, err)
	spec.Command = []string{"sh", "-c", "sleep 0.03; exit 1"}
	_, err = rt.Deploy(ctx, spec)
	require.NoError(t, err)
	for {
		_, p := ev.next(key, state.TypeServiceStarted)
		if p.(state.Started).Generation == 2 {
			break
		}
	}

	// Generation 1, attempt 7, leader and child, marked as ours.
	stray := exec.Command("sh", "-c", "sleep 1000 & exec sleep 1000")
	stray.Env = []string{supervisor.MarkerEnv + "=" + supervisor.Marker{Home: dir, Tenant: "default", Name: "web", Generation: 1, Attempt: 7}.String()}
	stray.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, stray.Start())
	t.Cleanup(func() { syscall.Kill(-stray.Process.Pid, syscall.SIGKILL) })
	exited := make(chan struct{})
	go func() { stray.Wait(); close(exited) }()

	for round := range 20 {
		rep, err := rt.Verify(ctx, true)
		require.NoError(t, err)
		for _, f := range rep.Findings {
			assert.Equal(t, state.DriftStranger, f.Kind, "round %d: %+v", round, f)
			assert.Contains(t, f.Detail, "marked generation 1 attempt 7", "round %d: the busy loop's own process was taken for a stranger: %+v", round, f)
		}
		if round == 0 {
			var stopped bool
			for _, f := range rep.Findings {
				stopped = stopped || (f.PID == stray.Process.Pid && f.Fixed == "stopped")
			}
			assert.True(t, stopped, "the leftover was not stopped: %+v", rep.Findings)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Fatal("the leftover still runs")
			}
		}
	}
	live, err := recovery.Scan(dir)
	require.NoError(t, err)
	for _, o := range live {
		assert.Equal(t, uint64(2), o.Marker.Generation, "a process of generation 1 survived: %+v", o)
	}
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), st.Generation)
	assert.NotEqual(t, state.StateKilled, st.State)
}
