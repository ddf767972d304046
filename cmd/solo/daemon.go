package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/shutdown"
)

type daemonOptions struct {
	python    string
	listen    string
	grace     time.Duration
	logFormat string
	logLevel  string

	cluster clusterOptions // --cluster and its flags (cluster.go)

	requireToken bool          // the socket needs a token too
	maxTokenTTL  time.Duration // longest ttl a grant may ask for
	vaultKeyFile string        // the vault's key file; "" for <data-dir>/vault.key

	quotas state.Limits   // per tenant; 0: no limit
	rates  api.RateLimits // per tenant and per token; 0: no limit
}

// Defaults of the daemon's limits. A tenant is a party the operator hands
// tokens to; the local admin is never limited. The quotas keep one tenant
// from taking the host: 1,000 services is the scale a daemon is measured
// at (a thousand starting at once), 16 kernel sessions are some 1 GiB of
// Python, 1,000 queued tasks an hour of short cells. The rates are far
// above what a person at the CLI or the web view makes (a page refreshes
// on events, coalesced, a few requests a second at most), and well under
// what one client in a loop makes.
const (
	defaultMaxServices = 1000
	defaultMaxSessions = 16
	defaultMaxTasks    = 1000
	defaultTenantRate  = 100 // requests/s
	defaultTenantBurst = 200
	defaultTokenRate   = 50
	defaultTokenBurst  = 100
)

