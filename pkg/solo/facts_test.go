package solo

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

func TestFactEvent(t *testing.T) {
	id := supervisor.Identity{PID: 42, StartTicks: 777, BootID: "boot"}
	cases := []struct {
		name string
		fact supervisor.Fact
		want state.Payload
	}{
		{
			name: "started",
			fact: supervisor.Started{Generation: 3, Attempt: 2, Identity: id},
			want: state.Started{Generation: 3, Attempt: 2, PID: 42, StartTicks: 777, BootID: "boot"},
		},
		{
			name: "started in-process",
			fact: supervisor.Started{Generation: 3, Attempt: 1},
			want: state.Started{Generation: 3, Attempt: 1},
		},
		{
			name: "exited with a status",
			fact: supervisor.Exited{Generation: 3, Attempt: 2, PID: 42, Exit: supervisor.Exit{Code: 3}, RanFor: 1500 * time.Millisecond},
			want: state.Exited{Generation: 3, Attempt: 2, PID: 42, ExitCode: 3, RanFor: state.Duration(1500 * time.Millisecond)},
		},
		{
			name: "killed by a signal",
			fact: supervisor.Exited{Generation: 3, Attempt: 2, PID: 42, Exit: supervisor.Exit{Code: -1, Signal: syscall.SIGKILL}},
			want: state.Exited{Generation: 3, Attempt: 2, PID: 42, ExitCode: -1, Signal: "SIGKILL"},
		},
		{
			name: "an unknown end, with why",
			fact: supervisor.Exited{Generation: 3, Attempt: 2, PID: 42, Exit: supervisor.Exit{Unknown: true}, Err: errTest("stop failed: stuck")},
			want: state.Exited{Generation: 3, Attempt: 2, PID: 42, Unknown: true, Error: "stop failed: stuck"},
		},
		{
			name: "did not start",
			fact: supervisor.Exited{Generation: 3, Attempt: 4, Exit: supervisor.Exit{Code: -1}, Err: errTest("exec: no such file")},
			want: state.Exited{Generation: 3, Attempt: 4, ExitCode: -1, Error: "exec: no such file"},
		},
		{
			name: "gave up",
			fact: supervisor.GaveUp{Generation: 3, Restarts: 5, Window: time.Minute},
			want: state.Failed{Generation: 3, Restarts: 5, Window: state.Duration(time.Minute)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := factEvent(c.fact)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
	t.Run("a fact it does not know is an error, not an event", func(t *testing.T) {
		_, err := factEvent(otherFact{})
		assert.Error(t, err)
	})
}

type errTest string

func (e errTest) Error() string { return string(e) }

type otherFact struct{}

func (otherFact) Type() supervisor.FactType { return 99 }

// The loop is told the domain's rule, limit, window and stop procedure of
// its spec.
func TestServicePolicy(t *testing.T) {
	exits := []supervisor.Exit{
		{Code: 0}, {Code: 1}, {Code: -1, Signal: syscall.SIGTERM}, {Unknown: true}, {Code: -1},
	}
	for _, restart := range []state.RestartPolicy{state.RestartAlways, state.RestartOnFailure, state.RestartNever, ""} {
		p := servicePolicy(state.Spec{Restart: restart})
		for _, e := range exits {
			assert.Equal(t, restart.ShouldRestart(e.Code, state.SignalName(e.Signal), e.Unknown), p.Restart(e), "%q after %v", restart, e)
		}
	}
	assert.True(t, servicePolicy(state.Spec{Restart: state.RestartOnFailure}).Restart(supervisor.Exit{Unknown: true}), "an unknown end is a failure")
	assert.False(t, servicePolicy(state.Spec{Restart: state.RestartOnFailure}).Restart(supervisor.Exit{}), "a clean exit is not")

	zero := 0
	spec := state.Spec{MaxRestarts: &zero, RestartWindow: state.Duration(time.Minute), StopSignal: "SIGINT", StopTimeout: state.Duration(3 * time.Second)}
	p := servicePolicy(spec)
	p.Restart = nil
	assert.Equal(t, supervisor.Policy{MaxRestarts: 0, Window: time.Minute, StopSignal: syscall.SIGINT, StopTimeout: 3 * time.Second}, p)

	spec = state.Spec{}
	spec.Normalize()
	p = servicePolicy(spec)
	assert.Equal(t, state.DefaultMaxRestarts, p.MaxRestarts)
	assert.Equal(t, state.DefaultRestartWindow.Std(), p.Window)
	assert.Equal(t, syscall.SIGTERM, p.StopSignal)
	assert.Equal(t, state.DefaultStopTimeout.Std(), p.StopTimeout)
}
