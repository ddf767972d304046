package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// KeeperConfig configures [RunKeeper].
type KeeperConfig struct {
	// Home is the data dir whose marked processes the keeper kills.
	Home string
	// DaemonPID is the daemon the keeper outlives.
	DaemonPID int
	// Lease is the node's lease, LeaseTTL and Margin as the node's.
	Lease            int64
	LeaseTTL, Margin time.Duration
	// Grace is how long the keeper keeps the lease after the daemon died,
	// so that a daemon started again in time re-adopts its services.
	// Default LeaseTTL.
	Grace time.Duration
	// Endpoints are the etcd client URLs, every member's.
	Endpoints []string
	// Own are the daemon's own etcd endpoints (its embedded member's).
	// While the daemon lives the keeper renews only through them, so that
	// it never holds a lease the daemon cannot renew: a node cut off from
	// the quorum fences itself, and its lease must then expire for its
	// services to move. Once the daemon is gone (its embedded member
	// with it), the keeper renews through Endpoints. Default Endpoints.
	Own []string
	// PIDFile names the node's current keeper: a keeper that finds
	// another pid in it has been replaced, and exits.
	PIDFile string
	Logger  hclog.Logger
}

// RunKeeper is the node's keeper (solo _keeper), a process in its own
// session that outlives a daemon SIGKILL, the way containerd's shim
// outlives containerd. It renews the node's lease beside the daemon, with
// its own fence deadline (its last confirmed renewal's sending + TTL -
// margin). Past that deadline it kills every marked process of the data
// dir, as the daemon's own fence stops them. When the daemon is gone, it
// keeps the lease for Grace (a daemon started again in time takes the
// lease over and re-adopts its services, then starts its own keeper, and
// this one exits); then it lets the lease go, kills the node's processes
// at its deadline, before the lease can expire and the leader move them,
// and exits.
func RunKeeper(ctx context.Context, cfg KeeperConfig) error {
	if cfg.Grace == 0 {
		cfg.Grace = cfg.LeaseTTL
	}
	log := cfg.Logger
	daemonGone := make(chan struct{})
	if w, err := supervisor.WatchPID(cfg.DaemonPID); err != nil {
		close(daemonGone)
	} else {
		go func() {
			w.Wait(ctx)
			close(daemonGone)
		}()
	}
	if len(cfg.Own) == 0 {
		cfg.Own = cfg.Endpoints
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Own, DialTimeout: cfg.LeaseTTL, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("keeper: etcd at %s: %w", strings.Join(cfg.Own, ","), err)
	}
	defer cli.Close()
	lease := clientv3.LeaseID(cfg.Lease)
	every := cfg.LeaseTTL / 6
	last := time.Now().Add(-every) // the daemon renewed just before it started us
	var goneAt time.Time
	renewing, killed := true, false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(cfg.PIDFile); err == nil && strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
			log.Info("replaced by another keeper; exiting")
			return nil
		}
		gone := false
		select {
		case <-daemonGone:
			gone = true
		default:
		}
		if gone && goneAt.IsZero() {
			goneAt = time.Now()
			cli.SetEndpoints(cfg.Endpoints...)
			log.Warn("the daemon is gone; keeping the lease for the grace, then stopping the node's services", "grace", cfg.Grace)
		}
		if renewing && gone && time.Since(goneAt) > cfg.Grace {
			renewing = false
			log.Warn("no daemon came back: letting the lease expire")
		}
		if renewing {
			sent := time.Now()
			rctx, cancel := context.WithTimeout(ctx, every)
			_, err := cli.KeepAliveOnce(rctx, lease)
			cancel()
			switch {
			case err == nil:
				last, killed = sent, false
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				if gone {
					killMarked(cfg.Home, log)
				}
				log.Info("the lease is gone; exiting (a daemon alive joins again and starts a new keeper)")
				return nil
			}
		}
		if !killed && time.Since(last) > cfg.LeaseTTL-cfg.Margin {
			killMarked(cfg.Home, log)
			killed = true
			if gone {
				return nil
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// killMarked SIGKILLs the process group of every marked process of home,
// each identity-checked.
func killMarked(home string, log hclog.Logger) {
	obs, err := recovery.Scan(home)
	if err != nil {
		log.Error("cannot scan for the node's processes", "error", err)
	}
	for _, o := range obs {
		if err := supervisor.SignalGroup(o.Identity, syscall.SIGKILL); err == nil {
			log.Warn("killed a process of this node: its lease is about to expire", "pid", o.Identity.PID, "service", o.Key().String())
		}
	}
}

// ClientURLs returns the client URLs of every member of the cluster, for
// a keeper, which must reach etcd without this process's embedded member.
func (n *Node) ClientURLs(ctx context.Context) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	defer cancel()
	resp, err := n.cli.MemberList(rctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range resp.Members {
		out = append(out, m.ClientURLs...)
	}
	return out, nil
}

// Endpoints returns the etcd client URLs this node uses (its embedded
// member's, with one).
func (n *Node) Endpoints() []string { return n.cfg.Endpoints }

// Margin returns the fence margin in use; LeaseTTL the lease's TTL.
func (n *Node) Margin() time.Duration   { return n.cfg.Margin }
func (n *Node) LeaseTTL() time.Duration { return n.cfg.LeaseTTL }
