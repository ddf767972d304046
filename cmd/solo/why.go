package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) whyCmd() *cobra.Command {
	var (
		tenant string
		lines  int
	)
	cmd := &cobra.Command{
		Use:               "why NAME",
		Short:             "Tell a service's recent story, from the log",
		Long:              "Why tells what happened to a service lately, one sentence per event: deploys, starts,\nexits and the restarts that followed them, who stopped it, re-adoptions after a daemon restart.",
		Args:              exactArgs(1, "one service NAME"),
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return usagef(fmt.Errorf("--lines %d: want 0 or more", lines))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			story, err := c.Why(ctx, tenant, args[0], lines)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(story)
			}
			for _, l := range story.Lines {
				fmt.Fprintln(a.stdout, l.Text)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the service")
	f.IntVar(&lines, "lines", 0, "sentences to tell, the latest (0: the daemon's default, 20)")
	return cmd
}
