// Package cluster makes a solo daemon a node of a cluster on etcd: it joins
// (or runs, embedded) an etcd cluster, holds the node's lease and its
// presence key, opens the cluster's one event log (package
// eventstore/etcdstore), fences the node when it cannot renew its lease in
// time, and, when elected, places services on nodes with fenced writes.
//
// # Leases and fencing
//
// A node holds one etcd lease of [Config.LeaseTTL] and renews it every
// sixth of the TTL (at once again after a failure). Its fence deadline is the moment it sent its last
// renewal that etcd confirmed, plus the TTL, minus [Config.Margin], on its
// own monotonic clock: etcd cannot have expired the lease before then (a
// renewal is granted no earlier than it is sent, and an etcd leader change
// only extends leases, never shortens them). Past the deadline the node is
// fenced: [Node.Lease] reports false, the runtime stops every service it
// runs (the one stop procedure) and starts none. If a renewal then
// succeeds, the lease never expired, no one took its services, and the
// node runs them again; if etcd says the lease is gone, the node takes a
// new lease and a new presence key, and its old placements are stale: the
// leader places them again.
//
// # Placement
//
// One node, elected with concurrency.Election on its lease, places each
// service that should run and is not placed on a live node under that
// node's current lease: on the live, undrained node with the fewest
// services (ties by name), among the spec's nodes if it names some
// (state.Spec.Nodes). While none of those is alive and undrained the
// service stays where it is, unplaced or under its dead lease, and the
// leader says so once: a service_placed whose waiting names them, which a
// status shows as "waiting for a node among n1, n2". A service on a node
// its spec no longer allows is moved as a drain moves it. It moves a
// service off a node only once the
// node's lease has expired (its presence key is gone, or holds another
// lease) and Margin has passed since the leader saw it. A placement is a
// service_placed event appended with [etcdstore.Store.AppendFenced], whose
// Txn also compares the create revision of the leader's election key: a
// deposed leader's placement is refused. The event's position is the
// placement's fencing token (see state.Placed).
//
// A placement elsewhere ends the view of the instance that ran on the dead
// node (state.World.Apply): until the new node records its start, `solo
// ls` shows the service starting on its new node, with no pid.
//
// # Kernel sessions
//
// A kernel session runs on the node that created it: its kernel service's
// spec names that node only, and only that node's session manager runs
// its tasks (package session, # Cluster). Its kernel is never moved: once
// the node's lease has expired and Margin has passed, the leader writes,
// in one fenced Txn, session_lost (state.SessionLost: its tasks fail with
// reason node_lost) and the kill of its kernel service, which names the
// dead node so that the fold ends the view of its instance. The kernel
// itself was stopped with every other service when its node fenced
// itself. The user runs the session again elsewhere, empty, with `solo
// session restart NAME` (state.SessionMoved).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/eventstore/etcdstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// Defaults for [Config].
const (
	// DefaultLeaseTTL is the node lease's TTL. Two seconds is the
	// shortest whole-second TTL etcd grants at its default election
	// timeout (it raises shorter ones to 1.5 election timeouts), and the
	// one that meets the goal of a dead node's services running elsewhere
	// within 3 s: the lease expires at most 2 s after the node's death,
	// the leader waits the margin, then places and the new node starts.
	DefaultLeaseTTL = 2 * time.Second
	// DefaultPrefix is the key prefix of a cluster's keys in etcd.
	DefaultPrefix = "/solo/"
	// DefaultConnectTimeout bounds how long Open waits for etcd to answer.
	DefaultConnectTimeout = 30 * time.Second
)

// Config configures [Open].
type Config struct {
	// Node is this node's name, unique among the live nodes (a valid
	// service name: lower case letters, digits, '-', '_', '.').
	Node string
	// Endpoints are the client URLs of an external etcd cluster. With
	// Embed, the embedded member's client URL is used instead.
	Endpoints []string
	// Embed, if set, runs an etcd member inside this process.
	Embed *Embed
	// LeaseTTL is the node lease's TTL, in whole seconds, at least 2.
	// Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Margin is how long before its lease could expire a node fences
	// itself, and how long after seeing a lease gone the leader waits
	// before it moves the node's services. Default LeaseTTL/4.
	Margin time.Duration
	// ID tells this node's data dir apart from any other's (the daemon
	// keeps one in the data dir). A node restarted on the same data dir
	// while its previous lease is still alive takes that lease over, and
	// with it its placements: its services are re-adopted, not moved.
	// Empty: a name already alive is always refused.
	ID string
	// Address is the API address other nodes and clients reach this
	// node's daemon on, shown by `solo nodes`.
	Address string
	// ConnectTimeout bounds how long Open waits for etcd (for an embedded
	// member, for its cluster to form). Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Prefix is the cluster's key prefix. Default DefaultPrefix.
	Prefix string
	// Logger receives the node's logs. Default: none.
	Logger hclog.Logger
}

