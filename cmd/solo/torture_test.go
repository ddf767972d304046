package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
)

// The torture test drives the real daemon through a storm of deploys,
// redeploys, kills (as kill or stop), starts, restarts, signals, removals
// and crashing services from several CLI clients at once,
// SIGKILLs it after a random number of acknowledged calls, starts it again
// on the same data dir, and checks I3 to I5 against what the clients were
// told:
//
//   - a service whose last acknowledged call was a deploy runs exactly once,
//     in the generation and with the spec of that deploy;
//   - a service whose last acknowledged call was a kill does not run;
//   - a start or restart runs the version last deployed (a restart with a
//     new process); a removed service is not in the log and does not run;
//   - a call in flight at the kill (not acknowledged) may or may not have
//     taken effect, but the outcome is one of the two, never both;
//   - no service has two live instances, and no marked process is left
//     unaccounted for;
//   - `solo verify --json` is clean and `solo db check` passes.
//
// TORTURE_SEED replays one run; TORTURE_ROUNDS changes the number of
// rounds (at least 100 by default, as issue 5 asks).

// opKind is what a client asked for.
type opKind int

const (
	opDeploy opKind = iota + 1 // deploy, or start and restart: run a version
	opKill                     // kill or stop
	opRemove                   // rm: not in the log
)

// op is one call, with the spec version it deployed.
type op struct {
	kind    opKind
	version int
}

func (o op) String() string {
	switch o.kind {
	case opKill:
		return "kill"
	case opRemove:
		return "rm"
	}
	return fmt.Sprintf("deploy v%d", o.version)
}

// tortureService is what the clients were told about one service. Each
// service is driven by one client only, so its calls are ordered.
type tortureService struct {
	name    string
	crasher bool // exits on its own: may be in backoff or failed
	version int  // last version handed out
	// deployed is the version the log holds as far as the client knows
	// (the last deploy acknowledged, or what the log showed after a
	// restart), 0 when it holds none: what a start or restart runs.
	deployed int
	// acked is the last acknowledged call (zero: none yet); pending the
	// calls made after it that were not acknowledged (in flight at the
	// kill). The first call after the kill that is acknowledged, or the
	// check after the restart, settles them.
	acked   op
	pending []op
	// restarting is set while a restart is among the pending calls: it
	// may have signalled the instance before the kill, so that instance
	// may die after the kill, and a new instance of the same generation
	// replace it.
	restarting bool
	history    []string // acknowledged calls, in order, for failure messages
}

// argv is the command of version v: the version is in the command line, so
// a live process tells which deploy it belongs to.
func (s *tortureService) argv(v int) []string {
	if !s.crasher {
		return []string{"sleep", strconv.Itoa(1_000_000 + v)}
	}
	// $0 carries the version; the exit comes after a short time that
	// varies with it.
	return []string{"sh", "-c", fmt.Sprintf("sleep 0.0%d; exit 1", v%10), "crash-v" + strconv.Itoa(v)}
}

// versionOf returns the version a command line (NUL separated, as in
// /proc/PID/cmdline, or an argv) belongs to.
func (s *tortureService) versionOf(argv []string) (int, bool) {
	if len(argv) == 0 {
		return 0, false
	}
	last := argv[len(argv)-1]
	if s.crasher {
		last = strings.TrimPrefix(last, "crash-v")
	}
	v, err := strconv.Atoi(last)
	if err != nil {
		return 0, false
	}
	if !s.crasher {
		v -= 1_000_000
	}
	return v, true
}