func (a *app) daemonCmd() *cobra.Command {
	var o daemonOptions
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the supervisor: bring back what the log says should run, serve the API",
		Long: `daemon opens the data directory, brings back every service the log says should
run (re-adopting those still alive), and serves the API on <data-dir>/solo.sock and,
with --listen, on TCP. SIGTERM or SIGINT drains it: services stop in parallel within
--grace, and the exit code is 0 if every one stopped in time. A second signal forces.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return a.runDaemon(o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "also serve the API on this TCP address, e.g. :7070")
	f.DurationVar(&o.grace, "grace", solo.DefaultGrace, "how long a shutdown lets services stop before killing them")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	f.BoolVar(&o.requireToken, "require-token", false, "require a token on the unix socket too (TCP always requires one)")
	f.DurationVar(&o.maxTokenTTL, "max-token-ttl", capability.DefaultMaxTTL, "longest ttl a token grant may ask for")
	f.StringVar(&o.vaultKeyFile, "vault-key-file", "", "the vault's key file: 32 bytes, mode 0600, made on first use (default <data-dir>/vault.key); a systemd credential or a mounted Kubernetes Secret works")
	f.StringVar(&o.python, "python", session.DefaultPython, "interpreter that runs kernel sessions (needs ipykernel)")
	f.IntVar(&o.quotas.Services, "max-services-per-tenant", defaultMaxServices, "most services a tenant may hold, stopped ones included (0: no limit; the local admin is never limited)")
	f.IntVar(&o.quotas.Sessions, "max-sessions-per-tenant", defaultMaxSessions, "most live kernel sessions a tenant may hold (0: no limit)")
	f.IntVar(&o.quotas.Tasks, "max-tasks-per-tenant", defaultMaxTasks, "most queued tasks a tenant's sessions may hold (0: no limit)")
	f.Float64Var((*float64)(&o.rates.Tenant), "rate-per-tenant", defaultTenantRate, "API requests per second a tenant's tokens may make together (0: no limit)")
	f.IntVar(&o.rates.TenantBurst, "burst-per-tenant", defaultTenantBurst, "API requests a tenant's tokens may make at once, above --rate-per-tenant")
	f.Float64Var((*float64)(&o.rates.Token), "rate-per-token", defaultTokenRate, "API requests per second one token may make (0: no limit)")
	f.IntVar(&o.rates.TokenBurst, "burst-per-token", defaultTokenBurst, "API requests one token may make at once, above --rate-per-token")
	o.cluster.flags(f)
	return cmd
}

func (a *app) runDaemon(o daemonOptions) error {
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef(fmt.Errorf("--log-format %q: want text or json", o.logFormat))
	}
	if o.maxTokenTTL <= 0 {
		return usagef(fmt.Errorf("--max-token-ttl %s: want a positive duration", o.maxTokenTTL))
	}
	if err := checkLimits(o.quotas, o.rates); err != nil {
		return err
	}
	// A client over a rate waits for its 429 as long as it is told to
	// (Retry-After, 1 s at least): a flood of clients that retry at once
	// costs one request per client per second, not the daemon's CPU, so
	// that the other tenants are not slowed (BenchmarkNoisyNeighbour).
	o.rates.Hold = time.Second
	if o.vaultKeyFile != "" {
		p, err := filepath.Abs(o.vaultKeyFile)
		if err != nil {
			return usagef(fmt.Errorf("--vault-key-file: %w", err))
		}
		o.vaultKeyFile = p
	}
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return usagef(fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", o.logLevel))
	}
	if err := o.cluster.check(); err != nil {
		return usagef(err)
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "solo", Level: level, JSONFormat: o.logFormat == "json", Output: a.stderr, TimeFormat: time.RFC3339Nano,
	})

	// Catch SIGTERM and SIGINT from now on: one that arrives while the
	// daemon recovers is kept and drains it once it is up, instead of
	// killing it before it could record anything.
	signals := shutdown.Catch()
	defer signals.Stop()

	// As PID 1 in a container, orphans are reparented to us: reap them,
	// by pid, without touching our own children's statuses.
	if shutdown.IsInit() {
		reaper, err := shutdown.StartReaper(log.Named("reaper"))
		if err != nil {
			return err
		}
		defer reaper.Stop()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := api.NewMetrics(reg)

	start := time.Now()
	stamper, err := stamperArgv()
	if err != nil {
		return err
	}
	// A cluster node listens before it joins, so that its presence key
	// names the address it serves on.
	var tl net.Listener
	if o.listen != "" {
		if tl, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("listen on %s: %w", o.listen, err)
		}
		defer tl.Close()
	}
	node, err := o.cluster.join(a.dataDir, tl, log.Named("cluster"), reg)
	if err != nil {
		return err
	}
	var clusterLog eventstore.Log
	var solonode solo.Node
	if node != nil {
		defer node.Close()
		clusterLog, solonode = node.Log(), node
	}
	var clusterTokens func(context.Context, capability.Options) (capability.Tokens, error)
	if node != nil {
		clusterTokens = node.OpenTokens
	}
	rt, err := solo.Open(context.Background(), solo.Options{
		Log:     clusterLog,
		Node:    solonode,
		Tokens:  clusterTokens,
		DataDir: a.dataDir,
		Stamper: stamper,
		Logger:  log,
		Store:   &eventstore.Options{OnCommit: metrics.ObserveCommit},
		Version: buildVersion(),

		MaxTokenTTL:  o.maxTokenTTL,
		VaultKeyFile: o.vaultKeyFile,
		Python:       o.python,
		Quotas:       o.quotas,
		// The daemon owns its process: after a large apply it hands the
		// burst's memory back (a library leaves that to its host).
		ReleaseMemoryAfterApply: true,
	})
	if err != nil {
		return err // a LockedError names the daemon that holds the data dir
	}
	metrics.Bind(rt)
	authz := api.NewAuthorizer(rt.Tokens(), api.AuthorizerOptions{RequireToken: o.requireToken, Logger: log.Named("auth")})
	apiOpts := api.Options{Logger: log.Named("api"), Metrics: metrics, Authorize: authz.Authorize, Rates: o.rates}
	if node != nil {
		dir := a.dataDir
		node.OnLease(func(lease int64) {
			if err := startKeeper(dir, node, lease); err != nil {
				log.Error("cannot start the node's keeper: if this daemon is killed, its services run on until it comes back", "error", err)
			}
		})
		node.Start(rt)
		apiOpts.Nodes, apiOpts.Drain = node.Nodes, node.Drain
	}
	srv := api.New(rt, apiOpts)

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	sock := a.socketPath()
	ul, err := listenUnix(sock)
	if err != nil {
		rt.Close(context.Background())
		return err
	}
	go srv.Serve(serveCtx, ul)
	if tl != nil {
		go srv.Serve(serveCtx, tl)
		log.Info("serving API on TCP", "addr", tl.Addr().String())
	}
	srv.SetReady(true)
	log.Info("ready", "data_dir", a.dataDir, "socket", sock, "services", len(rt.List("")), "took", time.Since(start), "pid", os.Getpid(), "version", buildVersion())

	code := signals.Wait(context.Background(), shutdown.Options{
		Grace:  o.grace,
		Logger: log,
		Drain: func(ctx context.Context, reason string, grace time.Duration) (int, error) {
			srv.SetReady(false)
			res, err := rt.Shutdown(ctx, reason, grace)
			return res.ExitCode, err
		},
	})
	stopServing()
	a.exit = code
	return nil
}

// checkLimits refuses negative quotas and rates, and a rate without a
// burst, naming the flag: a usage error, before anything is opened.
func checkLimits(q state.Limits, r api.RateLimits) error {
	for _, c := range []struct {
		flag string
		v    float64
	}{
		{"--max-services-per-tenant", float64(q.Services)},
		{"--max-sessions-per-tenant", float64(q.Sessions)},
		{"--max-tasks-per-tenant", float64(q.Tasks)},
		{"--rate-per-tenant", float64(r.Tenant)},
		{"--burst-per-tenant", float64(r.TenantBurst)},
		{"--rate-per-token", float64(r.Token)},
		{"--burst-per-token", float64(r.TokenBurst)},
	} {
		if c.v < 0 {
			return usagef(fmt.Errorf("%s %v: must be 0 (no limit) or more", c.flag, c.v))
		}
	}
	if r.Tenant > 0 && r.TenantBurst == 0 {
		return usagef(fmt.Errorf("--rate-per-tenant %v needs --burst-per-tenant of at least 1", float64(r.Tenant)))
	}
	if r.Token > 0 && r.TokenBurst == 0 {
		return usagef(fmt.Errorf("--rate-per-token %v needs --burst-per-token of at least 1", float64(r.Token)))
	}
	return nil
}

// listenUnix listens on the daemon's socket, mode 0600 (its owner is the
// admin). A socket file left by a crash is replaced; one a live daemon
// answers on is refused.
func listenUnix(path string) (net.Listener, error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("socket path %s is %d bytes, over the 107 a unix socket allows: pass a shorter --socket", path, len(path))
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s is served by a running daemon: stop it first, or pass another --socket", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Before the chmod the socket has the umask's mode, which never grants
	// others write (connect) permission under the usual 022.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
