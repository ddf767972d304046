package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
	"github.com/solo-rt/solo/internal/witness"
	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
	"github.com/solo-rt/solo/recovery"
)

// clusterServices is how many services the cluster scenarios run: a few
// in the default suite, 30 (the full scenario) with -cluster.services=30,
// as make bench-cluster runs them.
var clusterServices = flag.Int("cluster.services", 6, "services in the cluster scenarios")

// testCluster is three `solo daemon --cluster --etcd-embed` processes on
// loopback, each with its own data dir and embedded etcd member.
type testCluster struct {
	t       testing.TB
	names   []string
	dirs    []string
	daemons []*daemon
	args    [][]string
	// peers are the proxies between the etcd members, Isolate and Heal
	// for partitions (startProxiedCluster only).
	peers *etcdtest.Peers
}

// freeAddrs returns n distinct free TCP addresses on 127.0.0.1.
func freeAddrs(t testing.TB, n int) []string {
	var ls []net.Listener
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// startCluster starts three nodes at once (each member waits for a quorum
// of the others) and returns once every one is ready.
func startCluster(t testing.TB) *testCluster { return newCluster(t, false) }

// startProxiedCluster is startCluster with a proxy in front of each etcd
// member's peer listener (--advertise-peer-url), so that c.peers can cut a
// node off from the others.
func startProxiedCluster(t testing.TB) *testCluster { return newCluster(t, true) }

func newCluster(t testing.TB, proxied bool) *testCluster {
	t.Helper()
	var c *testCluster
	t.Cleanup(func() {
		if t.Failed() && c != nil {
			t.Log(c.logs())
		}
	})
	addrs := freeAddrs(t, 9)
	c = &testCluster{t: t, names: []string{"n1", "n2", "n3"}}
	advertised := []string{addrs[0], addrs[3], addrs[6]}
	if proxied {
		var err error
		c.peers, err = etcdtest.ProxyPeers(advertised...)
		require.NoError(t, err)
		t.Cleanup(c.peers.Close)
		for i, p := range c.peers.Proxies {
			advertised[i] = p.Addr()
		}
	}
	var initial []string
	for i, n := range c.names {
		initial = append(initial, fmt.Sprintf("%s=http://%s", n, advertised[i]))
	}
	for i, n := range c.names {
		c.dirs = append(c.dirs, dataDir(t))
		args := []string{"--cluster", "--node", n, "--etcd-embed",
			"--peer-url", "http://" + addrs[3*i], "--client-url", "http://" + addrs[3*i+1],
			"--initial-cluster", strings.Join(initial, ",")}
		if proxied {
			args = append(args, "--advertise-peer-url", "http://"+advertised[i])
		}
		c.args = append(c.args, append(args, "--listen", addrs[3*i+2]))
	}
	c.daemons = make([]*daemon, 3)
	for i := range c.names {
		c.daemons[i] = c.spawn(i)
	}
	for i := range c.names {
		c.waitReady(i)
	}
	if proxied {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, c.peers.Learn(ctx, etcdtest.NewClient(t, c.endpoints()...)))
	}
	return c
}

// endpoints returns the nodes' etcd client URLs.
func (c *testCluster) endpoints() []string {
	var eps []string
	for _, a := range c.args {
		eps = append(eps, a[7]) // --client-url
	}
	return eps
}

func (c *testCluster) spawn(i int) *daemon {
	d, err := spawnDaemon(c.dirs[i], c.args[i]...)
	require.NoError(c.t, err)
	d.t = c.t
	dir := c.dirs[i]
	c.t.Cleanup(func() { d.kill(); killKeeper(dir); killMarked(dir) })
	return d
}

func (c *testCluster) waitReady(i int) {
	d := c.daemons[i]
	select {
	case <-d.ready():
	case <-d.done:
		c.t.Fatalf("node %s exited with %d before it was ready:\n%s", c.names[i], d.code, d.logs)
	case <-time.After(90 * time.Second):
		c.t.Fatalf("node %s not ready after 90s:\n%s", c.names[i], d.logs)
	}
}

