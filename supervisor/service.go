package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/thejerf/suture/v4"
)

// Defaults for [Backoff].
const (
	DefaultBackoffBase   = 200 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
	DefaultBackoffJitter = 0.2
)

// Backoff is the delay before a restart: Base doubled for each restart
// already made within the service's restart window, capped at Max, then
// spread by ±Jitter (a fraction) so that services that fail together do
// not restart in lockstep. Zero fields mean the defaults.
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64
}

// Delay returns the delay before restart number n (1 for the first).
// rnd is a number in [0, 1).
func (b Backoff) Delay(n int, rnd float64) time.Duration {
	base, limit, jitter := b.Base, b.Max, b.Jitter
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if limit <= 0 {
		limit = DefaultBackoffMax
	}
	if jitter <= 0 || jitter >= 1 {
		jitter = DefaultBackoffJitter
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (1 - jitter + 2*jitter*rnd))
}

// ServiceConfig configures one service loop. Key, Generation, Runner and
// Recorder are required; a zero Policy restarts after every exit and gives
// up at the first restart (see [Policy]).
type ServiceConfig struct {
	Key Key
	// Generation is the owner's number for what the loop runs; the loop
	// only passes it on, in its facts.
	Generation uint64
	Policy     Policy
	Runner     Runner
	Recorder   Recorder
	Backoff    Backoff
	// Adopted is an instance that already runs (re-adopted after a daemon
	// restart): the loop carries on with it instead of starting one.
	// AdoptedAttempt and AdoptedAt are its recorded attempt and start.
	Adopted        Instance
	AdoptedAttempt int
	AdoptedAt      time.Time
	// Force, when done, makes any stop in progress kill at once instead
	// of waiting out the stop timeout. Nil means never.
	Force context.Context
	// Logger defaults to a null logger; Now to time.Now; Rand (jitter) to
	// math/rand/v2.
	Logger hclog.Logger
	Now    func() time.Time
	Rand   func() float64
	// Ready, if set, tells when a started instance is ready: it is called
	// once per attempt on a goroutine of its own that ends with it, and
	// returns nil once the instance is ready. ReadyTimeout bounds it: an
	// instance not ready by then is stopped with the stop procedure, and
	// its exit recorded as a failed start (Err "not ready within ..."),
	// after which the policy applies. A re-adopted instance is probed too
	// (from AdoptedAt) unless the owner leaves Ready nil for it.
	Ready        func(ctx context.Context, inst Instance) error
	ReadyTimeout time.Duration
	// Health, if set, watches each attempt once it is ready (at its start
	// without Ready, and a re-adopted one at once): called once per
	// attempt, it returns a function that ends the watch and returns only
	// once report can no longer be called. The watch calls report on each
	// change of the attempt's health, never per check: healthy once a
	// check passed; not healthy, with the reason, once it failed for good.
	// The loop records each as a [Health] fact; after a failure it stops
	// the attempt with the stop procedure and records its exit with an Err
	// wrapping [ErrUnhealthy], after which the policy applies.
	Health func(inst Instance, report func(healthy bool, reason error)) (stop func())
}

// Service runs one (tenant, name) under a [Tree]: it starts an instance,
// waits for it to end (parked, never polling), reports the exit, and
// restarts it according to its [Policy]:
//
//   - [Policy.Restart] says whether an exit is followed by a new attempt.
//   - Restarts are spaced by [Backoff], growing with each restart inside
//     the window.
//   - When a restart would exceed [Policy.MaxRestarts] within
//     [Policy.Window], the loop reports [GaveUp] and stops restarting.
//     This is counted here, per service, because suture counts failures
//     per supervisor.
//
// Every fact goes to the [Recorder] before the loop acts on it: a start
// before the wait, an exit before the next attempt or the loop's end.
// Serve returns only once no instance runs: when its context ends it stops
// the instance with the one stop procedure and records the exit first.
type Service struct {
	cfg      ServiceConfig
	done     chan struct{}
	once     sync.Once
	lastStop atomic.Pointer[StopResult]
}

