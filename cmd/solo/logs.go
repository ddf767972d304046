package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) logsCmd() *cobra.Command {
	var (
		tenant string
		follow bool
		tail   int
		since  time.Duration
	)
	cmd := &cobra.Command{
		Use:               "logs NAME",
		Short:             "Print what a service wrote (stdout and stderr)",
		Args:              exactArgs(1, "one service NAME"),
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.timeout)
				defer cancel()
			}
			if cmd.Flags().Changed("since") {
				if since <= 0 {
					return usagef(fmt.Errorf("--since %s: want a positive duration such as 10m", since))
				}
				if !cmd.Flags().Changed("tail") {
					tail = -1 // every line since
				}
				return c.LogsSince(ctx, tenant, args[0], since, tail, follow, a.stdout)
			}
			return c.Logs(ctx, tenant, args[0], tail, follow, a.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing what the service writes")
	f.IntVar(&tail, "tail", 100, "lines to print from the end (with --since: of the lines since, default all)")
	f.DurationVar(&since, "since", 0, "only lines written within this long, such as 10m; needs a log with timestamps (deploy --log-timestamps)")
	return cmd
}