// killNode SIGKILLs node i whole: its daemon, its keeper and every
// process it started.
func (c *testCluster) killNode(i int) {
	c.daemons[i].kill()
	killKeeper(c.dirs[i])
	killMarked(c.dirs[i])
}

// killKeeper SIGKILLs the keeper named in dir's keeper pid file.
func killKeeper(dir string) {
	b, err := os.ReadFile(keeperPIDFile(dir))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ls lists the services through node i.
func (c *testCluster) ls(i int) []state.ServiceView {
	var views []state.ServiceView
	require.NoError(c.t, json.Unmarshal([]byte(mustCLI(c.t, c.dirs[i], "ls", "--json")), &views))
	return views
}

func (c *testCluster) nodes(i int) []wire.Node {
	var nodes []wire.Node
	require.NoError(c.t, json.Unmarshal([]byte(mustCLI(c.t, c.dirs[i], "nodes", "--json")), &nodes))
	return nodes
}

// waitPlaced waits, asking node via, until every one of want services runs
// on a node of on, and returns the views.
func (c *testCluster) waitPlaced(via, want int, on ...string) map[string]state.ServiceView {
	c.t.Helper()
	return c.waitViews(via, fmt.Sprintf("%d services all running on %v", want, on), func(views map[string]state.ServiceView) bool {
		if len(views) != want {
			return false
		}
		for _, v := range views {
			if v.State != state.StateRunning || v.PID == 0 || !contains(on, v.Node) {
				return false
			}
		}
		return true
	})
}

// waitViews waits, asking node via, until ok holds of the services by
// name, and returns them.
func (c *testCluster) waitViews(via int, what string, ok func(map[string]state.ServiceView) bool) map[string]state.ServiceView {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		views := map[string]state.ServiceView{}
		for _, v := range c.ls(via) {
			views[v.Name] = v
		}
		if ok(views) {
			return views
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not %s after 60s: %+v\n%s", what, views, c.logs())
		}
		time.Sleep(50 * time.Millisecond) // polls the cluster's own report
	}
}

