package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/solo-rt/solo/eventstore"
	"github.com/stretchr/testify/require"
)

func TestWorld_Apply(t *testing.T) {
	cases := []struct {
		name  string
		build func(l *testLog)
		check func(t *testing.T, w *World)
	}{
		{
			name: "deploy then kill: not desired, killed",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.kill("web")
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.False(t, s.Desired)
				require.True(t, s.Killed)
				require.Equal(t, uint64(3), s.KillPos)
				require.Equal(t, "asked", s.KillReason)
				require.Equal(t, StateKilled, s.State())
				require.Empty(t, w.Desired())
			},
		},
		{
			name: "health: healthy, then unhealthy and its exit; the last failure outlives the instance",
			build: func(l *testLog) {
				spec := testSpec("web")
				spec.Health = &HealthSpec{HTTP: "http://127.0.0.1:1/"}
				l.deploySpec(spec, 1)
				l.start("web", 1, 1, 100)
				l.add(DefaultTenant, "web", Health{Generation: 1, Attempt: 1, PID: 100, Healthy: true})
				l.add(DefaultTenant, "web", Health{Generation: 1, Attempt: 9, PID: 100, Healthy: false, Reason: "stale attempt"})
				l.add(DefaultTenant, "web", Health{Generation: 1, Attempt: 1, PID: 100, Healthy: false, Reason: "GET: 500"})
				l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Signal: "SIGTERM", ExitCode: -1, Reason: ExitUnhealthy, Error: "unhealthy: GET: 500", Restart: 1})
				l.start("web", 1, 2, 101)
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, StateRunning, s.State())
				require.Equal(t, HealthState(""), s.HealthOf(), "the new instance is not checked yet")
				require.Nil(t, s.View().Healthy)
				require.Equal(t, "GET: 500", s.UnhealthyReason)
				require.False(t, s.UnhealthyAt.IsZero())
				last, ok := s.LastExit()
				require.True(t, ok)
				require.Equal(t, "stopped as unhealthy (killed by SIGTERM): GET: 500", last.Describe())
			},
		},
		{
			name: "health: an unhealthy instance shows so until it ends",
			build: func(l *testLog) {
				spec := testSpec("web")
				spec.Health = &HealthSpec{TCP: "127.0.0.1:1"}
				l.deploySpec(spec, 1)
				l.start("web", 1, 1, 100)
				l.add(DefaultTenant, "web", Health{Generation: 1, Attempt: 1, PID: 100, Healthy: false, Reason: "refused"})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, Unhealthy, s.HealthOf())
				require.NotNil(t, s.View().Healthy)
				require.False(t, *s.View().Healthy)
				require.Contains(t, s.Status(s.Instance.StartedAt).Health, "unhealthy since")
				require.Equal(t, Unhealthy, s.Figures().Health)
			},
		},
		{
			name: "placement: the fence is its position; an older fence's start is ignored, an exit ends only its own fence's instance",
			build: func(l *testLog) {
				l.deploy("web", 1)                                                                  // 1
				l.add(DefaultTenant, "web", Placed{Node: "n1", Lease: 11})                          // 2
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 1, PID: 100, Fence: 2}) // 3
				l.add(DefaultTenant, "web", Placed{Node: "n2", Lease: 12, Reason: "n1 gone"})       // 4
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 2, PID: 200, Fence: 4}) // 5
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 3, PID: 101, Fence: 2}) // 6: stale
				l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, PID: 200, Fence: 2})  // 7: not its fence
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, "n2", s.Node)
				require.Equal(t, int64(12), s.NodeLease)
				require.Equal(t, uint64(4), s.Fence)
				require.Equal(t, 200, s.Instance.PID, "the stale fence's start is ignored")
				require.False(t, s.Instance.Exited, "an exit under another fence ends nothing")
				v := s.View()
				require.Equal(t, "n2", v.Node)
				require.Equal(t, uint64(4), v.Fence)
			},
		},
		{
			name: "placement: a move to another node ends the view of the old node's instance until the new start is recorded",
			build: func(l *testLog) {
				l.deploy("web", 1)                                                                             // 1
				l.add(DefaultTenant, "web", Placed{Node: "n1", Lease: 11})                                     // 2
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 1, PID: 100, Fence: 2})            // 3
				l.add(DefaultTenant, "web", Placed{Node: "n2", Lease: 12, Reason: "node n1 lost its lease b"}) // 4
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Nil(t, s.Instance, "no instance runs on n2 yet")
				v := s.View()
				require.Equal(t, "n2", v.Node)
				require.Equal(t, uint64(4), v.Fence)
				require.Zero(t, v.PID, "never n1's pid under n2's name")
				require.True(t, v.StartedAt.IsZero())
				require.Equal(t, StateStarting, v.State)
				require.True(t, s.ShouldRun(), "it is to start on n2")
				st := s.Status(s.DeployedAt)
				require.Equal(t, "starting on node n2: the instance was left on node n1: node n1 lost its lease b", st.Reason)
				require.Len(t, st.Exits, 1)
				require.Equal(t, 100, st.Exits[0].PID)
				require.True(t, st.Exits[0].Unknown)
			},
		},
		{
			name: "placement: the old node's late exit of a moved instance changes nothing; the new start shows the new pid",
			build: func(l *testLog) {
				l.deploy("web", 1)                                                                              // 1
				l.add(DefaultTenant, "web", Placed{Node: "n1", Lease: 11})                                      // 2
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 1, PID: 100, Fence: 2})             // 3
				l.add(DefaultTenant, "web", Placed{Node: "n2", Lease: 12, Reason: "node n1 lost its lease b"})  // 4
				l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Fence: 2, ExitCode: 1}) // 5
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 1, PID: 200, Fence: 4})             // 6
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				v := s.View()
				require.Equal(t, StateRunning, v.State)
				require.Equal(t, 200, v.PID)
				require.Equal(t, "n2", v.Node)
				require.Zero(t, s.Restarts, "a move is no restart")
				require.Len(t, s.Exits, 1, "the late exit of the left instance is not another exit")
			},
		},
		{
			name: "placement: a kill for a dead node ends the view of its instance there; a plain kill waits for the exit",
			build: func(l *testLog) {
				l.deploy("web", 1)                                                                  // 1
				l.add(DefaultTenant, "web", Placed{Node: "n1", Lease: 11})                          // 2
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 1, PID: 100, Fence: 2}) // 3
				l.add(DefaultTenant, "web", Killed{Reason: "stop"})                                 // 4
				l.add(DefaultTenant, "web", Killed{Reason: "session nb lost", Node: "n9"})          // 5: not its node
				l.add(DefaultTenant, "web", Killed{Reason: "session nb lost", Node: "n1"})          // 6
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Nil(t, s.Instance)
				v := s.View()
				require.Equal(t, StateKilled, v.State)
				require.Zero(t, v.PID, "no pid of a dead node")
				require.Len(t, s.Exits, 1)
				require.Equal(t, uint64(6), s.Exits[0].Pos)
				require.Equal(t, "left on node n1: session nb lost", s.Exits[0].Error)
			},
		},
		{
			name: "placement: unplacing a running instance (a drain) keeps it running until its node records its exit",
			build: func(l *testLog) {
				l.deploy("web", 1)                                                                  // 1
				l.add(DefaultTenant, "web", Placed{Node: "n1", Lease: 11})                          // 2
				l.add(DefaultTenant, "web", Started{Generation: 1, Attempt: 1, PID: 100, Fence: 2}) // 3
				l.add(DefaultTenant, "web", Placed{Reason: "node n1 drains"})                       // 4
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.NotNil(t, s.Instance)
				require.Equal(t, 100, s.View().PID, "it still runs on n1, which stops it")
				require.Empty(t, s.Exits)
			},
		},
		{
			name: "placement: waiting for one of its nodes shows in status until it is placed",
			build: func(l *testLog) {
				spec := testSpec("web")
				spec.Nodes = []string{"n1", "n2"}
				l.deploySpec(spec, 1)
				l.add(DefaultTenant, "web", Placed{Reason: "waiting for a node among n1, n2", Waiting: []string{"n1", "n2"}})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, []string{"n1", "n2"}, s.NodeWait)
				require.Empty(t, s.Node)
				st := s.Status(s.DeployedAt)
				require.Equal(t, "waiting for a node among n1, n2", st.Reason)
				require.Equal(t, []string{"n1", "n2"}, st.Spec.Nodes)
			},
		},
		{
			name: "placement: a placement ends the wait",
			build: func(l *testLog) {
				spec := testSpec("web")
				spec.Nodes = []string{"n1", "n2"}
				l.deploySpec(spec, 1)
				l.add(DefaultTenant, "web", Placed{Reason: "waiting for a node among n1, n2", Waiting: []string{"n1", "n2"}})
				l.add(DefaultTenant, "web", Placed{Node: "n2", Lease: 2})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Empty(t, s.NodeWait)
				require.Equal(t, "n2", s.Node)
				require.Empty(t, s.Status(s.DeployedAt).Reason)
			},
		},
		{
			name: "deploy, kill, deploy again: desired",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.kill("web")
				l.deploy("web", 2)
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.True(t, s.Desired)
				require.False(t, s.Killed)
				require.Zero(t, s.KillPos)
				require.Equal(t, uint64(2), s.Generation)
				require.Equal(t, uint64(3), s.DeployPos)
				require.Equal(t, StateStarting, s.State())
				require.Equal(t, []string{"default/web"}, names(w.Desired()))
			},
		},
		{
			name: "a start that fails under restart never: failed, not starting for good",
			build: func(l *testLog) {
				spec := testSpec("bad")
				spec.Restart = RestartNever
				l.deploySpec(spec, 1)
				l.add(DefaultTenant, "bad", Exited{Generation: 1, Attempt: 1, ExitCode: -1, Error: "fork/exec /nonexistent: no such file or directory"})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "bad")
				require.Equal(t, StateFailed, s.State())
				require.NotNil(t, s.Instance)
				require.True(t, s.Instance.Exited)
				require.Contains(t, s.Instance.StartError, "no such file")
				require.Zero(t, s.Instance.PID)
			},
		},
		{
			name: "a start that fails under restart always: backoff, then running once one starts",
			build: func(l *testLog) {
				l.deploy("flaky", 1)
				l.add(DefaultTenant, "flaky", Exited{Generation: 1, Attempt: 1, ExitCode: -1, Error: "fork/exec: resource temporarily unavailable"})
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, StateBackoff, mustService(t, w, "flaky").State())
			},
		},
		{
			name: "a failed start of an older generation is ignored",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.deploy("web", 2)
				l.start("web", 2, 1, 300)
				l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, ExitCode: -1, Error: "late"})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, StateRunning, s.State())
				require.Equal(t, 300, s.Instance.PID)
			},
		},
		{
			name: "stop then start: desired again, same generation, not a restart",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.kill("web")
				l.exit("web", 1, 1, 100, 0)
				l.add(DefaultTenant, "web", StartRequested{Generation: 1, Reason: "requested"})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.True(t, s.Desired)
				require.False(t, s.Killed)
				require.Equal(t, uint64(1), s.Generation)
				require.Equal(t, uint64(5), s.RequestPos)
				require.Equal(t, StateStarting, s.State(), "a new attempt is due")
				require.True(t, s.ShouldRun())
				mustFoldMore(t, w, func(l *testLog) { l.start("web", 1, 2, 101) }, func(s *Service) {
					require.Equal(t, StateRunning, s.State())
					require.Zero(t, s.Restarts, "a requested start is not a restart")
				})
			},
		},
		{
			name: "start brings back a failed service and one that ended under its policy",
			build: func(l *testLog) {
				spec := testSpec("job")
				spec.Restart = RestartNever
				l.deploySpec(spec, 1)
				l.start("job", 1, 1, 100)
				l.exit("job", 1, 1, 100, 0)
				l.deploy("bad", 1)
				l.add(DefaultTenant, "bad", Failed{Generation: 1, Restarts: 5})
				l.add(DefaultTenant, "job", StartRequested{Generation: 1})
				l.add(DefaultTenant, "bad", StartRequested{Generation: 1})
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, StateStarting, mustService(t, w, "job").State())
				bad := mustService(t, w, "bad")
				require.False(t, bad.Failed)
				require.Equal(t, StateStarting, bad.State())
			},
		},
		{
			name: "a start request for another generation is stale",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.kill("web")
				l.add(DefaultTenant, "web", StartRequested{Generation: 7})
				l.add(DefaultTenant, "ghost", StartRequested{Generation: 1})
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, StateKilled, mustService(t, w, "web").State())
				require.Equal(t, 1, w.Len())
			},
		},
		{
			name: "restart requested: starting once the old instance exits, the new start not counted",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.exit("web", 1, 1, 100, 1)
				l.start("web", 1, 2, 101) // a restart after a crash: counted
				l.add(DefaultTenant, "web", RestartRequested{Generation: 1, Reason: "requested"})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, 1, s.Restarts)
				require.Equal(t, StateRunning, s.State(), "the old instance runs until it is stopped")
				mustFoldMore(t, w, func(l *testLog) {
					l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, PID: 101, Signal: "SIGTERM"})
				}, func(s *Service) {
					require.Equal(t, StateStarting, s.State())
				})
				mustFoldMore(t, w, func(l *testLog) {
					l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, PID: 101, Signal: "SIGTERM"})
					l.start("web", 1, 3, 102)
				}, func(s *Service) {
					require.Equal(t, StateRunning, s.State())
					require.Equal(t, 1, s.Restarts, "a requested restart is not counted")
				})
			},
		},
		{
			name: "a clean daemon stop and start is not a restart; a crash after it is",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.add("", "", ShutdownStarted{Reason: "SIGTERM"})
				l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Signal: "SIGTERM"})
				l.add("", "", ShutdownComplete{Stopped: 1})
				l.add("", "", SystemStarted{Version: "v", PID: 9})
				l.start("web", 1, 2, 101)
				l.exit("web", 1, 2, 101, 1)
				l.start("web", 1, 3, 102)
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, 1, mustService(t, w, "web").Restarts)
			},
		},
		{
			name: "remove forgets the service; a deploy of the name starts at generation 1",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.deploy("web", 2)
				l.kill("web")
				l.add(DefaultTenant, "web", Removed{Reason: "requested"})
			},
			check: func(t *testing.T, w *World) {
				_, ok := w.Service(DefaultTenant, "web")
				require.False(t, ok)
				require.Zero(t, w.Len())
				require.Equal(t, uint64(1), w.NextGeneration(DefaultTenant, "web"))
				mustFoldMore(t, w, func(l *testLog) {
					l.deploy("web", 1)
					l.start("web", 1, 1, 200)
				}, func(s *Service) {
					require.Equal(t, StateRunning, s.State())
					require.Equal(t, uint64(1), s.Generation)
					require.Zero(t, s.Restarts)
				})
			},
		},
		{
			name: "a signal changes nothing",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.add(DefaultTenant, "web", Signalled{PID: 100, Signal: "SIGHUP"})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, StateRunning, s.State())
				require.Equal(t, 100, s.Instance.PID)
			},
		},
		{
			name: "kill of an unknown service creates nothing",
			build: func(l *testLog) {
				l.kill("ghost")
				l.start("ghost", 1, 1, 7)
				l.exit("ghost", 1, 1, 7, 0)
			},
			check: func(t *testing.T, w *World) {
				_, ok := w.Service(DefaultTenant, "ghost")
				require.False(t, ok)
				require.Zero(t, w.Len())
				require.Equal(t, uint64(3), w.Pos())
			},
		},
		{
			name: "redeploy with a new spec: generation 2, restarts reset, failed cleared",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.exit("web", 1, 1, 100, 1)
				l.start("web", 1, 2, 101)
				l.exit("web", 1, 2, 101, 1)
				l.add(DefaultTenant, "web", Failed{Generation: 1, Restarts: 1, Window: DefaultRestartWindow})
				spec := testSpec("web")
				spec.Command = []string{"/bin/sleep", "2000"}
				l.deploySpec(spec, 2)
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, uint64(2), s.Generation)
				require.Equal(t, []string{"/bin/sleep", "2000"}, s.Spec.Command)
				require.Zero(t, s.Restarts)
				require.False(t, s.Failed)
				require.True(t, s.Desired)
				require.Equal(t, StateStarting, s.State(), "old generation exited, new not started")
			},
		},
		{
			name: "old generation still running after redeploy counts as running",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.deploy("web", 2)
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, StateRunning, s.State())
				require.Equal(t, uint64(1), s.Instance.Generation)
				require.Equal(t, 100, s.View().PID)
			},
		},
		{
			name: "shutdown is not a kill: still desired, stopped",
			build: func(l *testLog) {
				l.add("", "", SystemStarted{Version: "v1", PID: 1, BootID: "boot-1"})
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.add("", "", ShutdownStarted{Reason: "SIGTERM", Grace: DefaultStopTimeout})
				l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 1, PID: 100, Signal: "SIGTERM"})
				l.add("", "", ShutdownComplete{ExitCode: 0, Stopped: 1})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.True(t, s.Desired)
				require.False(t, s.Killed)
				require.Equal(t, StateStopped, s.State())
				require.Equal(t, []string{"default/web"}, names(w.Desired()))
				require.True(t, w.ShutdownComplete())
				require.True(t, w.ShuttingDown())
				sd, ok := w.LastShutdown()
				require.True(t, ok)
				require.Equal(t, 1, sd.Stopped)
				require.Equal(t, uint64(4), sd.StartedPos)
			},
		},
		{
			name: "exit after the next system_started is not a shutdown stop",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.add("", "", ShutdownStarted{Reason: "SIGTERM"})
				l.add("", "", SystemStarted{Version: "v1", PID: 1, BootID: "boot-1"})
				l.add(DefaultTenant, "web", Exited{PID: 100, Unknown: true})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.False(t, w.ShuttingDown())
				require.False(t, w.ShutdownComplete(), "the run died while draining")
				require.True(t, s.Instance.Exited)
				require.Equal(t, StateBackoff, s.State())
				require.Nil(t, s.View().ExitCode, "unknown exit has no code")
			},
		},
		{
			name: "started, exited, started counts restarts",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.exit("web", 1, 1, 100, 2)
				l.start("web", 1, 2, 101)
				l.exit("web", 1, 2, 101, 2)
				l.start("web", 1, 3, 102)
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, 2, s.Restarts)
				require.Equal(t, StateRunning, s.State())
				require.Equal(t, 102, s.Instance.PID)
				require.Equal(t, 3, s.Instance.Attempt)
			},
		},
		{
			name: "exited and would restart: backoff",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.exit("web", 1, 1, 100, 3)
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, StateBackoff, s.State())
				v := s.View()
				require.Zero(t, v.PID)
				require.NotNil(t, v.ExitCode)
				require.Equal(t, 3, *v.ExitCode)
			},
		},
		{
			name: "on-failure with exit 0: exited",
			build: func(l *testLog) {
				spec := testSpec("job")
				spec.Restart = RestartOnFailure
				l.deploySpec(spec, 1)
				l.start("job", 1, 1, 100)
				l.exit("job", 1, 1, 100, 0)
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, StateExited, mustService(t, w, "job").State())
			},
		},
		{
			name: "never with a failure: exited",
			build: func(l *testLog) {
				spec := testSpec("job")
				spec.Restart = RestartNever
				l.deploySpec(spec, 1)
				l.start("job", 1, 1, 100)
				l.exit("job", 1, 1, 100, 9)
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, StateExited, mustService(t, w, "job").State())
			},
		},
		{
			name: "failed, then recover by a start of the same generation: running",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.exit("web", 1, 1, 100, 1)
				l.add(DefaultTenant, "web", Failed{Generation: 1, Restarts: 5, Window: DefaultRestartWindow})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.True(t, s.Failed)
				require.Equal(t, StateFailed, s.State())
				require.True(t, s.Desired, "failed is not killed")

				l := newTestLog(t)
				l.pos = w.Pos()
				l.start("web", 1, 1, 200)
				w2, err := Fold(w, l.seq(0))
				require.NoError(t, err)
				s2 := mustService(t, w2, "web")
				require.False(t, s2.Failed)
				require.Equal(t, StateRunning, s2.State())
				require.True(t, s.Failed, "Fold must not change its snapshot")
			},
		},
		{
			name: "failed of an older generation is ignored",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.deploy("web", 2)
				l.add(DefaultTenant, "web", Failed{Generation: 1})
			},
			check: func(t *testing.T, w *World) {
				require.False(t, mustService(t, w, "web").Failed)
			},
		},
		{
			name: "exit with an old pid does not mark the current instance exited",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.start("web", 1, 1, 100)
				l.exit("web", 1, 1, 100, 1)
				l.start("web", 1, 2, 101)
				l.exit("web", 1, 1, 100, 1) // late duplicate of the first exit
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.False(t, s.Instance.Exited)
				require.Equal(t, 101, s.Instance.PID)
				require.Equal(t, StateRunning, s.State())
			},
		},
		{
			name: "recovery failed, then recovered clears the error",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.add(DefaultTenant, "web", RecoveryFailed{Reason: "exec: no such file", DeployPos: 1})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, "exec: no such file", s.RecoveryError)

				l := newTestLog(t)
				l.pos = w.Pos()
				l.add(DefaultTenant, "web", Recovered{How: RecoveryRestarted, PID: 300, DeployPos: 1, Generation: 1})
				w2, err := Fold(w, l.seq(0))
				require.NoError(t, err)
				s2 := mustService(t, w2, "web")
				require.Empty(t, s2.RecoveryError)
				require.Equal(t, &Recovery{How: RecoveryRestarted, Pos: 3, PID: 300, DeployPos: 1, Generation: 1}, s2.LastRecovery)
			},
		},
		{
			name: "token, drift and unknown events change no service",
			build: func(l *testLog) {
				l.deploy("web", 1)
				l.add("default", "tok1", TokenGranted{ID: "tok1", Tenant: "default", Scopes: []string{"deploy"}})
				l.add("", "", DriftFound{Kind: DriftNotRunning, Detail: "web"})
				l.add("", "", DriftFixed{Kind: DriftNotRunning, Action: "started"})
				l.add("default", "tok1", TokenRevoked{ID: "tok1"})
				l.pos++
				l.envs = append(l.envs, eventstore.Envelope{Pos: l.pos, Type: "session_created", Tenant: "default", Subject: "web", Data: json.RawMessage(`{"x":1}`)})
			},
			check: func(t *testing.T, w *World) {
				s := mustService(t, w, "web")
				require.Equal(t, uint64(1), s.DeployPos)
				require.Equal(t, StateStarting, s.State())
				require.Equal(t, uint64(6), w.Pos())
			},
		},
		{
			name: "tenants are separate",
			build: func(l *testLog) {
				a := testSpec("web")
				b := testSpec("web")
				b.Tenant = "acme"
				l.deploySpec(a, 1)
				l.deploySpec(b, 1)
				l.add("acme", "web", Killed{})
				l.deploy("api", 1)
			},
			check: func(t *testing.T, w *World) {
				require.Equal(t, []string{"acme/web", "default/api", "default/web"}, names(w.Services()))
				require.Equal(t, []string{"default/api", "default/web"}, names(w.Desired()))
				require.Equal(t, uint64(2), w.NextGeneration("acme", "web"))
				require.Equal(t, uint64(1), w.NextGeneration("acme", "new"))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t)
			tc.build(l)
			tc.check(t, mustFold(t, l))
		})
	}
}