// LastStop returns how the loop's last stop of an instance went, if it
// stopped one.
func (s *Service) LastStop() (StopResult, bool) {
	if r := s.lastStop.Load(); r != nil {
		return *r, true
	}
	return StopResult{}, false
}

// NewService returns a service loop; it starts nothing until Serve.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Force == nil {
		cfg.Force = context.Background()
	}
	return &Service{cfg: cfg, done: make(chan struct{})}
}

// String names the service for suture's logs.
func (s *Service) String() string { return s.cfg.Key.String() }

// Key returns the service's (tenant, name).
func (s *Service) Key() Key { return s.cfg.Key }

// Generation returns the generation the loop runs.
func (s *Service) Generation() uint64 { return s.cfg.Generation }

// Done is closed when Serve has returned for good.
func (s *Service) Done() <-chan struct{} { return s.done }

// Serve implements suture.Service. It runs the loop once: called again,
// it returns at once. It always returns [suture.ErrDoNotRestart].
func (s *Service) Serve(ctx context.Context) error {
	s.run(ctx, nil)
	return suture.ErrDoNotRestart
}

// run runs the loop once (see Serve). Given a logger, a panic of the loop
// ends it and is logged there instead of going on up: a [Tree] starts
// each loop so, with no frame of its own (the loop's stack is kept small).
func (s *Service) run(ctx context.Context, panics hclog.Logger) {
	defer func() {
		s.finish()
		if panics != nil {
			if p := recover(); p != nil {
				panics.Error("service loop panicked", "service", s.String(), "panic", p, "stack", string(debug.Stack()))
			}
		}
	}()
	if s.ended() {
		return // one life per Service
	}
	s.loopEnded(s.loop(ctx))
}

func (s *Service) finish() { s.once.Do(func() { close(s.done) }) }

func (s *Service) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

//go:noinline
func (s *Service) loopEnded(err error) {
	if err != nil {
		s.cfg.Logger.Debug("service loop ended", "service", s.cfg.Key, "reason", err)
	}
}

// attempts is what a service loop carries from one attempt to the next.
// It lives on the heap, so that the frames that stay on the loop's stack
// while an instance runs are small (see [Service.loop]).
type attempts struct {
	gen     uint64
	logger  hclog.Logger // made on first use: most services never log
	debug   bool
	inst    Instance
	attempt int
	started time.Time
	recent  []time.Time // restarts within the window

	// The attempt in progress: how it ended, and the wait on it.
	exit      Exit
	failure   error
	waitErr   error // the wait's own
	waitCtx   context.Context
	notReady  func() error
	readyDone func()
}

// log returns the loop's logger, made on first use: a With per service
// costs memory for the service's whole life.
func (s *Service) log(a *attempts) hclog.Logger {
	if a.logger == nil {
		a.logger = s.cfg.Logger.With("service", s.cfg.Key.String(), "generation", a.gen)
	}
	return a.logger
}

// loop runs attempts until the policy or the context ends it.
//
// A loop's goroutine lives as long as its service and spends that life
// parked in [Instance.Wait]; a GC shrinks a parked goroutine's stack only
// while it uses under a quarter of it. So the loop keeps its state in
// [attempts] and does each step of an attempt in a function of its own
// (never inlined): what stays on the stack while the instance runs is
// loop's small frame and the wait's, not the locals of the start, the
// stop and the records. That halves the stack each service keeps.
func (s *Service) loop(ctx context.Context) error {
	a := &attempts{
		gen:     s.cfg.Generation,
		debug:   s.cfg.Logger.IsDebug(),
		inst:    s.cfg.Adopted,
		attempt: max(s.cfg.AdoptedAttempt, 1),
		started: s.cfg.AdoptedAt,
	}
	for {
		if a.inst == nil {
			if err := s.startAttempt(ctx, a); err != nil {
				return err
			}
		}
		if a.inst != nil {
			s.beginWait(ctx, a)
			a.exit, a.waitErr = a.inst.Wait(a.waitCtx)
			if end, err := s.endWait(ctx, a); end {
				return err
			}
		}
		if end, err := s.afterAttempt(ctx, a); end {
			return err
		}
	}
}