func (c *testCluster) logs() string {
	var b strings.Builder
	for i, d := range c.daemons {
		fmt.Fprintf(&b, "=== %s ===\n%s\n", c.names[i], d.logs)
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// watcher scans the nodes' data dirs for live instances (the processes
// each node's daemon started, by their marker) until stopped, and records
// any moment at which one service had two live instances.
type watcher struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	doubles []string
	scans   int
}

func watchInstances(dirs []string) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			seen := map[string][]string{}
			for _, dir := range dirs {
				obs, _ := recovery.Scan(dir)
				for _, o := range obs {
					if o.Leader() {
						k := o.Marker.Tenant + "/" + o.Marker.Name
						seen[k] = append(seen[k], fmt.Sprintf("%s pid %d", dir, o.Identity.PID))
					}
				}
			}
			w.mu.Lock()
			w.scans++
			for k, where := range seen {
				if len(where) > 1 {
					w.doubles = append(w.doubles, fmt.Sprintf("%s: %v", k, where))
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) finish(t testing.TB) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	require.Positive(t, w.scans)
	assert.Empty(t, w.doubles, "a service ran twice at once")
}

// TestCluster_KillFollowerNode: three nodes, services spread over them by
// the placement leader; a node that does not lead placement is SIGKILLed
// whole (daemon and services). Its services run again on the two others,
// each exactly once, with a higher fence; the others are not touched; no
// service ever has two live instances. `solo nodes` lists the dead node
// as not alive until nothing is placed on it.
func TestCluster_KillFollowerNode(t *testing.T) {
	killNodeScenario(t, func(c *testCluster, nodes []wire.Node) int {
		for i, nd := range nodes {
			if !nd.Leader {
				return i
			}
		}
		t.Fatalf("one node leads, two follow: %+v", nodes)
		return -1
	})
}

// TestCluster_KillLeaderNode: the node that leads both etcd and placement
// is SIGKILLed whole. etcd elects another leader (which extends every
// lease), another node wins the placement election, and the dead node's
// services run again elsewhere, exactly once, never twice at once.
func TestCluster_KillLeaderNode(t *testing.T) {
	killNodeScenario(t, func(c *testCluster, nodes []wire.Node) int {
		for i, nd := range nodes {
			if nd.Leader {
				c.moveEtcdLeader(i)
				return i
			}
		}
		t.Fatalf("no placement leader: %+v", nodes)
		return -1
	})
}

// moveEtcdLeader makes node i's embedded member lead the etcd cluster.
func (c *testCluster) moveEtcdLeader(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps := c.endpoints()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(c.t, err)
	defer cli.Close()
	target, err := cli.Status(ctx, eps[i])
	require.NoError(c.t, err)
	if target.Leader == target.Header.MemberId {
		return
	}
	for _, ep := range eps {
		st, err := cli.Status(ctx, ep)
		require.NoError(c.t, err)
		if st.Header.MemberId == st.Leader {
			one, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			require.NoError(c.t, err)
			defer one.Close()
			_, err = one.MoveLeader(ctx, target.Header.MemberId)
			require.NoError(c.t, err)
		}
	}
	st, err := cli.Status(ctx, eps[i])
	require.NoError(c.t, err)
	require.Equal(c.t, st.Header.MemberId, st.Leader, "node %s leads etcd", c.names[i])
}

// killNodeScenario deploys services over three nodes, SIGKILLs the node
// pick chooses, whole, and checks that its services, and only they, run
// again on the others, each once, with a newer fence. The services report
// to a witness, which must see none alive twice at one instant, no fence
// go back, and each running once, where the cluster places it.
func killNodeScenario(t *testing.T, pick func(*testCluster, []wire.Node) int) {
	addrs, w := startWitness(t)
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := *clusterServices
	var services []string
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		services = append(services, "default/"+name)
		mustCLI(t, c.dirs[i%3], "deploy", name, "--", soloBin, "_report", "--witness", addrs.Report)
	}
	before := c.waitPlaced(0, n, c.names...)
	assert.Regexp(t, `(?m)^TENANT\s+NAME\s+GEN\s+STATE\s+READY\s+NODE\s+PID`, mustCLI(t, c.dirs[2], "ls"))
	assert.Regexp(t, `(?m)^default\s+s00\s+1\s+running\s+yes\s+n[123]\s+\d+`, mustCLI(t, c.dirs[2], "ls"))

	nodes := c.nodes(1)
	require.Len(t, nodes, 3)
	for _, nd := range nodes {
		assert.True(t, nd.Alive)
		assert.Positive(t, nd.LeaseRemaining)
	}
	victim := pick(c, nodes)
	gone := nodes[victim].Name
	nodeIndex := map[string]int{"n1": 0, "n2": 1, "n3": 2}
	idx := nodeIndex[gone]
	var survivors []string
	for _, name := range c.names {
		if name != gone {
			survivors = append(survivors, name)
		}
	}
	moved := 0
	for _, v := range before {
		if v.Node == gone {
			moved++
		}
	}
	require.Positive(t, moved, "fewest services first puts some on every node: %+v", before)

	c.killNode(idx)
	// From now on a report from the dead node's instances is a breach.
	_, err := w.MarkDead(ctx, witness.Dead{Node: gone})
	require.NoError(t, err)
	via := (idx + 1) % 3 // any survivor answers for the whole cluster
	// While the dead node's services move, `solo ls` never shows one on a
	// survivor with the dead node's pid: a placement elsewhere ends the
	// view of the old instance until the new start is recorded.
	var stalePIDs []string
	after := c.waitViews(via, fmt.Sprintf("%d services all running on %v", n, survivors), func(views map[string]state.ServiceView) bool {
		for name, v := range views {
			if b := before[name]; b.Node == gone && v.Node != gone && v.PID != 0 && v.PID == b.PID {
				stalePIDs = append(stalePIDs, fmt.Sprintf("%s on %s with %s's pid %d", name, v.Node, gone, v.PID))
			}
		}
		if len(views) != n {
			return false
		}
		for _, v := range views {
			if v.State != state.StateRunning || v.PID == 0 || !contains(survivors, v.Node) {
				return false
			}
		}
		return true
	})
	assert.Empty(t, stalePIDs, "a moved service shown with its dead instance's pid")
	st, err := w.Wait(ctx, func(st witness.State) bool { return st.RunningOnce(services...) == nil })
	require.NoError(t, err, "every service reports from its new place")
	assert.Empty(t, st.Violations(), "never twice at once, fences only up, nothing from the dead")
	for name, b := range before {
		a := after[name]
		live := st.Services["default/"+name].Live[0]
		assert.Equal(t, [3]any{a.Node, int64(a.Fence), a.PID}, [3]any{live.Node, live.Fence, live.PID},
			"%s reports from where the cluster places it, as the pid `solo ls` shows", name)
		if b.Node == gone {
			assert.Greater(t, a.Fence, b.Fence, "%s moved under a newer fence", name)
		} else {
			assert.Equal(t, b.Fence, a.Fence, "%s was not moved", name)
			// A survivor whose renewals all failed while etcd elected a
			// new leader (a loaded machine can make the election outlast
			// the fence margin) fenced itself, as it must, and started
			// its services again under the same fence: a restart there is
			// right; anywhere else it is a bug.
			if log := c.daemons[nodeIndex[b.Node]].logs.String(); strings.Contains(log, "fenced: the lease could not be renewed in time") {
				t.Logf("%s: its node %s fenced itself during the election and restarted it", name, b.Node)
				continue
			}
			assert.Equal(t, b.PID, live.PID, "%s, not moved, reports from its first instance", name)
			assert.Equal(t, b.PID, a.PID, "%s was not restarted", name)
		}
	}
	r := cli(t, c.dirs[via], "nodes")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, gone+" ", "a dead node with nothing placed on it is not listed")
}

