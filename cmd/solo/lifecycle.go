package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// startWait is the --wait, --no-wait and --wait-timeout of the commands
// that start something (deploy, start, restart, apply).
type startWait struct {
	wait, noWait bool
	timeout      time.Duration
}

func addStartWait(cmd *cobra.Command) *startWait {
	w := &startWait{}
	f := cmd.Flags()
	f.BoolVar(&w.wait, "wait", true, "wait for the first attempt to start (exec succeeded) or fail, up to --wait-timeout")
	f.BoolVar(&w.noWait, "no-wait", false, "return once the request is written; do not wait for the start")
	f.DurationVar(&w.timeout, "wait-timeout", solo.DefaultStartWait, "longest wait for the start")
	return w
}

// duration is how long to ask the daemon to wait: 0 for not at all.
func (w *startWait) duration() (time.Duration, error) {
	if w.timeout < 0 || w.timeout > 5*time.Minute {
		return 0, usagef(fmt.Errorf("--wait-timeout %s: want a duration from 0 to 5m", w.timeout))
	}
	if w.noWait || !w.wait {
		return 0, nil
	}
	return w.timeout, nil
}

// reportStart prints what a deploy, start or restart did (done is its
// verb: "deployed", "started", "restarted") and returns an error, exit 1,
// when the attempt could not start: the reason is the daemon's.
func (a *app) reportStart(res wire.DeployResult, done string, wait time.Duration) error {
	v := res.Service
	if a.json {
		if err := a.printJSON(res); err != nil {
			return err
		}
	} else if !res.Changed {
		fmt.Fprintf(a.stdout, "%s/%s unchanged (generation %d, %s)\n", v.Tenant, v.Name, v.Generation, v.State)
	} else {
		line := fmt.Sprintf("%s %s/%s generation %d", done, v.Tenant, v.Name, v.Generation)
		switch {
		case res.Started && v.PID != 0:
			line += fmt.Sprintf(", pid %d", v.PID)
		case len(v.WaitingFor) > 0:
			line += "; its start waits for " + state.DescribeBlockers(v.WaitingFor)
		case res.Started, res.StartError != "", wait == 0:
		default:
			line += fmt.Sprintf("; not started after %s (%s): see solo status %s", wait, v.State, v.Name)
		}
		fmt.Fprintln(a.stdout, line)
	}
	if res.StartError != "" {
		return errors.New(res.StartError + fmt.Sprintf(" (see solo status %s and solo logs %s)", v.Name, v.Name))
	}
	return nil
}

func (a *app) startCmd() *cobra.Command {
	return a.startAgainCmd("start", "started", "Start a stopped, failed or finished service again with its last spec",
		`start makes NAME desired again with the spec it was last deployed with (same
generation): after solo stop, after it failed (its restart limit), or after it
ended as its restart policy wanted. A service that runs is left alone. It waits
for the attempt to start, and exits 1 with the reason if it cannot.`)
}

func (a *app) restartCmd() *cobra.Command {
	return a.startAgainCmd("restart", "restarted", "Stop a service with its stop procedure and start it again",
		`restart stops NAME's instance the way a stop does (its stop signal, its stop
timeout, then SIGKILL) and starts a new attempt of the same spec. The restart is
recorded as requested: it does not count toward the restart limit, nor in
RESTARTS, which counts restarts after the service's own exits. Restarting a
stopped service starts it.`)
}

func (a *app) startAgainCmd(verb, done, short, long string) *cobra.Command {
	var tenant string
	var w *startWait
	cmd := &cobra.Command{
		Use:               verb + " NAME",
		Short:             short,
		Long:              long,
		Args:              exactArgs(1, "one service NAME"),
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			wait, err := w.duration()
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			call := c.Start
			if verb == "restart" {
				call = c.Restart
			}
			res, err := call(ctx, tenant, args[0], wait)
			if client.IsNotFound(err) {
				return fmt.Errorf("%w: it was never deployed, or was removed: deploy it (solo deploy %s -- CMD)", err, args[0])
			}
			if err != nil {
				return err
			}
			return a.reportStart(res, done, wait)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	w = addStartWait(cmd)
	return cmd
}

func (a *app) signalCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "signal NAME SIG",
		Short: "Send a signal to a service's process group (identity-checked)",
		Long: `signal sends SIG to the process group of NAME's running instance, once the
daemon has checked that the recorded process (pid, start time, boot) is still
the one it started: a process that is gone, or a pid reused by another, is
refused and nothing is signalled. The signal is recorded in the log.

SIG is a name, with or without SIG, in any case: ` + strings.Join(signalNames(), ", ") + `.`,
		Example: `  solo signal nginx HUP      # reload
  solo signal worker USR1`,
		Args:              exactArgs(2, "a service NAME and a signal SIG"),
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := state.ParseSignal(args[1]); err != nil {
				return usagef(fmt.Errorf("signal: %w (known: %s)", err, strings.Join(signalNames(), ", ")))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.Signal(ctx, tenant, args[0], args[1])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "sent %s to %s/%s (pid %d and its group)\n", res.Signal, res.Tenant, res.Name, res.PID)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	return cmd
}

// signalNames lists the signals signal accepts, as [state.ParseSignal]
// knows them.
func signalNames() []string { return state.SignalNames() }

func (a *app) rmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Forget a stopped service: gone from ls, its name free again",
		Long: `rm forgets NAME: it is gone from ls and status, and a later deploy of the name
starts again at generation 1. Only a stopped service can be removed (solo stop
NAME first); its log files are kept.`,
	}
	return a.serviceVerb(cmd, func(ctx context.Context, c *client.Client, tenant, name string) (string, any, error) {
		return "removed", wire.RemoveResult{Tenant: tenant, Name: name, Removed: true}, c.Remove(ctx, tenant, name)
	})
}
