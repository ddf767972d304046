package probe

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Check is the timing of a health check: a try every Interval (counted
// from the end of the previous one, and up to a tenth of it later so that
// tries of many services share a wake-up), each bounded by Timeout;
// Retries failures in a row make the service unhealthy.
type Check struct {
	Interval, Timeout time.Duration
	Retries           int
}

// DefaultConcurrency is how many health probes a [Checker] made with 0
// runs at once.
const DefaultConcurrency = 16

// Checker runs the health checks of many services (see [Checker.Watch]).
//
// # Cost
//
// A watched service costs one runtime timer ([time.AfterFunc]) while it
// waits for its next try: no goroutine and no thread. Tries fall due on
// shared ticks (see Check), so the process wakes a few times a second
// for a thousand services, not a hundred. Go keeps timers in
// per-P heaps, so a thousand services waiting cost a thousand heap
// entries, the same as a scheduler goroutine with its own heap of
// deadlines would, without that goroutine or its wake-ups. A timer that
// fires runs its try on a goroutine that ends with it; at most the
// Checker's concurrency tries run at once, the rest wait their turn (a
// burst of exec probes does not fork a thousand children together).
//
// # Concurrency
//
// Watch and the stop it returns may be called from any goroutine.
type Checker struct {
	slots    chan struct{}
	failures atomic.Uint64
}

// Failures is how many tries failed so far, of every watch.
func (k *Checker) Failures() uint64 { return k.failures.Load() }

// NewChecker returns a Checker that runs at most concurrency tries at once
// (0: [DefaultConcurrency]).
func NewChecker(concurrency int) *Checker {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return &Checker{slots: make(chan struct{}, concurrency)}
}

// Watch checks a service with probe, every c.Interval from now, until
// stop. report is called on each change of health, never per try:
// healthy once a try passes (the first, or the first after failures that
// did not reach Retries), and not healthy, with the last try's error,
// when c.Retries tries in a row failed; the watch ends there (the owner
// restarts the service). stop ends the watch, cuts a try in flight short,
// and returns once report can no longer be called. It is idempotent.
func (k *Checker) Watch(probe Func, c Check, report func(healthy bool, reason error)) (stop func()) {
	if c.Retries < 1 {
		c.Retries = 1
	}
	w := &watch{k: k, probe: probe, c: c, report: report}
	w.mu.Lock()
	w.timer = time.AfterFunc(coalesce(time.Now(), c.Interval), w.try)
	w.mu.Unlock()
	return w.stop
}

// coalesce returns a delay of about interval from now, lengthened to end
// on a multiple of a tenth of interval (at most a second) of the wall
// clock: the tries of many services fall due together, a few times a
// second, and share each wake-up of the process instead of waking it a
// hundred times a second (systemd's timers have the same slack,
// AccuracySec). A try comes at most a tenth of its interval late.
func coalesce(now time.Time, interval time.Duration) time.Duration {
	q := min(interval/10, time.Second)
	if q <= 0 {
		return interval
	}
	at := now.Add(interval).UnixNano()
	if r := at % int64(q); r != 0 {
		at += int64(q) - r
	}
	return time.Duration(at - now.UnixNano())
}

type watch struct {
	k      *Checker
	probe  Func
	c      Check
	report func(bool, error)

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	cancel   context.CancelFunc // of the try in flight
	inflight sync.WaitGroup
	healthy  bool
	fails    int
}

// try runs one try on the timer's goroutine, then arms the timer again.
func (w *watch) try() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.inflight.Add(1)
	w.mu.Unlock()
	defer w.inflight.Done()
	defer cancel()

	var err error
	select {
	case w.k.slots <- struct{}{}:
		tctx, tcancel := context.WithTimeout(ctx, w.c.Timeout)
		err = w.probe(tctx)
		tcancel()
		<-w.k.slots
	case <-ctx.Done():
		return // stopped while waiting for a slot
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel = nil
	if w.stopped {
		return
	}
	if err != nil {
		w.k.failures.Add(1)
	}
	if err == nil {
		w.fails = 0
		if !w.healthy {
			w.healthy = true
			w.report(true, nil)
		}
	} else if w.fails++; w.fails >= w.c.Retries {
		w.stopped = true
		w.report(false, err)
		return
	}
	w.timer.Reset(coalesce(time.Now(), w.c.Interval))
}

func (w *watch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
	w.inflight.Wait()
}
