package solo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// Spec describes a service; see [state.Spec] for every field and default.
type Spec = state.Spec

// ServiceView is a service as List and Status report it (the CLI's --json).
type ServiceView = state.ServiceView

// DeployResult tells what a Deploy did: see [wire.DeployResult], where it
// is defined, as the API sends it.
type DeployResult = wire.DeployResult

// unchanged is the one rule, for Deploy and Apply alike, of whether
// deploying spec over cur changes nothing, so that nothing is written and
// no instance is touched:
//
//   - the same spec is desired (a killed service is deployed again);
//   - and its current generation is not failed: one that gave up (its
//     restart limit, or a start that failed under restart never) is
//     deployed again as a new generation, which brings it back;
//   - and either it ended as its policy wanted (exited: a one-shot job
//     that finished stays finished; `solo recover` or a changed spec runs
//     it again), or a loop of this runtime has it in hand (running,
//     starting or in backoff).
func (r *Runtime) unchanged(cur *state.Service, spec Spec) bool {
	if r.clustered() {
		// Its loop may be on another node: the log says what runs.
		return isUnchanged(cur, spec, func(state.Key) bool { return true })
	}
	return isUnchanged(cur, spec, r.supervised)
}

// isUnchanged is [Runtime.unchanged] with the runtime's one input passed
// in, so that the rule is table-tested on its own.
func isUnchanged(cur *state.Service, spec Spec, supervised func(state.Key) bool) bool {
	if !cur.Desired || !cur.Spec.Equal(spec) {
		return false
	}
	if cur.Instance != nil && cur.Instance.Generation != cur.Generation {
		return false // an older generation's instance is what is known
	}
	switch cur.State() {
	case state.StateExited:
		return true
	case state.StateRunning, state.StateStarting, state.StateBackoff:
		return supervised(state.Key{Tenant: cur.Tenant, Name: cur.Name})
	}
	return false
}

// Deploy makes spec the desired state of its service and runs it. It
// validates spec first: invalid input returns an error naming the field
// (a [*state.FieldError]) and writes nothing (I9). That includes a command
// spec that cannot start here: an unknown user or group, a user a daemon
// not running as root cannot become, an env file that cannot be read or
// parsed, a dir that is not a directory the user may enter, a command that
// does not resolve (in that dir, with the service's PATH) to a file the
// user may execute. An empty Dir is the daemon's working directory. Otherwise it appends
// service_deployed, fsynced, before it starts anything (I1, I2); a service
// that already runs is stopped with its own stop procedure and replaced by
// the new generation. Deploying the spec that already runs is a no-op.
func (r *Runtime) Deploy(ctx context.Context, spec Spec) (DeployResult, error) {
	if err := r.writable(); err != nil {
		return DeployResult{}, err
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return DeployResult{}, fmt.Errorf("deploy: %w", err)
	}
	if _, err := r.kind(spec.Kind); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	if err := r.canStamp(spec); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	confined := isConfined(spec.Tenant, actorFrom(ctx))
	c, err := r.confinement(ctx, spec.Tenant, confined && spec.Kind == "", false)
	if err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	if err := checkRunnable(spec, r.secrets, c); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	if err := r.canContain(spec); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	if err := r.canPlace(spec); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	if _, err := r.checkOrder([]Spec{spec}); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Key(), err)
	}
	key := spec.Key()
	unlock := r.keys.lock(key)
	defer unlock()

	cur, exists := r.world.service(key.Tenant, key.Name)
	if exists && r.unchanged(cur, spec) {
		return DeployResult{Service: cur.View()}, nil
	}
	adding := map[string]int{}
	if !exists && !session.IsService(key.Name) {
		adding[key.Tenant] = 1 // a new service, not a session's kernel (counted as the session)
	}
	admitted, err := r.admit(ctx, state.QuotaServices, adding)
	if err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", key, err)
	}
	if c != nil && c.dynamic != 0 {
		// Its dynamic user is recorded before the deploy that needs it.
		if _, err := r.allocateDynamicUser(ctx, key.Tenant); err != nil {
			admitted()
			return DeployResult{}, fmt.Errorf("deploy %s: %w", key, err)
		}
	}
	gen := r.world.nextGeneration(key.Tenant, key.Name)
	pos, err := r.append(ctx, key, state.Deployed{Spec: spec, Generation: gen}, actorFrom(ctx))
	admitted() // folded: the next check counts it
	if err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", key, err)
	}
	// The intent is durable; now act, whatever becomes of the caller: a
	// deploy abandoned halfway would leave the log saying one thing and
	// the world running another. The old loop, if any, stops its instance
	// (recording the exit) before the new generation starts, so two
	// generations never run at once.
	svc, _ := r.world.service(key.Tenant, key.Name)
	if r.clustered() {
		// The node it is placed on acts (its reconciler).
		return DeployResult{Service: svc.View(), Changed: true, Pos: pos}, nil
	}
	act := context.WithoutCancel(ctx)
	if err := r.stopLoop(act, key); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", key, err)
	}
	svc, _ = r.world.service(key.Tenant, key.Name)
	if err := r.supervise(svc, nil, 0, time.Time{}); err != nil {
		return DeployResult{}, fmt.Errorf("deploy %s: %w", key, err)
	}
	return DeployResult{Service: svc.View(), Changed: true, Pos: pos}, nil
}