// Runtime is what the node needs of the runtime (a *solo.Runtime): to be
// told when to look at its services again, and, as leader, to read the
// placements and wait for its own writes to be folded.
type Runtime interface {
	Reconcile()
	Placements() []solo.Placement
	Sync(ctx context.Context, pos uint64) error
}

// presence is the value of a node's presence key.
type presence struct {
	ID      string    `json:"id,omitempty"`
	Name    string    `json:"name"`
	Address string    `json:"address"`
	Started time.Time `json:"started"`
}

// Node is this process's membership of the cluster. It implements
// solo.Node.
type Node struct {
	cfg    Config
	log    hclog.Logger
	member *member // the embedded etcd member, if any
	cli    *clientv3.Client
	store  *etcdstore.Store
	keys   keys

	mu       sync.Mutex
	lease    clientv3.LeaseID
	fenced   bool
	started  time.Time
	deadline *time.Timer // fires at the fence deadline
	rt       Runtime
	leader   bool
	fences   uint64 // how many times the node fenced itself
	onLease  func(lease int64)

	cancel context.CancelFunc
	done   sync.WaitGroup
}

type keys struct{ nodes, leader, drain, log string }

func newKeys(prefix string) keys {
	return keys{nodes: prefix + "nodes/", leader: prefix + "leader/", drain: prefix + "drain/", log: prefix + "log/"}
}

// Open joins the cluster: it starts the embedded member if asked, checks
// that etcd answers within the connect timeout (an error names the
// endpoints), takes a lease, creates the node's presence key (refused if
// a live node has the name) and opens the event log. Start must follow
// once the runtime is open.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, keys: newKeys(cfg.Prefix), started: time.Now().UTC()}
	if cfg.Embed != nil {
		m, err := startMember(cfg.Node, *cfg.Embed, cfg.ConnectTimeout)
		if err != nil {
			return nil, err
		}
		n.member = m
		n.cfg.Endpoints = []string{cfg.Embed.ClientURL}
	}
	if err := n.connect(ctx); err != nil {
		n.closeMember()
		return nil, err
	}
	if err := n.join(ctx); err != nil {
		n.cli.Close()
		n.closeMember()
		return nil, err
	}
	store, err := etcdstore.Open(n.cli, &etcdstore.Options{Prefix: n.keys.log})
	if err != nil {
		n.leave()
		return nil, fmt.Errorf("open the cluster's event log: %w", err)
	}
	n.store = store
	// Renew from now on: opening the runtime may take longer than a TTL.
	ctx2, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done.Go(func() { n.keepAlive(ctx2) })
	return n, nil
}

