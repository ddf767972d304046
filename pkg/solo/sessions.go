package solo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Sessions returns the kernel sessions: named Jupyter kernels, each run as
// the service "session.NAME", with a durable, ordered queue of tasks (see
// package session). It is started by Open, after recovery has re-adopted
// or restarted the kernels, and stopped first by Shutdown.
func (r *Runtime) Sessions() *session.Manager { return r.sessions }

// openSessions starts the session manager on the runtime's world: each
// live session reconnects to its kernel and runs what is left of its
// queue.
func (r *Runtime) openSessions(ctx context.Context) error {
	o := session.Options{
		DataDir: r.home,
		Python:  r.opts.Python,
		Logger:  r.log.Named("sessions"),
	}
	if r.opts.Node != nil {
		o.Node = r.opts.Node.Name()
	}
	m, err := session.Open(ctx, sessionHost{r}, o)
	if err != nil {
		return err
	}
	r.sessions = m
	return nil
}

// closeSessions stops the session workers; nil-safe, idempotent.
func (r *Runtime) closeSessions() {
	if r.sessions != nil {
		r.sessions.Close()
	}
}

// sessionHost is the runtime as the session manager sees it: the log to
// append to, the world's follower to read sessions from, wait on and be
// told of each envelope by (the one subscriber that folds the log), and
// the kernel services.
type sessionHost struct{ r *Runtime }

var _ session.Host = sessionHost{}

func (h sessionHost) Append(ctx context.Context, key state.Key, ps ...state.Payload) (uint64, error) {
	if err := h.r.writable(); err != nil {
		return 0, err
	}
	// A new session, or a task queued: the tenant's quota first (held
	// until the write is folded, so that the next check counts it).
	adding := map[string]map[string]int{}
	for _, p := range ps {
		switch p.(type) {
		case state.SessionCreated:
			adding[state.QuotaSessions] = map[string]int{key.Tenant: 1}
		case state.TaskSubmitted:
			adding[state.QuotaTasks] = map[string]int{key.Tenant: 1}
		}
	}
	for _, quota := range slices.Sorted(maps.Keys(adding)) {
		admitted, err := h.r.admit(ctx, quota, adding[quota])
		if err != nil {
			return 0, err
		}
		defer admitted()
	}
	events := make([]eventstore.Event, len(ps))
	for i, p := range ps {
		ev, err := state.NewEvent(key.Tenant, key.Name, p)
		if err != nil {
			return 0, err
		}
		ev.Actor = actorFrom(ctx)
		events[i] = ev
	}
	pos, err := h.r.store.Append(ctx, events...)
	h.r.observeCommit(err)
	if err != nil {
		return 0, err
	}
	last := pos[len(pos)-1]
	if len(adding) > 0 {
		if err := h.r.world.wait(context.WithoutCancel(ctx), last); err != nil {
			return last, err
		}
	}
	return last, nil
}

// ReadSessions reads the sessions from the runtime's world: the manager
// has no fold of its own.
func (h sessionHost) ReadSessions(fn func(*state.Sessions)) { h.r.world.readSessions(fn) }

func (h sessionHost) WaitFolded(ctx context.Context, pos uint64) error {
	return h.r.world.wait(ctx, pos)
}

func (h sessionHost) Watch(fn func(eventstore.Envelope)) (stop func()) { return h.r.world.watch(fn) }

// RunAs is whom Deploy will run a kernel of tenant as, created by ctx's
// caller (see isConfined and confinement.account): the one rule.
func (h sessionHost) RunAs(ctx context.Context, tenant string) (uint32, uint32, bool, error) {
	c, err := h.r.confinement(ctx, tenant, isConfined(tenant, actorFrom(ctx)), true)
	if err != nil || c == nil {
		return 0, 0, false, err
	}
	a, err := c.account(state.Spec{Tenant: tenant}, supervisor.Self())
	if err != nil {
		return 0, 0, false, err
	}
	return a.UID, a.GID, true, nil
}

func (h sessionHost) Deploy(ctx context.Context, spec state.Spec) error {
	_, err := h.r.Deploy(ctx, spec)
	return err
}

func (h sessionHost) Kill(ctx context.Context, tenant, name string) error {
	err := h.r.Kill(ctx, tenant, name)
	if errors.Is(err, ErrNotFound) {
		return nil // never deployed: nothing to stop
	}
	return err
}

// Signal goes through the supervisor's identity check (I4): a kernel pid
// that was recycled is never signalled.
func (h sessionHost) Signal(ref state.KernelRef, sig syscall.Signal) error {
	if ref.PID <= 0 {
		return fmt.Errorf("signal kernel: no pid")
	}
	return supervisor.Signal(supervisor.Identity{PID: ref.PID, StartTicks: ref.StartTicks, BootID: ref.BootID}, sig)
}