// startAttempt starts attempt a.attempt and records it. A start that fails
// leaves a.inst nil and its failure in a.exit and a.failure; an error
// means the loop must end.
//
//go:noinline
func (s *Service) startAttempt(ctx context.Context, a *attempts) error {
	a.exit, a.failure = Exit{}, nil
	var err, recErr error
	// The start and its record run on a goroutine of their own
	// (see deep).
	deep(func() {
		a.inst, err = s.start(ctx, a.attempt)
		a.started = s.cfg.Now()
		if err != nil {
			return
		}
		id := a.inst.Identity()
		// The start happened: record it even if a stop was asked
		// for meanwhile, so the exit recorded next has its start.
		recErr = s.record(context.WithoutCancel(ctx), Started{Generation: a.gen, Attempt: a.attempt, Identity: id})
		if recErr != nil {
			// Not durable: the instance must not outlive this loop
			// unrecorded.
			s.stop(a.inst)
		}
	})
	switch {
	case errors.Is(err, ErrTooManyFiles):
		// Not the service's fault, and every later start fails the same
		// way until the limit is raised: say so loudly.
		s.log(a).Error("service did not start", "attempt", a.attempt, "error", err)
		a.exit, a.failure = Exit{Code: -1}, err
		a.inst = nil
	case err != nil:
		s.log(a).Warn("service did not start", "attempt", a.attempt, "error", err)
		a.exit, a.failure = Exit{Code: -1}, err
		a.inst = nil
	case recErr != nil:
		return fmt.Errorf("record start: %w", recErr)
	case a.debug:
		s.log(a).Debug("service started", "attempt", a.attempt, "pid", a.inst.Identity().PID)
	}
	return nil
}

// beginWait starts the instance's readiness probe and health watch, if
// any, and sets the context to wait on.
//
//go:noinline
func (s *Service) beginWait(ctx context.Context, a *attempts) {
	a.exit, a.failure = Exit{}, nil
	a.waitCtx, a.notReady, a.readyDone = s.awaitReady(ctx, a.inst, a.gen, a.attempt, a.started)
}

// endWait handles the end of a wait on the instance: an exit, a failed
// readiness or health check (the instance is stopped), or the loop's
// context ending (the instance is stopped, its exit recorded, and the loop
// ends: end is true).
//
//go:noinline
func (s *Service) endWait(ctx context.Context, a *attempts) (end bool, _ error) {
	inst, waitCtx, exit, err := a.inst, a.waitCtx, a.exit, a.waitErr
	a.waitErr = nil
	a.readyDone()
	a.waitCtx, a.readyDone = nil, nil
	var failure error
	if cause := context.Cause(waitCtx); ctx.Err() == nil && (errors.Is(cause, errNotReady) || errors.Is(cause, ErrUnhealthy)) {
		res, serr := s.stop(inst)
		exit, failure = res.Exit, cause
		if errors.Is(cause, errNotReady) {
			failure = a.notReady()
		}
		if serr != nil {
			exit, failure = Exit{Unknown: true}, fmt.Errorf("%v; stop failed: %w", failure, serr)
		}
		err = nil
	} else if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		res, err := s.stop(inst)
		if err != nil {
			// The stop failed (a process stuck past SIGKILL, or one
			// we may not signal): it may still run. Never record
			// that as a clean exit.
			return true, s.recordExit(a.gen, a.attempt, inst, Exit{Unknown: true}, a.started, s.cfg.Now(), fmt.Errorf("stop failed: %w", err), nextStep{})
		}
		return true, s.recordExit(a.gen, a.attempt, inst, res.Exit, a.started, s.cfg.Now(), nil, nextStep{})
	}
	a.notReady = nil
	var ge *GoError
	if errors.As(err, &ge) {
		failure = ge
	} else if err != nil {
		// The wait itself failed: we cannot tell how it ended.
		exit, failure = Exit{Unknown: true}, err
	}
	a.exit, a.failure = exit, failure
	return false, nil
}

