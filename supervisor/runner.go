package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/solo-rt/solo/cgroup"
)

// Runner starts the instances of one service: a new OS process, or a new
// run of an in-process Go service, per attempt.
type Runner interface {
	// Start starts attempt number attempt (1 for the first) and returns
	// once it runs. An error means nothing runs.
	Start(ctx context.Context, attempt int) (Instance, error)
}

// Instance is one running attempt of a service.
type Instance interface {
	// Identity is the OS identity of the instance; PID 0 for an
	// in-process service.
	Identity() Identity
	// Wait blocks until the instance ends on its own and returns how,
	// after cleaning up after it (for a process: its group swept, the
	// leader reaped). If ctx ends first it returns ctx.Err() and the
	// instance still runs.
	Wait(ctx context.Context) (Exit, error)
	// Stop ends the instance: sig, then up to timeout for it to go, then
	// force. A done ctx forces at once. See [Stop].
	Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (StopResult, error)
}

// ProcessRunner runs an OS process per attempt, with its output appended to
// a log file that the child holds and the daemon does not.
type ProcessRunner struct {
	Argv []string
	Env  []string // the full environment, KEY=VALUE, without the marker
	Dir  string
	// Logs and LogKey name the service's log file; LogLimits are its own
	// rotation limits (zero: the Logs').
	Logs      *Logs
	LogKey    string
	LogLimits LogLimits
	// Stamper, when set, is the argv of a log stamper: a small process
	// started with each attempt, reading the service's output from a pipe
	// and writing it to the log file with each line timestamped ([Stamp]
	// is its body; the solo binary runs it as `solo _logger`). It runs in
	// a process group of its own, so the service's stop signals do not
	// reach it, with an empty environment and no marker, so recovery never
	// takes it for the service; it ends when the service and everything it
	// started have closed the pipe. It outlives the daemon as the service
	// does: a daemon that dies leaves the pipe to the two of them, and the
	// service neither loses output nor gets SIGPIPE.
	Stamper []string
	// Marker, if its Home is set, marks each process: [MarkerEnv] is set
	// to Marker with the attempt's number as its Attempt.
	Marker Marker
	// Prepare, if set, is called before each attempt with the options
	// built from Argv, Env and Dir, and may change them: what is read
	// afresh at every start (an env file, a user's entry) goes here. An
	// error fails the attempt, as a failed start does; nothing is started.
	Prepare func(*StartOptions) error
	// Cgroup, if set, makes (or finds) the service's cgroup, with its
	// limits: every attempt runs in it, and its end kills everything left
	// in it (see [StartOptions.Cgroup]). It is called before each attempt,
	// in the log file's stage (creating a cgroup is file-system work too).
	// An error fails the attempt.
	Cgroup func() (*cgroup.Group, error)
}

var _ Runner = (*ProcessRunner)(nil)

// Start implements [Runner]. A process that cannot be started (no such
// program, not executable, a bad interpreter, a directory that is gone)
// gets one line in its log file saying why, and the error is returned.
// Its two stages, opening (often creating) the
// log file and the fork and exec, each hold a slot of their own (see
// [slots]), so that 1,000 services starting together pipeline through a
// few threads instead of blocking a thread each.
func (r *ProcessRunner) Start(ctx context.Context, attempt int) (Instance, error) {
	release := openSlots.take()
	out, err := r.Logs.OpenLimited(r.LogKey, r.LogLimits)
	var cg *cgroup.Group
	if err == nil && r.Cgroup != nil {
		if cg, err = r.Cgroup(); err != nil {
			fmt.Fprintf(out, "solo: attempt %d could not start: %v\n", attempt, err)
			out.Close()
		}
	}
	release()
	if err != nil {
		return nil, err
	}
	// The child has its own descriptor once started; ours is closed so the
	// daemon holds nothing open on a service's output.
	defer out.Close()
	opts := StartOptions{Argv: r.Argv, Env: r.Env, Dir: r.Dir, Cgroup: cg}
	if r.Prepare != nil {
		if err := r.Prepare(&opts); err != nil {
			fmt.Fprintf(out, "solo: attempt %d could not start: %v\n", attempt, err)
			return nil, err
		}
	}
	if r.Marker.Home != "" {
		opts.Env = append(opts.Env[:len(opts.Env):len(opts.Env)], r.Marker.env(attempt))
	}
	opts.Output = out
	if len(r.Stamper) > 0 {
		pw, err := r.startStamper(out)
		if err != nil {
			return nil, err
		}
		// Once the child has its copy, the stamper's pipe is theirs alone.
		defer pw.Close()
		opts.Output, opts.ToStamper = pw, true
	}
	release = forkSlots.take()
	p, err := Start(opts)
	release()
	if err != nil {
		// Say it where the service's own output goes, so that `solo logs`
		// shows why nothing else is there.
		fmt.Fprintf(out, "solo: attempt %d could not start: %v\n", attempt, err)
		return nil, err
	}
	return &processInstance{p: p}, nil
}

