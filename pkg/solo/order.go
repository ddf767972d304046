package solo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
)

// Dependency order (a spec's after and requires) in the runtime:
//
//   - Every start of a loop, whoever asks for it (deploy, apply, start,
//     restart, recovery, recover), goes through [Runtime.supervise], which
//     asks [Runtime.gate]: a start whose services are not ready
//     ([state.World.Blockers], the one rule) is parked here instead of
//     handed to a loop, and service_waiting is recorded. A parked start
//     costs a map entry, no goroutine.
//   - One watcher on the follower notes each folded event about a service
//     that some service is after; one goroutine (runOrder) then
//     reconsiders those dependents: a parked start whose services are now
//     ready is handed to its loop; a running dependent whose required
//     service went down ([state.World.RequiredDown]) is stopped with its
//     loop's stop procedure, the reason recorded first, and parked until
//     that service is ready again. A dependent is stopped once per down:
//     once parked, further exits of the required service find nothing to
//     stop.
//   - The drain stops dependents before what they depend on
//     ([Runtime.stopInOrder]).
type order struct {
	mu     sync.Mutex
	parked map[state.Key]parkedStart
	// dependents maps a service to those supervised that are after it or
	// require it, as their specs said when they were last supervised. An
	// entry made stale by a redeploy only costs a reconsideration.
	dependents map[state.Key]map[state.Key]struct{}
	queue      []state.Key // services whose events the goroutine has to see
	kick       chan struct{}
}

// parkedStart is a start waiting for its dependencies.
type parkedStart struct {
	gen     uint64
	attempt int
}

func newOrder() *order {
	return &order{
		parked:     map[state.Key]parkedStart{},
		dependents: map[state.Key]map[state.Key]struct{}{},
		kick:       make(chan struct{}, 1),
	}
}

// note records that key may start after deps.
func (o *order) note(key state.Key, deps []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range deps {
		dk := state.Key{Tenant: key.Tenant, Name: d}
		m := o.dependents[dk]
		if m == nil {
			m = map[state.Key]struct{}{}
			o.dependents[dk] = m
		}
		m[key] = struct{}{}
	}
}

// isParked reports whether a start of key waits for its dependencies.
func (o *order) isParked(key state.Key) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.parked[key]
	return ok
}

// unpark forgets a parked start of key (the service was stopped, removed
// or replaced).
func (o *order) unpark(key state.Key) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.parked, key)
}

// observe is the follower's watcher: it notes env's service if some
// service depends on it, and wakes the goroutine. It never blocks.
func (o *order) observe(env eventstore.Envelope) {
	switch state.EventType(env.Type) {
	case state.TypeServiceStarted, state.TypeServiceReady, state.TypeServiceExited,
		state.TypeServiceFailed, state.TypeServiceKilled, state.TypeServiceRemoved:
	default:
		return
	}
	key := state.Key{Tenant: env.Tenant, Name: env.Subject}
	o.mu.Lock()
	_, ok := o.dependents[key]
	if ok {
		o.queue = append(o.queue, key)
	}
	o.mu.Unlock()
	if ok {
		select {
		case o.kick <- struct{}{}:
		default:
		}
	}
}

