// Package sessiontest gives tests of kernel sessions a ready fixture
// without kernels: [Clock], a clock moved by hand, and [Host], a
// [session.Host] over a real event store in a temp dir whose kernel
// services never run. A session created on it stays "starting" and its
// queue never moves, which is what tests of leases and bad input want.
//
// It must never be imported by non-test code.
//
// # Concurrency
//
// Both are safe for concurrent use. Host's follower, which stands in for
// the runtime's, is one goroutine that folds the store's log and calls
// the watchers; it stops at the test's cleanup.
package sessiontest

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
)

// Clock is a [session.Clock] that moves only when told to.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

var _ session.Clock = (*Clock)(nil)

// NewClock returns a clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At returns a channel that receives once the clock reaches t.
func (c *Clock) At(t time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: t, c: make(chan time.Time, 1)}
	if !c.now.Before(t) {
		w.c <- c.now
		return w.c, func() {}
	}
	c.waiters = append(c.waiters, w)
	return w.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.waiters {
			if x == w {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
	}
}

// Advance moves the clock by d and fires what is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !c.now.Before(w.at) {
			w.c <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// Host is a [session.Host] over a real event store, whose kernel services
// are recorded but never run. Like the runtime, it folds the log with one
// follower, which the manager reads, waits on and is told by. Its ...Func
// fields, when set, replace what the host does.
type Host struct {
	Store   *eventstore.Store
	DataDir string

	DeployFunc func(ctx context.Context, spec state.Spec) error
	KillFunc   func(ctx context.Context, tenant, name string) error
	SignalFunc func(ref state.KernelRef, sig syscall.Signal) error

	tb      testing.TB
	mu      sync.Mutex // innermost: guards ss, pos, applied
	ss      *state.Sessions
	pos     uint64        // last envelope folded and told
	applied chan struct{} // closed and replaced after each envelope
	done    chan struct{} // the follower ended

	watchMu  sync.Mutex // held while the watchers are called
	watchers []*func(eventstore.Envelope)
}

var _ session.Host = (*Host)(nil)

// NewHost opens a store in a temp dir and follows it; both are closed at
// cleanup.
func NewHost(tb testing.TB) *Host {
	tb.Helper()
	dir := tb.TempDir()
	st, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	h := &Host{Store: st, DataDir: dir, tb: tb, ss: state.NewSessions(), applied: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go h.follow(st.Subscribe(ctx, 1))
	tb.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

// follow folds the log in order, telling the watchers of each envelope
// before its position counts as folded, as the runtime's follower does.
func (h *Host) follow(sub *eventstore.Subscription) {
	defer close(h.done)
	for env := range sub.C() {
		h.mu.Lock()
		if err := h.ss.Apply(env); err != nil {
			h.tb.Errorf("sessiontest: envelope %d (%s) does not fold: %v", env.Pos, env.Type, err)
		}
		h.mu.Unlock()
		h.watchMu.Lock()
		for _, fn := range h.watchers {
			(*fn)(env)
		}
		h.watchMu.Unlock()
		h.mu.Lock()
		h.pos = env.Pos
		close(h.applied)
		h.applied = make(chan struct{})
		h.mu.Unlock()
	}
}

// Append records ps about key, as the runtime does.
func (h *Host) Append(ctx context.Context, key state.Key, ps ...state.Payload) (uint64, error) {
	events := make([]eventstore.Event, len(ps))
	for i, p := range ps {
		ev, err := state.NewEvent(key.Tenant, key.Name, p)
		if err != nil {
			return 0, err
		}
		events[i] = ev
	}
	pos, err := h.Store.Append(ctx, events...)
	if err != nil {
		return 0, err
	}
	return pos[len(pos)-1], nil
}

// ReadSessions calls fn with the sessions folded so far, under the
// follower's lock.
func (h *Host) ReadSessions(fn func(*state.Sessions)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.ss)
}

// WaitFolded returns once the envelope at pos is folded and told.
func (h *Host) WaitFolded(ctx context.Context, pos uint64) error {
	for {
		h.mu.Lock()
		folded, ch := h.pos >= pos, h.applied
		h.mu.Unlock()
		if folded {
			return nil
		}
		select {
		case <-ch:
		case <-h.done:
			h.mu.Lock()
			folded = h.pos >= pos
			h.mu.Unlock()
			if folded {
				return nil
			}
			return errors.New("sessiontest: the host's follower stopped")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Watch calls fn with each envelope folded from now on, on the follower's
// goroutine.
func (h *Host) Watch(fn func(eventstore.Envelope)) (stop func()) {
	p := &fn
	h.watchMu.Lock()
	h.watchers = append(h.watchers, p)
	h.watchMu.Unlock()
	return sync.OnceFunc(func() {
		h.watchMu.Lock()
		defer h.watchMu.Unlock()
		h.watchers = slices.DeleteFunc(h.watchers, func(x *func(eventstore.Envelope)) bool { return x == p })
	})
}

// Deploy calls DeployFunc, if set.
func (h *Host) Deploy(ctx context.Context, spec state.Spec) error {
	if h.DeployFunc != nil {
		return h.DeployFunc(ctx, spec)
	}
	return nil
}

// Kill calls KillFunc, if set.
func (h *Host) Kill(ctx context.Context, tenant, name string) error {
	if h.KillFunc != nil {
		return h.KillFunc(ctx, tenant, name)
	}
	return nil
}

// Signal calls SignalFunc, if set.
func (h *Host) Signal(ref state.KernelRef, sig syscall.Signal) error {
	if h.SignalFunc != nil {
		return h.SignalFunc(ref, sig)
	}
	return nil
}

// MustOpen opens a manager on h with opts (DataDir defaults to h's),
// closed at cleanup.
func MustOpen(tb testing.TB, h *Host, opts session.Options) *session.Manager {
	tb.Helper()
	if opts.DataDir == "" {
		opts.DataDir = h.DataDir
	}
	m, err := session.Open(context.Background(), h, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { m.Close() })
	return m
}