// WatchLog puts the service's log under watch, with its limits, without
// starting anything: for a process re-adopted after a daemon restart,
// which still writes to the file it was given, so that its log is rotated
// as a started one's is.
func (r *ProcessRunner) WatchLog() error {
	f, err := r.Logs.OpenLimited(r.LogKey, r.LogLimits)
	if err != nil {
		return err
	}
	return f.Close()
}

// Contain puts a re-adopted instance ([AdoptedInstance]) in g, its
// service's cgroup, before its loop takes it (see [Process.Contain]);
// other instances, and a nil g, leave it as it is.
func Contain(inst Instance, g *cgroup.Group) error {
	pi, ok := inst.(*processInstance)
	if !ok || g == nil {
		return nil
	}
	return pi.p.Contain(g)
}

// startStamper starts the log stamper writing to out and returns the write
// end of its pipe, for the service. The daemon keeps neither end: the
// stamper reads until every writer is gone. It is reaped through its
// pidfd, parked in the poller, if the daemon still runs when it ends.
func (r *ProcessRunner) startStamper(out *os.File) (*os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log stamper: %w", err)
	}
	release := forkSlots.take()
	sp, err := Start(StartOptions{Argv: r.Stamper, Env: []string{}, Output: out, Input: pr})
	release()
	pr.Close()
	if err != nil {
		pw.Close()
		return nil, fmt.Errorf("log stamper: %w", err)
	}
	go func() {
		if _, err := sp.Wait(context.Background()); err == nil {
			_, _ = sp.Finish()
		}
	}()
	return pw, nil
}

// slots is a counting semaphore.
type slots chan struct{}

func (s slots) take() (release func()) {
	s <- struct{}{}
	return func() { <-s }
}

// openSlots and forkSlots bound how many log files are opened, and how
// many processes forked, at once, across every service of the process.
// Both are mostly kernel work that blocks an OS thread (creating a file,
// fork and exec, /proc reads): more in flight than that does not go
// faster, it only makes the Go runtime create threads, which it never gives
// back. The bounds keep the daemon's thread count independent of how many
// services start together. A log file's creation runs on a CPU: one slot
// per CPU. A fork and exec mostly waits: the forking thread sleeps until
// the child, a task of its own that the scheduler must first run, has
// exec'd (Go forks with CLONE_VFORK); two slots per CPU overlap those
// waits, which on a loaded host are most of a start. They are
// package-level for the reason the children registry is (children.go):
// the CPUs and the threads are the process's, not a runtime's.
var (
	openSlots = make(slots, max(2, runtime.GOMAXPROCS(0)))
	forkSlots = make(slots, max(2, 2*runtime.GOMAXPROCS(0)))
	// deepSlots bounds the goroutines of deep (service.go).
	deepSlots = make(slots, 64)
)

// AdoptedInstance wraps a process re-adopted after a daemon restart, so that
// a service loop can carry on with it as its current instance.
func AdoptedInstance(p *Process) Instance { return &processInstance{p: p} }

type processInstance struct{ p *Process }

func (i *processInstance) Identity() Identity { return i.p.Identity() }

