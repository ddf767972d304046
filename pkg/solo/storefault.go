package solo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
)

// How a fact a service loop observed is retried while the log cannot be
// written: soon at first, then every few seconds at most, and at once when
// any other write shows that the fault has cleared.
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = 2 * time.Second
	// faultRepeat is how often a lasting fault is logged again at ERROR.
	faultRepeat = 30 * time.Second
)

// StoreFault describes why the event log cannot be written (a full disk, a
// quota, an I/O error), from [Runtime.StoreFault].
type StoreFault struct {
	Err     error     // the last write's error; wraps [eventstore.ErrNotWritten]
	Since   time.Time // the first failed write of this fault
	Pending int       // facts about running services waiting to be recorded
}

// faults tracks whether the log can be written. Any append that fails
// with [eventstore.ErrNotWritten] opens a fault; the next one that succeeds
// closes it. Facts observed meanwhile wait in [Runtime.observe]; they are
// woken when the fault closes.
type faults struct {
	log  hclog.Logger
	path string

	mu       sync.Mutex
	err      error
	since    time.Time
	lastLog  time.Time
	pending  int
	cleared  chan struct{} // closed when the current fault clears
	failures uint64        // writes refused, ever
}

func newFaults(log hclog.Logger, path string) *faults {
	return &faults{log: log, path: path, cleared: make(chan struct{})}
}

// observer returns an [eventstore.Options.OnCommit] that keeps f up to
// date and then calls next, if set. It never blocks: logging is quick.
func (f *faults) observer(next func(eventstore.CommitStats)) func(eventstore.CommitStats) {
	return func(c eventstore.CommitStats) {
		if c.Err != nil {
			f.failed(c.Err)
		} else if c.Events > 0 {
			f.ok()
		}
		if next != nil {
			next(c)
		}
	}
}

// failed records a refused write.
func (f *faults) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures++
	now := time.Now()
	if f.err == nil {
		f.since = now
	}
	if f.err == nil || now.Sub(f.lastLog) >= faultRepeat {
		f.log.Error("the event log cannot be written: services keep running and their facts are retried; deploys and other writes are refused until it can",
			"path", f.path, "error", err, "since", f.since.Format(time.RFC3339), "pending_facts", f.pending)
		f.lastLog = now
	}
	f.err = err
}

// ok records a successful write, closing a fault if one was open.
func (f *faults) ok() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		return
	}
	f.log.Warn("the event log can be written again; catching up", "path", f.path, "fault_lasted", time.Since(f.since).Round(time.Millisecond), "pending_facts", f.pending)
	f.err = nil
	close(f.cleared)
	f.cleared = make(chan struct{})
}

// current returns the open fault, if any, and a channel closed when it
// clears.
func (f *faults) current() (StoreFault, bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return StoreFault{Err: f.err, Since: f.since, Pending: f.pending}, f.err != nil, f.cleared
}

func (f *faults) wait(delta int) {
	f.mu.Lock()
	f.pending += delta
	f.mu.Unlock()
}

// Failures returns how many writes the file system refused since Open.
func (f *faults) count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures
}

// StoreFault reports whether the event log cannot be written now, and why.
// While it cannot, services keep running, the facts their loops observe
// wait to be recorded, and every write asked for (deploy, kill, apply,
// token grant) fails with an error wrapping [eventstore.ErrNotWritten].
// The fault clears by itself at the first write that succeeds.
func (r *Runtime) StoreFault() (StoreFault, bool) {
	f, open, _ := r.faults.current()
	return f, open
}

// StoreWriteFailures returns how many writes the file system refused since
// Open (each retry of a waiting fact counts).
func (r *Runtime) StoreWriteFailures() uint64 { return r.faults.count() }

// retryable reports whether a failed append may be retried with the same
// event id: the disk refused it (bbolt), or the cluster did not answer
// (etcd, where the outcome is unknown and the id makes a retry safe).
func retryable(err error) bool {
	return errors.Is(err, eventstore.ErrNotWritten) || errors.Is(err, eventstore.ErrUnavailable)
}

// observe records a fact a service loop observed (a start, an exit, a
// failure). Unlike a write someone asked for, which fails at once, such a
// fact must not be lost while its service runs on: when the log cannot be
// written it is retried, with the same event id, until it is durable, or
// until stops are forced (the end of a shutdown's grace), or ctx ends. The
// loop waits meanwhile; its process keeps running.
func (r *Runtime) observe(ctx context.Context, key state.Key, p state.Payload) error {
	ev, err := state.NewEvent(key.Tenant, key.Name, p)
	if err != nil {
		return err
	}
	ev.Actor = actorFrom(ctx)
	ev.ID = r.store.NewID() // one id for every try: a retry is idempotent
	delay := retryFirst
	waiting := false
	defer func() {
		if waiting {
			r.faults.wait(-1)
		}
	}()
	for {
		_, err := r.appendEvent(ctx, ev)
		if err == nil || !retryable(err) {
			return err
		}
		if r.clustered() {
			if _, ok := r.opts.Node.Lease(); !ok {
				// Fenced: the service is stopped, and may already run
				// elsewhere under a newer fence, which makes this fact
				// stale. It is dropped rather than hold up the stop.
				return err
			}
		}
		if !waiting {
			waiting = true
			r.faults.wait(1)
		}
		_, _, cleared := r.faults.current()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-cleared:
			t.Stop()
		case <-r.force.Done():
			t.Stop()
			return err
		case <-ctx.Done():
			t.Stop()
			return err
		}
		delay = min(2*delay, retryMax)
	}
}
