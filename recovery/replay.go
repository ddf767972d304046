package recovery

import (
	"context"
	"errors"
	"fmt"
	"github.com/solo-rt/solo/cgroup"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/thejerf/suture/v4"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/internal/parallel"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Target is what recovery acts on: the runtime. The runtime implements it;
// recovery decides, the target carries out.
type Target interface {
	// World returns a copy of the world folded up to the head of the log.
	World() *state.World
	// Home is the installation's data directory, as written in markers.
	Home() string
	// HasKind reports whether an in-process kind is registered.
	HasKind(kind string) bool
	// Start starts one attempt of svc's current generation without
	// supervising it yet.
	Start(ctx context.Context, svc *state.Service, attempt int) (supervisor.Instance, error)
	// Supervise hands svc to its loop, which carries on with inst (started
	// at startedAt, as attempt). With inst nil the loop starts attempt
	// itself, once the services svc is after are ready: recovery leaves
	// the start of such a service to it. It is called for several
	// services at once.
	Supervise(svc *state.Service, inst supervisor.Instance, attempt int, startedAt time.Time) error
	// Append records events durably and in order, and returns once the
	// world has folded them.
	Append(ctx context.Context, events []eventstore.Event) error
}

// Defaults for [Options].
const (
	DefaultDeadline = 30 * time.Second
	DefaultWorkers  = 8
	// DefaultStrayStopTimeout is the stop timeout for a stray whose
	// service the log does not know (otherwise its spec's applies): what a
	// spec that names none gets.
	DefaultStrayStopTimeout = time.Duration(state.DefaultStopTimeout)
)

// Options configure a [Replayer]. Zero fields mean the defaults.
type Options struct {
	// Deadline bounds the whole pass. Items not done by then fail alone.
	Deadline time.Duration
	// Workers is how many items are carried out at once.
	Workers int
	Logger  hclog.Logger
	Now     func() time.Time
}

// Report is what a recovery pass did.
type Report struct {
	Decisions []Decision    `json:"decisions"`
	Readopted int           `json:"readopted"`
	Restarted int           `json:"restarted"`
	Failed    int           `json:"failed"`
	Strays    int           `json:"strays_stopped"`
	Errors    []string      `json:"errors,omitempty"`
	Took      time.Duration `json:"took"`
}

// Replayer is the one-shot recovery pass that runs at start, before the API
// accepts writes: fold, find what of ours runs ([Observe]), [Plan], then
// carry the plan out under one deadline, each item on its own. It never
// appends service_deployed (I6). As a suture service it runs once.
type Replayer struct {
	target Target
	opts   Options

	done   chan struct{}
	once   sync.Once
	report Report
	err    error
	// members is the pass's reading of the services' cgroups, for the
	// check that follows it (see [Replayer.Verify]).
	members map[state.Key][]int
}

// NewReplayer returns a pass over target; it does nothing until Run or Serve.
func NewReplayer(target Target, opts Options) *Replayer {
	if opts.Deadline <= 0 {
		opts.Deadline = DefaultDeadline
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Replayer{target: target, opts: opts, done: make(chan struct{})}
}

// Serve implements suture.Service: it runs the pass once and never asks to
// be restarted.
func (r *Replayer) Serve(ctx context.Context) error {
	r.Run(ctx)
	return suture.ErrDoNotRestart
}

// String names the pass in suture's logs.
func (r *Replayer) String() string { return "replayer" }

// Done is closed when the pass has finished.
func (r *Replayer) Done() <-chan struct{} { return r.done }

// Result returns the pass's report; valid after Done.
func (r *Replayer) Result() (Report, error) { return r.report, r.err }

// Run carries out the pass once and returns its report; later calls return
// the first result. An error means the pass could not be planned or its
// events not recorded; a single item that fails is in Report.Errors.
//
// A panic in the pass is an error too (wrapping [ErrPanic]), and Done is
// closed whatever happens: a panic that escaped would spend the once and
// leave Done open, and suture would restart Serve into a pass that never
// ends (Open waited on it forever). A panic in one item fails that item
// alone (see carryOut).
func (r *Replayer) Run(ctx context.Context) (Report, error) {
	r.once.Do(func() {
		defer close(r.done)
		defer func() {
			if p := recover(); p != nil {
				r.opts.Logger.Error("recovery pass panicked", "panic", p, "stack", string(debug.Stack()))
				r.err = fmt.Errorf("recovery pass: %w: %v", ErrPanic, p)
			}
		}()
		r.report, r.err = r.run(ctx)
	})
	return r.report, r.err
}

// Verify is the check that follows the pass (see [Verify]): its first
// pass takes the services' cgroups as this pass read them rather than
// reading them again (at 10,000 services, a fifth of a cold start); every
// process is still read afresh, and so is everything in the passes after
// the first. The reading can only be short of a process without a marker
// forked since into a service's cgroup by one that the reading holds, and
// a process it holds that has gone, or whose pid another has taken, is at
// most a first-pass finding that no fresh pass confirms: a finding acts
// only once fresh passes show it (I4). Before Done, or after a pass that
// failed, it is plain [Verify].
func (r *Replayer) Verify(ctx context.Context, t VerifyTarget, fix bool) (VerifyReport, error) {
	var members map[state.Key][]int
	select {
	case <-r.done:
		if r.err == nil {
			members = r.members
		}
	default:
	}
	return verify(ctx, t, fix, members)
}

// outcome is what carrying out one decision produced.
type outcome struct {
	d         Decision
	svc       *state.Service
	events    []eventstore.Event
	inst      supervisor.Instance
	attempt   int
	startedAt time.Time
	err       error
	// deferred: the start is left to the target's Supervise (with no
	// instance), for a service that starts after others (see restart).
	deferred bool
}

func (r *Replayer) run(ctx context.Context) (Report, error) {
	start := r.opts.Now()
	ctx, cancel := context.WithTimeout(ctx, r.opts.Deadline)
	defer cancel()

	world := r.target.World()
	live, members, err := observeAll(r.target, world, nil)
	if err != nil {
		return Report{}, err
	}
	r.members = members
	plan := Plan(world, live, r.target.HasKind)
	rep := Report{Decisions: plan}

	outs := make([]outcome, len(plan))
	sem := make(chan struct{}, r.opts.Workers)
	var wg sync.WaitGroup
	for i, d := range plan {
		svc, _ := world.Service(d.Key.Tenant, d.Key.Name)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outs[i] = r.carryOut(ctx, d, svc)
		}()
	}
	wg.Wait()

	// Record everything in plan order, then hand the instances to their
	// loops: a loop must not record an exit before its start is logged.
	var events []eventstore.Event
	for _, o := range outs {
		events = append(events, o.events...)
	}
	if err := r.appendAll(context.WithoutCancel(ctx), events); err != nil {
		for _, o := range outs {
			if o.inst != nil {
				o.inst.Stop(context.Background(), o.svc.Spec.Signal(), o.svc.Spec.StopTimeout.Std())
			}
		}
		return rep, fmt.Errorf("record recovery: %w", err)
	}
	// Each hand-over builds a loop's configuration and finds its cgroup
	// (file-system work): with thousands of services, a few at once.
	handed := make([]error, len(outs))
	parallel.Each(len(outs), r.opts.Workers, func(i int) {
		o := outs[i]
		switch {
		case o.deferred && o.err == nil:
			handed[i] = try(func() error { return r.target.Supervise(o.svc, nil, o.attempt, time.Time{}) })
		case o.inst != nil:
			handed[i] = r.supervise(ctx, o)
		}
	})
	for i, o := range outs {
		if o.err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", o.d.Key, o.err))
		}
		rep.Strays += len(o.d.Strays)
		switch {
		case o.deferred && o.err == nil:
			if err := handed[i]; err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", o.d.Key, err))
				rep.Failed++
				continue
			}
			rep.Restarted++
		case o.inst != nil:
			if err := handed[i]; err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", o.d.Key, err))
				rep.Failed++
				continue
			}
			if o.d.Action == ActionReadopt && o.err == nil {
				rep.Readopted++
			} else {
				rep.Restarted++
			}
		case o.d.Action == ActionFail || o.err != nil:
			rep.Failed++
		}
	}
	rep.Took = r.opts.Now().Sub(start)
	r.opts.Logger.Info("recovery done", "readopted", rep.Readopted, "restarted", rep.Restarted,
		"failed", rep.Failed, "strays_stopped", rep.Strays, "took", rep.Took)
	return rep, nil
}

