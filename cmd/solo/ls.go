package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) lsCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List services",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			views, err := c.List(ctx, tenant)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(views)
			}
			tw := a.table()
			// In a cluster, a NODE column says where each service is placed.
			clustered := slices.ContainsFunc(views, func(v state.ServiceView) bool { return v.Node != "" })
			header := "TENANT\tNAME\tGEN\tSTATE\tREADY\tPID\tRESTARTS\tSTARTED\tCOMMAND"
			if clustered {
				header = "TENANT\tNAME\tGEN\tSTATE\tREADY\tNODE\tPID\tRESTARTS\tSTARTED\tCOMMAND"
			}
			fmt.Fprintln(tw, header)
			for _, v := range views {
				node := ""
				if clustered {
					node = orDash(v.Node) + "\t"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s%s\t%d\t%s\t%s\n", v.Tenant, v.Name, v.Generation, v.State,
					readyText(v), node, pidText(v.PID), v.Restarts, since(v.StartedAt), commandText(v))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant (default: every tenant)")
	return cmd
}

// readyText is the READY column: yes, no, or unhealthy for a ready
// instance whose health check failed (it is being restarted).
func readyText(v state.ServiceView) string {
	switch {
	case v.Healthy != nil && !*v.Healthy:
		return "unhealthy"
	case v.Ready:
		return "yes"
	}
	return "no"
}

func pidText(pid int) string {
	if pid == 0 {
		return "-"
	}
	return fmt.Sprint(pid)
}

func commandText(v state.ServiceView) string {
	if v.Kind != "" {
		return "kind:" + v.Kind
	}
	s := state.QuoteCommand(v.Command)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// since words how long ago t was, for tables.
func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}
