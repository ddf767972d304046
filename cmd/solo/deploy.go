package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) deployCmd() *cobra.Command {
	var (
		spec          state.Spec
		restart       string
		maxRestarts   int
		restartWindow time.Duration
		stopTimeout   time.Duration
		env           []string
		w             *startWait
		health        *healthFlags
		logMaxSize    string
		logFiles      int
		logTimestamps bool
		memoryMax     string
		ready         state.ReadySpec
		readyExec     string
		readyTimeout  time.Duration
		envFiles      []string
		envSecrets    []string
		groups        []string
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME [flags] -- CMD [ARG...]",
		Short: "Deploy a service, or redeploy it with a new spec",
		Long: `Deploy makes NAME run CMD. The deploy is written to the log before anything
starts; deploying the spec that already runs changes nothing, and a changed spec
replaces the running instance with a new generation. It then waits (up to
--wait-timeout) for the first attempt to start: a command that cannot be
started (not found, a bad interpreter) exits 1 with the reason.

CMD runs in --dir, by default the directory deploy is run from, so ./prog and
relative paths mean what they mean here. --user runs it as that user, as
runuser does (its groups, HOME, USER, LOGNAME, SHELL), which needs a daemon
running as root. --env-file files are read by the daemon at every start (an
edit applies on the next restart), in order, under --env; their contents never
enter the log. --env-secret KEY=NAME sets KEY to the secret NAME of the vault
(solo secret set), read at every start; a secret that does not exist is
refused at deploy. A command that cannot start as given (not found or not
executable for the user, in its dir with its PATH), an unknown user or group,
a missing env file or dir: refused, nothing written.

With --ready-http, --ready-tcp, --ready-exec or --notify the service stays
"starting" until the probe passes (service_ready is recorded); one not ready
within --ready-timeout is stopped and counts as a failed start. deploy
returns once the process started; watch readiness with ls, status or why.

With --health-http, --health-tcp or --health-exec the ready service is probed
every --health-interval (10s); after --health-retries (3) failures in a row it
is stopped as unhealthy and its restart policy applies. A notify service with
--watchdog must send WATCHDOG=1 at least that often (it gets WATCHDOG_USEC).
Changes of health are recorded (service_health) and shown by ls, status, why.

With --after NAMES every start waits until those services of the tenant that
are coming up are ready; --requires NAMES waits until they run and are ready,
and stops the service (recorded, with the reason) while one of them is down,
starting it again once it is ready. A name that is not a service of the
tenant, the service itself or a cycle is refused, nothing written. deploy does
not wait for the dependencies: a start that waits for them returns at once,
and status says "waiting: db (starting)".

In a cluster, --node NAMES places the service only on those nodes (a drained
one never); while none of them is alive it stays unplaced and status says
"waiting for a node among n1, n2". A bad node name is refused, and so is
--node on a daemon that is not a cluster (exit 2, nothing written).`,
		Example: `  solo deploy web --env PORT=8080 -- ./web --listen :8080
  solo deploy worker --restart on-failure --max-restarts 3 -- python3 worker.py
  solo deploy api --ready-http http://127.0.0.1:8080/healthz -- ./api
  solo deploy web --requires api --after cache -- ./web
  solo deploy gpu-worker --node n1,n2 -- ./worker
  solo deploy db --notify --ready-timeout 2m -- ./db-written-for-systemd
  solo deploy api --ready-http http://127.0.0.1:8080/ --health-http http://127.0.0.1:8080/healthz --health-interval 5s -- ./api
  solo deploy db --notify --watchdog 30s -- ./db-written-for-systemd
  solo deploy db --user postgres --env-file /etc/db.env --umask 0077 -- postgres -D /var/lib/db`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash != 1 || len(args) < 2 {
				return usagef(fmt.Errorf("usage: solo deploy NAME [flags] -- CMD [ARG...]"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Name, spec.Command = args[0], args[1:]
			spec.Restart = state.RestartPolicy(restart)
			if cmd.Flags().Changed("max-restarts") {
				spec.MaxRestarts = &maxRestarts
			}
			spec.RestartWindow = state.Duration(restartWindow)
			spec.StopTimeout = state.Duration(stopTimeout)
			if err := whoFlags(cmd, &spec, groups, envFiles); err != nil {
				return err
			}
			if len(env) > 0 {
				spec.Env = map[string]string{}
				for _, kv := range env {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return usagef(fmt.Errorf("--env %q: want KEY=VALUE", kv))
					}
					spec.Env[k] = v
				}
			}
			es, err := parseEnvSecrets(envSecrets)
			if err != nil {
				return err
			}
			spec.EnvSecrets = es
			if err := logFlags(cmd, &spec, logMaxSize, logFiles, logTimestamps); err != nil {
				return err
			}
			ready.Exec, ready.Timeout = nil, state.Duration(readyTimeout)
			if readyExec != "" {
				ready.Exec = strings.Fields(readyExec)
			}
			if err := readyFlags(cmd, &spec, &ready); err != nil {
				return err
			}
			if err := limitFlags(&spec, memoryMax); err != nil {
				return err
			}
			if err := health.apply(cmd, &spec); err != nil {
				return err
			}
			wait, err := w.duration()
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.DeployWait(ctx, spec, wait)
			if err != nil {
				return namesRefusal(err)
			}
			return a.reportStart(res, "deployed", wait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Tenant, "tenant", state.DefaultTenant, "tenant of the service")
	f.StringVar(&restart, "restart", string(state.DefaultRestart), "restart policy: always, on-failure or never")
	f.IntVar(&maxRestarts, "max-restarts", state.DefaultMaxRestarts, "restarts allowed within --restart-window before the service is failed")
	f.DurationVar(&restartWindow, "restart-window", time.Duration(state.DefaultRestartWindow), "window in which restarts are counted")
	f.StringArrayVar(&env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringVar(&spec.Dir, "dir", "", "working directory (default: the current one)")
	f.StringVar(&spec.User, "user", "", "run as this user (name or uid), with its groups, HOME, USER, LOGNAME, SHELL; needs a root daemon")
	f.StringVar(&spec.Group, "group", "", "primary group (name or gid) instead of the user's")
	f.StringSliceVar(&groups, "groups", nil, "supplementary groups on top of the user's, comma-separated (repeatable)")
	f.StringVar(&spec.Umask, "umask", "", "file mode creation mask, octal (e.g. 0027)")
	f.StringArrayVar(&envFiles, "env-file", nil, "file of KEY=VALUE lines read at every start (repeatable; --env wins)")
	f.StringArrayVar(&envSecrets, "env-secret", nil, "KEY=NAME: set KEY to the vault's secret NAME at every start (repeatable; see solo secret)")
	f.StringVar(&spec.StopSignal, "stop-signal", state.DefaultStopSignal, "signal that asks the service to stop")
	f.DurationVar(&stopTimeout, "stop-timeout", time.Duration(state.DefaultStopTimeout), "time between the stop signal and SIGKILL")
	f.StringVar(&logMaxSize, "log-max-size", state.DefaultLogMaxSize.String(), "size at which the service's log is rotated: bytes, or with K, M, G, KiB, MiB, GiB")
	f.IntVar(&logFiles, "log-files", state.DefaultLogFiles, "rotated log files kept")
	f.BoolVar(&logTimestamps, "log-timestamps", false, "prefix each line of the log with the time it was written (RFC 3339, UTC, ms); needed by logs --since")
	f.StringVar(&ready.HTTP, "ready-http", "", "ready once a GET of this URL answers 2xx or 3xx")
	f.StringVar(&ready.TCP, "ready-tcp", "", "ready once HOST:PORT accepts a connection")
	f.StringVar(&readyExec, "ready-exec", "", "ready once this command (split on blanks, no shell) exits 0")
	f.BoolVar(&ready.Notify, "notify", false, "ready once the service sends READY=1 to $NOTIFY_SOCKET (systemd notify protocol)")
	f.DurationVar(&readyTimeout, "ready-timeout", 0, "time to become ready before the start counts as failed (default 1m)")
	f.StringVar(&memoryMax, "memory-max", "", "most memory the service's processes may use together, past which the OOM killer ends one: bytes, or with K, M, G, KiB, MiB, GiB (at least 1MiB; needs cgroups)")
	f.Float64Var(&spec.CPU, "cpu", 0, "share of CPU time in cores, such as 0.5 (needs cgroups)")
	f.Int64Var(&spec.PIDsMax, "pids-max", 0, "most processes and threads the service may have (needs cgroups)")
	health = addHealthFlags(cmd)
	f.StringSliceVar(&spec.After, "after", nil, "start only once these services of the tenant that are coming up are ready, comma-separated (repeatable)")
	f.StringSliceVar(&spec.Requires, "requires", nil, "start only once these services of the tenant run and are ready, and stop while one is down, comma-separated (repeatable; implies --after)")
	f.StringSliceVar(&spec.Nodes, "node", nil, "in a cluster, place the service only on these nodes, comma-separated (repeatable); a single-machine daemon refuses it")
	w = addStartWait(cmd)
	cmd.RegisterFlagCompletionFunc("restart", cobra.FixedCompletions([]string{"always", "on-failure", "never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// logFlags sets spec.Log from the --log-* flags, if any was given. A bad
// value is a usage error naming the flag; nothing is sent.
func logFlags(cmd *cobra.Command, spec *state.Spec, maxSize string, files int, timestamps bool) error {
	fl := cmd.Flags()
	if !fl.Changed("log-max-size") && !fl.Changed("log-files") && !fl.Changed("log-timestamps") {
		return nil
	}
	if fl.Changed("log-files") && (files < 1 || files > state.MaxLogFiles) {
		return usagef(fmt.Errorf("--log-files %d: want 1 to %d", files, state.MaxLogFiles))
	}
	l := &state.LogSpec{Files: files, Timestamps: timestamps}
	size, err := state.ParseByteSize(maxSize)
	if err != nil {
		return usagef(fmt.Errorf("--log-max-size: %w", err))
	}
	l.MaxSize = size
	spec.Log = l
	n := spec.Clone()
	n.Normalize()
	if fe := new(state.FieldError); errors.As(n.Validate(), &fe) && strings.HasPrefix(fe.Field, "log.") {
		return usagef(fmt.Errorf("--log-%s: %s", strings.ReplaceAll(strings.TrimPrefix(fe.Field, "log."), "_", "-"), fe.Problem))
	}
	return nil
}

// whoFlags fills the who-and-where of spec from deploy's flags: dir (the
// caller's working directory by default; a relative one is taken from
// it, as are env files), groups and env files. The spec's own checks
// (state.Spec.Validate) run in the daemon; a flag that cannot even be
// read is a usage error here.
func whoFlags(cmd *cobra.Command, spec *state.Spec, groups, envFiles []string) error {
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("deploy: the current directory: %w (pass --dir)", err)
	}
	switch {
	case !cmd.Flags().Changed("dir"):
		spec.Dir = cwd
	case spec.Dir == "":
		return usagef(fmt.Errorf("--dir: empty; omit it for the current directory"))
	default:
		spec.Dir = absFrom(cwd, spec.Dir)
	}
	for _, g := range groups {
		if g == "" {
			return usagef(fmt.Errorf("--groups: an empty group name"))
		}
	}
	spec.Groups = groups
	for _, f := range envFiles {
		if f == "" {
			return usagef(fmt.Errorf("--env-file: empty path"))
		}
		spec.EnvFile = append(spec.EnvFile, absFrom(cwd, f))
	}
	if cmd.Flags().Changed("umask") && spec.Umask == "" {
		return usagef(fmt.Errorf("--umask: empty; want octal such as 0027"))
	}
	if cmd.Flags().Changed("user") && spec.User == "" {
		return usagef(fmt.Errorf("--user: empty; omit it to run as the daemon's user"))
	}
	if cmd.Flags().Changed("group") && spec.Group == "" {
		return usagef(fmt.Errorf("--group: empty; omit it for the user's own"))
	}
	return nil
}

// absFrom returns path made absolute against base, cleaned.
func absFrom(base, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(base, path)
}

// readyFlags sets spec.Ready from the --ready-* and --notify flags, if any
// was given. A bad value is a usage error naming the flag; nothing is sent.
func readyFlags(cmd *cobra.Command, spec *state.Spec, r *state.ReadySpec) error {
	fl := cmd.Flags()
	names := map[string]string{"ready.http": "--ready-http", "ready.tcp": "--ready-tcp", "ready.exec": "--ready-exec", "ready.timeout": "--ready-timeout", "ready": "--ready-http|--ready-tcp|--ready-exec|--notify"}
	any := false
	for _, f := range []string{"ready-http", "ready-tcp", "ready-exec", "notify", "ready-timeout"} {
		any = any || fl.Changed(f)
	}
	if !any {
		return nil
	}
	if fl.Changed("ready-timeout") && r.Timeout <= 0 {
		return usagef(fmt.Errorf("--ready-timeout %s: must be > 0", r.Timeout))
	}
	if fl.Changed("ready-exec") && r.Exec == nil {
		r.Exec = []string{}
	}
	rs := *r
	spec.Ready = &rs
	n := spec.Clone()
	n.Normalize()
	if fe := new(state.FieldError); errors.As(n.Validate(), &fe) && names[fe.Field] != "" {
		return usagef(fmt.Errorf("%s: %s", names[fe.Field], fe.Problem))
	}
	return nil
}

// limitFlags sets spec.MemoryMax from --memory-max and checks the limit
// flags (--memory-max, --cpu, --pids-max) with the spec's own rule. A bad
// value is a usage error naming the flag; nothing is sent.
func limitFlags(spec *state.Spec, memoryMax string) error {
	if memoryMax != "" {
		size, err := state.ParseByteSize(memoryMax)
		if err != nil {
			return usagef(fmt.Errorf("--memory-max: %w", err))
		}
		spec.MemoryMax = state.MemorySize(size)
	}
	n := spec.Clone()
	n.Normalize()
	if fe := new(state.FieldError); errors.As(n.Validate(), &fe) {
		switch fe.Field {
		case "memory_max", "cpu", "pids_max":
			return usagef(fmt.Errorf("--%s: %s", strings.ReplaceAll(fe.Field, "_", "-"), fe.Problem))
		}
	}
	return nil
}