// afterAttempt records how the attempt ended and what follows, then waits
// out the backoff before the next one; end is true when the loop ends.
//
//go:noinline
func (s *Service) afterAttempt(ctx context.Context, a *attempts) (end bool, _ error) {
	// What comes next is decided before the exit is recorded, so that
	// the record says it: the restart's number and its delay.
	exit, ended := a.exit, s.cfg.Now()
	next := s.next(exit, ended, &a.recent)
	if err := s.recordExit(a.gen, a.attempt, a.inst, exit, a.started, ended, a.failure, next); err != nil {
		return true, err
	}
	a.inst, a.exit, a.failure = nil, Exit{}, nil

	if !next.restart {
		s.log(a).Debug("service ended; policy says no restart", "exit", exit.String())
		return true, nil
	}
	if next.gaveUp {
		s.log(a).Warn("service failed: restart limit reached", "restarts", len(a.recent), "window", s.cfg.Policy.Window)
		return true, s.record(context.WithoutCancel(ctx), GaveUp{Generation: a.gen, Restarts: len(a.recent), Window: s.cfg.Policy.Window})
	}
	delay := next.delay
	if a.debug {
		s.log(a).Debug("restarting after backoff", "delay", delay, "exit", exit.String())
	}
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return true, nil
	}
	a.attempt++
	return false, nil
}

// errNotReady is the cause a wait is cut short with when the readiness
// deadline passes.
var errNotReady = errors.New("not ready")

// awaitReady starts the readiness probe of a freshly started instance, if
// the loop has one, then its health watch (see [ServiceConfig.Health]): it
// returns the context to wait on (cancelled with errNotReady at the
// readiness deadline, with an error wrapping ErrUnhealthy when the health
// check fails for good), the error to record at the deadline, and a
// function that ends the probe and the watch and returns once neither can
// report any more (so that no Ready or Health fact is recorded after the
// exit).
func (s *Service) awaitReady(ctx context.Context, inst Instance, gen uint64, attempt int, started time.Time) (context.Context, func() error, func()) {
	if s.cfg.Ready == nil && s.cfg.Health == nil {
		return ctx, nil, func() {}
	}
	waitCtx, cancelWait := context.WithCancelCause(ctx)
	var stopHealth func()
	watch := func() {
		if s.cfg.Health == nil {
			return
		}
		pid := inst.Identity().PID
		// Several checks may report (a probe and a watchdog): a change is
		// recorded once, and nothing after the failure.
		var mu sync.Mutex
		known, was, failed := false, false, false
		stopHealth = s.cfg.Health(inst, func(healthy bool, reason error) {
			mu.Lock()
			defer mu.Unlock()
			if failed || (known && was == healthy) {
				return
			}
			known, was, failed = true, healthy, !healthy
			f := Health{Generation: gen, Attempt: attempt, PID: pid, Healthy: healthy, Reason: reason}
			if err := s.record(context.WithoutCancel(ctx), f); err != nil {
				s.cfg.Logger.Error("recording health", "service", s.cfg.Key.String(), "error", err)
			}
			if !healthy {
				cancelWait(fmt.Errorf("%w: %v", ErrUnhealthy, reason))
			}
		})
	}
	if s.cfg.Ready == nil {
		watch()
		return waitCtx, nil, func() {
			stopHealth()
			cancelWait(nil)
		}
	}
	probeCtx, cancelProbe := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	done := make(chan struct{})
	var probeErr error
	go func() {
		defer close(done)
		probeErr = s.cfg.Ready(probeCtx, inst)
		if probeErr == nil {
			after := s.cfg.Now().Sub(started)
			if err := s.record(context.WithoutCancel(ctx), Ready{Generation: gen, Attempt: attempt, PID: inst.Identity().PID, After: after}); err != nil {
				s.cfg.Logger.Error("recording readiness", "service", s.cfg.Key.String(), "error", err)
			}
			if probeCtx.Err() == nil {
				watch()
			}
			return
		}
		if probeCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			cancelWait(errNotReady)
		}
	}()
	notReady := func() error {
		return fmt.Errorf("not ready within %s: %v", s.cfg.ReadyTimeout, probeErr)
	}
	return waitCtx, notReady, func() {
		cancelProbe()
		<-done
		if stopHealth != nil {
			stopHealth()
		}
		cancelWait(nil)
	}
}

