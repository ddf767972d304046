package solo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// The lifecycle verbs beyond Deploy and Kill: Start, Restart, Signal and
// Remove, and WaitStarted, which tells whether the attempt a write asked
// for started. Each verb is recorded as one event, with the caller's actor
// (see [WithActor]), before it acts (I2), under the service's write lock.

// Reasons recorded by the verbs.
const reasonRequested = "requested"

// Start makes a service desired again with its last spec and generation:
// one that was stopped ([Runtime.Kill]), failed (its restart limit), or
// ended as its policy wanted. It appends service_start_requested, fsynced,
// then starts a new attempt; the attempt does not count as a restart.
//
// Starting a service that a loop of this runtime has in hand (running,
// starting, in backoff) writes nothing and returns its view with Changed
// false. A name never deployed, or removed, returns [ErrNotFound].
func (r *Runtime) Start(ctx context.Context, tenant, name string) (DeployResult, error) {
	if err := r.writable(); err != nil {
		return DeployResult{}, err
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return DeployResult{}, fmt.Errorf("start: %w", err)
	}
	unlock := r.keys.lock(key)
	defer unlock()
	cur, ok := r.world.service(key.Tenant, key.Name)
	if !ok {
		return DeployResult{}, fmt.Errorf("start %s: %w (never deployed, or removed: deploy it)", key, ErrNotFound)
	}
	if cur.Desired && r.supervised(key) {
		return DeployResult{Service: cur.View()}, nil
	}
	pos, err := r.append(ctx, key, state.StartRequested{Generation: cur.Generation, Reason: reasonRequested}, actorFrom(ctx))
	if err != nil {
		return DeployResult{}, fmt.Errorf("start %s: %w", key, err)
	}
	return r.startAgain(ctx, key, pos, "start")
}

// Restart stops the service's instance with its own stop procedure (stop
// signal, stop timeout, then SIGKILL: see [supervisor.Stop]) and starts a
// new attempt of the same spec and generation. It appends
// service_restart_requested first. The new attempt counts neither toward
// the restart limit (the loop starts with a fresh window) nor in the
// view's Restarts, which counts only restarts after the service's own
// exits. Restarting a stopped service starts it. A name never deployed, or
// removed, returns [ErrNotFound].
func (r *Runtime) Restart(ctx context.Context, tenant, name string) (DeployResult, error) {
	if err := r.writable(); err != nil {
		return DeployResult{}, err
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return DeployResult{}, fmt.Errorf("restart: %w", err)
	}
	unlock := r.keys.lock(key)
	defer unlock()
	cur, ok := r.world.service(key.Tenant, key.Name)
	if !ok {
		return DeployResult{}, fmt.Errorf("restart %s: %w (never deployed, or removed: deploy it)", key, ErrNotFound)
	}
	pos, err := r.append(ctx, key, state.RestartRequested{Generation: cur.Generation, Reason: reasonRequested}, actorFrom(ctx))
	if err != nil {
		return DeployResult{}, fmt.Errorf("restart %s: %w", key, err)
	}
	return r.startAgain(ctx, key, pos, "restart")
}

// startAgain carries out a start or restart request at pos: the loop in
// hand, if any, stops its instance (recording the exit), then a new loop
// starts the next attempt. The request is durable: it is seen through
// whatever the caller's context says (see Deploy).
//
// The result's Pos is where the new loop begins: the request, or the last
// fact the old loop recorded if that came later (an old loop stopped
// while it started its attempt records that start after the request).
// Every instance that begins after Pos is the new loop's, which is what
// [Runtime.WaitStarted] needs.
func (r *Runtime) startAgain(ctx context.Context, key state.Key, pos uint64, op string) (DeployResult, error) {
	if r.clustered() {
		// The node it is placed on acts (its reconciler).
		svc, _ := r.world.service(key.Tenant, key.Name)
		return DeployResult{Service: svc.View(), Changed: true, Pos: pos}, nil
	}
	act := context.WithoutCancel(ctx)
	if err := r.stopLoop(act, key); err != nil {
		return DeployResult{}, fmt.Errorf("%s %s: %w", op, key, err)
	}
	// The old loop's facts are folded: each waited for its fold.
	pos = max(pos, r.world.position())
	svc, _ := r.world.service(key.Tenant, key.Name)
	if err := r.supervise(svc, nil, recovery.NextAttempt(svc), time.Time{}); err != nil {
		return DeployResult{}, fmt.Errorf("%s %s: %w", op, key, err)
	}
	return DeployResult{Service: svc.View(), Changed: true, Pos: pos}, nil
}

