package main

import (
	"errors"
	"fmt"
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
		logMaxSize    string
		logFiles      int
		logTimestamps bool
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME [flags] -- CMD [ARG...]",
		Short: "Deploy a service, or redeploy it with a new spec",
		Long: `Deploy makes NAME run CMD. The deploy is written to the log before anything
starts; deploying the spec that already runs changes nothing, and a changed spec
replaces the running instance with a new generation. It then waits (up to
--wait-timeout) for the first attempt to start: a command that cannot be
started (not found, a bad interpreter) exits 1 with the reason.`,
		Example: `  solo deploy web --env PORT=8080 -- ./web --listen :8080
  solo deploy worker --restart on-failure --max-restarts 3 -- python3 worker.py`,
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
			if err := logFlags(cmd, &spec, logMaxSize, logFiles, logTimestamps); err != nil {
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
				return err
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
	f.StringVar(&spec.Dir, "dir", "", "working directory (absolute)")
	f.StringVar(&spec.StopSignal, "stop-signal", state.DefaultStopSignal, "signal that asks the service to stop")
	f.DurationVar(&stopTimeout, "stop-timeout", time.Duration(state.DefaultStopTimeout), "time between the stop signal and SIGKILL")
	f.StringVar(&logMaxSize, "log-max-size", state.DefaultLogMaxSize.String(), "size at which the service's log is rotated: bytes, or with K, M, G, KiB, MiB, GiB")
	f.IntVar(&logFiles, "log-files", state.DefaultLogFiles, "rotated log files kept")
	f.BoolVar(&logTimestamps, "log-timestamps", false, "prefix each line of the log with the time it was written (RFC 3339, UTC, ms); needed by logs --since")
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