func (c *Config) defaults() error {
	if err := state.ValidName(c.Node); err != nil {
		return fmt.Errorf("--node: %w", err)
	}
	if c.Embed == nil && len(c.Endpoints) == 0 {
		return errors.New("--cluster needs --etcd-embed (with --peer-url, --client-url, --initial-cluster) or --etcd-endpoints")
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseTTL < 2*time.Second || c.LeaseTTL%time.Second != 0 {
		return fmt.Errorf("--lease-ttl %s: want whole seconds, at least 2s (etcd counts leases in seconds)", c.LeaseTTL)
	}
	if c.Margin == 0 {
		c.Margin = c.LeaseTTL / 4
	}
	if c.Margin <= 0 || c.Margin >= c.LeaseTTL/2 {
		return fmt.Errorf("fence margin %s: want more than 0 and less than half the lease TTL %s", c.Margin, c.LeaseTTL)
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}

// connect makes the client and waits until etcd answers.
func (n *Node) connect(ctx context.Context) error {
	eps := strings.Join(n.cfg.Endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: n.cfg.Endpoints, DialTimeout: n.cfg.ConnectTimeout, Logger: zap.NewNop(),
		DialKeepAliveTime: n.cfg.LeaseTTL, DialKeepAliveTimeout: n.cfg.LeaseTTL,
	})
	if err != nil {
		return fmt.Errorf("etcd at %s: %w", eps, err)
	}
	cctx, cancel := context.WithTimeout(ctx, n.cfg.ConnectTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, n.keys.nodes, clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return fmt.Errorf("etcd at %s did not answer within %s (%v): start etcd, or check --etcd-endpoints (with --etcd-embed: start the other members of --initial-cluster; a quorum must be up)", eps, n.cfg.ConnectTimeout, err)
	}
	n.cli = cli
	return nil
}

// join takes a lease and creates the presence key on it, unless a live
// node has the name. A live presence of this very node (same ID: a
// daemon of this data dir that died within the TTL) is taken over with
// its lease.
func (n *Node) join(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.ConnectTimeout)
	defer cancel()
	sent := time.Now()
	g, err := n.cli.Grant(cctx, int64(n.cfg.LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("take a lease: %w", err)
	}
	v, _ := json.Marshal(presence{ID: n.cfg.ID, Name: n.cfg.Node, Address: n.cfg.Address, Started: n.started})
	key := n.keys.nodes + n.cfg.Node
	resp, err := n.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(v), clientv3.WithLease(g.ID))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		n.cli.Revoke(context.Background(), g.ID)
		return fmt.Errorf("register node %s: %w", n.cfg.Node, err)
	}
	lease := g.ID
	if !resp.Succeeded {
		n.cli.Revoke(context.Background(), g.ID)
		var p presence
		var held clientv3.LeaseID
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			json.Unmarshal(kvs[0].Value, &p)
			held = clientv3.LeaseID(kvs[0].Lease)
		}
		if n.cfg.ID == "" || p.ID != n.cfg.ID || held == 0 {
			return fmt.Errorf("%w: node %s is already alive in the cluster (address %q, joined %s): give this node another --node, or stop that one and wait up to %s for its lease to expire",
				ErrNameTaken, n.cfg.Node, p.Address, p.Started.Format(time.RFC3339), n.cfg.LeaseTTL)
		}
		// This data dir's previous daemon, dead within its TTL: its
		// lease, renewed now, keeps its placements this node's.
		sent = time.Now()
		if _, err := n.cli.KeepAliveOnce(cctx, held); err != nil {
			return fmt.Errorf("take over node %s's lease %x: %w (retry: once it has expired the name is free)", n.cfg.Node, int64(held), err)
		}
		if _, err := n.cli.Put(cctx, key, string(v), clientv3.WithLease(held)); err != nil {
			return fmt.Errorf("register node %s: %w", n.cfg.Node, err)
		}
		n.log.Info("took over this node's live lease: its services stay placed here", "lease", fmt.Sprintf("%x", int64(held)))
		lease = held
	}
	n.mu.Lock()
	n.lease = lease
	n.fenced = false
	n.mu.Unlock()
	n.renewed(sent)
	return nil
}

// ErrNameTaken is returned by [Open] when a live node has the name.
var ErrNameTaken = errors.New("node name taken")

// Log returns the cluster's event log, for solo.Options.Log.
func (n *Node) Log() *etcdstore.Store { return n.store }

// Name implements solo.Node.
func (n *Node) Name() string { return n.cfg.Node }

// Lease implements solo.Node: the current lease, false while fenced.
func (n *Node) Lease() (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return int64(n.lease), !n.fenced
}

// Fences returns how many times the node fenced itself since Open.
func (n *Node) Fences() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fences
}

// Fenced reports whether the node is fenced now.
func (n *Node) Fenced() bool {
	_, ok := n.Lease()
	return !ok
}

// OnLease makes fn be called with the node's lease at Start and with
// each new lease it takes after losing one (the daemon starts a keeper
// for each). Call it before Start.
func (n *Node) OnLease(fn func(lease int64)) {
	n.mu.Lock()
	n.onLease = fn
	n.mu.Unlock()
}