// TestCluster_BadInput: cluster flags that do not go together are usage
// errors; an etcd that does not answer fails the start within
// --etcd-timeout, naming the endpoints; `solo nodes` and GET /v1/nodes on
// a daemon that is not part of a cluster answer not found, saying so.
func TestCluster_BadInput(t *testing.T) {
	dir := dataDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node", "n1"}, "--node needs --cluster"},
		{[]string{"--etcd-endpoints", "http://127.0.0.1:1"}, "--etcd-endpoints needs --cluster"},
		{[]string{"--cluster", "--etcd-endpoints", "http://127.0.0.1:1"}, "--cluster needs --node NAME"},
		{[]string{"--cluster", "--node", "n1"}, "--cluster needs --etcd-embed"},
		{[]string{"--cluster", "--node", "n1", "--etcd-embed"}, "--etcd-embed needs --peer-url, --client-url and --initial-cluster"},
		{[]string{"--cluster", "--node", "n1", "--etcd-embed", "--etcd-endpoints", "http://127.0.0.1:1"}, "give one"},
		{[]string{"--cluster", "--node", "n1", "--etcd-endpoints", "http://127.0.0.1:1", "--lease-ttl", "1500ms"}, "--lease-ttl 1.5s: want whole seconds"},
		{[]string{"--cluster", "--node", "n1", "--etcd-endpoints", "http://127.0.0.1:1", "--peer-url", "http://127.0.0.1:2"}, "need --etcd-embed"},
		{[]string{"--cluster", "--node", "n1", "--etcd-endpoints", "http://127.0.0.1:1", "--advertise-peer-url", "http://127.0.0.1:2"}, "need --etcd-embed"},
		{[]string{"--advertise-peer-url", "http://127.0.0.1:2"}, "--advertise-peer-url needs --cluster"},
	} {
		r := cli(t, dir, append([]string{"daemon"}, tc.args...)...)
		assert.Equal(t, exitcode.Usage, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
	assert.NoFileExists(t, dir+"/solo.db", "a refused start writes nothing")

	ep := "http://" + freeAddrs(t, 1)[0]
	r := cli(t, dir, "daemon", "--cluster", "--node", "n1", "--etcd-endpoints", ep, "--etcd-timeout", "1s")
	assert.Equal(t, exitcode.Error, r.code, r.stderr)
	assert.Contains(t, r.stderr, "etcd at "+ep+" did not answer within 1s")

	single := dataDir(t)
	startDaemon(t, single)
	r = cli(t, single, "nodes")
	assert.Equal(t, exitcode.NotFound, r.code, r.stderr)
	assert.Contains(t, r.stderr, "not part of a cluster")
	code, body := sockGet(t, single, "/v1/nodes")
	assert.Equal(t, 404, code)
	assert.Contains(t, body, "not part of a cluster")
}

// TestCluster_DaemonRestartReadopts: a node's daemon is SIGKILLed (its
// services live on) and started again within the lease TTL: it takes
// over its own live lease, so its services stay placed on it and are
// re-adopted in place (same pids, same fences), never run twice. Another
// daemon (another data dir) that asks for a live node's name is refused.
func TestCluster_DaemonRestartReadopts(t *testing.T) {
	c := startCluster(t)
	n := *clusterServices
	w := watchInstances(c.dirs)
	for i := range n {
		mustCLI(t, c.dirs[i%3], "deploy", fmt.Sprintf("s%02d", i), "--", "sleep", "1000")
	}
	before := c.waitPlaced(0, n, c.names...)

	c.daemons[2].kill() // the daemon only: its services live on
	c.daemons[2] = c.spawn(2)
	c.waitReady(2)
	after := c.waitPlaced(0, n, c.names...)
	w.finish(t)
	for name, b := range before {
		a := after[name]
		assert.Equal(t, b.Node, a.Node, "%s stayed on its node", name)
		assert.Equal(t, b.Fence, a.Fence, "%s kept its placement", name)
		assert.Equal(t, b.PID, a.PID, "%s was re-adopted, not restarted", name)
	}
	assert.Contains(t, c.daemons[2].logs.String(), "took over this node's live lease")

	other := dataDir(t)
	ep := c.args[0][7] // n1's --client-url
	r := cli(t, other, "daemon", "--cluster", "--node", "n1", "--etcd-endpoints", ep, "--etcd-timeout", "10s")
	assert.Equal(t, exitcode.Error, r.code, r.stderr)
	assert.Contains(t, r.stderr, "node n1 is already alive in the cluster")
}

// TestCluster_LostQuorum: two of three nodes die whole; the third, without
// a quorum, answers writes with 503 and a message, fences itself at its
// deadline (its services stopped, said in its log and metrics), and when
// the two come back every service runs again, exactly once.
func TestCluster_LostQuorum(t *testing.T) {
	c := startCluster(t)
	n := *clusterServices
	w := watchInstances(c.dirs)
	for i := range n {
		mustCLI(t, c.dirs[i%3], "deploy", fmt.Sprintf("s%02d", i), "--", "sleep", "1000")
	}
	before := c.waitPlaced(0, n, c.names...)
	var pids []int
	for _, v := range before {
		if v.Node == "n1" {
			pids = append(pids, v.PID)
		}
	}
	require.NotEmpty(t, pids)

	c.killNode(1)
	c.killNode(2)
	r := cli(t, c.dirs[0], "deploy", "late", "--", "sleep", "1000")
	assert.NotEqual(t, exitcode.OK, r.code)
	assert.Contains(t, r.stderr, "etcd has no quorum")
	// Fenced: n1 stops its services before anyone may take them.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			require.True(t, time.Now().Before(deadline), "pid %d still runs on a fenced node:\n%s", pid, c.daemons[0].logs)
			time.Sleep(20 * time.Millisecond) // waits on the pid, a fact
		}
	}
	assert.Contains(t, c.daemons[0].logs.String(), "fenced: the lease could not be renewed in time")
	assert.Equal(t, "1", metric(t, c.dirs[0], "solo_cluster_fenced"))

	c.daemons[1] = c.spawn(1)
	c.daemons[2] = c.spawn(2)
	c.waitReady(1)
	c.waitReady(2)
	c.waitPlaced(0, n, c.names...)
	w.finish(t)
	assert.Equal(t, "0", metric(t, c.dirs[0], "solo_cluster_fenced"))
}