// take returns the dependents of the services noted since the last call,
// each once, sorted.
func (o *order) take() []state.Key {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[state.Key]bool{}
	var out []state.Key
	for _, k := range o.queue {
		for d := range o.dependents[k] {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	o.queue = o.queue[:0]
	slices.SortFunc(out, compareKeys)
	return out
}

// gate decides, for a start of svc as attempt, whether it may begin now:
// it returns true if the start is parked until the services svc is after
// are ready, having recorded service_waiting (unless the service already
// waits for the same services). The decision and the parking are one step
// under the order's lock, so an event that readies a dependency is either
// seen by the decision or finds the start parked.
func (r *Runtime) gate(ctx context.Context, svc *state.Service, attempt int) (bool, error) {
	key := svc.Spec.Key()
	deps := svc.Spec.Deps()
	if len(deps) == 0 {
		return false, nil
	}
	o := r.order
	o.note(key, deps)
	o.mu.Lock()
	cur, blockers := r.world.blockers(key)
	if len(blockers) == 0 || cur == nil {
		delete(o.parked, key)
		o.mu.Unlock()
		return false, nil
	}
	o.parked[key] = parkedStart{gen: svc.Generation, attempt: attempt}
	o.mu.Unlock()
	if cur.Waiting != nil && sameNames(cur.Waiting.For, blockers) {
		return true, nil
	}
	// Outside the order's lock: the append waits for the fold, whose
	// watcher takes it.
	if err := r.record(ctx, key, state.Waiting{Generation: svc.Generation, For: blockers}); err != nil {
		o.unpark(key)
		return false, err
	}
	return true, nil
}

func sameNames(a, b []state.Blocker) bool {
	return slices.EqualFunc(a, b, func(x, y state.Blocker) bool { return x.Name == y.Name })
}

// blockers reads key's service and what its start waits for, under the
// world's lock ([state.World.Blockers]).
func (f *follower) blockers(key state.Key) (*state.Service, []state.Blocker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.w.Service(key.Tenant, key.Name)
	if !ok {
		return nil, nil
	}
	return s.Clone(), f.w.Blockers(s)
}

// requiredDown reports the first service key requires that has no live
// instance ([state.World.RequiredDown]).
func (f *follower) requiredDown(key state.Key) (state.Blocker, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.w.Service(key.Tenant, key.Name)
	if !ok {
		return state.Blocker{}, false
	}
	return f.w.RequiredDown(s)
}

// dependents names the services of tenant after or requiring name.
func (f *follower) dependents(tenant, name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Dependents(tenant, name)
}

// stopWaves orders keys for the drain ([state.World.StopWaves]).
func (f *follower) stopWaves(keys []state.Key) [][]state.Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.StopWaves(keys)
}

// runOrder reconsiders the dependents of each service whose events the
// watcher noted, until ctx ends.
func (r *Runtime) runOrder(ctx context.Context) {
	for {
		select {
		case <-r.order.kick:
		case <-ctx.Done():
			return
		}
		for _, key := range r.order.take() {
			if r.draining.Load() || r.closed.Load() {
				break
			}
			if err := r.reconsider(ctx, key); err != nil {
				r.log.Warn("dependency order: cannot act on a service", "service", key.String(), "error", err)
			}
		}
	}
}

// reconsider starts key's parked start if its services are ready now, or
// stops key if it runs and a service it requires went down.
func (r *Runtime) reconsider(ctx context.Context, key state.Key) error {
	unlock := r.keys.lock(key)
	defer unlock()
	if r.draining.Load() {
		return nil
	}
	svc, ok := r.world.service(key.Tenant, key.Name)
	if !ok || !svc.Desired {
		r.order.unpark(key)
		return nil
	}
	r.order.mu.Lock()
	p, parked := r.order.parked[key]
	r.order.mu.Unlock()
	if parked {
		if p.gen != svc.Generation {
			r.order.unpark(key)
			return nil
		}
		return r.supervise(svc, nil, p.attempt, time.Time{})
	}
	if _, ok := r.tree.Get(loopKey(key)); !ok {
		return nil
	}
	b, down := r.world.requiredDown(key)
	if !down {
		return nil
	}
	// Intent first (I2), then the one stop procedure; then the start
	// waits for the service to be ready again.
	_, blockers := r.world.blockers(key)
	if len(blockers) == 0 {
		blockers = []state.Blocker{b}
	}
	reason := fmt.Sprintf("required service %s %s", b.Name, downWord(b.State))
	if err := r.record(ctx, key, state.Waiting{Generation: svc.Generation, For: blockers, Reason: reason}); err != nil {
		return err
	}
	if err := r.tree.Stop(ctx, loopKey(key)); err != nil {
		return err
	}
	svc, ok = r.world.service(key.Tenant, key.Name)
	if !ok || !svc.Desired {
		return nil
	}
	return r.supervise(svc, nil, recovery.NextAttempt(svc), time.Time{})
}

// downWord says how a required service went down, for the reason recorded.
func downWord(s state.State) string {
	switch s {
	case state.StateKilled:
		return "stopped"
	case state.StateFailed:
		return "failed"
	case state.StateBackoff:
		return "exited"
	case state.StateAbsent:
		return "was removed"
	}
	return "is " + string(s)
}

// stopLoop stops key's loop, if any, and forgets a parked start of it: what
// a kill, a redeploy, a start or restart and a prune do first.
func (r *Runtime) stopLoop(ctx context.Context, key state.Key) error {
	r.order.unpark(key)
	return r.tree.Stop(ctx, loopKey(key))
}

// refuseDependents is the check of a removal: a service others are after or
// require is not removed (their specs would name a service that is gone),
// and nothing is written.
func (r *Runtime) refuseDependents(key state.Key) error {
	if deps := r.world.dependents(key.Tenant, key.Name); len(deps) > 0 {
		return fmt.Errorf("%w: %v are after or require it: remove them first, or deploy them without it", ErrHasDependents, deps)
	}
	return nil
}

// stopInOrder is the drain's first part: when some running services
// depend on others, it stops them in waves, dependents before what they
// depend on, each wave in parallel with the loops' own stop procedures
// (cut short with the rest at the grace). The last wave, and every service
// when none depends on another, is left to the tree's StopAll, as before.
func (r *Runtime) stopInOrder(ctx context.Context) {
	loops := r.tree.Services()
	keys := make([]state.Key, 0, len(loops))
	for _, s := range loops {
		k := s.Key()
		keys = append(keys, state.Key{Tenant: k.Tenant, Name: k.Name})
	}
	slices.SortFunc(keys, compareKeys)
	waves := r.world.stopWaves(keys)
	for _, wave := range waves[:len(waves)-1] {
		var wg sync.WaitGroup
		for _, k := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.tree.Stop(ctx, loopKey(k)); err != nil {
					r.log.Warn("stopping a service in order", "service", k.String(), "error", err)
				}
			}()
		}
		wg.Wait()
	}
}