func (i *processInstance) Wait(ctx context.Context) (Exit, error) {
	if _, err := i.p.Wait(ctx); err != nil {
		return Exit{}, err
	}
	return i.p.Finish()
}

func (i *processInstance) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (StopResult, error) {
	return Stop(ctx, i.p, sig, timeout)
}

// GoService is an in-process service: Serve runs until ctx ends (return
// nil or ctx.Err()) or it fails (return an error, or panic).
type GoService interface {
	Serve(ctx context.Context) error
}

// FuncRunner runs an in-process Go service per attempt. New builds a fresh
// service for each attempt; Log receives what the service writes.
type FuncRunner struct {
	New func(log io.Writer) (GoService, error)
	// Logs and LogKey name the service's log file.
	Logs   *Logs
	LogKey string
}

var _ Runner = (*FuncRunner)(nil)

// Exit codes of in-process services, which have no exit status of their own.
const (
	GoExitError = 1 // Serve returned an error
	GoExitPanic = 2 // Serve panicked
)

// Start implements [Runner].
func (r *FuncRunner) Start(ctx context.Context, attempt int) (Instance, error) {
	var log io.Writer = io.Discard
	var f *os.File
	if r.Logs != nil {
		var err error
		if f, err = r.Logs.Open(r.LogKey); err != nil {
			return nil, err
		}
		log = f
	}
	svc, err := r.newService(log)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, err
	}
	// The service's own context is not ctx: it ends only through Stop, so
	// that the caller decides when and how it stops.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	inst := &funcInstance{cancel: cancel, done: make(chan struct{}), log: f}
	go inst.run(runCtx, svc)
	return inst, nil
}

// newService calls New, turning a panic of the factory into a failed
// start (a [*GoError] with Panic set), so that it fails this attempt as
// the restart policy says, rather than end the loop that called it.
func (r *FuncRunner) newService(log io.Writer) (svc GoService, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &GoError{Err: fmt.Errorf("service factory: %v", p), Panic: true, Stack: debug.Stack()}
		}
	}()
	return r.New(log)
}

// GoError is the error of an in-process service that failed: it returned an
// error or panicked.
type GoError struct {
	Err   error
	Panic bool
	Stack []byte // where it panicked
}

func (e *GoError) Error() string {
	if e.Panic {
		return "panic: " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *GoError) Unwrap() error { return e.Err }

type funcInstance struct {
	cancel context.CancelFunc
	done   chan struct{}
	exit   Exit
	err    *GoError
	log    *os.File
}

func (i *funcInstance) run(ctx context.Context, svc GoService) {
	defer close(i.done)
	defer func() {
		if r := recover(); r != nil {
			i.err = &GoError{Err: fmt.Errorf("%v", r), Panic: true, Stack: debug.Stack()}
			i.exit = Exit{Code: GoExitPanic}
			if i.log != nil {
				fmt.Fprintf(i.log, "panic: %v\n%s", r, i.err.Stack)
			}
		}
		if i.log != nil {
			i.log.Close()
		}
	}()
	err := svc.Serve(ctx)
	if err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		i.err = &GoError{Err: err}
		i.exit = Exit{Code: GoExitError}
	}
}

func (i *funcInstance) Identity() Identity { return Identity{} }

func (i *funcInstance) Wait(ctx context.Context) (Exit, error) {
	select {
	case <-i.done:
		return i.exit, i.goErr()
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
}

// goErr returns the service's failure as an error only when there is one: a
// nil *GoError must not become a non-nil error.
func (i *funcInstance) goErr() error {
	if i.err == nil {
		return nil
	}
	return i.err
}

// Stop cancels the service's context and waits up to timeout for Serve to
// return. A goroutine cannot be killed: one that does not return is left
// behind, reported as Forced with an Unknown exit.
func (i *funcInstance) Stop(ctx context.Context, _ syscall.Signal, timeout time.Duration) (StopResult, error) {
	start := time.Now()
	i.cancel()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-i.done:
		return StopResult{Exit: i.exit, Took: time.Since(start)}, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return StopResult{Exit: Exit{Unknown: true}, Forced: true, Took: time.Since(start)}, nil
}