// TestCluster_DrainAndTokens: `solo drain` moves a node's services to the
// others, each stopped before it starts elsewhere (never two at once),
// shows the node draining with nothing on it, keeps new services off it,
// and --undo ends it. An unknown node is not found, a bad name a usage
// error. A token granted through one node works on another, until it is
// revoked through the first.
func TestCluster_DrainAndTokens(t *testing.T) {
	c := startCluster(t)
	n := *clusterServices
	w := watchInstances(c.dirs)
	for i := range n {
		mustCLI(t, c.dirs[i%3], "deploy", fmt.Sprintf("s%02d", i), "--", "sleep", "1000")
	}
	c.waitPlaced(0, n, c.names...)

	assert.Contains(t, mustCLI(t, c.dirs[0], "drain", "n2"), "node n2 drains")
	c.waitPlaced(0, n, "n1", "n3")
	mustCLI(t, c.dirs[1], "deploy", "late", "--", "sleep", "1000")
	c.waitPlaced(0, n+1, "n1", "n3")
	w.finish(t)
	for _, nd := range c.nodes(2) {
		if nd.Name == "n2" {
			assert.True(t, nd.Draining)
			assert.Zero(t, nd.Services)
		}
	}
	assert.Contains(t, mustCLI(t, c.dirs[0], "drain", "--undo", "n2"), "node n2 no longer drains")

	r := cli(t, c.dirs[0], "drain", "n9")
	assert.Equal(t, exitcode.NotFound, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no such node")
	r = cli(t, c.dirs[0], "drain", "BAD")
	assert.Equal(t, exitcode.Usage, r.code, r.stderr)
	assert.Contains(t, r.stderr, "name")
	r = cli(t, c.dirs[0], "drain")
	assert.Equal(t, exitcode.Usage, r.code)

	var g wire.TokenGrant
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, c.dirs[0], "token", "grant", "--tenant", "default", "--scope", "read", "--json")), &g))
	n2 := c.args[1][len(c.args[1])-1] // --listen
	r = cli(t, c.dirs[1], "--addr", n2, "--token", g.Token, "ls")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "s00")
	mustCLI(t, c.dirs[0], "token", "revoke", g.ID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = cli(t, c.dirs[1], "--addr", n2, "--token", g.Token, "ls")
		if r.code != exitcode.OK {
			break
		}
		require.True(t, time.Now().Before(deadline), "a token revoked on n1 still works on n2")
	}
	assert.Equal(t, exitcode.Denied, r.code, r.stderr)
}