func TestTorture_SIGKILLDuringStorm(t *testing.T) {
	rounds := 100
	if testing.Short() {
		rounds = 10
	}
	if n, err := strconv.Atoi(os.Getenv("TORTURE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("TORTURE_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("TORTURE_SEED=%d, %d rounds", seed, rounds)
	rnd := rand.New(rand.NewPCG(seed, 0))

	dir := dataDir(t)
	home, err := filepath.Abs(dir)
	require.NoError(t, err)
	t.Cleanup(func() { killMarked(dir) })

	// Three clients, each driving its own services: sleepers that must run
	// exactly when the log says so, and crashers that exit on their own.
	const clients = 3
	owned := make([][]*tortureService, clients)
	var all []*tortureService
	for c := range clients {
		for i := range 3 {
			s := &tortureService{name: fmt.Sprintf("s%d-%d", c, i)}
			owned[c] = append(owned[c], s)
			all = append(all, s)
		}
	}
	for c := range 2 {
		s := &tortureService{name: fmt.Sprintf("crash%d", c), crasher: true}
		owned[c] = append(owned[c], s)
		all = append(all, s)
	}

	start := time.Now()
	var acks, unacked int
	var before []recovery.Observation // what ran while no daemon did
	for round := range rounds {
		d := startDaemon(t, dir)
		checkWorld(t, round, dir, home, all, before, d)
		if t.Failed() {
			return
		}
		a, u := storm(t, rnd, d, owned)
		acks, unacked = acks+a, unacked+u
		<-d.done
		before, err = recovery.Scan(home)
		require.NoError(t, err)
		// I3 holds at every instant, not only after recovery: frozen by
		// the kill, the world never has two instances of one service.
		seen := map[string]int{}
		for _, o := range before {
			if !o.Leader() {
				continue
			}
			if pid, dup := seen[o.Marker.Name]; dup {
				t.Errorf("round %d: at the kill, %s ran twice: pids %d and %d\ndaemon log:\n%s", round, o.Marker.Name, pid, o.Identity.PID, tail(d.logs.String(), 60))
			}
			seen[o.Marker.Name] = o.Identity.PID
		}
	}
	d := startDaemon(t, dir)
	checkWorld(t, rounds, dir, home, all, before, d)
	t.Logf("%d rounds in %v: %d calls acknowledged, %d in flight at a kill", rounds, time.Since(start).Round(time.Millisecond), acks, unacked)
	verbs := map[string]int{}
	for _, s := range all {
		for _, h := range s.history {
			verbs[strings.Fields(h)[0]]++
		}
	}
	t.Logf("acknowledged, by verb: %v", verbs)
	if rounds >= 50 { // enough calls that each verb comes up
		for _, verb := range []string{"deploy", "kill", "stop", "start", "restart", "signal", "rm"} {
			assert.NotZero(t, verbs[verb], "the storm never made an acknowledged %s", verb)
		}
	}

	// A clean drain stops everything; nothing of ours is left running.
	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second), "%s", d.logs)
	live, err := recovery.Scan(home)
	require.NoError(t, err)
	assert.Empty(t, live, "marked processes outlived the drain")
}

