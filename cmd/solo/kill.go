package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) killCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "kill NAME",
		Aliases: []string{"stop"},
		Short:   "Stop a service (stop and kill are one verb): it stays down across daemon restarts",
		Long: `kill (or stop) stops NAME with its stop procedure (its stop signal, its stop
timeout, then SIGKILL) and keeps it down, across daemon restarts too, until
solo start or a new deploy. Its spec is kept.`,
	}
	return a.serviceVerb(cmd, func(ctx context.Context, c *client.Client, tenant, name string) (string, any, error) {
		done := "killed"
		if cmd.CalledAs() == "stop" {
			done = "stopped"
		}
		return done, map[string]any{"tenant": tenant, "name": name, "killed": true}, c.Kill(ctx, tenant, name)
	})
}

// serviceVerb completes cmd, a verb of one service NAME (and --tenant):
// do acts, and returns the word for what it did ("removed") and the reply
// --json prints.
func (a *app) serviceVerb(cmd *cobra.Command, do func(ctx context.Context, c *client.Client, tenant, name string) (string, any, error)) *cobra.Command {
	var tenant string
	cmd.Args = exactArgs(1, "one service NAME")
	cmd.ValidArgsFunction = a.completeServices(&tenant)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, c, cancel, err := a.connect(cmd)
		if err != nil {
			return err
		}
		defer cancel()
		done, reply, err := do(ctx, c, tenant, args[0])
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(reply)
		}
		fmt.Fprintf(a.stdout, "%s %s/%s\n", done, tenant, args[0])
		return nil
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