// checkOrder is the dependency check of a write, for Deploy and Apply
// alike, before anything is written: each tenant's services as they would
// be after it (those of the world, a killed one included, with specs
// replacing theirs) go through [state.CheckOrder]. It returns the index
// in specs of the entry at fault. A write whose specs name no dependency
// cannot add a missing name or a cycle, and is not checked further.
func (r *Runtime) checkOrder(specs []Spec) (int, error) {
	tenants := map[string][]int{}
	for _, s := range specs {
		if len(s.After)+len(s.Requires) > 0 {
			tenants[s.Tenant] = nil
		}
	}
	if len(tenants) == 0 {
		return 0, nil
	}
	for i, s := range specs {
		if _, ok := tenants[s.Tenant]; ok {
			tenants[s.Tenant] = append(tenants[s.Tenant], i)
		}
	}
	for _, tenant := range slices.Sorted(maps.Keys(tenants)) {
		all := r.world.depSpecs(tenant)
		changed := make([]string, 0, len(tenants[tenant]))
		for _, i := range tenants[tenant] {
			all[specs[i].Name] = specs[i]
			changed = append(changed, specs[i].Name)
		}
		if err := state.CheckOrder(all, changed); err != nil {
			return r.entryAt(specs, tenants[tenant], err), err
		}
	}
	return 0, nil
}

// entryAt is the index of the entry an order error is about: the first of
// idx whose name starts the cycle or whose lists name the missing service.
func (r *Runtime) entryAt(specs []Spec, idx []int, err error) int {
	var fe *state.FieldError
	if errors.As(err, &fe) {
		for _, i := range idx {
			if strings.Contains(fe.Problem, ": "+specs[i].Name+" -> ") {
				return i
			}
		}
		for _, i := range idx {
			for _, d := range specs[i].Deps() {
				if strings.HasPrefix(fe.Problem, "names "+d+",") {
					return i
				}
			}
		}
	}
	return idx[0]
}

// depSpecs returns the dependencies of the services of tenant: name to a
// spec holding only its tenant, name, after and requires.
func (f *follower) depSpecs(tenant string) map[string]state.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]state.Spec{}
	for _, s := range f.w.Services() {
		if s.Tenant == tenant {
			out[s.Name] = state.Spec{Tenant: s.Tenant, Name: s.Name, After: slices.Clone(s.Spec.After), Requires: slices.Clone(s.Spec.Requires)}
		}
	}
	return out
}
