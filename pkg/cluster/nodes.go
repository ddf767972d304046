package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/wire"
)

// Nodes lists the cluster's nodes: every live one (with a presence key),
// and every node that has services placed on it without one (not alive).
// It fails with an error wrapping eventstore.ErrUnavailable when etcd does
// not answer.
func (n *Node) Nodes(ctx context.Context) ([]wire.Node, error) {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	defer cancel()
	resp, err := n.cli.Txn(rctx).Then(
		clientv3.OpGet(n.keys.nodes, clientv3.WithPrefix()),
		clientv3.OpGet(n.keys.drain, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(n.keys.leader, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("nodes: %w: etcd at %s: %v", eventstore.ErrUnavailable, strings.Join(n.cfg.Endpoints, ","), err)
	}
	leader := ""
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		leader = string(kvs[0].Value)
	}
	draining := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		draining[strings.TrimPrefix(string(kv.Key), n.keys.drain)] = true
	}
	n.mu.Lock()
	rt := n.rt
	n.mu.Unlock()
	byName := map[string]*wire.Node{}
	leases := map[string]int64{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var p presence
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			continue
		}
		name := strings.TrimPrefix(string(kv.Key), n.keys.nodes)
		w := &wire.Node{Name: name, Address: p.Address, Alive: true, Started: p.Started, Leader: name == leader, Draining: draining[name]}
		if ttl, err := n.cli.TimeToLive(rctx, clientv3.LeaseID(kv.Lease)); err == nil && ttl.TTL > 0 {
			w.LeaseRemaining = time.Duration(ttl.TTL) * time.Second
		}
		byName[name] = w
		leases[name] = kv.Lease
	}
	if rt != nil {
		for _, p := range rt.Placements() {
			if !p.Run || p.Node == "" {
				continue
			}
			w, ok := byName[p.Node]
			if !ok {
				w = &wire.Node{Name: p.Node, Draining: draining[p.Node]}
				byName[p.Node] = w
			}
			if !w.Alive || leases[p.Node] == p.Lease {
				w.Services++
			}
		}
	}
	out := make([]wire.Node, 0, len(byName))
	for _, w := range byName {
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrUnknownNode is returned by [Node.Drain] for a name that is neither
// alive nor has services placed on it.
var ErrUnknownNode = fmt.Errorf("%w: no such node", solo.ErrNotFound)

// Drain marks node name as draining (on) or not (off). While it drains,
// the leader unplaces its services one by one, each stopped by it before
// it is placed elsewhere, and places nothing new on it. The mark stays in
// etcd until undone, across the node's restarts.
func (n *Node) Drain(ctx context.Context, name string, on bool) error {
	nodes, err := n.Nodes(ctx)
	if err != nil {
		return err
	}
	known := false
	for _, w := range nodes {
		known = known || w.Name == name
	}
	if !known && on {
		return fmt.Errorf("drain %s: %w: it is not alive and nothing is placed on it (see solo nodes)", name, ErrUnknownNode)
	}
	rctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	defer cancel()
	if on {
		_, err = n.cli.Put(rctx, n.keys.drain+name, time.Now().UTC().Format(time.RFC3339))
	} else {
		_, err = n.cli.Delete(rctx, n.keys.drain+name)
	}
	if err != nil {
		return fmt.Errorf("drain %s: %w: etcd at %s: %v", name, eventstore.ErrUnavailable, strings.Join(n.cfg.Endpoints, ","), err)
	}
	return nil
}