// stop runs the instance's stop procedure with the policy's signal and
// timeout; Force cuts the wait short.
func (s *Service) stop(inst Instance) (StopResult, error) {
	res, err := inst.Stop(s.cfg.Force, s.cfg.Policy.StopSignal, s.cfg.Policy.StopTimeout)
	if err != nil {
		s.cfg.Logger.Error("stopping service", "service", s.cfg.Key.String(), "error", err)
		res.Forced = true // it did not stop as asked: a drain must not report success
	}
	if res.Forced {
		s.cfg.Logger.Warn("service did not stop in time; killed", "service", s.cfg.Key.String(), "took", res.Took)
	}
	s.lastStop.Store(&res)
	return res, err
}

// nextStep is what a loop does after an attempt ends.
type nextStep struct {
	restart bool          // the policy wants another attempt
	gaveUp  bool          // ... but it would exceed the restart limit
	number  int           // the restart's number within the window, from 1
	delay   time.Duration // the backoff before it
}

// next decides what follows an attempt that ended with exit: the one place
// the restart policy, the restart limit and the backoff are applied.
// recent holds the times of the restarts made within the window; next
// prunes it and, when a restart follows, adds this one at now (when the
// attempt ended).
func (s *Service) next(exit Exit, now time.Time, recent *[]time.Time) nextStep {
	policy := s.cfg.Policy
	if !policy.restart(exit) {
		return nextStep{}
	}
	kept := (*recent)[:0]
	for _, t := range *recent {
		if now.Sub(t) < policy.Window {
			kept = append(kept, t)
		}
	}
	*recent = kept
	if len(kept) >= policy.MaxRestarts {
		return nextStep{restart: true, gaveUp: true}
	}
	*recent = append(kept, now)
	n := len(*recent)
	return nextStep{restart: true, number: n, delay: s.cfg.Backoff.Delay(n, s.cfg.Rand())}
}

func (s *Service) recordExit(gen uint64, attempt int, inst Instance, exit Exit, started, ended time.Time, failure error, next nextStep) (err error) {
	deep(func() { err = s.doRecordExit(gen, attempt, inst, exit, started, ended, failure, next) })
	return err
}

func (s *Service) doRecordExit(gen uint64, attempt int, inst Instance, exit Exit, started, ended time.Time, failure error, next nextStep) error {
	f := Exited{Generation: gen, Attempt: attempt, Exit: exit, RanFor: ended.Sub(started), Err: failure}
	if next.restart && !next.gaveUp {
		f.Restart, f.Backoff = next.number, next.delay
	}
	if inst != nil {
		f.PID = inst.Identity().PID
	}
	// An exit is recorded even when the loop is being stopped: shutdown
	// records every exit before it closes the log.
	return s.record(context.Background(), f)
}

func (s *Service) record(ctx context.Context, f Fact) error {
	return s.cfg.Recorder.Record(ctx, s.cfg.Key, f)
}

// start starts one attempt.
func (s *Service) start(ctx context.Context, attempt int) (Instance, error) {
	return s.cfg.Runner.Start(ctx, attempt)
}

// deep runs fn on a goroutine of its own and waits for it, passing on a
// panic. A service loop's goroutine lives as long as its service and spends
// that life parked in Wait; but a start (fork, /proc reads, JSON, the
// append) needs a deep stack, which Go grows and then keeps until some GC
// shrinks it. Run on a short-lived goroutine, that stack goes back to the
// runtime's pool when the goroutine ends, and the parked loop keeps a small
// one: several KiB less per service for its whole life.
//
// At most [deepSlots] run at once, across every loop of the process: Go
// keeps the descriptor of every goroutine that ever ran at once for reuse
// and never frees it, so a burst of 10,000 starts on as many goroutines
// would leave 10,000 descriptors behind for good. The work they do is
// bounded by far fewer slots anyway (openSlots, forkSlots), and the group
// commit batches the records of those in flight.
func deep(fn func()) {
	release := deepSlots.take()
	defer release()
	var p any
	done := make(chan struct{})
	go func() {
		defer func() {
			p = recover()
			close(done)
		}()
		fn()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}
