package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) logsCmd() *cobra.Command {
	var (
		tenant string
		follow bool
		tail   int
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
			return c.Logs(ctx, tenant, args[0], tail, follow, a.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing what the service writes")
	f.IntVar(&tail, "tail", 100, "lines to print from the end")
	return cmd
}