// Kill stops a service for good: it appends service_killed, fsynced, then
// stops the instance with the service's stop procedure and returns once it
// is down. A killed service stays dead across restarts until deployed
// again (I5). Killing a service that is not deployed returns [ErrNotFound];
// killing one already killed writes nothing and succeeds.
func (r *Runtime) Kill(ctx context.Context, tenant, name string) error {
	if err := r.writable(); err != nil {
		return err
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	unlock := r.keys.lock(key)
	defer unlock()
	cur, ok := r.world.service(key.Tenant, key.Name)
	if !ok {
		return fmt.Errorf("kill %s: %w", key, ErrNotFound)
	}
	if cur.Desired {
		if _, err := r.append(ctx, key, state.Killed{Reason: "requested"}, actorFrom(ctx)); err != nil {
			return fmt.Errorf("kill %s: %w", key, err)
		}
	}
	// Durable: see it through (see Deploy).
	if err := r.stopLoop(context.WithoutCancel(ctx), key); err != nil {
		return fmt.Errorf("kill %s: %w", key, err)
	}
	r.dropCgroup(ctx, key)
	return nil
}

// dropCgroup removes the cgroup of a service that is down (killing what may
// be left in it); a failure is logged, and the cgroup is made again at the
// next start.
func (r *Runtime) dropCgroup(ctx context.Context, key state.Key) {
	if err := r.cg.Remove(context.WithoutCancel(ctx), key.Tenant, key.Name); err != nil {
		r.log.Warn("cannot remove a stopped service's cgroup", "service", key.String(), "error", err)
	}
}

// List returns the services of tenant ("" for every tenant), sorted by
// tenant and name.
func (r *Runtime) List(tenant string) []ServiceView {
	return r.world.views(tenant)
}

// Figures returns the numbers metrics report of every service (state,
// restarts, start time, last exit), sorted by tenant and name: read from
// the world as it is, so a removed service is simply absent.
func (r *Runtime) Figures() []state.Figures { return r.world.figures() }

// ServiceStatus is a service as Status reports it: its [ServiceView] and
// what explains it (the spec, the last exits, the next attempt).
type ServiceStatus = state.ServiceStatus

// Status returns one service, or [ErrNotFound].
func (r *Runtime) Status(tenant, name string) (ServiceStatus, error) {
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return ServiceStatus{}, fmt.Errorf("status: %w", err)
	}
	s, ok := r.world.service(key.Tenant, key.Name)
	if !ok {
		return ServiceStatus{}, fmt.Errorf("status %s: %w", key, ErrNotFound)
	}
	st := s.Status(r.opts.Now())
	if st.WaitingFor != nil {
		// What it waits for, as it is now rather than when recorded.
		if _, bl := r.world.blockers(key); len(bl) > 0 {
			st.WaitingNow(bl, s.Waiting.Reason)
		}
	}
	if s.Spec.Ready != nil && s.Spec.Ready.Notify {
		st.NotifyStatus = r.notifyStatus(key)
	}
	return st, nil
}

