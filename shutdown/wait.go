package shutdown

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/pkg/exitcode"
)

// DefaultGrace is the [Options.Grace] used when it is zero: how long the
// drain lets services stop before they are killed.
const DefaultGrace = 10 * time.Second

// DefaultSignals returns the [Options.Signals] used when they are empty:
// SIGTERM (docker stop, kubectl delete, systemctl stop) and SIGINT (Ctrl-C).
func DefaultSignals() []os.Signal { return []os.Signal{syscall.SIGTERM, syscall.SIGINT} }

// Options configure [Wait]. The zero value is valid: every zero field means
// its documented default.
type Options struct {
	// Grace is passed to Drain: how long services get to stop before they
	// are killed. Zero means [DefaultGrace].
	Grace time.Duration
	// Logger receives the signals and the outcome. Nil means no logging.
	Logger hclog.Logger
	// Signals start the drain; a second one of them forces it. Empty means
	// [DefaultSignals].
	Signals []os.Signal
	// Drain runs the ordered, bounded shutdown, typically the runtime's
	// Shutdown, and returns the exit code for the process. reason names
	// what started it: a signal name such as "SIGTERM", or "context". ctx
	// is cancelled by a second signal: Drain must then force whatever is
	// left at once (SIGKILL) and return. Nil means nothing to drain: [Wait]
	// returns [exitcode.OK] after the first signal.
	Drain func(ctx context.Context, reason string, grace time.Duration) (exitCode int, err error)
}

func (o Options) withDefaults() Options {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if len(o.Signals) == 0 {
		o.Signals = DefaultSignals()
	}
	return o
}

// Wait blocks until the first of opts.Signals arrives or ctx is done, then
// runs opts.Drain and returns the exit code the process should exit with:
// Drain's code, or [exitcode.Error] if Drain returned an error.
//
// While Drain runs, a second signal cancels Drain's context ("second
// signal: forcing"); later ones are logged and otherwise ignored. ctx only
// starts the drain: once it has begun, Drain's context ends on a second
// signal alone, never because ctx ends (a done ctx is how a caller asks for
// a graceful stop). Drain's context keeps ctx's values.
//
// Wait catches the signals from its call until it returns (signal.Notify,
// then signal.Stop): outside that span they have their default effect. A
// program that must not die of a signal before it reaches Wait (a daemon
// still recovering) calls [Catch] first.
func Wait(ctx context.Context, opts Options) int {
	return Catch(opts.Signals...).Wait(ctx, opts)
}

// Catcher holds the shutdown signals caught since [Catch], for [Catcher.Wait].
type Catcher struct {
	sigs chan os.Signal
}

// Catch starts catching signals (default [DefaultSignals]) at once, so that
// one arriving while the program is still starting is kept and starts the
// drain as soon as [Catcher.Wait] runs, instead of killing the process
// before it could record anything.
func Catch(signals ...os.Signal) *Catcher {
	if len(signals) == 0 {
		signals = DefaultSignals()
	}
	// Buffered, so that a signal arriving while nobody is receiving
	// (before Wait, or between the first signal and the start of the
	// drain) is kept.
	c := &Catcher{sigs: make(chan os.Signal, 2)}
	signal.Notify(c.sigs, signals...)
	return c
}

// Wait is [Wait] on the signals caught since [Catch]; opts.Signals is
// ignored. It stops catching when it returns.
func (c *Catcher) Wait(ctx context.Context, opts Options) int {
	defer c.Stop()
	return wait(ctx, opts.withDefaults(), c.sigs)
}

// Stop stops catching: the signals have their default effect again.
func (c *Catcher) Stop() { signal.Stop(c.sigs) }

// wait is [Wait] on a given signal channel, so tests can send signals
// without raising real ones. opts must have its defaults applied.
func wait(ctx context.Context, opts Options, sigs <-chan os.Signal) int {
	log := opts.Logger
	var reason string
	select {
	case sig := <-sigs:
		reason = signalName(sig)
		log.Info("signal received: shutting down", "signal", reason, "grace", opts.Grace)
	case <-ctx.Done():
		reason = "context"
		log.Info("context done: shutting down", "cause", context.Cause(ctx), "grace", opts.Grace)
	}
	if opts.Drain == nil {
		return exitcode.OK
	}

	drainCtx, force := context.WithCancel(context.WithoutCancel(ctx))
	defer force()
	drained := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		forced := false
		for {
			select {
			case sig := <-sigs:
				if forced {
					log.Warn("signal ignored: already forcing", "signal", signalName(sig))
					continue
				}
				forced = true
				log.Warn("second signal: forcing", "signal", signalName(sig))
				force()
			case <-drained:
				return
			}
		}
	})
	code, err := opts.Drain(drainCtx, reason, opts.Grace)
	close(drained)
	wg.Wait()
	if err != nil {
		log.Error("shutdown failed", "reason", reason, "error", err)
		return exitcode.Error
	}
	log.Info("shutdown done", "reason", reason, "exit_code", code)
	return code
}

// signalName returns "SIGTERM" for syscall.SIGTERM, and the signal's own
// String otherwise.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}
