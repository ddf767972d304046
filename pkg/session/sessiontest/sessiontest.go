// Package sessiontest gives tests of kernel sessions a ready fixture
// without kernels: [Clock], a clock moved by hand, and [Host], a
// [session.Host] over a real event store in a temp dir whose kernel
// services never run. A session created on it stays "starting" and its
// queue never moves, which is what tests of leases and bad input want.
// [CheckHost] checks what the manager relies on of a host's fold, for
// this Host and the runtime's alike.
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

	"github.com/stretchr/testify/assert"
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
	RunAsFunc  func(ctx context.Context, tenant string) (uid, gid uint32, confined bool, err error)
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

// RunAs calls RunAsFunc, if set; else every kernel runs as the caller.
func (h *Host) RunAs(ctx context.Context, tenant string) (uint32, uint32, bool, error) {
	if h.RunAsFunc != nil {
		return h.RunAsFunc(ctx, tenant)
	}
	return 0, 0, false, nil
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

// CheckHost checks what a [session.Manager] relies on of h's fold, on a
// running h (the runtime's host, or this package's): a write is folded
// once WaitFolded of its position returns (read-your-writes); a watcher is
// told of every envelope from its Watch on, once each, in log order, after
// the fold and before WaitFolded returns; stop ends the calls; WaitFolded
// honours its context. It appends a few events that change no session.
func CheckHost(t *testing.T, h session.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := state.Key{Tenant: state.DefaultTenant, Name: "hostcheck"}
	// A cancel of an unknown task folds to nothing but the position.
	noop := func() state.Payload { return state.TaskCancelled{ID: session.NewTaskID()} }

	pos, err := h.Append(ctx, key, noop())
	require.NoError(t, err)
	require.NoError(t, h.WaitFolded(ctx, pos))
	var folded uint64
	h.ReadSessions(func(ss *state.Sessions) { folded = ss.Pos() })
	require.GreaterOrEqual(t, folded, pos, "a write is not folded once WaitFolded returned")

	var mu sync.Mutex
	var told []uint64
	var unfolded []uint64 // told before the fold had them
	stop := h.Watch(func(env eventstore.Envelope) {
		var at uint64
		h.ReadSessions(func(ss *state.Sessions) { at = ss.Pos() })
		mu.Lock()
		defer mu.Unlock()
		told = append(told, env.Pos)
		if at < env.Pos {
			unfolded = append(unfolded, env.Pos)
		}
	})
	var wg sync.WaitGroup
	mine := make(chan uint64, 64)
	for range 8 {
		wg.Go(func() {
			for range 4 {
				pos, err := h.Append(ctx, key, noop(), noop())
				if !assert.NoError(t, err) {
					return
				}
				// Told before WaitFolded returns: no wait for the watcher.
				assert.NoError(t, h.WaitFolded(ctx, pos))
				mu.Lock()
				seen := slices.Contains(told, pos) && slices.Contains(told, pos-1)
				mu.Unlock()
				assert.True(t, seen, "WaitFolded(%d) returned before the watcher was told", pos)
				mine <- pos
			}
		})
	}
	wg.Wait()
	close(mine)
	stop()
	stop() // idempotent

	mu.Lock()
	got := slices.Clone(told)
	assert.Empty(t, unfolded, "told of envelopes before they were folded")
	mu.Unlock()
	require.NotEmpty(t, got)
	for i := 1; i < len(got); i++ {
		require.Equal(t, got[i-1]+1, got[i], "the watcher was not told of every envelope once, in order: %v", got)
	}
	for pos := range mine {
		assert.Contains(t, got, pos)
	}

	pos, err = h.Append(ctx, key, noop())
	require.NoError(t, err)
	require.NoError(t, h.WaitFolded(ctx, pos))
	mu.Lock()
	assert.Equal(t, len(got), len(told), "a stopped watcher was told")
	mu.Unlock()

	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	assert.ErrorIs(t, h.WaitFolded(cctx, pos+1<<20), context.Canceled, "WaitFolded ignores its context")
}
