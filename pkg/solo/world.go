package solo

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
)

// follower keeps the runtime's world folded up to the head of the log. It
// is the only subscriber that folds the log, for services and kernel
// sessions alike, and the only writer of the world: events are applied in
// log order by one goroutine that subscribes to the store, never by the
// appenders, whose appends may finish in any order.
//
// The session manager reads its sessions from this world
// ([follower.readSessions]) and is told of each envelope folded
// ([follower.watch]): it has no subscription or fold of its own.
//
// Locks: mu guards the world and is innermost: nothing runs under it but
// the fold and reads of the world (a readSessions function takes no lock).
// watchMu is held while the watchers are called, never with mu held, so
// that a watcher's stop waits for a call in flight.
type follower struct {
	store eventstore.Log
	log   hclog.Logger
	every uint64 // events between snapshots

	mu       sync.Mutex
	w        *state.World
	pos      uint64        // last envelope folded and told to the watchers
	applied  chan struct{} // closed and replaced after each event
	lastSnap uint64

	watchMu  sync.Mutex
	watchers []*watcher

	cancel context.CancelFunc
	done   chan struct{}
}

// watcher is one function [follower.watch] calls.
type watcher struct {
	fn func(eventstore.Envelope)
}

func newFollower(store eventstore.Log, w *state.World, every uint64, log hclog.Logger) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{
		store: store, log: log, every: every, w: w, pos: w.Pos(), lastSnap: w.Pos(),
		applied: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
	}
	go f.run(ctx)
	return f
}

func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	sub := f.store.Subscribe(ctx, f.pos+1)
	for env := range sub.C() {
		f.mu.Lock()
		if err := f.w.Apply(env); err != nil {
			// The log is the truth and cannot be changed: an event that
			// does not fold is reported and passed over.
			f.log.Error("event does not fold; skipping it", "pos", env.Pos, "type", env.Type, "error", err)
		}
		f.mu.Unlock()
		// The watchers see the world with env folded, before anyone
		// waiting for env returns: a write's effects include theirs.
		f.tell(env)
		f.mu.Lock()
		f.pos = env.Pos
		close(f.applied)
		f.applied = make(chan struct{})
		snap := f.pos-f.lastSnap >= f.every
		f.mu.Unlock()
		if snap {
			if err := f.snapshot(); err != nil {
				f.log.Warn("snapshot failed; will retry", "error", err)
			}
		}
	}
	f.mu.Lock()
	close(f.applied) // wake waiters: nothing more will come
	f.mu.Unlock()
}

// tell calls every watcher with env, in the order they were added.
func (f *follower) tell(env eventstore.Envelope) {
	f.watchMu.Lock()
	defer f.watchMu.Unlock()
	for _, w := range f.watchers {
		w.fn(env)
	}
}

// watch calls fn with each envelope folded from now on, in log order, on
// the follower's goroutine, once the world has folded it and before a
// wait for its position returns. An envelope folded before watch returns
// may be told too, or not; a caller that also reads the world after watch
// returns misses none. fn must be quick and must not block: the follower
// folds nothing else while it runs, and every write waits for the fold
// (I8). It must not wait for the fold either, nor add or stop a watcher.
//
// stop ends the calls and returns once no call of fn runs; it is
// idempotent, and must not be called from fn.
func (f *follower) watch(fn func(eventstore.Envelope)) (stop func()) {
	w := &watcher{fn: fn}
	f.watchMu.Lock()
	f.watchers = append(f.watchers, w)
	f.watchMu.Unlock()
	return sync.OnceFunc(func() {
		f.watchMu.Lock()
		defer f.watchMu.Unlock()
		f.watchers = slices.DeleteFunc(f.watchers, func(x *watcher) bool { return x == w })
	})
}

// wait returns once the event at pos has been folded and told to the
// watchers, or ctx's error, or [ErrClosed] if the follower stopped first.
func (f *follower) wait(ctx context.Context, pos uint64) error {
	for {
		f.mu.Lock()
		if f.pos >= pos {
			f.mu.Unlock()
			return nil
		}
		ch := f.applied
		f.mu.Unlock()
		select {
		case <-ch:
		case <-f.done:
			f.mu.Lock()
			ok := f.pos >= pos
			f.mu.Unlock()
			if ok {
				return nil
			}
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// snapshot saves the world as it is now.
func (f *follower) snapshot() error {
	f.mu.Lock()
	pos := f.w.Pos()
	data, err := f.w.MarshalSnapshot()
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if err := f.store.SaveSnapshot(pos, data); err != nil {
		return err
	}
	f.mu.Lock()
	f.lastSnap = max(f.lastSnap, pos)
	f.mu.Unlock()
	return nil
}

// service returns a copy of one service.
func (f *follower) service(tenant, name string) (*state.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.w.Service(tenant, name)
	if !ok {
		return nil, false
	}
	return s.Clone(), true
}

// services returns copies of the services of tenant ("" for all), sorted.
func (f *follower) services(tenant string) []*state.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*state.Service
	for _, s := range f.w.Services() {
		if tenant == "" || s.Tenant == tenant {
			out = append(out, s.Clone())
		}
	}
	return out
}

// views returns the views of the services of tenant ("" for all), sorted.
// A view shares nothing with the world, so no service is cloned first: a
// list of 1,000 services makes a tenth of the garbage it would.
func (f *follower) views(tenant string) []state.ServiceView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]state.ServiceView, 0, f.w.Len())
	for _, s := range f.w.Services() {
		if tenant == "" || s.Tenant == tenant {
			out = append(out, s.View())
		}
	}
	return out
}

// figures returns the figures of every service, sorted; like views, it
// copies no service.
func (f *follower) figures() []state.Figures {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]state.Figures, 0, f.w.Len())
	for _, s := range f.w.Services() {
		out = append(out, s.Figures())
	}
	return out
}

// desired returns copies of the desired services.
func (f *follower) desired() []*state.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*state.Service
	for _, s := range f.w.Desired() {
		out = append(out, s.Clone())
	}
	return out
}

// clone returns a copy of the whole world.
func (f *follower) clone() *state.World {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Clone()
}

// readSessions calls fn with the kernel sessions folded with the world,
// under the world's lock: fn must be quick, take no lock, and keep
// nothing it points to.
func (f *follower) readSessions(fn func(*state.Sessions)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.w.Sessions())
}

// usage counts what tenant holds against its quotas.
func (f *follower) usage(tenant string) state.Usage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Usage(tenant)
}

// position is the position of the last envelope folded.
func (f *follower) position() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Pos()
}

// nextGeneration is the generation the next deploy of (tenant, name) gets.
func (f *follower) nextGeneration(tenant, name string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.NextGeneration(tenant, name)
}

func (f *follower) close() {
	f.cancel()
	<-f.done
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tenant returns a copy of one tenant's record.
func (f *follower) tenant(name string) (state.Tenant, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.w.Tenant(name)
	if !ok {
		return state.Tenant{}, false
	}
	return *t.Clone(), true
}

// tenantLimits returns the quotas, rate and burst that tenant's policy
// sets (zero where it sets none), without copying the rest of it: the API
// asks for every request of a token.
func (f *follower) tenantLimits(name string) (state.Limits, float64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.w.Tenant(name)
	if !ok || t.Policy == nil {
		return state.Limits{}, 0, 0
	}
	return t.Policy.Limits, t.Policy.Rate, t.Policy.Burst
}

// tenants returns copies of every tenant's record, sorted by name.
func (f *follower) tenants() []state.Tenant {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []state.Tenant
	for _, t := range f.w.Tenants() {
		out = append(out, *t.Clone())
	}
	return out
}
