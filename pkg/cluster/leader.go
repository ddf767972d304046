package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/etcdstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// campaign runs for placement leader on the node's lease, and places
// services while it leads, until ctx ends.
func (n *Node) campaign(ctx context.Context) {
	retry := n.cfg.LeaseTTL / 3
	for ctx.Err() == nil {
		lease, ok := n.Lease()
		if !ok {
			sleep(ctx, retry) // fenced: wait for a renewal or a new lease
			continue
		}
		sess, err := concurrency.NewSession(n.cli, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
		if err != nil {
			sleep(ctx, retry)
			continue
		}
		// A campaign ends with the session: a lease lost while waiting
		// to lead must not leave this node waiting on a dead key.
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sess.Done():
				cancel()
			case <-cctx.Done():
			}
		}()
		el := concurrency.NewElection(sess, n.keys.leader)
		if err := el.Campaign(cctx, n.cfg.Node); err == nil {
			n.setLeader(true)
			n.log.Info("elected placement leader", "key", el.Key(), "rev", el.Rev())
			err := n.lead(cctx, sess, el)
			n.setLeader(false)
			n.log.Info("no longer placement leader", "reason", err)
			rctx, rcancel := context.WithTimeout(context.Background(), retry)
			el.Resign(rctx)
			rcancel()
		}
		cancel()
		sess.Orphan() // the lease is the node's: never revoke it here
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (n *Node) setLeader(v bool) {
	n.mu.Lock()
	n.leader = v
	n.mu.Unlock()
}

// Leader reports whether this node is the placement leader now.
func (n *Node) Leader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

// lead places services until leadership is lost: a fenced write refused,
// the session gone, or ctx ended. It wakes on every event of the log, on
// every change of the nodes and drains, and when a stale lease's margin
// has passed.
func (n *Node) lead(ctx context.Context, sess *concurrency.Session, el *concurrency.Election) error {
	fence := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())}
	n.mu.Lock()
	rt := n.rt
	n.mu.Unlock()
	sub := n.store.Subscribe(ctx, n.store.Head()+1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	nodesW := n.cli.Watch(wctx, n.keys.nodes, clientv3.WithPrefix())
	drainW := n.cli.Watch(wctx, n.keys.drain, clientv3.WithPrefix())
	stale := map[staleKey]time.Time{}
	var seen uint64 // the last position the subscription told
	for {
		// Read the placements once the runtime has folded what woke us:
		// the subscription may run ahead of the fold.
		if err := rt.Sync(ctx, seen); err != nil {
			return err
		}
		wait, err := n.round(ctx, rt, fence, stale)
		if err != nil {
			return err
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = time.After(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			return errors.New("the lease's session ended")
		case env, ok := <-sub.C():
			if !ok {
				return fmt.Errorf("the log's subscription ended: %v", sub.Err())
			}
			seen = env.Pos
		drain:
			for {
				select {
				case env, ok := <-sub.C():
					if !ok {
						break drain
					}
					seen = env.Pos
				default:
					break drain
				}
			}
		case <-nodesW:
		case <-drainW:
		case <-timer:
		}
	}
}

type staleKey struct {
	node  string
	lease int64
}

// liveNode is a node with a presence key.
type liveNode struct {
	lease    int64
	draining bool
}

// move is one placement to write. An empty node unplaces the service: a
// drained node stops it before it is placed anywhere else.
//
// Waiting, when set, leaves the service where it is (node and lease are
// its placement's) and says it waits for one of these nodes.
//
// Session, when set, names the session whose kernel the service runs: its
// node's lease is gone, so instead of a placement the session is recorded
// lost and its kernel service killed (node and lease are the dead ones).
type move struct {
	key     state.Key
	node    string
	lease   int64
	reason  string
	waiting []string
	session string
}

// round places what needs it, once. It returns how long until a stale
// lease's margin passes (0: nothing waits), or an error that ends the
// leadership.
func (n *Node) round(ctx context.Context, rt Runtime, fence []clientv3.Cmp, stale map[staleKey]time.Time) (time.Duration, error) {
	nodes, err := n.liveNodes(ctx)
	if err != nil {
		n.log.Warn("placement: cannot read the nodes; retrying", "error", err)
		return n.cfg.LeaseTTL / 3, nil
	}
	moves, wait := plan(rt.Placements(), nodes, stale, time.Now(), n.cfg.Margin)
	for _, m := range moves {
		evs, err := m.events()
		if err != nil {
			return 0, err
		}
		for i := range evs {
			evs[i].Actor = "leader:" + n.cfg.Node
		}
		pos, err := n.store.AppendFenced(ctx, fence, evs...)
		if errors.Is(err, etcdstore.ErrFenced) {
			return 0, errors.New("a fenced placement was refused: another node leads")
		}
		if err != nil {
			n.log.Warn("placement: cannot write; retrying", "service", m.key.String(), "error", err)
			return n.cfg.LeaseTTL / 3, nil
		}
		if m.session != "" {
			n.log.Warn("session lost with its node", "session", state.Key{Tenant: m.key.Tenant, Name: m.session}.String(), "node", m.node, "reason", m.reason)
		} else {
			n.log.Info("placed", "service", m.key.String(), "node", m.node, "fence", pos[0], "reason", m.reason)
		}
		if err := rt.Sync(ctx, pos[len(pos)-1]); err != nil {
			return 0, err
		}
	}
	return wait, nil
}

// events are what m writes: a placement; or, for a session's kernel, the
// session's loss and the kill of its kernel service, in one fenced write.
func (m move) events() ([]eventstore.Event, error) {
	if m.session == "" {
		ev, err := state.NewEvent(m.key.Tenant, m.key.Name, state.Placed{Node: m.node, Lease: m.lease, Reason: m.reason, Waiting: m.waiting})
		return []eventstore.Event{ev}, err
	}
	lost, err := state.NewEvent(m.key.Tenant, m.session, state.SessionLost{Node: m.node, Lease: m.lease, Reason: m.reason})
	if err != nil {
		return nil, err
	}
	kill, err := state.NewEvent(m.key.Tenant, m.key.Name, state.Killed{Reason: "session " + m.session + " lost: " + m.reason, Node: m.node})
	return []eventstore.Event{lost, kill}, err
}

// liveNodes reads the presence keys and the drains.
func (n *Node) liveNodes(ctx context.Context) (map[string]liveNode, error) {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	defer cancel()
	resp, err := n.cli.Txn(rctx).Then(
		clientv3.OpGet(n.keys.nodes, clientv3.WithPrefix()),
		clientv3.OpGet(n.keys.drain, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, err
	}
	out := map[string]liveNode{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		out[strings.TrimPrefix(string(kv.Key), n.keys.nodes)] = liveNode{lease: kv.Lease}
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		name := strings.TrimPrefix(string(kv.Key), n.keys.drain)
		if ln, ok := out[name]; ok {
			ln.draining = true
			out[name] = ln
		}
	}
	return out, nil
}

// plan decides the placements of one round; it is pure (now is given).
//
//   - A service that should run, placed on a live node under that node's
//     lease, stays, unless the node drains: then it is unplaced first
//     (its node stops it) and placed elsewhere once its instance is down.
//   - One placed under a lease that is gone (the node's presence key is
//     gone, or holds another lease) is moved once margin has passed since
//     this leader first saw it so; stale keeps those first sightings.
//   - One not placed, and not running, goes to the live, undrained node
//     with the fewest services (ties by name).
//   - A spec's nodes (solo.Placement.Nodes) narrow all of this: a service
//     is placed only on one of them, and one placed on a node it no longer
//     allows is unplaced as a drain unplaces it. With none of them live
//     and undrained, it stays where it is and a move records that it waits
//     for them, once: not again while its placement says so already.
//
// It returns the moves and how long until the next stale lease is due.
func plan(pl []solo.Placement, nodes map[string]liveNode, stale map[staleKey]time.Time, now time.Time, margin time.Duration) ([]move, time.Duration) {
	count := map[string]int{}
	for name, ln := range nodes {
		if !ln.draining {
			count[name] = 0
		}
	}
	here := func(p solo.Placement) bool {
		ln, ok := nodes[p.Node]
		return ok && ln.lease == p.Lease
	}
	for _, p := range pl {
		if p.Run && here(p) {
			if _, ok := count[p.Node]; ok {
				count[p.Node]++
			}
		}
	}
	best := func(allowed []string) (string, bool) {
		names := make([]string, 0, len(count))
		for name := range count {
			if len(allowed) == 0 || slices.Contains(allowed, name) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		pick, ok := "", false
		for _, name := range names {
			if !ok || count[name] < count[pick] {
				pick, ok = name, true
			}
		}
		return pick, ok
	}
	var moves []move
	var wait time.Duration
	seen := map[staleKey]bool{}
	for _, p := range pl {
		if !p.Run {
			continue
		}
		reason := ""
		switch {
		case p.Node != "" && here(p):
			reason := "node " + p.Node + " drains"
			switch {
			case len(p.Nodes) > 0 && !slices.Contains(p.Nodes, p.Node):
				reason = fmt.Sprintf("node %s is not among its nodes %s", p.Node, strings.Join(p.Nodes, ", "))
			case !nodes[p.Node].draining:
				continue
			}
			moves = append(moves, move{key: p.Key, reason: reason})
			continue
		case p.Node != "":
			sk := staleKey{p.Node, p.Lease}
			seen[sk] = true
			first, ok := stale[sk]
			if !ok {
				first = now
				stale[sk] = now
			}
			if left := margin - now.Sub(first); left > 0 {
				if wait == 0 || left < wait {
					wait = left
				}
				continue
			}
			reason = fmt.Sprintf("node %s lost its lease %x", p.Node, p.Lease)
			if p.Session != "" {
				// A kernel's variables die with its node: never moved.
				moves = append(moves, move{key: p.Key, node: p.Node, lease: p.Lease, reason: reason, session: p.Session})
				continue
			}
		case p.Running:
			continue // unplaced, its old node still stopping it
		default:
			reason = "not placed"
		}
		node, ok := best(p.Nodes)
		switch {
		case ok:
		case len(p.Nodes) == 0, slices.Equal(p.Waiting, p.Nodes):
			continue // no live node: it waits for one (said once already)
		default:
			moves = append(moves, move{key: p.Key, node: p.Node, lease: p.Lease, reason: state.WaitingForNodes(p.Nodes), waiting: p.Nodes})
			continue
		}
		count[node]++
		moves = append(moves, move{key: p.Key, node: node, lease: nodes[node].lease, reason: reason})
	}
	for sk := range stale {
		if !seen[sk] {
			delete(stale, sk)
		}
	}
	return moves, wait
}
