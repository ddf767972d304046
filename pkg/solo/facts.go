package solo

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// The supervisor speaks of processes, not of the log: a loop is given a
// [supervisor.Policy] derived from its spec, and reports what it observes
// as [supervisor.Fact]s, which the runtime records as the domain's events.
// This file is the translation between the two languages.

// loopKey is the supervisor's name for a service.
func loopKey(k state.Key) supervisor.Key { return supervisor.Key{Tenant: k.Tenant, Name: k.Name} }

// servicePolicy is what a loop is told of spec: the domain's restart rule
// ([state.RestartPolicy.ShouldRestart], the one rule [state.Service.State]
// uses too), limit and window, stop signal and timeout.
func servicePolicy(spec state.Spec) supervisor.Policy {
	restart := spec.Restart
	return supervisor.Policy{
		Restart: func(e supervisor.Exit) bool {
			return restart.ShouldRestart(e.Code, state.SignalName(e.Signal), e.Unknown)
		},
		MaxRestarts: spec.RestartLimit(),
		Window:      spec.RestartWindow.Std(),
		StopSignal:  spec.Signal(),
		StopTimeout: spec.StopTimeout.Std(),
	}
}

// factEvent is the domain event that records f: service_started,
// service_exited or service_failed.
func factEvent(f supervisor.Fact) (state.Payload, error) {
	switch f := f.(type) {
	case supervisor.Started:
		id := f.Identity
		return state.Started{Generation: f.Generation, Attempt: f.Attempt, PID: id.PID, StartTicks: id.StartTicks, BootID: id.BootID}, nil
	case supervisor.Exited:
		p := state.Exited{
			Generation: f.Generation, PID: f.PID, Attempt: f.Attempt, ExitCode: f.Exit.Code,
			Signal: state.SignalName(f.Exit.Signal), RanFor: state.Duration(f.RanFor), Unknown: f.Exit.Unknown,
			Restart: f.Restart, Backoff: state.Duration(f.Backoff),
		}
		if f.Err != nil {
			p.Error = f.Err.Error()
		}
		if f.Exit.OOM {
			p.Reason = state.ExitOOM
		}
		if errors.Is(f.Err, supervisor.ErrUnhealthy) {
			p.Reason, p.Error = state.ExitUnhealthy, shortReason(p.Error)
		}
		return p, nil
	case supervisor.Ready:
		return state.Ready{Generation: f.Generation, Attempt: f.Attempt, PID: f.PID, After: state.Duration(f.After)}, nil
	case supervisor.Health:
		p := state.Health{Generation: f.Generation, Attempt: f.Attempt, PID: f.PID, Healthy: f.Healthy}
		if f.Reason != nil {
			p.Reason = shortReason(f.Reason.Error())
		}
		return p, nil
	case supervisor.GaveUp:
		return state.Failed{Generation: f.Generation, Restarts: f.Restarts, Window: state.Duration(f.Window)}, nil
	}
	return nil, fmt.Errorf("record: unknown fact %T", f)
}

// maxReason is the longest health reason a service_health keeps: a probe's
// error (an HTTP status line, a dial error) in a few words, not a page.
const maxReason = 200

// shortReason is s cut to maxReason bytes, on a rune boundary.
func shortReason(s string) string {
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// recordFact is a loop's [supervisor.Recorder]: it records each fact as
// its domain event, carrying fence, the fencing token of the placement the
// loop runs under (0 on a single machine), through [Runtime.observe],
// which waits out a log that cannot be written rather than lose it.
func (r *Runtime) recordFact(fence uint64) supervisor.Recorder {
	return supervisor.RecorderFunc(func(ctx context.Context, key supervisor.Key, f supervisor.Fact) error {
		p, err := factEvent(f)
		if err != nil {
			return err
		}
		switch q := p.(type) {
		case state.Started:
			q.Fence = fence
			p = q
		case state.Exited:
			q.Fence = fence
			p = q
		}
		return r.observe(ctx, state.Key{Tenant: key.Tenant, Name: key.Name}, p)
	})
}