// storm runs the clients against d until the kill: after killAt
// acknowledged calls, d is SIGKILLed while the other clients' calls are in
// flight. It returns the number of calls acknowledged and left unsettled.
func storm(t *testing.T, rnd *rand.Rand, d *daemon, owned [][]*tortureService) (acked, unacked int) {
	killAt := int64(1 + rnd.IntN(14))
	var count atomic.Int64
	var killed atomic.Bool
	kill := func() {
		if killed.CompareAndSwap(false, true) {
			d.cmd.Process.Kill()
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c, svcs := range owned {
		crnd := rand.New(rand.NewPCG(rnd.Uint64(), uint64(c)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !killed.Load() {
				s := svcs[crnd.IntN(len(svcs))]
				var o op
				var args []string
				label := ""
				n := crnd.IntN(12)
				switch {
				case s.acked.kind == opDeploy && n < 4:
					verb := []string{"kill", "stop"}[n%2]
					o, args, label = op{kind: opKill}, []string{verb, s.name}, verb
				case s.acked.kind == opDeploy && n < 6 && s.deployed > 0:
					o, args, label = op{kind: opDeploy, version: s.deployed}, []string{"restart", s.name}, "restart"
				case s.acked.kind == opDeploy && n < 7 && !s.crasher:
					// A signal the service ignores: it changes nothing,
					// and must reach the live instance.
					o, args, label = s.acked, []string{"signal", s.name, "WINCH"}, "signal"
				case s.acked.kind == opKill && n < 6 && s.deployed > 0:
					o, args, label = op{kind: opDeploy, version: s.deployed}, []string{"start", s.name}, "start"
				case s.acked.kind == opKill && n < 8:
					o, args, label = op{kind: opRemove}, []string{"rm", s.name}, "rm"
				default:
					s.version++
					o = op{kind: opDeploy, version: s.version}
					args = []string{"deploy", s.name, "--stop-timeout", "5s"}
					if s.crasher {
						args = append(args, "--restart", "on-failure", "--max-restarts", strconv.Itoa(1+crnd.IntN(3)), "--restart-window", "10s")
					}
					args = append(append(args, "--"), s.argv(o.version)...)
				}
				if label == "" {
					label = o.String()
				} else {
					label += " (" + o.String() + ")"
				}
				r := runCLI(d.dir, args...)
				mu.Lock()
				// A kill of a service whose deploy never reached the log
				// answers not found: it does not run either way. A start
				// or rm that answers not found says the log does not hold
				// the service.
				notFound := r.code == exitcode.NotFound && o.kind != opDeploy || r.code == exitcode.NotFound && args[0] == "start"
				if notFound && o.kind != opKill {
					o, label = op{kind: opRemove}, label+": not found"
				}
				if r.code == 0 || notFound {
					s.acked, s.pending, s.restarting = o, nil, false
					s.history = append(s.history, label)
					switch o.kind {
					case opDeploy:
						s.deployed = o.version
					case opRemove:
						s.deployed = 0
					}
					acked++
				} else {
					s.pending = append(s.pending, o)
					s.restarting = s.restarting || args[0] == "restart"
					unacked++
					if !killed.Load() {
						t.Errorf("solo %v failed with the daemon alive: %d %s", args, r.code, r.stderr)
					}
				}
				mu.Unlock()
				if r.code != 0 && !notFound {
					return // the daemon is gone: this client stops
				}
				if count.Add(1) >= killAt {
					kill()
				}
			}
		}()
	}
	// A fourth client asks for reconciliation meanwhile: `solo recover`
	// and `solo verify --fix` act on the same services as the storm, and
	// must never start a second instance of one.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !killed.Load(); i++ {
			args := []string{"recover", "--json"}
			if i%2 == 1 {
				args = []string{"verify", "--fix", "--json"}
			}
			r := runCLI(d.dir, args...)
			if r.code != 0 && r.code != exitcode.Error && !killed.Load() {
				// verify --fix exits 1 when it found (and fixed) drift.
				t.Errorf("solo %v failed with the daemon alive: %d %s", args, r.code, r.stderr)
			}
		}
	}()
	wg.Wait()
	kill()
	return acked, unacked
}

// runCLI is cli for a goroutine that is not the test's: it reports instead
// of failing the test.
func runCLI(dir string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, soloBin, append([]string{"--data-dir", dir}, args...)...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code == 0 {
		code = -1
	}
	if ctx.Err() != nil {
		errb.WriteString("\n(timed out after 60s)")
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// checkWorld checks, right after the daemon d became ready, the world
// against what the clients were told, then settles each service's pending
// calls to what happened. before is what ran between the kill and the
// start: a sleeper of the current generation that ran then must have been
// re-adopted (same pid), not started a second time.
func checkWorld(t *testing.T, round int, dir, home string, all []*tortureService, before []recovery.Observation, d *daemon) {
	t.Helper()
	// The recovery pass alone must leave the world right: the verify pass
	// that follows it at start is a backstop, and if it had to fix
	// something, recovery got it wrong (a duplicate ran meanwhile, say).
	assert.False(t, strings.Contains(d.logs.String(), "verify after recovery"), "round %d: recovery left drift:\n%s", round, tail(d.logs.String(), 40))
	views := map[string]state.ServiceView{}
	var list []state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "ls", "--json")), &list))
	for _, v := range list {
		views[v.Name] = v
	}
	live, err := recovery.Scan(home)
	require.NoError(t, err)

	leaders := map[string][]recovery.Observation{}
	leaderPIDs := map[int]string{}
	for _, o := range live {
		if o.Leader() {
			leaders[o.Marker.Name] = append(leaders[o.Marker.Name], o)
			leaderPIDs[o.Identity.PID] = o.Marker.Name
		}
	}
	fail := func(s *tortureService, format string, args ...any) {
		t.Errorf("round %d, %s (acknowledged: %v; in flight at the kill: %v): %s\ndaemon log:\n%s",
			round, s.name, s.history, s.pending, fmt.Sprintf(format, args...), tail(d.logs.String(), 40))
	}
	known := map[string]bool{}
	for _, s := range all {
		known[s.name] = true
		allowed := append([]op{s.acked}, s.pending...)
		v, inLog := views[s.name]
		ls := leaders[s.name]
		if len(ls) > 1 {
			fail(s, "duplicate: %d live instances %+v", len(ls), ls)
			continue
		}
		if !inLog {
			// Never deployed, or removed, as far as the log knows: only
			// if no deploy was acknowledged after the last rm.
			if s.acked.kind == opDeploy {
				fail(s, "acknowledged %v is not in the log", s.acked)
			}
			if len(ls) > 0 {
				fail(s, "runs %d but is not in the log", ls[0].Identity.PID)
			}
			s.acked, s.pending, s.deployed, s.restarting = op{kind: opRemove}, nil, 0, false
			continue
		}
		if ver, ok := s.versionOf(v.Command); ok {
			s.deployed = ver
		}
		// What the log says happened last must be one of the allowed calls.
		var outcome op
		if v.State == state.StateKilled {
			outcome = op{kind: opKill}
		} else if ver, ok := s.versionOf(v.Command); ok {
			outcome = op{kind: opDeploy, version: ver}
		} else {
			fail(s, "command %q is none of ours", v.Command)
			continue
		}
		if !containsOp(allowed, outcome) {
			fail(s, "the log says %v (state %s, generation %d), which no call asked for last", outcome, v.State, v.Generation)
			continue
		}
		switch {
		case outcome.kind == opKill && len(ls) > 0:
			fail(s, "killed, and pid %d still runs", ls[0].Identity.PID)
		case outcome.kind == opDeploy && !s.crasher && len(ls) == 0:
			fail(s, "deployed (%s, generation %d), and no instance runs", v.State, v.Generation)
		case outcome.kind == opDeploy && !s.crasher && (v.State != state.StateRunning || v.PID != ls[0].Identity.PID):
			fail(s, "status says %s pid %d, the live instance is pid %d", v.State, v.PID, ls[0].Identity.PID)
		case len(ls) == 1:
			o := ls[0]
			for _, b := range before {
				if b.Leader() && b.Marker.Name == s.name && b.Marker.Generation == o.Marker.Generation && b.Identity.PID != o.Identity.PID && !s.crasher && !s.restarting {
					fail(s, "pid %d of generation %d ran before the start and was not re-adopted: pid %d runs instead", b.Identity.PID, b.Marker.Generation, o.Identity.PID)
				}
			}
			if o.Marker.Generation != v.Generation {
				fail(s, "the live instance (pid %d) is of generation %d, the log's is %d", o.Identity.PID, o.Marker.Generation, v.Generation)
			}
			if ver, ok := s.versionOf(cmdline(o.Identity.PID)); ok && ver != outcome.version && !s.crasher {
				fail(s, "the live instance (pid %d) runs v%d, the log says v%d", o.Identity.PID, ver, outcome.version)
			}
		}
		s.acked, s.pending, s.restarting = outcome, nil, false
	}
	// No orphans: every marked process is an instance of a service the
	// clients know, or a member of such an instance's process group.
	for _, o := range live {
		switch {
		case !known[o.Marker.Name]:
			t.Errorf("round %d: stranger %+v", round, o)
		case !o.Leader() && leaderPIDs[o.PGID] != o.Marker.Name:
			t.Errorf("round %d: orphan %+v: its group leader is gone", round, o)
		}
	}

	r := cli(t, dir, "verify", "--json")
	var rep recovery.VerifyReport
	if assert.Equal(t, 0, r.code, "round %d: solo verify: %s%s", round, r.stdout, r.stderr) {
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
		assert.True(t, rep.Clean, "round %d: verify found drift: %s\ndaemon log:\n%s", round, r.stdout, tail(d.logs.String(), 40))
	}
	r = cli(t, dir, "db", "check")
	assert.Equal(t, 0, r.code, "round %d: solo db check: %s%s", round, r.stdout, r.stderr)
}