func TestWorld_Apply_errors(t *testing.T) {
	t.Run("bad payload leaves the world unchanged", func(t *testing.T) {
		l := newTestLog(t)
		l.deploy("web", 1)
		w := mustFold(t, l)
		before := w.Clone()
		err := w.Apply(eventstore.Envelope{Pos: 2, Type: string(TypeServiceStarted), Tenant: "default", Subject: "web", Data: json.RawMessage(`{"pid":"x"}`)})
		var de *DecodeError
		require.ErrorAs(t, err, &de)
		require.ErrorIs(t, err, ErrBadPayload)
		require.Equal(t, uint64(2), de.Pos)
		require.Equal(t, before, w)

		// Fold stops there and says where.
		l.pos++
		l.envs = append(l.envs, eventstore.Envelope{Pos: l.pos, Type: string(TypeServiceKilled), Data: json.RawMessage(`[]`)})
		got, err := Fold(nil, l.seq(0))
		require.ErrorIs(t, err, ErrBadPayload)
		require.ErrorContains(t, err, "decode event 2 (service_killed)")
		require.Equal(t, uint64(1), got.Pos())
	})
	t.Run("deploy whose spec names another service", func(t *testing.T) {
		ev, err := NewEvent("", "", Deployed{Spec: testSpec("web"), Generation: 1})
		require.NoError(t, err)
		w := NewWorld()
		err = w.Apply(eventstore.Envelope{Pos: 1, Type: ev.Type, Tenant: "default", Subject: "api", Data: ev.Data})
		require.ErrorIs(t, err, ErrBadPayload)
		require.Zero(t, w.Len())
	})
	t.Run("reader error stops Fold", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := Fold(nil, func(yield func(eventstore.Envelope, error) bool) {
			yield(eventstore.Envelope{}, boom)
		})
		require.ErrorIs(t, err, boom)
	})
	t.Run("zero World is usable", func(t *testing.T) {
		var w World
		l := newTestLog(t)
		l.deploy("web", 1)
		require.NoError(t, w.Apply(l.envs[0]))
		require.Equal(t, 1, w.Len())
	})
}

