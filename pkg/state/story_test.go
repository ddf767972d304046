package state

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// texts returns the sentences of lines.
func texts(lines []StoryLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

// system adds a system event.
func (l *testLog) system(p Payload) { l.tb.Helper(); l.add("", "", p) }

func TestStory(t *testing.T) {
	limit := 3
	crashing := Spec{Name: "web", Command: []string{"./web", "--port", "80"}, MaxRestarts: &limit}

	t.Run("an OOM kill is told as one", func(t *testing.T) {
		l := newTestLog(t)
		l.deploySpec(crashing, 1)
		l.start("web", 1, 1, 100)
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, ExitCode: -1, Signal: "SIGKILL", Reason: ExitOOM, RanFor: Duration(time.Second), Restart: 1, Backoff: Duration(200 * time.Millisecond)})
		l.start("web", 1, 2, 101)
		got := texts(Story(l.envs, t0.Add(time.Hour)))
		require.Len(t, got, 4, "%q", got)
		assert.Equal(t, "killed by the OOM killer (SIGKILL): its memory_max was reached at 03:04:08 after running 1s; restart 1 of 3 within 1m0s follows in 200ms", got[2])
		assert.Contains(t, got[3], "after an OOM kill")
	})
	t.Run("a service waiting for one of its nodes says which", func(t *testing.T) {
		l := newTestLog(t)
		spec := crashing
		spec.Nodes = []string{"n1", "n2"}
		l.deploySpec(spec, 1)
		l.add(DefaultTenant, "web", Placed{Node: "n1", Lease: 1})
		l.add(DefaultTenant, "web", Placed{Reason: "waiting for a node among n1, n2", Waiting: []string{"n1", "n2"}})
		got := texts(Story(l.envs, t0.Add(time.Hour)))
		require.Len(t, got, 2, "%q", got)
		assert.Equal(t, "waiting for a node among n1, n2 at 03:04:08: none of them is alive and undrained", got[1])
	})
	t.Run("crash loop: each exit, its restart and the limit", func(t *testing.T) {
		l := newTestLog(t)
		l.deploySpec(crashing, 1)
		l.start("web", 1, 1, 100)
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, ExitCode: 1, RanFor: Duration(20 * time.Millisecond), Restart: 1, Backoff: Duration(200 * time.Millisecond)})
		l.start("web", 1, 2, 101)
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, PID: 101, ExitCode: 1, RanFor: Duration(time.Second), Restart: 2, Backoff: Duration(4 * time.Second)})
		// The next attempt is 4s after the exit (at t0+5s): 2s to go at t0+7s.
		lines := Story(l.envs, t0.Add(7*time.Second))
		got := texts(lines)
		require.Len(t, got, 5, "%q", got)
		assert.Equal(t, "deployed at 03:04:06 by a local caller as generation 1: ./web --port 80", got[0])
		assert.Equal(t, "started at 03:04:07 as pid 100 (generation 1)", got[1])
		assert.Equal(t, "exited with code 1 at 03:04:08 after running 20ms; restart 1 of 3 within 1m0s follows in 200ms", got[2])
		assert.Equal(t, "restarted at 03:04:09 after exit 1 (restart 1 of 3 within 1m0s; attempt 2), pid 101", got[3])
		assert.Equal(t, "exited with code 1 at 03:04:10 after running 1s; restart 2 of 3 within 1m0s follows in 4s; next attempt in 2s", got[4])
		assert.Equal(t, TypeServiceExited, lines[4].Type)
		assert.Equal(t, uint64(5), lines[4].Pos)

		// Once the attempt is overdue the story says so instead.
		late := texts(Story(l.envs, t0.Add(time.Minute)))
		assert.Contains(t, late[4], "that attempt was due at 03:04:14 and has not been recorded")

		l.start("web", 1, 3, 102)
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 3, PID: 102, Signal: "SIGSEGV", ExitCode: -1, RanFor: Duration(time.Second)})
		l.add(DefaultTenant, "web", Failed{Generation: 1, Restarts: 3, Window: Duration(time.Minute)})
		got = texts(Story(l.envs, t0.Add(time.Hour)))
		assert.NotContains(t, got[4], "next attempt", "a restart that came is not pending")
		assert.Equal(t, "restarted at 03:04:11 after exit 1 (restart 2 of 3 within 1m0s; attempt 3), pid 102", got[5])
		assert.Equal(t, "killed by SIGSEGV at 03:04:12 after running 1s", got[6])
		assert.True(t, strings.HasPrefix(got[7], "gave up at 03:04:13 after 3 restarts in 1m0s"), got[7])
	})

	t.Run("could not start", func(t *testing.T) {
		l := newTestLog(t)
		l.deploySpec(Spec{Name: "x", Command: []string{"/nonexistent/bin"}, Restart: RestartNever}, 1)
		l.add(DefaultTenant, "x", Exited{Generation: 1, Attempt: 1, ExitCode: -1, Error: "fork/exec /nonexistent/bin: no such file or directory"})
		got := texts(Story(l.envs, t0))
		require.Len(t, got, 2)
		assert.Equal(t, "could not start at 03:04:07: fork/exec /nonexistent/bin: no such file or directory; not restarted (restart policy never)", got[1])
	})

	t.Run("stopped by a token", func(t *testing.T) {
		l := newTestLog(t)
		l.deploy("web", 1)
		l.start("web", 1, 1, 100)
		l.add(DefaultTenant, "web", Killed{Reason: "requested"})
		l.envs[len(l.envs)-1].Actor = "tok_01HXYZ"
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, ExitCode: -1, Signal: "SIGTERM", RanFor: Duration(3 * time.Second)})
		got := texts(Story(l.envs, t0))
		require.Len(t, got, 4)
		assert.Equal(t, "stopped by token tok_01HXYZ at 03:04:08", got[2])
		assert.Equal(t, "ended at 03:04:09 as asked (killed by SIGTERM) after running 3s", got[3])
	})

	t.Run("the lifecycle verbs", func(t *testing.T) {
		l := newTestLog(t)
		l.deploy("web", 1)
		l.start("web", 1, 1, 100)
		l.add(DefaultTenant, "web", Signalled{PID: 100, Signal: "SIGHUP"})
		l.envs[len(l.envs)-1].Actor = "tok_A"
		l.add(DefaultTenant, "web", RestartRequested{Generation: 1, Reason: "requested"})
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Signal: "SIGTERM", ExitCode: -1, RanFor: Duration(time.Second)})
		l.start("web", 1, 2, 101)
		l.add(DefaultTenant, "web", Killed{Reason: "requested"})
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, PID: 101, Signal: "SIGTERM", ExitCode: -1, RanFor: Duration(time.Second)})
		l.add(DefaultTenant, "web", StartRequested{Generation: 1})
		l.start("web", 1, 3, 102)
		l.add(DefaultTenant, "web", Killed{Reason: "requested"})
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 3, PID: 102, ExitCode: 0, RanFor: Duration(time.Second)})
		l.add(DefaultTenant, "web", Removed{Reason: "requested"})
		got := texts(Story(l.envs, t0))
		assert.Equal(t, []string{
			"deployed at 03:04:06 by a local caller as generation 1: /bin/sleep 1000",
			"started at 03:04:07 as pid 100 (generation 1)",
			"sent SIGHUP to pid 100 at 03:04:08, asked by token tok_A",
			"restart requested by a local caller at 03:04:09",
			"ended at 03:04:10 for the restart (killed by SIGTERM) after running 1s",
			"started at 03:04:11 as pid 101 (generation 1, attempt 2), as requested",
			"stopped by a local caller at 03:04:12",
			"ended at 03:04:13 as asked (killed by SIGTERM) after running 1s",
			"start requested by a local caller at 03:04:14",
			"started at 03:04:15 as pid 102 (generation 1, attempt 3), as requested",
			"stopped by a local caller at 03:04:16",
			"ended at 03:04:17 as asked (exited with code 0) after running 1s",
			"removed by a local caller at 03:04:18: the name is free",
		}, got)
	})

	t.Run("pruned, replaced by a deploy", func(t *testing.T) {
		l := newTestLog(t)
		l.deploy("web", 1)
		l.start("web", 1, 1, 100)
		l.deploy("web", 2)
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Signal: "SIGTERM", ExitCode: -1, RanFor: Duration(time.Second)})
		l.start("web", 2, 1, 200)
		l.add(DefaultTenant, "web", Killed{Reason: "pruned by apply"})
		got := texts(Story(l.envs, t0))
		require.Len(t, got, 6)
		assert.Equal(t, "replaced at 03:04:09 by generation 2 (the old instance killed by SIGTERM) after running 1s", got[3])
		assert.Equal(t, "started at 03:04:10 as pid 200 (generation 2)", got[4])
		assert.Equal(t, "stopped by a local caller at 03:04:11 (pruned by apply)", got[5])
	})

	t.Run("re-adopted after a crash of the daemon; restarted after a clean stop", func(t *testing.T) {
		l := newTestLog(t)
		l.system(SystemStarted{PID: 1, Version: "v"}) // before the service: not told
		l.deploy("web", 1)
		l.start("web", 1, 1, 100)
		l.add("other", "svc", Killed{}) // another stream: not told
		l.system(SystemStarted{PID: 2, Version: "v"})
		l.add(DefaultTenant, "web", Recovered{How: RecoveryReadopted, PID: 100, DeployPos: 2, Generation: 1})
		l.system(ShutdownStarted{Reason: "SIGTERM", Grace: Duration(10 * time.Second)})
		l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Signal: "SIGTERM", ExitCode: -1, RanFor: Duration(time.Minute)})
		l.system(ShutdownComplete{})
		l.system(SystemStarted{PID: 3, Version: "v"})
		l.start("web", 1, 2, 300)
		l.add(DefaultTenant, "web", Recovered{How: RecoveryRestarted, PID: 300, DeployPos: 2, Generation: 1})
		got := texts(Story(l.envs, t0))
		assert.Equal(t, []string{
			"deployed at 03:04:07 by a local caller as generation 1: /bin/sleep 1000",
			"started at 03:04:08 as pid 100 (generation 1)",
			"the daemon started at 03:04:10 (pid 2)",
			"re-adopted pid 100 at 03:04:11 after the daemon restarted without a clean shutdown: it had kept running",
			"the daemon began to shut down at 03:04:12 (SIGTERM)",
			"stopped at 03:04:13 by the daemon's shutdown (killed by SIGTERM) after running 1m0s; it comes back when the daemon starts",
			"the daemon shut down at 03:04:14",
			"the daemon started at 03:04:15 (pid 3)",
			"started at 03:04:16 as pid 300 (generation 1, attempt 2) after the daemon restarted",
			"recovered at 03:04:17 after the daemon restarted: started again (generation 1)",
		}, got)
	})

	t.Run("another day shows the date; empty is empty", func(t *testing.T) {
		l := newTestLog(t)
		l.deploy("web", 1)
		got := texts(Story(l.envs, t0.Add(48*time.Hour)))
		assert.Equal(t, "deployed at 2026-01-02 03:04:06 by a local caller as generation 1: /bin/sleep 1000", got[0])
		assert.Empty(t, Story(nil, t0))
	})
}

