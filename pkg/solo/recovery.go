package solo

import (
	"context"
	"errors"
	"fmt"
	"github.com/solo-rt/solo/cgroup"
	"os"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// RecoveryReport returns what the recovery pass at Open did.
func (r *Runtime) RecoveryReport() recovery.Report { return r.recovered }

// Verify compares the log with the processes that run (see
// [recovery.Verify]); with fix it acts on what it finds and records
// drift_found and drift_fixed.
func (r *Runtime) Verify(ctx context.Context, fix bool) (recovery.VerifyReport, error) {
	if fix {
		if err := r.writable(); err != nil {
			return recovery.VerifyReport{}, err
		}
	}
	return recovery.Verify(ctx, recoveryTarget{r}, fix)
}

// Recover brings back services that are desired but not running, including
// those that hit their restart limit (see [recovery.Recover]). With name
// set only that service of tenant; with dryRun it only returns the plan.
func (r *Runtime) Recover(ctx context.Context, tenant, name string, dryRun bool) ([]recovery.RecoverItem, error) {
	if !dryRun {
		if err := r.writable(); err != nil {
			return nil, err
		}
	}
	if name != "" {
		key, err := state.NewKey(tenant, name)
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		tenant = key.Tenant
		// recovery.Recover takes the service's lock itself (LockKeys).
	}
	items, err := recovery.Recover(ctx, recoveryTarget{r}, tenant, name, dryRun)
	if err != nil {
		return nil, err
	}
	return items, nil
}

// recoveryTarget is the runtime as recovery sees it.
type recoveryTarget struct{ r *Runtime }

var (
	_ recovery.VerifyTarget = recoveryTarget{}
	_ recovery.Container    = recoveryTarget{}
)

func (t recoveryTarget) Cgroup(key state.Key) *cgroup.Group {
	g, _ := t.r.existingCgroup(key)
	return g
}

func (t recoveryTarget) Members() (map[state.Key][]int, error) {
	members, err := t.r.cg.Members()
	if err != nil {
		return nil, err
	}
	out := make(map[state.Key][]int, len(members))
	for ref, pids := range members {
		out[state.Key{Tenant: ref.Tenant, Name: ref.Name}] = pids
	}
	return out, nil
}

// World is the fold as recovery and the Verifier see it: in a cluster,
// only the services that run here ([Runtime.runsHere]), so that a marked
// process of any other (placed elsewhere, or under a lease this node lost)
// is a stray, and stopped.
func (t recoveryTarget) World() *state.World {
	w := t.r.world.clone()
	if t.r.clustered() {
		w.Keep(t.r.runsHere)
	}
	return w
}

func (t recoveryTarget) Home() string { return t.r.home }

func (t recoveryTarget) HasKind(kind string) bool {
	_, err := t.r.kind(kind)
	return err == nil
}

func (t recoveryTarget) Start(ctx context.Context, svc *state.Service, attempt int) (supervisor.Instance, error) {
	cfg, err := t.r.serviceConfig(svc)
	if err != nil {
		return nil, err
	}
	return cfg.Runner.Start(ctx, attempt)
}

func (t recoveryTarget) Supervise(svc *state.Service, inst supervisor.Instance, attempt int, startedAt time.Time) error {
	return t.r.supervise(svc, inst, attempt, startedAt)
}

func (t recoveryTarget) Append(ctx context.Context, events []eventstore.Event) error {
	if len(events) == 0 {
		return nil
	}
	if t.r.clustered() {
		if err := t.r.fenceFacts(events); err != nil {
			return err
		}
	}
	pos, err := t.r.store.Append(ctx, events...)
	t.r.observeCommit(err)
	if err != nil {
		return err
	}
	return t.r.world.wait(ctx, pos[len(pos)-1])
}

// LockKeys takes the keys' write locks (see keyedMutex).
func (t recoveryTarget) LockKeys(keys []state.Key) (unlock func()) { return t.r.keys.lockAll(keys) }

// endingLoopWait bounds how long Supervised waits for a loop that has
// recorded its service's end to return; it returns right after the append.
const endingLoopWait = 5 * time.Second

func (t recoveryTarget) Supervised(key state.Key) bool { return t.r.supervised(key) }

// supervised reports whether a loop of this runtime runs key (one that is
// still stopping counts), or holds its start until its dependencies are
// ready.
func (r *Runtime) supervised(key state.Key) bool {
	if r.order.isParked(key) {
		return true // its start waits for its dependencies (order.go)
	}
	s, ok := r.tree.Get(loopKey(key))
	if !ok {
		return false
	}
	// A loop that recorded service_failed (or an exit its policy does not
	// restart) returns right after: the log says it is over a moment
	// before the loop is. Wait for it, or `solo recover` just after a
	// failure would skip the service, or start it beside the ending loop
	// and fail to supervise the new instance (the tree refuses a second
	// loop), leaving it unwatched.
	if svc, ok := r.world.service(key.Tenant, key.Name); ok && svc.Desired && !svc.ShouldRun() && svc.Generation == s.Generation() {
		select {
		case <-s.Done():
		case <-time.After(endingLoopWait):
		}
	}
	select {
	case <-s.Done():
		return false
	default:
		return true
	}
}

// existingCgroup is the cgroup of key as it is, found and not made (see
// [cgroup.Manager.Load]): nil, without an error, where services get no
// cgroups or key has none.
func (r *Runtime) existingCgroup(key state.Key) (*cgroup.Group, error) {
	return r.found(func() (*cgroup.Group, error) { return r.cg.Load(key.Tenant, key.Name) })
}

// madeCgroup is the cgroup that a start of spec made, found and not made
// again (see [cgroup.Manager.LoadMade]): nil, without an error, where
// services get no cgroups or spec's service has none.
func (r *Runtime) madeCgroup(spec Spec) (*cgroup.Group, error) {
	return r.found(func() (*cgroup.Group, error) { return r.cg.LoadMade(spec.Tenant, spec.Name, cgroupLimits(spec)) })
}

func (r *Runtime) found(load func() (*cgroup.Group, error)) (*cgroup.Group, error) {
	if !r.cg.Available() {
		return nil, nil
	}
	g, err := load()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return g, err
}
