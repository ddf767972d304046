package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/solo-rt/solo/pkg/cluster"
)

// clusterOptions are solo daemon's cluster flags.
type clusterOptions struct {
	on        bool
	node      string
	embed     bool
	peerURL   string
	advertise string
	clientURL string
	initial   string
	endpoints string
	leaseTTL  time.Duration
	timeout   time.Duration
}

func (o *clusterOptions) flags(f *pflag.FlagSet) {
	f.BoolVar(&o.on, "cluster", false, "run as a node of a cluster on etcd (needs --node, and --etcd-embed or --etcd-endpoints)")
	f.StringVar(&o.node, "node", "", "this node's name in the cluster, unique among live nodes")
	f.BoolVar(&o.embed, "etcd-embed", false, "run an etcd member inside the daemon (with --peer-url, --client-url, --initial-cluster)")
	f.StringVar(&o.peerURL, "peer-url", "", "the embedded member's peer URL, e.g. http://10.0.0.1:2380")
	f.StringVar(&o.advertise, "advertise-peer-url", "", "with --etcd-embed, the peer URL the other members reach this one at, when it differs from --peer-url (a proxy or NAT in front of it); default --peer-url")
	f.StringVar(&o.clientURL, "client-url", "", "the embedded member's client URL, e.g. http://127.0.0.1:2379")
	f.StringVar(&o.initial, "initial-cluster", "", "every member at the cluster's first start: n1=http://10.0.0.1:2380,n2=...,n3=...")
	f.StringVar(&o.endpoints, "etcd-endpoints", "", "client URLs of an external etcd cluster, comma-separated")
	f.DurationVar(&o.leaseTTL, "lease-ttl", cluster.DefaultLeaseTTL, "the node lease's TTL (whole seconds, at least 2s): a dead node's services move after it expires; a node that cannot renew it stops its services a quarter of it before")
	f.DurationVar(&o.timeout, "etcd-timeout", cluster.DefaultConnectTimeout, "how long to wait at start for etcd to answer (with --etcd-embed, for its cluster to form)")
}

// check refuses cluster flags that do not go together (usage errors).
func (o *clusterOptions) check() error {
	if !o.on {
		for name, set := range map[string]bool{"--node": o.node != "", "--etcd-embed": o.embed, "--peer-url": o.peerURL != "", "--advertise-peer-url": o.advertise != "", "--client-url": o.clientURL != "", "--initial-cluster": o.initial != "", "--etcd-endpoints": o.endpoints != ""} {
			if set {
				return fmt.Errorf("%s needs --cluster", name)
			}
		}
		return nil
	}
	switch {
	case o.node == "":
		return errors.New("--cluster needs --node NAME")
	case o.embed && o.endpoints != "":
		return errors.New("--etcd-embed and --etcd-endpoints: give one (an embedded member, or an external etcd)")
	case !o.embed && o.endpoints == "":
		return errors.New("--cluster needs --etcd-embed (with --peer-url, --client-url, --initial-cluster) or --etcd-endpoints URLS")
	case o.embed && (o.peerURL == "" || o.clientURL == "" || o.initial == ""):
		return errors.New("--etcd-embed needs --peer-url, --client-url and --initial-cluster")
	case !o.embed && (o.peerURL != "" || o.clientURL != "" || o.initial != "" || o.advertise != ""):
		return errors.New("--peer-url, --advertise-peer-url, --client-url and --initial-cluster need --etcd-embed")
	case o.timeout <= 0:
		return fmt.Errorf("--etcd-timeout %s: want a positive duration", o.timeout)
	case o.leaseTTL < 2*time.Second || o.leaseTTL%time.Second != 0:
		return fmt.Errorf("--lease-ttl %s: want whole seconds, at least 2s (etcd counts leases in seconds)", o.leaseTTL)
	}
	return nil
}

// nodeID returns the data dir's node id (cluster.Config.ID), made on
// first use.
func nodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the node id: %w", err)
	}
	return id, nil
}

// join opens the node's membership (nil without --cluster) and registers
// its metrics: whether it is fenced now, how often it was, whether it
// leads placement.
func (o *clusterOptions) join(dataDir string, tl net.Listener, log hclog.Logger, reg *prometheus.Registry) (*cluster.Node, error) {
	if !o.on {
		return nil, nil
	}
	id, err := nodeID(filepath.Join(dataDir, "cluster"))
	if err != nil {
		return nil, err
	}
	cfg := cluster.Config{Node: o.node, ID: id, LeaseTTL: o.leaseTTL, ConnectTimeout: o.timeout, Logger: log}
	if tl != nil {
		cfg.Address = tl.Addr().String()
	}
	if o.embed {
		cfg.Embed = &cluster.Embed{Dir: filepath.Join(dataDir, "cluster"), PeerURL: o.peerURL, AdvertisePeerURL: o.advertise, ClientURL: o.clientURL, InitialCluster: o.initial}
	} else {
		cfg.Endpoints = strings.Split(o.endpoints, ",")
	}
	node, err := cluster.Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "solo_cluster_fenced", Help: "1 while this node is fenced: it could not renew its lease in time and runs no service."},
			func() float64 { return b2f(node.Fenced()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "solo_cluster_fences_total", Help: "Times this node fenced itself since it started."},
			func() float64 { return float64(node.Fences()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "solo_cluster_leader", Help: "1 while this node is the placement leader."},
			func() float64 { return b2f(node.Leader()) }),
	)
	log.Info("joined the cluster", "node", o.node, "lease_ttl", o.leaseTTL, "etcd_endpoints", o.endpoints, "etcd_embedded", o.embed)
	return node, nil
}