// supervise hands o's instance to its loop. If that fails (or panics), the
// instance is stopped, for no loop would ever stop it on a kill (I3), and
// its exit and the failure are recorded.
func (r *Replayer) supervise(ctx context.Context, o outcome) error {
	err := try(func() error { return r.target.Supervise(o.svc, o.inst, o.attempt, o.startedAt) })
	if err == nil {
		return nil
	}
	err = fmt.Errorf("supervise: %w", err)
	r.opts.Logger.Error("recovered instance could not be supervised; stopping it", "service", o.d.Key, "error", err)
	svc, id := o.svc, o.inst.Identity()
	res, stopErr := o.inst.Stop(context.WithoutCancel(ctx), svc.Spec.Signal(), svc.Spec.StopTimeout.Std())
	ex := state.Exited{Generation: svc.Generation, PID: id.PID, Attempt: o.attempt, ExitCode: res.Exit.Code,
		Signal: state.SignalName(res.Exit.Signal), Error: "stopped: " + err.Error()}
	if stopErr != nil {
		ex = state.Exited{Generation: svc.Generation, PID: id.PID, Attempt: o.attempt, Unknown: true,
			Error: fmt.Sprintf("stop after %v: %v", err, stopErr)}
		err = errors.Join(err, fmt.Errorf("stop: %w", stopErr))
	}
	var events []eventstore.Event
	for _, p := range []state.Payload{ex, state.RecoveryFailed{Reason: err.Error(), DeployPos: svc.DeployPos}} {
		ev, evErr := state.NewEvent(o.d.Key.Tenant, o.d.Key.Name, p)
		if evErr != nil {
			return errors.Join(err, evErr)
		}
		ev.Actor = "local"
		events = append(events, ev)
	}
	if recErr := r.target.Append(context.WithoutCancel(ctx), events); recErr != nil {
		err = errors.Join(err, fmt.Errorf("record failure: %w", recErr))
	}
	return err
}