// TestFold_Determinism checks I6 on a log that exercises every event type.
func TestFold_Determinism(t *testing.T) {
	l := mixedLog(t)

	t.Run("twice gives deep-equal worlds", func(t *testing.T) {
		a, err := Fold(nil, l.seq(0))
		require.NoError(t, err)
		b, err := Fold(nil, l.seq(0))
		require.NoError(t, err)
		require.Equal(t, a, b)
		ab, _ := a.MarshalSnapshot()
		bb, _ := b.MarshalSnapshot()
		require.Equal(t, string(ab), string(bb))
	})
	t.Run("two halves through a snapshot equal one go", func(t *testing.T) {
		whole, err := Fold(nil, l.seq(0))
		require.NoError(t, err)
		for cut := range len(l.envs) + 1 {
			first, err := Fold(nil, l.seqRange(0, cut))
			require.NoError(t, err)
			b, err := first.MarshalSnapshot()
			require.NoError(t, err)
			snap, err := UnmarshalSnapshot(b)
			require.NoError(t, err)
			require.Equal(t, first, snap, "cut %d", cut)
			rest, err := Fold(snap, l.seq(cut))
			require.NoError(t, err)
			require.Equal(t, whole, rest, "cut %d", cut)
		}
	})
	t.Run("re-applying folded envelopes changes nothing", func(t *testing.T) {
		w, err := Fold(nil, l.seq(0))
		require.NoError(t, err)
		before := w.Clone()
		require.Equal(t, before, w)
		for _, env := range l.envs {
			require.NoError(t, w.Apply(env))
		}
		require.Equal(t, before, w)
		// Overlapping tail from a snapshot, as a Replayer reads it.
		again, err := Fold(w, l.seq(len(l.envs)/2))
		require.NoError(t, err)
		require.Equal(t, before, again)
	})
	t.Run("clone shares nothing", func(t *testing.T) {
		w, err := Fold(nil, l.seq(0))
		require.NoError(t, err)
		c := w.Clone()
		s, _ := c.Service("default", "web")
		s.Spec.Command[0] = "changed"
		s.Spec.Env["K"] = "changed"
		*s.Spec.MaxRestarts = 99
		s.Instance.PID = -1
		orig, _ := w.Service("default", "web")
		require.Equal(t, "/bin/sleep", orig.Spec.Command[0])
		require.Equal(t, "v", orig.Spec.Env["K"])
		require.Equal(t, 3, *orig.Spec.MaxRestarts)
		require.NotEqual(t, -1, orig.Instance.PID)
	})
}

