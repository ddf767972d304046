package solo

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
)

// Node is the runtime's place in a cluster ([Options.Node]): which node it
// is and whether it may run anything now. Package cluster implements it.
type Node interface {
	// Name is the node's name, as placements (service_placed) name it.
	Name() string
	// Lease returns the node's current etcd lease, and false while the
	// node is fenced: it could not renew its lease in time, so another
	// node may soon be given its services.
	Lease() (id int64, ok bool)
}

// runsHere is the one rule of whether this runtime runs a service: the log
// says it should run (state.Service.ShouldRun) and, in a cluster, it is
// placed on this node under the node's current lease while the node is not
// fenced. A placement made under an older lease of this node is stale: the
// node lost that lease, stopped what it ran under it, and waits for the
// leader to place the service again.
func (r *Runtime) runsHere(svc *state.Service) bool {
	if !svc.ShouldRun() {
		return false
	}
	if r.opts.Node == nil {
		return true
	}
	lease, ok := r.opts.Node.Lease()
	return ok && svc.Node == r.opts.Node.Name() && svc.NodeLease == lease
}

func (r *Runtime) clustered() bool { return r.opts.Node != nil }

// canPlace refuses a spec that names nodes (state.Spec.Nodes) from a
// runtime that is not a node of a cluster: there is nowhere to place it,
// and running it here would ignore what the spec asks. Deploy and Apply
// both ask it, before anything is written.
func (r *Runtime) canPlace(spec Spec) error {
	if len(spec.Nodes) == 0 || r.clustered() {
		return nil
	}
	return &state.FieldError{Field: "nodes", Problem: "is for a cluster, and this daemon is a single machine (not started with --cluster); deploy without nodes, or to a cluster"}
}

// fenceEnv is what a child of a placed service is told: its node and its
// placement's fencing token (SOLO_FENCE), which it may pass to what it
// writes elsewhere so that an older placement's writes can be refused.
func fenceEnv(node Node, fence uint64) []string {
	if node == nil || fence == 0 {
		return nil
	}
	return []string{"SOLO_NODE=" + node.Name(), "SOLO_FENCE=" + strconv.FormatUint(fence, 10)}
}

// loopPlacement is what a loop of this node was started for: a change of
// any of it means the loop must stop (and maybe start again).
type loopPlacement struct {
	generation, fence, request uint64
}

// reconciler makes this node run exactly what is placed on it. In a
// cluster, the verbs only write; every node's reconciler reads each folded
// event about a service and starts or stops its loop by [Runtime.runsHere].
type reconciler struct {
	r     *Runtime
	mu    sync.Mutex
	dirty map[state.Key]bool
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
	stop  func()

	loopsMu sync.Mutex
	loops   map[state.Key]loopPlacement

	// fence is the Force context of the loops started now: cancelled
	// when the node is fenced, and made anew for the loops started after.
	fenceMu     sync.Mutex
	fence       context.Context
	fenceCancel context.CancelFunc
}

// loopForce is the Force context of a loop started now (see
// supervisor.ServiceConfig.Force): the runtime's, and in a cluster also
// cut short when the node is fenced.
func (r *Runtime) loopForce() context.Context {
	c := r.reconcile
	if c == nil {
		return r.force
	}
	c.fenceMu.Lock()
	defer c.fenceMu.Unlock()
	if c.fence.Err() != nil {
		c.fence, c.fenceCancel = context.WithCancel(r.force)
	}
	return c.fence
}

// startReconciler starts the reconciler and looks at every service once.
func (r *Runtime) startReconciler() {
	c := &reconciler{r: r, dirty: map[state.Key]bool{}, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}), loops: map[state.Key]loopPlacement{}}
	c.fence, c.fenceCancel = context.WithCancel(r.force)
	c.stop = r.world.watch(func(env eventstore.Envelope) {
		if env.Subject != "" && strings.HasPrefix(env.Type, "service_") {
			c.mark(state.Key{Tenant: env.Tenant, Name: env.Subject})
		}
	})
	// What recovery handed to loops runs under the placement it has now.
	for _, svc := range r.world.services("") {
		if key := (state.Key{Tenant: svc.Tenant, Name: svc.Name}); r.supervised(key) {
			c.loops[key] = loopPlacement{svc.Generation, svc.Fence, svc.RequestPos}
		}
	}
	r.reconcile = c
	r.Reconcile()
	go c.run()
}

// Reconcile makes a cluster node look at every service again: the node
// calls it when its lease changes or it is fenced. Without a cluster it
// does nothing.
func (r *Runtime) Reconcile() {
	c := r.reconcile
	if c == nil {
		return
	}
	if _, ok := r.opts.Node.Lease(); !ok {
		// Fenced: the stops must be over before the lease can expire,
		// so they do not wait out stop timeouts (SIGKILL at once).
		c.fenceMu.Lock()
		c.fenceCancel()
		c.fenceMu.Unlock()
	}
	for _, svc := range r.world.services("") {
		c.mark(state.Key{Tenant: svc.Tenant, Name: svc.Name})
	}
	c.loopsMu.Lock()
	for k := range c.loops {
		c.mark(k)
	}
	c.loopsMu.Unlock()
}

