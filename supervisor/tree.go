package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/thejerf/suture/v4"
)

// ErrTreeStopped is returned by [Tree.Add] once the tree has been stopped.
var ErrTreeStopped = errors.New("supervisor tree is stopped")

// ErrOneShotUnfinished is returned by [Tree.RunOnce] when the one-shot's
// Serve returned, or panicked, without closing its Done channel. (It sits
// here beside ErrTreeStopped, the other error of the tree.)
var ErrOneShotUnfinished = errors.New("one-shot ended without finishing")

// Tree runs every [Service], keyed by (tenant, name): at most one loop per
// key, so at most one instance. Each loop runs on a goroutine of its own
// with a context of its own, cancelled by [Tree.Stop] or [Tree.StopAll];
// a loop never restarts (one life per [Service]), so it needs none of a
// suture supervisor's restart bookkeeping, which would cost each of
// thousands of services memory for its whole life. The one-shots of
// [Tree.RunOnce] run under a suture supervisor.
type Tree struct {
	sup    *suture.Supervisor
	cancel context.CancelFunc // ends the one-shots' supervisor
	served chan struct{}
	logger hclog.Logger

	mu       sync.Mutex
	stopped  bool
	services map[Key]*treeEntry
}

type treeEntry struct {
	svc *Service
	ctx *loopContext
}

// NewTree starts an empty tree; it runs until [Tree.StopAll].
func NewTree(logger hclog.Logger) *Tree {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tree{
		sup: suture.New("solo", suture.Spec{
			EventHook: func(e suture.Event) { logger.Warn("supervisor: " + e.String()) },
			// Our services end only through their context and wait for
			// their own stop procedure; the tree must never give up on
			// them first. Tree.Stop and StopAll wait on Service.Done.
			Timeout: 1<<63 - 1,
		}),
		cancel:   cancel,
		served:   make(chan struct{}),
		logger:   logger,
		services: map[Key]*treeEntry{},
	}
	go func() {
		defer close(t.served)
		t.sup.Serve(ctx)
	}()
	return t
}

// Add runs svc. It fails if a loop for the same key is still registered:
// the caller must [Tree.Stop] the old one first.
func (t *Tree) Add(svc *Service) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return ErrTreeStopped
	}
	if e, ok := t.services[svc.Key()]; ok {
		select {
		case <-e.svc.Done():
		default:
			return fmt.Errorf("service %s already runs (generation %d)", svc.Key(), e.svc.Generation())
		}
	}
	ctx := &loopContext{}
	t.services[svc.Key()] = &treeEntry{svc: svc, ctx: ctx}
	// A panic ends the loop (its Done closed) and is logged; a loop is
	// never restarted.
	go svc.run(ctx, t.logger)
	return nil
}

// Get returns the loop registered for key, if any, even one whose Serve has
// returned (check [Service.Done]).
func (t *Tree) Get(key Key) (*Service, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.services[key]
	if !ok {
		return nil, false
	}
	return e.svc, true
}

// Stop ends the loop for key, stopping its instance, and returns once Serve
// has returned or ctx ends. Stopping a key with no loop is a no-op.
//
// The key stays registered until the loop has really returned, even when
// ctx ends first: until then [Tree.Add] refuses a new loop for it, so a
// new instance can never start beside one that is still stopping (I3).
func (t *Tree) Stop(ctx context.Context, key Key) error {
	t.mu.Lock()
	e, ok := t.services[key]
	t.mu.Unlock()
	if !ok {
		return nil
	}
	e.ctx.cancel()
	select {
	case <-e.svc.Done():
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w (it is still stopping)", key, ctx.Err())
	}
	t.mu.Lock()
	if t.services[key] == e {
		delete(t.services, key)
	}
	t.mu.Unlock()
	return nil
}

// StopAll stops every loop in parallel and refuses new ones; it returns when
// all have returned or ctx ends. The loops' own stop procedures bound how
// long that takes; cancel their Force context to cut it short.
func (t *Tree) StopAll(ctx context.Context) error {
	t.mu.Lock()
	t.stopped = true
	entries := make([]*treeEntry, 0, len(t.services))
	for _, e := range t.services {
		entries = append(entries, e)
	}
	t.mu.Unlock()
	for _, e := range entries {
		e.ctx.cancel()
	}
	t.cancel() // and the one-shots'

	for _, e := range entries {
		select {
		case <-e.svc.Done():
		case <-ctx.Done():
			return fmt.Errorf("stop all: %w", ctx.Err())
		}
	}
	select {
	case <-t.served:
	case <-ctx.Done():
		return fmt.Errorf("stop all: %w", ctx.Err())
	}
	return nil
}

// OneShot is a service that runs once under the tree, such as the
// recovery pass at start.
type OneShot interface {
	suture.Service
	// Done is closed when its Serve has finished.
	Done() <-chan struct{}
}

// RunOnce runs s under the tree and returns once it is done or ctx ends.
//
// s runs once: it is never restarted, not even after a panic. If its Serve
// returns or panics without closing Done, RunOnce returns an error wrapping
// [ErrOneShotUnfinished] rather than wait for a Done that will never come
// (a panic would otherwise spend a sync.Once that closes Done, and suture
// would restart Serve into a no-op).
func (t *Tree) RunOnce(ctx context.Context, s OneShot) error {
	t.mu.Lock()
	stopped := t.stopped
	t.mu.Unlock()
	if stopped {
		return ErrTreeStopped
	}
	run := &oneShotRun{OneShot: s, logger: t.logger, served: make(chan struct{})}
	t.sup.Add(run)
	select {
	case <-s.Done():
		return nil
	case <-run.served:
		select {
		case <-s.Done():
			return nil
		default:
		}
		if run.panicked != nil {
			return fmt.Errorf("run %s: %w: panic: %v", s, ErrOneShotUnfinished, run.panicked)
		}
		return fmt.Errorf("run %s: %w", s, ErrOneShotUnfinished)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// oneShotRun is how the tree runs a [OneShot]: Serve once, a panic caught
// and kept, and never a restart.
type oneShotRun struct {
	OneShot
	logger   hclog.Logger
	served   chan struct{} // closed when Serve has returned or panicked
	panicked any           // set before served is closed
}

func (r *oneShotRun) Serve(ctx context.Context) (err error) {
	defer close(r.served)
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			r.logger.Error("one-shot panicked", "service", r.String(), "panic", p, "stack", string(debug.Stack()))
		}
		err = suture.ErrDoNotRestart
	}()
	r.OneShot.Serve(ctx)
	return nil
}

// String names the one-shot in suture's logs.
func (r *oneShotRun) String() string { return fmt.Sprint(r.OneShot) }

// Services returns the registered loops.
func (t *Tree) Services() []*Service {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Service, 0, len(t.services))
	for _, e := range t.services {
		out = append(out, e.svc)
	}
	return out
}

// Len returns the number of registered loops.
func (t *Tree) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.services)
}
