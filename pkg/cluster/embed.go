package cluster

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Embed configures an etcd member run inside the daemon: one per node, for
// small clusters. Its data is in Dir.
type Embed struct {
	Dir string
	// PeerURL is where the other members reach this one, ClientURL where
	// clients do (this node's own client among them).
	PeerURL, ClientURL string
	// AdvertisePeerURL, if set, is what the member tells the others to
	// reach it at, while it listens on PeerURL: the address of a proxy or
	// a NAT in front of it. It is this member's entry in InitialCluster.
	AdvertisePeerURL string
	// InitialCluster names every member of the cluster at its first start,
	// "n1=http://10.0.0.1:2380,n2=...", this node's name among them.
	InitialCluster string
	// Token tells this cluster apart from others on the same network at
	// its first start. Default "solo".
	Token string
}

type member struct{ etcd *embed.Etcd }

// startMember starts the embedded member named name and waits until it
// has joined its cluster (a quorum of the initial cluster must start), at
// most timeout.
func startMember(name string, e Embed, timeout time.Duration) (*member, error) {
	peer, err := url.Parse(e.PeerURL)
	if err != nil || peer.Host == "" {
		return nil, fmt.Errorf("--peer-url %q: want a URL such as http://10.0.0.1:2380", e.PeerURL)
	}
	advertised := peer
	if e.AdvertisePeerURL != "" {
		if advertised, err = url.Parse(e.AdvertisePeerURL); err != nil || advertised.Host == "" {
			return nil, fmt.Errorf("--advertise-peer-url %q: want a URL such as http://10.0.0.1:2380", e.AdvertisePeerURL)
		}
	}
	client, err := url.Parse(e.ClientURL)
	if err != nil || client.Host == "" {
		return nil, fmt.Errorf("--client-url %q: want a URL such as http://127.0.0.1:2379", e.ClientURL)
	}
	if e.InitialCluster == "" {
		return nil, fmt.Errorf("--initial-cluster: required with --etcd-embed, e.g. n1=http://10.0.0.1:2380,n2=...,n3=...")
	}
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = filepath.Join(e.Dir, "etcd")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*advertised}
	cfg.InitialCluster = e.InitialCluster
	cfg.InitialClusterToken = e.Token
	if cfg.InitialClusterToken == "" {
		cfg.InitialClusterToken = "solo"
	}
	// A dead etcd leader is replaced within about a second (heartbeat
	// 50 ms, election timeout 500 ms): well within the fence deadline of
	// a node whose renewals were going to it, so that a leader change
	// stops no service anywhere.
	cfg.TickMs, cfg.ElectionMs = 50, 500
	// Raise etcd's limits so that one Txn holds a whole group commit.
	cfg.MaxTxnOps, cfg.MaxRequestBytes = 8192, 16<<20
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded etcd member %s: %w (check --peer-url, --client-url and --initial-cluster)", name, err)
	}
	m, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start the embedded etcd member %s: %w", name, err)
	}
	select {
	case <-m.Server.ReadyNotify():
		return &member{etcd: m}, nil
	case err := <-m.Err():
		m.Close()
		return nil, fmt.Errorf("embedded etcd member %s: %w", name, err)
	case <-time.After(timeout):
		m.Close()
		return nil, fmt.Errorf("the embedded etcd member %s did not join its cluster within %s: start the other members of --initial-cluster %s (a quorum must be up)", name, timeout, e.InitialCluster)
	}
}

func (n *Node) closeMember() {
	if n.member != nil {
		n.member.etcd.Close()
		n.member = nil
	}
}

// EtcdLeader reports whether this node's embedded member leads the etcd
// cluster (false without one).
func (n *Node) EtcdLeader() bool {
	if n.member == nil {
		return false
	}
	s := n.member.etcd.Server
	return s.Leader() == s.MemberID()
}