func (c *reconciler) mark(k state.Key) {
	c.mu.Lock()
	c.dirty[k] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *reconciler) run() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-c.quit:
			return
		}
		c.mu.Lock()
		keys := make([]state.Key, 0, len(c.dirty))
		for k := range c.dirty {
			keys = append(keys, k)
		}
		clear(c.dirty)
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Go(func() { c.one(k) })
		}
		wg.Wait()
	}
}

// one brings key's loop in line with the log.
func (c *reconciler) one(key state.Key) {
	r := c.r
	if r.draining.Load() {
		return // the drain stops every loop itself
	}
	unlock := r.keys.lock(key)
	defer unlock()
	svc, ok := r.world.service(key.Tenant, key.Name)
	want := ok && r.runsHere(svc)
	c.loopsMu.Lock()
	cur, had := c.loops[key]
	c.loopsMu.Unlock()
	running := r.supervised(key)
	if running && (!want || !had || cur != (loopPlacement{svc.Generation, svc.Fence, svc.RequestPos})) {
		if err := r.tree.Stop(context.Background(), loopKey(key)); err != nil {
			r.log.Error("cannot stop a service no longer placed here", "service", key.String(), "error", err)
			return
		}
		running = false
		if !want {
			r.log.Info("stopped a service no longer placed here", "service", key.String())
		}
	}
	if !want || running {
		if !want {
			c.loopsMu.Lock()
			delete(c.loops, key)
			c.loopsMu.Unlock()
		}
		return
	}
	if err := r.supervise(svc, nil, recovery.NextAttempt(svc), time.Time{}); err != nil {
		r.log.Error("cannot start a service placed here", "service", key.String(), "error", err)
		return
	}
	c.loopsMu.Lock()
	c.loops[key] = loopPlacement{svc.Generation, svc.Fence, svc.RequestPos}
	c.loopsMu.Unlock()
}

// close stops the reconciler and waits for what it is doing.
func (c *reconciler) close() {
	if c == nil {
		return
	}
	c.stop()
	close(c.quit)
	<-c.done
}

// Placement is one service as the placement leader sees it: whether it
// should run, and where it is placed.
type Placement struct {
	Key   state.Key
	Run   bool   // state.Service.ShouldRun
	Node  string // "" while not placed
	Lease int64  // the node's lease it was placed under
	Fence uint64
	// Running: the log says an instance runs (its exit is not recorded).
	Running bool
	// Nodes are the spec's nodes, the only ones it may be placed on
	// (empty: any); Waiting the nodes its placement says it waits for.
	Nodes   []string
	Waiting []string
	// Session, when set, is the live session (of the same tenant) whose
	// kernel this service runs on the session's node, Node: it stays
	// there, and is recorded lost rather than moved when that node dies.
	// Unset once a lost session was restarted elsewhere, so that its
	// kernel service, still placed on the dead node, is placed anew.
	Session string
}

// Placements returns every service's placement, sorted by key.
func (r *Runtime) Placements() []Placement {
	svcs := r.world.services("")
	type kernel struct{ session, node string }
	kernels := map[state.Key]kernel{}
	r.world.readSessions(func(ss *state.Sessions) {
		for _, s := range ss.List() {
			if s.Live() && s.LostNode == "" {
				kernels[state.Key{Tenant: s.Tenant, Name: s.Service}] = kernel{s.Name, s.Node}
			}
		}
	})
	out := make([]Placement, len(svcs))
	for i, svc := range svcs {
		key := state.Key{Tenant: svc.Tenant, Name: svc.Name}
		out[i] = Placement{Key: key, Run: svc.ShouldRun(), Node: svc.Node, Lease: svc.NodeLease, Fence: svc.Fence,
			Running: svc.Instance != nil && !svc.Instance.Exited, Nodes: svc.Spec.Nodes, Waiting: svc.NodeWait}
		if k, ok := kernels[key]; ok && k.node != "" && k.node == svc.Node {
			out[i].Session = k.session
		}
	}
	return out
}

// fenceFacts gives the starts and exits that recovery and the Verifier
// record (they speak for the services that run here) the fence of their
// service's placement, as a loop's facts carry it (recordFact).
func (r *Runtime) fenceFacts(events []eventstore.Event) error {
	for i := range events {
		ev := &events[i]
		svc, ok := r.world.service(ev.Tenant, ev.Subject)
		if !ok || svc.Fence == 0 {
			continue
		}
		var p state.Payload
		switch state.EventType(ev.Type) {
		case state.TypeServiceStarted:
			var q state.Started
			if err := json.Unmarshal(ev.Data, &q); err != nil {
				return err
			}
			q.Fence = svc.Fence
			p = q
		case state.TypeServiceExited:
			var q state.Exited
			if err := json.Unmarshal(ev.Data, &q); err != nil {
				return err
			}
			if q.Fence = svc.Fence; svc.Instance != nil && svc.Instance.PID == q.PID {
				q.Fence = svc.Instance.Fence // the exit of the recorded instance
			}
			p = q
		default:
			continue
		}
		data, err := json.Marshal(p)
		if err != nil {
			return err
		}
		ev.Data = data
	}
	return nil
}
