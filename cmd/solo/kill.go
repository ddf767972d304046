package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) killCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:               "kill NAME",
		Short:             "Stop a service for good (it stays down across restarts)",
		Args:              exactArgs(1, "one service NAME"),
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.Kill(ctx, tenant, args[0]); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"tenant": tenant, "name": args[0], "killed": true})
			}
			fmt.Fprintf(a.stdout, "killed %s/%s\n", tenant, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	return cmd
}

// completeServices completes service names from a running daemon.
func (a *app) completeServices(tenant *string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		views, err := c.List(cmd.Context(), *tenant)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, 0, len(views))
		for _, v := range views {
			names = append(names, v.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
