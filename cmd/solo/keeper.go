package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/cluster"
)

// keeperCmd is `solo _keeper`, the per-node process a cluster daemon
// starts in its own session (see cluster.RunKeeper). Not for users: hidden.
func (a *app) keeperCmd() *cobra.Command {
	var cfg cluster.KeeperConfig
	var lease, endpoints, own string
	cmd := &cobra.Command{
		Use:    "_keeper",
		Short:  "Hold a cluster node's lease beside its daemon; stop the node's services if it is lost",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
			id, err := strconv.ParseInt(lease, 16, 64)
			if err != nil {
				return usagef(fmt.Errorf("--lease %q: want the lease id in hex", lease))
			}
			cfg.Lease = id
			cfg.Home, _ = filepath.Abs(a.dataDir)
			cfg.Endpoints = strings.Split(endpoints, ",")
			if own != "" {
				cfg.Own = strings.Split(own, ",")
			}
			cfg.PIDFile = keeperPIDFile(a.dataDir)
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "solo.keeper", Output: a.stderr, TimeFormat: time.RFC3339Nano})
			return cluster.RunKeeper(context.Background(), cfg)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.DaemonPID, "daemon-pid", 0, "the daemon's pid")
	f.StringVar(&lease, "lease", "", "the node's lease id, hex")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", cluster.DefaultLeaseTTL, "the lease's TTL")
	f.DurationVar(&cfg.Margin, "margin", cluster.DefaultLeaseTTL/4, "the fence margin")
	f.StringVar(&endpoints, "etcd-endpoints", "", "every etcd member's client URL")
	f.StringVar(&own, "own-endpoints", "", "the daemon's own etcd endpoints, the only ones used while it lives (default --etcd-endpoints)")
	return cmd
}

func keeperPIDFile(dataDir string) string { return filepath.Join(dataDir, "cluster", "keeper.pid") }

// startKeeper starts a keeper for lease in its own session, logging to
// <data-dir>/cluster/keeper.log, and names it in the keeper pid file (the
// keeper it replaces exits when it reads another pid there).
func startKeeper(dataDir string, node *cluster.Node, lease int64) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	eps, err := node.ClientURLs(context.Background())
	if err != nil {
		return fmt.Errorf("list the etcd members for the keeper: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dataDir, "cluster", "keeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "--data-dir", dataDir, "_keeper", "--daemon-pid", strconv.Itoa(os.Getpid()),
		"--lease", strconv.FormatInt(lease, 16), "--lease-ttl", node.LeaseTTL().String(), "--margin", node.Margin().String(),
		"--etcd-endpoints", strings.Join(eps, ","), "--own-endpoints", strings.Join(node.Endpoints(), ","))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reaped while the daemon lives; reparented after
	tmp := keeperPIDFile(dataDir) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, keeperPIDFile(dataDir))
}