// SignalResult is what [Runtime.Signal] did.
type SignalResult struct {
	PID    int    `json:"pid"`
	Signal string `json:"signal"`
}

// Signal sends the signal called sig (a name [state.ParseSignal] knows:
// "HUP", "SIGUSR1", ...) to the process group of the service's running
// instance. The recorded identity (pid, start ticks, boot id) is checked
// first ([supervisor.Verify], then again through a pidfd by
// [supervisor.SignalGroup]): a process that is gone, or a pid reused by
// another process, is refused with [ErrNotRunning] and nothing is written
// or signalled (I4). Otherwise service_signalled is appended, then the
// signal sent.
//
// An unknown signal name returns an error wrapping [ErrBadSignal]; a name
// never deployed [ErrNotFound]; a service with no running process (stopped,
// in backoff, in-process) [ErrNotRunning]. None writes anything.
func (r *Runtime) Signal(ctx context.Context, tenant, name, sig string) (SignalResult, error) {
	if err := r.writable(); err != nil {
		return SignalResult{}, err
	}
	s, err := state.ParseSignal(sig)
	if err != nil {
		return SignalResult{}, fmt.Errorf("signal: %w: %w", ErrBadSignal, err)
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return SignalResult{}, fmt.Errorf("signal: %w", err)
	}
	unlock := r.keys.lock(key)
	defer unlock()
	cur, ok := r.world.service(key.Tenant, key.Name)
	if !ok {
		return SignalResult{}, fmt.Errorf("signal %s: %w", key, ErrNotFound)
	}
	in := cur.Instance
	switch {
	case cur.Spec.Kind != "":
		return SignalResult{}, fmt.Errorf("signal %s: %w: an in-process service has no process to signal", key, ErrNotRunning)
	case in == nil || in.Exited || in.PID == 0:
		return SignalResult{}, fmt.Errorf("signal %s: %w (state %s)", key, ErrNotRunning, cur.State())
	case r.clustered() && !r.runsHere(cur):
		// Its process is on another machine: only its node may check it.
		return SignalResult{}, fmt.Errorf("signal %s: %w on this node: it is placed on node %q; send the signal through that node's API (solo --addr, see solo nodes)", key, ErrNotRunning, cur.Node)
	}
	id := recovery.RecordedIdentity(in)
	if err := supervisor.Verify(id); err != nil {
		return SignalResult{}, fmt.Errorf("signal %s: %w: the recorded process is not there any more: %w", key, ErrNotRunning, err)
	}
	res := SignalResult{PID: in.PID, Signal: state.SignalName(s)}
	if _, err := r.append(ctx, key, state.Signalled{PID: res.PID, Signal: res.Signal}, actorFrom(ctx)); err != nil {
		return SignalResult{}, fmt.Errorf("signal %s: %w", key, err)
	}
	if err := supervisor.SignalGroup(id, s); err != nil {
		if errors.Is(err, supervisor.ErrNoProcess) || errors.Is(err, supervisor.ErrNotSameProcess) {
			err = fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return res, fmt.Errorf("signal %s: %w", key, err)
	}
	return res, nil
}

// Remove forgets a service that is stopped: it appends service_removed, and
// the service is gone from List and Status; its name is free, and a later
// deploy of it starts at generation 1. Its log files are kept.
//
// A service that is desired, or whose instance has not been seen to end,
// is refused with [ErrRunning] (stop it first), and nothing is written. A
// name never deployed returns [ErrNotFound].
func (r *Runtime) Remove(ctx context.Context, tenant, name string) error {
	if err := r.writable(); err != nil {
		return err
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	unlock := r.keys.lock(key)
	defer unlock()
	cur, ok := r.world.service(key.Tenant, key.Name)
	if !ok {
		return fmt.Errorf("remove %s: %w", key, ErrNotFound)
	}
	if cur.Desired || (cur.Instance != nil && !cur.Instance.Exited) || r.supervised(key) {
		return fmt.Errorf("remove %s: %w (state %s): stop it first (solo stop %s)", key, ErrRunning, cur.State(), key.Name)
	}
	if err := r.refuseDependents(key); err != nil {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	if _, err := r.append(ctx, key, state.Removed{Reason: reasonRequested}, actorFrom(ctx)); err != nil {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	r.dropCgroup(ctx, key)
	return nil
}

// DefaultStartWait is how long the CLI and the API wait, by default, for
// the attempt a deploy, start, restart or apply asked for to start.
const DefaultStartWait = 5 * time.Second

// WaitStarted waits until the first attempt of (tenant, name) that begins
// after position after (the position of the deploy, start or restart that
// asked for it: [DeployResult.Pos]) has started or could not start, and
// returns the service's view.
//
// Started means the instance runs: for an OS process, exec succeeded (the
// program was found, could be executed, in its directory), which is when
// service_started is recorded; for an in-process service, its factory
// returned. How long it stays up after that is the restart policy's
// business, not this call's: a program that exits at once started.
//
// An attempt that could not start (no such program, a bad interpreter, a
// directory that is gone) returns an error wrapping [ErrStartFailed] with
// the reason, which is also in the view's StartError, in the events and in
// the service's log file. A service stopped, removed or failed before its
// attempt began returns [ErrStartFailed] too ([ErrNotFound] once removed).
// A start that waits for the services its spec is after or requires (see
// [Spec.After]) is decided too, with no error: it is in hand and starts
// once they are ready; the view's state is starting, and Status tells what
// it waits for. WaitStarted does not wait for the dependencies.
//
// WaitStarted waits on the events folded into the world, never polls; it
// returns ctx's error (and the view so far) when ctx ends first, so bound
// it with a deadline. It writes nothing.
func (r *Runtime) WaitStarted(ctx context.Context, tenant, name string, after uint64) (ServiceView, error) {
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return ServiceView{}, fmt.Errorf("wait: %w", err)
	}
	wake := make(chan struct{}, 1)
	stop := r.world.watch(func(env eventstore.Envelope) {
		if env.Tenant == key.Tenant && env.Subject == key.Name {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	defer stop()
	for {
		// Read after watching: an event folded since is seen here or
		// wakes the next turn.
		svc, ok := r.world.service(key.Tenant, key.Name)
		if !ok {
			return ServiceView{}, fmt.Errorf("wait %s: %w", key, ErrNotFound)
		}
		if done, err := startOutcome(svc, after); done {
			if err != nil {
				err = fmt.Errorf("%s generation %d: %w", key, svc.Generation, err)
			}
			return svc.View(), err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return svc.View(), fmt.Errorf("wait %s: %w", key, ctx.Err())
		}
	}
}

// startOutcome is the one rule of [Runtime.WaitStarted]: whether the first
// attempt of svc after position after is decided, and how.
func startOutcome(svc *state.Service, after uint64) (done bool, err error) {
	if wt := svc.Waiting; wt != nil && wt.Pos > after && svc.Desired {
		// Its start waits for services it is after: it is in hand, and
		// starts once they are ready; the view says it waits.
		return true, nil
	}
	if in := svc.Instance; in != nil && in.Generation == svc.Generation {
		switch {
		case in.StartError != "" && in.ExitPos > after:
			return true, fmt.Errorf("%w: %s", ErrStartFailed, in.StartError)
		case in.StartError == "" && in.StartPos > after:
			return true, nil
		}
	}
	switch {
	case !svc.Desired:
		return true, fmt.Errorf("%w: stopped before it started", ErrStartFailed)
	case svc.Failed && svc.FailedPos > after:
		return true, fmt.Errorf("%w: failed before it started", ErrStartFailed)
	}
	return false, nil
}