// try runs fn and turns a panic into an error wrapping [ErrPanic].
func try(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	return fn()
}

func panicError(p any) error { return fmt.Errorf("%w: %v", ErrPanic, p) }

// appendAll records events in commits of at most one store batch.
func (r *Replayer) appendAll(ctx context.Context, events []eventstore.Event) error {
	const batch = eventstore.DefaultMaxBatch
	for len(events) > 0 {
		n := min(batch, len(events))
		if err := r.target.Append(ctx, events[:n]); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// carryOut executes one decision: strays first, so that no two instances of
// one service ever run together, then the action.
//
// An item that panics fails alone: what it did before is kept (strays
// stopped, a gone instance's exit), and service_recovery_failed records the
// panic as its reason. An instance is put in o.inst only as the last step
// of each action, so a panic never leaves one half handed over.
func (r *Replayer) carryOut(ctx context.Context, d Decision, svc *state.Service) (o outcome) {
	o = outcome{d: d, svc: svc}
	emit := func(p state.Payload) {
		ev, err := state.NewEvent(d.Key.Tenant, d.Key.Name, p)
		if err != nil {
			o.err = errors.Join(o.err, err)
			return
		}
		ev.Actor = "local"
		o.events = append(o.events, ev)
	}
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		err := panicError(p)
		r.opts.Logger.Error("recovery of a service panicked", "service", d.Key, "panic", p, "stack", string(debug.Stack()))
		o.err = errors.Join(o.err, err)
		if svc != nil {
			emit(state.RecoveryFailed{Reason: err.Error(), DeployPos: svc.DeployPos})
		}
	}()

	sig, timeout := syscall.SIGTERM, DefaultStrayStopTimeout
	if svc != nil {
		sig, timeout = svc.Spec.Signal(), svc.Spec.StopTimeout.Std()
	}
	for _, s := range d.Strays {
		detail := fmt.Sprintf("marked %s generation %d attempt %d, found at start", s.Key(), s.Marker.Generation, s.Marker.Attempt)
		emit(state.DriftFound{Kind: state.DriftStranger, PID: s.Identity.PID, Detail: detail})
		if err := stopObserved(ctx, s, sig, timeout, strayCgroup(r.target, svc, s.Key())); err != nil {
			o.err = errors.Join(o.err, fmt.Errorf("stop stray %d: %w", s.Identity.PID, err))
			continue
		}
		emit(state.DriftFixed{Kind: state.DriftStranger, PID: s.Identity.PID, Action: "stopped"})
	}
	if svc == nil {
		return o
	}
	if d.CloseRecorded {
		if ex, ok := closeRecorded(svc, "the daemon stopped while it ran; it is gone"); ok {
			emit(ex)
		}
	}

	switch d.Action {
	case ActionReadopt:
		p, err := supervisor.Adopt(d.Adopt.Identity)
		if err != nil && !errors.Is(err, supervisor.ErrNoProcess) && !errors.Is(err, supervisor.ErrNotSameProcess) {
			// It still runs, but cannot be watched (no file left for its
			// pidfd, say): starting another would run it twice (I3).
			err = fmt.Errorf("re-adopt pid %d: %w", d.Adopt.Identity.PID, err)
			r.opts.Logger.Error("instance runs but cannot be re-adopted; it is left running, unsupervised", "service", d.Key, "error", err)
			o.err = errors.Join(o.err, err)
			emit(state.RecoveryFailed{Reason: err.Error(), DeployPos: svc.DeployPos})
			return o
		}
		if err != nil {
			// Gone since the scan: start anew instead.
			r.opts.Logger.Warn("instance vanished before it could be re-adopted; restarting", "service", d.Key, "pid", d.Adopt.Identity.PID)
			d.Attempt++
			r.restart(ctx, &o, svc, d.Attempt, emit)
			return o
		}
		id := p.Identity()
		startedAt := r.opts.Now()
		if d.Unrecorded {
			emit(state.Started{Generation: svc.Generation, Attempt: d.Attempt, PID: id.PID, StartTicks: id.StartTicks, BootID: id.BootID})
		} else if svc.Instance != nil {
			startedAt = svc.Instance.StartedAt
		}
		emit(state.Recovered{How: state.RecoveryReadopted, PID: id.PID, DeployPos: svc.DeployPos, Generation: svc.Generation})
		o.inst, o.attempt, o.startedAt = supervisor.AdoptedInstance(p), d.Attempt, startedAt
	case ActionRestart:
		r.restart(ctx, &o, svc, d.Attempt, emit)
	case ActionFail:
		emit(state.RecoveryFailed{Reason: d.Reason, DeployPos: svc.DeployPos})
	}
	return o
}

func (r *Replayer) restart(ctx context.Context, o *outcome, svc *state.Service, attempt int, emit func(state.Payload)) {
	if len(svc.Spec.Deps()) > 0 {
		// It starts after other services: its loop starts it once they
		// are ready (the target's rule), not this pass, which starts
		// every service at once.
		o.deferred, o.attempt = true, attempt
		return
	}
	inst, facts, err := startAttempt(ctx, r.target, svc, attempt)
	for _, p := range facts {
		emit(p)
	}
	if err != nil {
		o.err = errors.Join(o.err, err)
		return
	}
	o.inst, o.attempt, o.startedAt = inst, attempt, r.opts.Now()
}

// startAttempt is the one way recovery brings a service back: it starts one
// attempt of the current generation and returns the facts to record:
// service_started and service_recovered (restarted), or
// service_recovery_failed if it could not start. A start that panics (an
// in-process kind's factory is the program's own code) did not start: the
// panic is the reason recorded.
func startAttempt(ctx context.Context, t Target, svc *state.Service, attempt int) (supervisor.Instance, []state.Payload, error) {
	var inst supervisor.Instance
	err := try(func() (err error) {
		inst, err = t.Start(ctx, svc, attempt)
		return err
	})
	if err != nil {
		return nil, []state.Payload{state.RecoveryFailed{Reason: fmt.Sprintf("could not start: %v", err), DeployPos: svc.DeployPos}}, err
	}
	id := inst.Identity()
	return inst, []state.Payload{
		state.Started{Generation: svc.Generation, Attempt: attempt, PID: id.PID, StartTicks: id.StartTicks, BootID: id.BootID},
		state.Recovered{How: state.RecoveryRestarted, PID: id.PID, DeployPos: svc.DeployPos, Generation: svc.Generation},
	}, nil
}

// NextAttempt is the attempt number after the recorded instance's: the
// number of the next attempt of svc's current generation, for recovery and
// for a requested start or restart alike.
func NextAttempt(svc *state.Service) int {
	if in := svc.Instance; in != nil && in.Generation == svc.Generation {
		return in.Attempt + 1
	}
	return 1
}

// closeRecorded is the exit recorded for an instance the log says runs and
// that is gone (or is being replaced): its status is unknown.
func closeRecorded(svc *state.Service, why string) (state.Exited, bool) {
	in := svc.Instance
	if in == nil || in.Exited {
		return state.Exited{}, false
	}
	return state.Exited{Generation: in.Generation, PID: in.PID, Attempt: in.Attempt, Unknown: true, Error: why}, true
}

// stopObserved stops a marked process through the one stop procedure, after
// re-checking its identity. One already gone is not an error. With cg set,
// the stop ends with everything in that cgroup (see [strayCgroup]).
func stopObserved(ctx context.Context, o Observation, sig syscall.Signal, timeout time.Duration, cg *cgroup.Group) error {
	p, err := supervisor.Adopt(o.Identity)
	if errors.Is(err, supervisor.ErrNoProcess) || errors.Is(err, supervisor.ErrNotSameProcess) {
		return cgroupGone(ctx, cg)
	}
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Contain(cg); err != nil {
		return err
	}
	_, err = supervisor.Stop(ctx, p, sig, timeout)
	return err
}

// cgroupGone kills what is left in cg, if set: the escapees of a stray
// that is itself gone.
func cgroupGone(ctx context.Context, cg *cgroup.Group) error {
	if cg == nil {
		return nil
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), supervisor.KillWait)
	defer cancel()
	return cg.Kill(kctx)
}

// Container is implemented by a [Target] whose services run in cgroups
// of their own. Recovery uses cgroup membership as well as the marker: a
// process that escaped its service's process group, and even dropped the
// marker, is still in the service's cgroup.
type Container interface {
	// Cgroup is the existing cgroup of a service, or nil if it has none.
	Cgroup(key state.Key) *cgroup.Group
	// Members lists the processes in each service's cgroup that holds
	// any (see [cgroup.Manager.Members]).
	Members() (map[state.Key][]int, error)
}

// strayCgroup is the cgroup to empty with a stray of key: the service's,
// when the log says the service must not run at all (killed, removed,
// unknown), so that nothing of it is left; nil when the service should
// run, for its cgroup holds the instance that must stay, or when t has no
// cgroups.
func strayCgroup(t Target, svc *state.Service, key state.Key) *cgroup.Group {
	c, ok := t.(Container)
	if !ok || (svc != nil && svc.ShouldRun()) {
		return nil
	}
	return c.Cgroup(key)
}
