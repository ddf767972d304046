package solo

import (
	"context"
	"fmt"
	"time"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/shutdown"
)

// DefaultGrace is how long Close lets services stop before they are
// killed; the daemon's drain uses the same ([shutdown.DefaultGrace]).
const DefaultGrace = shutdown.DefaultGrace

// ShutdownResult is how a shutdown went.
type ShutdownResult struct {
	Stopped  int           // instances stopped
	Forced   int           // of which had to be killed
	ExitCode int           // exitcode.OK, or exitcode.Error if a service had to be killed or the log could not be recorded or closed
	Took     time.Duration // from the call to the closed store
}

// Shutdown drains the runtime in order: it records
// system_shutdown_started, refuses new writes, stops every service (each
// with its own stop signal and timeout, all cut short when grace runs out
// or ctx ends: dependents before the services they are after or require,
// independent ones in parallel), records their exits, records
// system_shutdown_complete, saves a snapshot and closes the log. It returns
// as soon as every service is down: it never waits out the grace for
// nothing.
//
// A shutdown is not a kill: the services stay desired, and the next Open
// brings them back (I5). Shutdown runs once; later calls return the first
// result's error.
func (r *Runtime) Shutdown(ctx context.Context, reason string, grace time.Duration) (ShutdownResult, error) {
	var res ShutdownResult
	err := ErrClosed
	r.closeOnce.Do(func() {
		res, err = r.shutdown(ctx, reason, grace)
		r.closeErr = err
	})
	return res, err
}

// Close is Shutdown with reason "close" and [DefaultGrace].
func (r *Runtime) Close(ctx context.Context) error {
	_, err := r.Shutdown(ctx, "close", DefaultGrace)
	if err == ErrClosed {
		return r.closeErr
	}
	return err
}

func (r *Runtime) shutdown(ctx context.Context, reason string, grace time.Duration) (ShutdownResult, error) {
	start := time.Now()
	var res ShutdownResult
	r.draining.Store(true)
	bg := context.WithoutCancel(ctx)
	if err := r.record(bg, state.Key{}, state.ShutdownStarted{Reason: reason, Grace: state.Duration(grace)}); err != nil {
		r.log.Error("cannot record shutdown start", "error", err)
	}
	r.log.Info("shutdown started", "reason", reason, "grace", grace, "services", r.tree.Len())

	// Cut every stop short when the grace is over, or at once if ctx ends
	// (a second signal).
	stopForcing := context.AfterFunc(ctx, r.forceCancel)
	defer stopForcing()
	graceTimer := time.AfterFunc(grace, r.forceCancel)
	defer graceTimer.Stop()

	r.reconcile.close() // nothing starts or stops but the drain's stops
	r.closeSessions()   // no session writes once services stop
	loops := r.tree.Services()
	r.stopInOrder(bg)
	if err := r.tree.StopAll(bg); err != nil {
		r.log.Error("stopping services", "error", err)
	}
	r.closeNotifiers()
	for _, s := range loops {
		if st, ok := s.LastStop(); ok {
			res.Stopped++
			if st.Forced {
				res.Forced++
			}
		}
	}
	if res.Forced > 0 {
		res.ExitCode = exitcode.Error
	}
	if err := r.record(bg, state.Key{}, state.ShutdownComplete{ExitCode: res.ExitCode, Stopped: res.Stopped, Forced: res.Forced}); err != nil {
		r.log.Error("cannot record shutdown completion", "error", err)
		res.ExitCode = exitcode.Error
	}
	if err := r.world.snapshot(); err != nil {
		r.log.Warn("snapshot at shutdown failed", "error", err)
	}
	r.closed.Store(true)
	r.forceCancel()
	r.world.close()
	r.tokens.close()
	r.logs.Close()
	if err := r.closeLog(); err != nil {
		res.ExitCode = exitcode.Error
		return res, fmt.Errorf("shutdown: close log: %w", err)
	}
	res.Took = time.Since(start)
	r.log.Info("shutdown complete", "stopped", res.Stopped, "forced", res.Forced, "took", res.Took)
	return res, nil
}