func TestWorld_MarshalSnapshot(t *testing.T) {
	t.Run("version is checked", func(t *testing.T) {
		_, err := UnmarshalSnapshot([]byte(`{"version":99,"pos":3}`))
		require.ErrorIs(t, err, ErrSnapshotVersion)
	})
	t.Run("garbage", func(t *testing.T) {
		_, err := UnmarshalSnapshot(fmt.Appendf(nil, `{"version":%d,"services":"x"}`, SnapshotVersion))
		require.ErrorIs(t, err, ErrBadSnapshot)
		_, err = UnmarshalSnapshot([]byte(`nope`))
		require.ErrorIs(t, err, ErrBadSnapshot)
	})
	t.Run("duplicate service", func(t *testing.T) {
		_, err := UnmarshalSnapshot(fmt.Appendf(nil, `{"version":%d,"services":[{"tenant":"a","name":"b"},{"tenant":"a","name":"b"}]}`, SnapshotVersion))
		require.ErrorIs(t, err, ErrBadSnapshot)
	})
	t.Run("world embeds as JSON", func(t *testing.T) {
		w := mustFold(t, mixedLog(t))
		b, err := json.Marshal(struct{ W *World }{w})
		require.NoError(t, err)
		var back struct{ W *World }
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, w, back.W)
	})
}