func TestService_Status(t *testing.T) {
	t.Run("the exits are a bounded ring, newest first", func(t *testing.T) {
		l := newTestLog(t)
		l.deploy("web", 1)
		for i := 1; i <= MaxExits+3; i++ {
			l.start("web", 1, i, 100+i)
			l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: i, PID: 100 + i, ExitCode: i, Restart: i, Backoff: Duration(time.Minute)})
		}
		svc := mustService(t, mustFold(t, l), "web")
		require.Len(t, svc.Exits, MaxExits)
		st := svc.Status(t0)
		require.Len(t, st.Exits, MaxExits)
		assert.Equal(t, MaxExits+3, st.Exits[0].ExitCode, "newest first")
		assert.Equal(t, 4, st.Exits[MaxExits-1].ExitCode, "the oldest kept")
		assert.Equal(t, StateBackoff, st.State)
		last := l.envs[len(l.envs)-1]
		assert.Equal(t, last.Time.Add(time.Minute), st.NextAttemptAt)
		assert.Equal(t, MaxExits+3, st.Restart)
		assert.Equal(t, DefaultMaxRestarts, st.RestartLimit)
		assert.Equal(t, "exited with code 8", st.Reason)
		assert.Zero(t, st.Uptime)
	})

	t.Run("running: uptime, spec with env keys only", func(t *testing.T) {
		l := newTestLog(t)
		spec := testSpec("web")
		spec.Env = map[string]string{"TOKEN": "s3cret", "A": "1"}
		spec.Dir = "/srv"
		l.deploySpec(spec, 1)
		l.start("web", 1, 1, 100)
		st := mustService(t, mustFold(t, l), "web").Status(l.envs[1].Time.Add(90 * time.Second))
		assert.Equal(t, StateRunning, st.State)
		assert.Equal(t, Duration(90*time.Second), st.Uptime)
		assert.Equal(t, []string{"A", "TOKEN"}, st.Spec.EnvKeys)
		assert.Equal(t, "/srv", st.Spec.Dir)
		assert.Equal(t, DefaultStopSignal, st.Spec.StopSignal)
		assert.Equal(t, DefaultMaxRestarts, st.Spec.MaxRestarts)
		assert.Empty(t, st.Reason)
		assert.True(t, st.NextAttemptAt.IsZero())
		b, err := encodeJSON(st)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "s3cret", "an env value in a status")
		for _, field := range []string{`"tenant"`, `"name"`, `"generation"`, `"state"`, `"pid"`, `"restarts"`, `"started_at"`, `"command"`} {
			assert.Contains(t, string(b), field, "the CLI contract's field")
		}
	})

	t.Run("could not start, killed, gave up", func(t *testing.T) {
		l := newTestLog(t)
		l.deploySpec(Spec{Name: "x", Command: []string{"/nope"}, Restart: RestartNever}, 1)
		l.add(DefaultTenant, "x", Exited{Generation: 1, Attempt: 1, ExitCode: -1, Error: "no such file"})
		l.deploy("k", 1)
		l.add(DefaultTenant, "k", Killed{Reason: "requested"})
		l.deploy("f", 1)
		l.add(DefaultTenant, "f", Failed{Generation: 1, Restarts: 5, Window: Duration(time.Minute)})
		w := mustFold(t, l)
		assert.Equal(t, "could not start: no such file", mustService(t, w, "x").Status(t0).Reason)
		assert.Equal(t, "stopped: requested", mustService(t, w, "k").Status(t0).Reason)
		assert.Equal(t, "gave up: restart limit reached (5 restarts within 1m0s)", mustService(t, w, "f").Status(t0).Reason)
	})
}