// TestCluster_Nodes: a service whose spec names nodes (--node) is placed
// only on them: one allowed on n2 and n3 lands on one of them and, when
// that node drains, moves to the other, never to n1; one allowed on n2
// alone waits while n2 drains, unplaced, its status saying so, recorded
// once however many rounds the leader runs, and runs on n2 again once the
// drain ends. No service ever runs twice.
func TestCluster_Nodes(t *testing.T) {
	c := startCluster(t)
	w := watchInstances(c.dirs)
	mustCLI(t, c.dirs[0], "deploy", "pinned", "--node", "n2", "--", "sleep", "1000")
	mustCLI(t, c.dirs[0], "deploy", "pair", "--node", "n2,n3", "--", "sleep", "1000")
	mustCLI(t, c.dirs[1], "deploy", "free", "--", "sleep", "1000")
	views := c.waitPlaced(0, 3, c.names...)
	assert.Equal(t, "n2", views["pinned"].Node)
	first := views["pair"].Node
	require.Contains(t, []string{"n2", "n3"}, first)
	other := map[string]string{"n2": "n3", "n3": "n2"}[first]

	// Drain the pair's node: it moves to the other of its two.
	mustCLI(t, c.dirs[0], "drain", first)
	views = c.waitViews(0, "pair running on "+other, func(v map[string]state.ServiceView) bool {
		return v["pair"].State == state.StateRunning && v["pair"].Node == other
	})
	if first == "n3" {
		mustCLI(t, c.dirs[0], "drain", "--undo", "n3")
		mustCLI(t, c.dirs[0], "drain", "n2") // the pinned service's node
		c.waitViews(0, "pair running on n3", func(v map[string]state.ServiceView) bool {
			return v["pair"].State == state.StateRunning && v["pair"].Node == "n3"
		})
	}
	// n2 drains: the pinned service waits, and says why.
	c.waitViews(0, "pinned unplaced and down", func(v map[string]state.ServiceView) bool {
		return v["pinned"].Node == "" && v["pinned"].PID == 0
	})
	var st state.ServiceStatus
	deadline := time.Now().Add(60 * time.Second)
	for {
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, c.dirs[2], "status", "pinned", "--json")), &st))
		if st.Reason != "" {
			break
		}
		require.True(t, time.Now().Before(deadline), "no reason in the status of a waiting service: %+v", st)
		time.Sleep(50 * time.Millisecond) // polls the cluster's own report
	}
	assert.True(t, strings.HasPrefix(st.Reason, "waiting for a node among n2"), "status reason: %q", st.Reason)
	text := mustCLI(t, c.dirs[2], "status", "pinned")
	assert.Contains(t, text, "waiting for a node among n2")
	assert.Regexp(t, `nodes:\s+only n2\n`, text)
	assert.Contains(t, mustCLI(t, c.dirs[1], "why", "pinned"), "waiting for a node among n2 at ")
	// More rounds of the leader (each event wakes it) say nothing more.
	mustCLI(t, c.dirs[0], "deploy", "late", "--", "sleep", "1000")
	c.waitViews(0, "late running", func(v map[string]state.ServiceView) bool { return v["late"].State == state.StateRunning })
	mustCLI(t, c.dirs[0], "restart", "late")
	c.waitViews(0, "late running", func(v map[string]state.ServiceView) bool { return v["late"].State == state.StateRunning })

	mustCLI(t, c.dirs[0], "drain", "--undo", "n2")
	views = c.waitPlaced(0, 4, c.names...)
	assert.Equal(t, "n2", views["pinned"].Node)
	w.finish(t)

	waits := 0
	for _, line := range strings.Split(strings.TrimSpace(mustCLI(t, c.dirs[0], "events", "--json")), "\n") {
		var env struct {
			Type    string `json:"type"`
			Subject string `json:"subject"`
			Data    state.Placed
		}
		require.NoError(t, json.Unmarshal([]byte(line), &env))
		if env.Type != string(state.TypeServicePlaced) {
			continue
		}
		switch env.Subject {
		case "pair":
			assert.NotEqual(t, "n1", env.Data.Node, "pair placed on a node it does not allow")
		case "pinned":
			assert.Contains(t, []string{"", "n2"}, env.Data.Node, "pinned placed on a node it does not allow")
			if len(env.Data.Waiting) > 0 {
				waits++
				assert.Equal(t, []string{"n2"}, env.Data.Waiting)
			}
		}
	}
	assert.Equal(t, 1, waits, "the wait is recorded once, not at every round")
}

// TestCluster_DaemonKilledKeeperStops: a node's daemon alone is SIGKILLed
// and not started again; its services live on under its keeper. The
// keeper keeps the lease for its grace, then lets it go and kills the
// node's services before the lease can expire; only then does the leader
// place them on the other nodes. No service ever runs twice, and each
// ends running once.
func TestCluster_DaemonKilledKeeperStops(t *testing.T) {
	c := startCluster(t)
	n := *clusterServices
	w := watchInstances(c.dirs)
	for i := range n {
		mustCLI(t, c.dirs[i%3], "deploy", fmt.Sprintf("s%02d", i), "--", "sleep", "1000")
	}
	before := c.waitPlaced(0, n, c.names...)

	c.daemons[2].kill() // the daemon only: its services and keeper live on
	after := c.waitPlaced(0, n, "n1", "n2")
	w.finish(t)
	moved := 0
	for name, b := range before {
		if b.Node == "n3" {
			moved++
			assert.Greater(t, after[name].Fence, b.Fence, "%s moved under a newer fence", name)
		}
	}
	require.Positive(t, moved)
	log, err := os.ReadFile(c.dirs[2] + "/cluster/keeper.log")
	require.NoError(t, err)
	assert.Contains(t, string(log), "killed a process of this node")
}
