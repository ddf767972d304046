package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) statusCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:               "status NAME",
		Short:             "Show one service",
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
			tw := a.table()
			row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
			row("service", v.Tenant+"/"+v.Name)
			row("state", string(v.State))
			row("generation", fmt.Sprint(v.Generation))
			row("pid", pidText(v.PID))
			row("restarts", fmt.Sprint(v.Restarts))
			row("started", since(v.StartedAt))
			if v.Kind != "" {
				row("kind", v.Kind)
			} else {
				row("command", strings.Join(v.Command, " "))
			}
			if v.ExitCode != nil {
				row("last exit", fmt.Sprint(*v.ExitCode))
			}
			if v.Signal != "" {
				row("last signal", v.Signal)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	return cmd
}