func (n *Node) leaseTaken() {
	n.mu.Lock()
	fn, lease := n.onLease, n.lease
	n.mu.Unlock()
	if fn != nil {
		fn(int64(lease))
	}
}

// Start runs the node's candidacy for placement leader and tells rt of
// every change of the node's lease from now on, until Close.
func (n *Node) Start(rt Runtime) {
	n.mu.Lock()
	n.rt = rt
	n.mu.Unlock()
	n.leaseTaken()
	ctx, cancel := context.WithCancel(context.Background())
	stopKeeper := n.cancel
	n.cancel = func() { cancel(); stopKeeper() }
	n.done.Go(func() { n.campaign(ctx) })
	rt.Reconcile()
}

// renewed records a confirmed renewal sent at sent: the fence deadline
// moves to sent + TTL - margin.
func (n *Node) renewed(sent time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	wait := time.Until(sent.Add(n.cfg.LeaseTTL - n.cfg.Margin))
	if n.deadline == nil {
		n.deadline = time.AfterFunc(wait, n.fence)
	} else {
		n.deadline.Reset(wait)
	}
	if n.fenced {
		n.fenced = false
		n.log.Warn("lease renewed in time again: this node runs its services again", "lease", fmt.Sprintf("%x", int64(n.lease)))
		go n.tell()
	}
}

// fence is called at the fence deadline.
func (n *Node) fence() {
	n.mu.Lock()
	if n.fenced {
		n.mu.Unlock()
		return
	}
	n.fenced = true
	n.fences++
	n.mu.Unlock()
	n.log.Error("fenced: the lease could not be renewed in time; stopping this node's services before another node may take them over",
		"ttl", n.cfg.LeaseTTL, "margin", n.cfg.Margin, "endpoints", strings.Join(n.cfg.Endpoints, ","))
	n.tell()
}

func (n *Node) tell() {
	n.mu.Lock()
	rt := n.rt
	n.mu.Unlock()
	if rt != nil {
		rt.Reconcile()
	}
}

// keepAlive renews the lease every sixth of its TTL, and after a failed
// renewal tries again at once (each try bounded by that sixth), so that a
// renewal goes through as soon as etcd has a leader again. A lease etcd
// says is gone is replaced by a new one (and a new presence key).
func (n *Node) keepAlive(ctx context.Context) {
	every := n.cfg.LeaseTTL / 6
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		lease := n.lease
		n.mu.Unlock()
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		_, err := n.cli.KeepAliveOnce(rctx, lease)
		cancel()
		next := every
		switch {
		case err == nil:
			n.renewed(sent)
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			n.fence() // it already is, unless the clock jumped
			n.log.Warn("the lease expired; joining again with a new one", "lease", fmt.Sprintf("%x", int64(lease)))
			if err := n.join(ctx); err != nil {
				n.log.Error("cannot join the cluster again; retrying", "error", err)
				break
			}
			n.leaseTaken()
			n.tell()
		case ctx.Err() == nil:
			n.log.Debug("lease renewal failed; retrying", "error", err)
			next = every - min(every, time.Since(sent)) // at once if the try took its whole bound
		}
		t.Reset(next)
	}
}

// Close leaves the cluster: it stops the keeper and the candidacy,
// revokes the lease (the presence key goes with it, and the leader may
// place this node's services at once), closes the log, the client and the
// embedded member. Call it after the runtime has drained.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	n.done.Wait()
	n.mu.Lock()
	if n.deadline != nil {
		n.deadline.Stop()
	}
	n.mu.Unlock()
	if n.store != nil {
		n.store.Close()
	}
	n.leave()
	return nil
}

func (n *Node) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n.mu.Lock()
	lease := n.lease
	n.mu.Unlock()
	if lease != 0 {
		n.cli.Revoke(ctx, lease)
	}
	n.cli.Close()
	n.closeMember()
}

// OpenTokens opens the cluster's token store (capability.EtcdStore) under
// the cluster's prefix, for solo.Options.Tokens: a token granted through
// any node works on every node.
func (n *Node) OpenTokens(ctx context.Context, o capability.Options) (capability.Tokens, error) {
	return capability.OpenEtcd(ctx, n.cli, &capability.EtcdOptions{Options: o, Prefix: n.cfg.Prefix + "tokens/"})
}
