package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) statusCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:               "status NAME",
		Short:             "Show one service: state, spec, last exits, next attempt",
		Args:              exactArgs(1, "one service NAME"),
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.Status(ctx, tenant, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			return printStatus(a.stdout, v, time.Now())
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	return cmd
}

// printStatus writes v as `solo status` shows it, with times relative to
// now.
func printStatus(w io.Writer, v state.ServiceStatus, now time.Time) error {
	tw := tabWriter(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("service", v.Tenant+"/"+v.Name)
	row("state", string(v.State))
	if v.Reason != "" {
		row("reason", v.Reason)
	}
	if !v.NextAttemptAt.IsZero() {
		in := v.NextAttemptAt.Sub(now).Round(100 * time.Millisecond)
		when := "due now"
		if in > 0 {
			when = "in " + in.String()
		}
		row("next attempt", fmt.Sprintf("%s (at %s; restart %d of %d within %s)",
			when, clock(v.NextAttemptAt), v.Restart, v.RestartLimit, v.Spec.RestartWindow))
	}
	row("generation", fmt.Sprint(v.Generation))
	row("pid", pidText(v.PID))
	if v.Uptime > 0 {
		row("uptime", v.Uptime.Std().Round(time.Second).String())
	}
	if v.Readiness != "" {
		row("readiness", v.Readiness)
	}
	if v.Waiting != "" {
		row("waiting for", v.Waiting)
	}
	if v.NotifyStatus != "" {
		row("notify status", v.NotifyStatus)
	}
	if v.Health != "" {
		row("health", v.Health)
	} else if v.Spec.Health != nil {
		row("health", v.Spec.Health.Describe())
	}
	if !v.LastUnhealthy.IsZero() {
		row("last unhealthy", fmt.Sprintf("%s (%s): %s", since(v.LastUnhealthy), clock(v.LastUnhealthy), v.UnhealthyReason))
	}
	row("restarts", fmt.Sprint(v.Restarts))
	row("started", since(v.StartedAt))
	sp := v.Spec
	if sp.Kind != "" {
		row("kind", sp.Kind)
	} else {
		row("command", state.QuoteCommand(sp.Command))
	}
	if sp.Dir != "" {
		row("dir", sp.Dir)
	}
	if len(sp.EnvKeys) > 0 {
		row("env", strings.Join(sp.EnvKeys, " "))
	}
	if len(sp.EnvFile) > 0 {
		row("env files", strings.Join(sp.EnvFile, " "))
	}
	if len(sp.EnvSecrets) > 0 {
		var refs []string
		for _, k := range slices.Sorted(maps.Keys(sp.EnvSecrets)) {
			refs = append(refs, k+"="+sp.EnvSecrets[k])
		}
		row("env secrets", strings.Join(refs, " "))
	}
	if sp.User != "" || sp.Group != "" || len(sp.Groups) > 0 {
		who := cmp.Or(sp.User, "(the daemon's user)")
		if sp.Group != "" {
			who += ", group " + sp.Group
		}
		if len(sp.Groups) > 0 {
			who += ", groups " + strings.Join(sp.Groups, ",")
		}
		row("user", who)
	}
	if sp.Umask != "" {
		row("umask", sp.Umask)
	}
	if len(sp.Nodes) > 0 {
		row("nodes", "only "+strings.Join(sp.Nodes, ", "))
	}
	row("restart", fmt.Sprintf("%s, at most %d restarts within %s", sp.Restart, sp.MaxRestarts, sp.RestartWindow))
	row("stop", fmt.Sprintf("%s, then SIGKILL after %s", sp.StopSignal, sp.StopTimeout))
	stamps := ""
	if sp.Log.Timestamps {
		stamps = ", lines timestamped"
	}
	row("log", fmt.Sprintf("rotated at %s, %d files kept%s", sp.Log.MaxSize, sp.Log.Files, stamps))
	if l := limitsText(sp); l != "" {
		row("limits", l)
	}
	row("deployed", since(v.DeployedAt))
	if len(v.Exits) > 0 {
		row("last exits", "")
		for _, e := range v.Exits {
			fmt.Fprintf(tw, "  %s\t%s\tafter %s\t(generation %d, attempt %d)\n",
				e.At.UTC().Format("2006-01-02 15:04:05"), e.Describe(), e.RanFor.Std().Round(time.Millisecond), e.Generation, e.Attempt)
		}
	}
	return tw.Flush()
}

// clock is a time of day as the CLI prints it, in UTC.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

// limitsText is a spec's limits in words ("memory 64MiB, cpu 0.5 cores,
// pids 100"), or "" if it has none.
func limitsText(sp state.SpecView) string {
	var parts []string
	if sp.MemoryMax != 0 {
		parts = append(parts, "memory "+sp.MemoryMax.String())
	}
	if sp.CPU != 0 {
		parts = append(parts, fmt.Sprintf("cpu %g cores", sp.CPU))
	}
	if sp.PIDsMax != 0 {
		parts = append(parts, fmt.Sprintf("pids %d", sp.PIDsMax))
	}
	return strings.Join(parts, ", ")
}
