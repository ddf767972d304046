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
	"github.com/solo-rt/solo/shutdown"
)

type daemonOptions struct {
	python    string
	listen    string
	grace     time.Duration
	logFormat string
	logLevel  string

	requireToken bool          // the socket needs a token too
	maxTokenTTL  time.Duration // longest ttl a grant may ask for
	vaultKeyFile string        // the vault's key file; "" for <data-dir>/vault.key
}

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
	return cmd
}

func (a *app) runDaemon(o daemonOptions) error {
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef(fmt.Errorf("--log-format %q: want text or json", o.logFormat))
	}
	if o.maxTokenTTL <= 0 {
		return usagef(fmt.Errorf("--max-token-ttl %s: want a positive duration", o.maxTokenTTL))
	}
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
	rt, err := solo.Open(context.Background(), solo.Options{
		DataDir: a.dataDir,
		Stamper: stamper,
		Logger:  log,
		Store:   &eventstore.Options{OnCommit: metrics.ObserveCommit},
		Version: buildVersion(),

		MaxTokenTTL:  o.maxTokenTTL,
		VaultKeyFile: o.vaultKeyFile,
		Python:       o.python,
		// The daemon owns its process: after a large apply it hands the
		// burst's memory back (a library leaves that to its host).
		ReleaseMemoryAfterApply: true,
	})
	if err != nil {
		return err // a LockedError names the daemon that holds the data dir
	}
	metrics.Bind(rt)
	authz := api.NewAuthorizer(rt.Tokens(), api.AuthorizerOptions{RequireToken: o.requireToken, Logger: log.Named("auth")})
	srv := api.New(rt, api.Options{Logger: log.Named("api"), Metrics: metrics, Authorize: authz.Authorize})

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	sock := a.socketPath()
	ul, err := listenUnix(sock)
	if err != nil {
		rt.Close(context.Background())
		return err
	}
	go srv.Serve(serveCtx, ul)
	if o.listen != "" {
		tl, err := net.Listen("tcp", o.listen)
		if err != nil {
			rt.Close(context.Background())
			return fmt.Errorf("listen on %s: %w", o.listen, err)
		}
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
