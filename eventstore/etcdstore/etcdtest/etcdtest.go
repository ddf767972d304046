// Package etcdtest runs real etcd members inside a test process (etcd's
// server/v3/embed), on 127.0.0.1 and ports the operating system hands out,
// for the tests and benchmarks of the etcd backend and of what builds on it.
// It links the etcd server, so only tests may import it.
//
// # Partitions
//
// With [Options.Proxied], each member advertises the address of a
// [tcpproxy.Proxy] in front of its peer listener, so that all traffic
// between members passes through proxies, and [Cluster.Isolate] cuts one
// member off from the others (both ways) until [Cluster.Heal]. [Peers] is
// the same for members a test runs in other processes (`solo daemon
// --cluster --etcd-embed`), from [ProxyPeers]: each member listens on its
// own peer address and advertises its proxy's.
package etcdtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/solo-rt/solo/internal/tcpproxy"
)

// Options configure [Start]. The zero value is a durable cluster with
// etcd's own limits raised so that one transaction can hold a whole append
// of [eventstore.DefaultMaxBatch] events.
type Options struct {
	// NoFsync skips etcd's fsyncs: faster, for tests that never lose a
	// machine's power. Benchmarks leave it false.
	NoFsync bool
	// MaxTxnOps, if set, replaces the members' MaxTxnOps.
	MaxTxnOps uint
	// Proxied routes the traffic between members through proxies, for
	// [Cluster.Isolate].
	Proxied bool
}

// MaxTxnOps and MaxRequestBytes are the members' limits (etcd's defaults
// are 128 and 1.5 MiB).
const (
	MaxTxnOps       = 8192
	MaxRequestBytes = 16 << 20
)

// Member is one embedded etcd member.
type Member struct {
	Name      string
	ClientURL string
	cfg       *embed.Config
	etcd      *embed.Etcd
	stopped   bool
}

// Cluster is a set of members started together.
type Cluster struct {
	Members []*Member
	// Peers holds the proxies between members ([Options.Proxied]).
	Peers *Peers
}

// Start starts n members forming one cluster in tb's temporary directory
// and waits until every one has joined it. They are stopped when tb ends.
func Start(tb testing.TB, n int, o Options) *Cluster {
	tb.Helper()
	c, err := New(tb.TempDir(), n, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// New starts n members forming one cluster, with their data under dir, and
// waits until every one has joined it. The caller closes it (a cluster
// shared by the tests of a package lives as long as TestMain).
func New(dir string, n int, o Options) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	// advertised[i] is where the others reach member i: its peer
	// listener, or its proxy.
	advertised := make([]url.URL, n)
	for i := range advertised {
		advertised[i] = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
	}
	if o.Proxied {
		var targets []string
		for _, u := range advertised {
			targets = append(targets, u.Host)
		}
		if c.Peers, err = ProxyPeers(targets...); err != nil {
			return nil, err
		}
		for i, p := range c.Peers.Proxies {
			advertised[i].Host = p.Addr()
		}
	}
	var initial []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, advertised[i].String()))
	}
	for i := 0; i < n; i++ {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i+1)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{advertised[i]}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = fmt.Sprintf("solo-test-%d", ports[0])
		// A short election timeout makes a leader change take a fraction
		// of a second; on a loaded machine it may also cause spurious
		// ones, which the store must survive anyway.
		cfg.TickMs, cfg.ElectionMs = 50, 500
		cfg.MaxTxnOps, cfg.MaxRequestBytes = MaxTxnOps, MaxRequestBytes
		if o.MaxTxnOps > 0 {
			cfg.MaxTxnOps = o.MaxTxnOps
		}
		cfg.QuotaBackendBytes = 8 << 30
		cfg.UnsafeNoFsync = o.NoFsync
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		m := &Member{Name: cfg.Name, ClientURL: cu.String(), cfg: cfg}
		c.Members = append(c.Members, m)
		if m.etcd, err = embed.StartEtcd(cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("start etcd member %s: %w", cfg.Name, err)
		}
	}
	for _, m := range c.Members {
		if err := m.ready(); err != nil {
			c.Close()
			return nil, err
		}
		if c.Peers != nil {
			c.Peers.IDs = append(c.Peers.IDs, uint64(m.etcd.Server.MemberID()))
		}
	}
	return c, nil
}

// ready waits until m has joined its cluster.
func (m *Member) ready() error {
	select {
	case <-m.etcd.Server.ReadyNotify():
		return nil
	case err := <-m.etcd.Err():
		return fmt.Errorf("etcd member %s: %w", m.Name, err)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("etcd member %s did not join its cluster in 60 s", m.Name)
	}
}

// Endpoints returns the client URLs of every member, stopped ones included.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// Client returns a client of the cluster (every member's endpoint), closed
// when tb ends.
func (c *Cluster) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	return NewClient(tb, c.Endpoints()...)
}

// NewClient returns a client of the given endpoints, closed when tb ends.
func NewClient(tb testing.TB, endpoints ...string) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that leads the cluster, or -1 when
// no running member knows one.
func (c *Cluster) Leader() int {
	for _, m := range c.Members {
		if m.stopped {
			continue
		}
		lead := m.etcd.Server.Leader()
		for j, o := range c.Members {
			if !o.stopped && uint64(o.etcd.Server.MemberID()) == uint64(lead) {
				return j
			}
		}
	}
	return -1
}