func containsOp(ops []op, o op) bool {
	for _, x := range ops {
		if x == o {
			return true
		}
	}
	return false
}

// cmdline returns the arguments of a live process.
func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDaemon_ReadoptKeepsPID: a service survives a SIGKILLed daemon, and
// the next daemon carries on with the very same process: same pid, not
// restarted. Its exit is then seen through its pidfd and the policy
// restarts it.
func TestDaemon_ReadoptKeepsPID(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "web", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "api", "--", "sh", "-c", "sleep 1000 & exec sleep 1000")
	pids := map[string]int{}
	for _, name := range []string{"web", "api"} {
		var v state.ServiceView
		require.Eventually(t, func() bool {
			require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", name, "--json")), &v))
			return v.State == state.StateRunning && v.PID > 0
		}, 30*time.Second, 10*time.Millisecond)
		pids[name] = v.PID
	}

	d.kill()
	for name, pid := range pids {
		require.True(t, alive(pid), "%s died with the daemon", name)
	}
	d = startDaemon(t, dir)
	assert.Contains(t, d.logs.String(), "readopted=2 restarted=0", "re-adoption restarted something")
	for name, pid := range pids {
		var v state.ServiceView
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", name, "--json")), &v))
		assert.Equal(t, state.StateRunning, v.State, name)
		assert.Equal(t, pid, v.PID, "re-adoption changed the pid of %s", name)
	}
	var rep recovery.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "verify", "--json")), &rep))
	assert.True(t, rep.Clean, "%+v", rep.Findings)
	live, err := recovery.Scan(mustAbs(t, dir))
	require.NoError(t, err)
	assert.Len(t, live, 3, "web, api and api's child, nothing else: %+v", live)

	// The re-adopted process is not the daemon's child: its death is seen
	// through its pidfd, and the policy brings the service back.
	require.NoError(t, syscall.Kill(pids["web"], syscall.SIGKILL))
	require.Eventually(t, func() bool {
		var v state.ServiceView
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "web", "--json")), &v))
		return v.State == state.StateRunning && v.PID != pids["web"] && v.PID > 0
	}, 30*time.Second, 10*time.Millisecond, "web did not come back after its re-adopted process died")
	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second), "%s", d.logs)
}

func mustAbs(t testing.TB, dir string) string {
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	return abs
}