func TestService_View(t *testing.T) {
	l := newTestLog(t)
	l.deploy("web", 1)
	l.start("web", 1, 1, 100)
	kind := Spec{Name: "cron", Kind: "ticker", Config: json.RawMessage(`{"every": "1s"}`)}
	l.deploySpec(kind, 1)
	w := mustFold(t, l)

	b, err := json.Marshal(mustService(t, w, "web").View())
	require.NoError(t, err)
	require.JSONEq(t, `{"tenant":"default","name":"web","generation":1,"state":"running","ready":true,"pid":100,
		"restarts":0,"started_at":"2026-01-02T03:04:07Z","command":["/bin/sleep","1000"]}`, string(b))

	b, err = json.Marshal(mustService(t, w, "cron").View())
	require.NoError(t, err)
	require.JSONEq(t, `{"tenant":"default","name":"cron","generation":1,"state":"starting","ready":false,"pid":0,
		"restarts":0,"kind":"ticker"}`, string(b))
}

// mixedLog uses every event type, several services and tenants, restarts,
// kills, redeploys, shutdowns and an unknown type.
func mixedLog(tb testing.TB) *testLog {
	l := newTestLog(tb)
	max := 3
	web := testSpec("web")
	web.Env = map[string]string{"K": "v"}
	web.MaxRestarts = &max
	web.Config = nil
	l.add("", "", SystemStarted{Version: "v0.1.0", PID: 1, BootID: "boot-1"})
	l.deploySpec(web, 1)
	l.add("default", "tok", TokenGranted{ID: "tok", Tenant: "default", Scopes: []string{"deploy", "read"}, Services: []string{"web"}, ExpiresAt: t0})
	l.start("web", 1, 1, 100)
	l.exit("web", 1, 1, 100, 1)
	l.start("web", 1, 2, 101)
	l.deploySpec(Spec{Tenant: "acme", Name: "cron", Kind: "ticker", Config: json.RawMessage(`{"every": "<1s>"}`)}, 1)
	l.add("acme", "cron", Started{Generation: 1, Attempt: 1})
	l.deploy("api", 1)
	l.add(DefaultTenant, "api", RecoveryFailed{Reason: "boom", DeployPos: 9})
	l.kill("api")
	l.add("", "", DriftFound{Kind: DriftStranger, PID: 555, Detail: "SOLO_SERVICE=default/old"})
	l.add("", "", DriftFixed{Kind: DriftStranger, PID: 555, Action: "killed"})
	l.add("", "", ShutdownStarted{Reason: "SIGTERM", Grace: Duration(5e9)})
	l.add(DefaultTenant, "web", Exited{Generation: 1, Attempt: 2, PID: 101, Signal: "SIGTERM", RanFor: Duration(3e9)})
	l.add("", "", ShutdownComplete{Stopped: 2})
	l.add("", "", SystemStarted{Version: "v0.1.0", PID: 1, BootID: "boot-1"})
	l.add(DefaultTenant, "web", Recovered{How: RecoveryRestarted, PID: 102, DeployPos: 2, Generation: 1})
	l.start("web", 1, 1, 102)
	l.deploy("api", 2)
	l.add(DefaultTenant, "api", Failed{Generation: 2, Restarts: 3, Window: DefaultRestartWindow})
	l.add("default", "tok", TokenRevoked{ID: "tok"})
	l.pos++
	l.envs = append(l.envs, eventstore.Envelope{Pos: l.pos, Time: t0, Type: "task_queued", Data: json.RawMessage(`{}`)})
	return l
}