// Stop stops member i (as a crash of its process would, minus the lost
// page cache); the others carry on.
func (c *Cluster) Stop(i int) {
	m := c.Members[i]
	if !m.stopped {
		m.stopped = true
		m.etcd.Close()
	}
}

// Restart starts a stopped member i again on its data directory and
// addresses, and waits until it is back in the cluster: a quorum must be
// running once it is.
func (c *Cluster) Restart(i int) error {
	m := c.Members[i]
	if !m.stopped {
		return nil
	}
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("restart etcd member %s: %w", m.Name, err)
	}
	m.etcd, m.stopped = e, false
	return m.ready()
}

// Close stops every member, then the proxies.
func (c *Cluster) Close() {
	for i := range c.Members {
		if c.Members[i].etcd != nil {
			c.Stop(i)
		}
	}
	if c.Peers != nil {
		c.Peers.Close()
	}
}

// Isolate cuts member i off from every other member, both ways, until
// [Cluster.Heal]; its clients still reach it. It needs [Options.Proxied].
func (c *Cluster) Isolate(i int) { c.Peers.Isolate(i) }

// Heal undoes [Cluster.Isolate] of member i.
func (c *Cluster) Heal(i int) { c.Peers.Heal(i) }

// freePorts asks the operating system for n free TCP ports on 127.0.0.1:
// it holds them all open at once, so they are distinct, and releases them
// just before the members bind them.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Peers are the proxies in front of the peer listeners of a cluster's
// members, Proxies[i] in front of the member whose id is IDs[i] (etcd's
// member id, as the MemberList of a client gives it).
type Peers struct {
	Proxies []*tcpproxy.Proxy
	IDs     []uint64
}

// ProxyPeers starts a proxy in front of each address a member listens on
// for its peers, for members that run elsewhere (`solo daemon --cluster
// --etcd-embed` children): member i must listen on targets[i] but
// advertise "http://"+Proxies[i].Addr() (its entry in the initial
// cluster). Once the cluster is up, [Peers.Learn] finds the members' ids.
func ProxyPeers(targets ...string) (*Peers, error) {
	p := &Peers{}
	for _, t := range targets {
		q, err := tcpproxy.New("127.0.0.1:0", t, &tcpproxy.Options{Sender: RaftSender})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Proxies = append(p.Proxies, q)
	}
	return p, nil
}

// Learn fills IDs from the cluster's member list, matching each member's
// advertised peer URL with a proxy's address.
func (p *Peers) Learn(ctx context.Context, cli *clientv3.Client) error {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("etcd member list: %w", err)
	}
	ids := make([]uint64, len(p.Proxies))
	for i, q := range p.Proxies {
		for _, m := range resp.Members {
			for _, u := range m.PeerURLs {
				if u == "http://"+q.Addr() {
					ids[i] = m.ID
				}
			}
		}
		if ids[i] == 0 {
			return fmt.Errorf("no member advertises proxy %d's address http://%s", i, q.Addr())
		}
	}
	p.IDs = ids
	return nil
}

// Close closes every proxy.
func (p *Peers) Close() {
	for _, q := range p.Proxies {
		q.Close()
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1, for members
// (and their proxies) that a test starts in other processes. Another
// program may take one before they bind it; on a test machine, rarely.
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// Isolate cuts member i off from every other member: its own proxy drops
// and refuses every connection (nobody reaches it), and every other proxy
// those member i opens (it reaches nobody). Dropping one direction only
// would not do: etcd sends through whichever connection still works.
func (p *Peers) Isolate(i int) {
	p.Proxies[i].Cut()
	for j, q := range p.Proxies {
		if j != i {
			q.CutFrom(memberID(p.IDs[i]))
		}
	}
}

// Heal undoes [Peers.Isolate] of member i; the members reconnect by
// themselves.
func (p *Peers) Heal(i int) {
	p.Proxies[i].Heal()
	for j, q := range p.Proxies {
		if j != i {
			q.HealFrom(memberID(p.IDs[i]))
		}
	}
}

// memberID is etcd's text form of a member id (types.ID.String), as in the
// X-Server-From header.
func memberID(id uint64) string { return strconv.FormatUint(id, 16) }

// RaftSender names the etcd member that opened a peer connection, from
// the X-Server-From header etcd's peer transport puts on every request
// (its raft streams and its pipeline); "" for any other connection. It
// only peeks, for [tcpproxy.Options.Sender].
func RaftSender(r *bufio.Reader) string {
	const limit = 4 << 10 // bufio.Reader's default size: a peek cannot see more
	for n := 1; n <= limit; n = r.Buffered() + 1 {
		if _, err := r.Peek(n); err != nil {
			return ""
		}
		b, _ := r.Peek(r.Buffered())
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		for _, line := range bytes.Split(b[:end], []byte("\r\n")) {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if ok && strings.EqualFold(string(k), "X-Server-From") {
				return string(bytes.TrimSpace(v))
			}
		}
		return ""
	}
	return ""
}
