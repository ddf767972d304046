package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// DefaultStopTimeout is the stop timeout [Stop] uses when given zero: a
// fallback for a caller that passes none. The default a service gets is
// not decided here but by the domain (pkg/state's DefaultStopTimeout, which
// a spec takes when it names no timeout); its owner passes it to the loop
// in [Policy.StopTimeout], so a service never reaches this fallback.
//
// Why a second constant rather than a reference: the supervisor must not
// import pkg/state, nor pkg/state the supervisor, and a package of its own
// for one number would be a layer that neither needs. A test in pkg/solo,
// which sees both, keeps the two equal.
const DefaultStopTimeout = 10 * time.Second

// KillWait is how long [Stop] waits for the leader to exit after SIGKILL
// before it gives up with [ErrKillTimeout]. SIGKILL cannot be caught, so only
// a process stuck in the kernel (uninterruptible sleep) takes this long.
const KillWait = 5 * time.Second

// StopResult is how a [Stop] went.
type StopResult struct {
	// Exit is the leader's exit.
	Exit Exit
	// Forced is true when SIGKILL was needed: the timeout passed or ctx
	// was done before the leader exited.
	Forced bool
	// Took is the time from the call to the reap.
	Took time.Duration
}

// Stop is THE stop procedure, for kills, redeploys and shutdown alike:
//
//  1. send sig (zero means SIGTERM) to the process group, identity-checked
//     through the process's pidfd;
//  2. wait up to timeout (zero means [DefaultStopTimeout]) for the leader to
//     exit, parked on its [Watch];
//  3. if it has not exited, send SIGKILL to the group, and with a cgroup
//     to everything in it, waiting until it is empty; then wait for the
//     leader, up to [KillWait];
//  4. [Process.Finish]: SIGKILL what is left of the group (the leader is a
//     zombie, so the group id is still ours) and of the cgroup, then reap
//     the leader.
//
// A process that does not lead its own group (adopted only) is signalled
// alone. If the process is already gone, Stop returns its exit and no error.
// ctx being done means "force now": Stop skips sig and the timeout and
// SIGKILLs at once; it still waits for the exit and reaps, so Stop never
// returns with the process running unless it fails with [ErrKillTimeout].
// Stop blocks until then; it is safe to call again after an error.
func Stop(ctx context.Context, p *Process, sig syscall.Signal, timeout time.Duration) (StopResult, error) {
	began := time.Now()
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	var res StopResult
	fail := func(err error) (StopResult, error) {
		res.Took = time.Since(began)
		return res, fmt.Errorf("stop %v: %w", p.id, err)
	}

	exited := false
	if ctx.Err() == nil {
		if err := p.signalStop(sig); err != nil {
			return fail(err)
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := p.watch.Wait(wctx)
		cancel()
		switch {
		case err == nil:
			exited = true
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// Timed out, or ctx says force now.
		default:
			return fail(err)
		}
	}
	if !exited {
		if _, done, err := p.watch.Exited(); err != nil {
			return fail(err)
		} else if !done {
			res.Forced = true
			if err := p.forceStop(ctx); err != nil {
				return fail(err)
			}
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), KillWait)
			_, err := p.watch.Wait(kctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				return fail(fmt.Errorf("%w within %v", ErrKillTimeout, KillWait))
			}
			if err != nil {
				return fail(err)
			}
		}
	}
	exit, err := p.Finish()
	if err != nil {
		return fail(err)
	}
	res.Exit = exit
	res.Took = time.Since(began)
	return res, nil
}

// forceStop SIGKILLs the process group, and with a cgroup everything in
// it, waiting until the cgroup is empty (which also ends a process left
// frozen by a daemon that died while it killed the cgroup).
func (p *Process) forceStop(ctx context.Context) error {
	if err := p.signalStop(syscall.SIGKILL); err != nil {
		return err
	}
	if p.cg == nil {
		return nil
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), KillWait)
	defer cancel()
	return p.cg.Kill(kctx)
}

// signalStop signals the group (or the process alone if it leads none); a
// process already gone is not an error, as its Watch will tell.
func (p *Process) signalStop(sig syscall.Signal) error {
	var err error
	if p.leader {
		err = p.SignalGroup(sig)
	} else {
		err = p.Signal(sig)
	}
	if err != nil && !isGoneErr(err) {
		return err
	}
	return nil
}