// Events follows the log from position from (0 or 1 for all of it): the
// stored events first, then new ones live, until ctx ends. See
// [eventstore.Store.Subscribe].
func (r *Runtime) Events(ctx context.Context, from uint64) *eventstore.Subscription {
	return r.store.Subscribe(ctx, from)
}

// Sync returns once the world has folded the event at position pos, so that
// List and Status reflect it. A caller that learnt of an event from Events
// syncs to its position before reading state.
func (r *Runtime) Sync(ctx context.Context, pos uint64) error {
	return r.world.wait(ctx, pos)
}

// Logs returns the last n lines a service wrote (stdout and stderr
// interleaved), across its rotated files.
func (r *Runtime) Logs(tenant, name string, n int) ([]byte, error) {
	key, err := r.known(tenant, name)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	return r.logs.Tail(key.Tenant+"/"+key.Name, n)
}

// FollowLogs writes what a service writes from now on to w, until ctx ends.
func (r *Runtime) FollowLogs(ctx context.Context, tenant, name string, w io.Writer) error {
	key, err := r.known(tenant, name)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return r.logs.Follow(ctx, key.Tenant+"/"+key.Name, w)
}

// TailFollowLogs writes the last n lines a service wrote (everything kept
// if n is 0) and then what it writes from now on to w, until ctx ends,
// with no line lost or repeated between the two (see
// [supervisor.Logs.TailFollow]).
func (r *Runtime) TailFollowLogs(ctx context.Context, tenant, name string, n int, w io.Writer) error {
	key, err := r.known(tenant, name)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return r.logs.TailFollow(ctx, key.Tenant+"/"+key.Name, n, w)
}

func (r *Runtime) known(tenant, name string) (state.Key, error) {
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return key, err
	}
	if _, ok := r.world.service(key.Tenant, key.Name); !ok {
		return key, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return key, nil
}

func (r *Runtime) writable() error {
	switch {
	case r.closed.Load():
		return ErrClosed
	case r.draining.Load():
		return ErrShuttingDown
	}
	return nil
}

type actorKey struct{}

// WithActor returns a context whose events are recorded with actor (a token
// id) instead of "local".
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

func actorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "local"
}

// Bounds of [Runtime.Why].
const (
	// DefaultWhyLines is how many sentences Why tells when asked for 0.
	DefaultWhyLines = 20
	// WhyEvents is how many of a service's latest events Why reads: its
	// story is a recent one, and its cost stays bounded for a service
	// that has crash-looped for days.
	WhyEvents = 2000
)

// Why tells the recent story of a service in sentences derived from the
// log (see [state.Story]): its last n sentences ([DefaultWhyLines] if n is
// 0), oldest first. It reads the service's stream and the daemon's system
// events through the store's stream index, never the whole log. A service
// never deployed returns [ErrNotFound].
func (r *Runtime) Why(tenant, name string, n int) ([]state.StoryLine, error) {
	key, err := r.known(tenant, name)
	if err != nil {
		return nil, fmt.Errorf("why: %w", err)
	}
	if n <= 0 {
		n = DefaultWhyLines
	}
	store := r.store
	var svc []eventstore.Envelope
	for env, err := range store.ReadSubject(key.Tenant, key.Name, 1) {
		if err != nil {
			return nil, fmt.Errorf("why %s: %w", key, err)
		}
		if len(svc) == 2*WhyEvents {
			svc = append(svc[:0], svc[WhyEvents:]...) // keep the latest
		}
		svc = append(svc, env)
	}
	if len(svc) > WhyEvents {
		svc = svc[len(svc)-WhyEvents:]
	}
	if len(svc) == 0 {
		return nil, nil
	}
	envs := make([]eventstore.Envelope, 0, len(svc)+8)
	i := 0
	for env, err := range store.ReadSubject("", "", svc[0].Pos) {
		if err != nil {
			return nil, fmt.Errorf("why %s: %w", key, err)
		}
		for i < len(svc) && svc[i].Pos < env.Pos {
			envs = append(envs, svc[i])
			i++
		}
		envs = append(envs, env)
	}
	envs = append(envs, svc[i:]...)
	lines := state.Story(envs, r.opts.Now())
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}
