package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) recoverCmd() *cobra.Command {
	var (
		tenant string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "recover [NAME]",
		Short: "Bring back services that should run and do not (failed, ended, lost)",
		Long: `recover starts again the services the log says are deployed but that no longer
run: those that hit their restart limit, ended under their policy, or lost their
supervisor. With --dry-run it only prints the plan.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef(fmt.Errorf("recover takes at most one service NAME"))
			}
			return nil
		},
		ValidArgsFunction: a.completeServices(&tenant),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := wire.RecoverRequest{DryRun: dryRun}
			if len(args) == 1 {
				req.Name, req.Tenant = args[0], tenant
			} else if cmd.Flags().Changed("tenant") {
				req.Tenant = tenant
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.Recover(ctx, req)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			if len(res.Items) == 0 {
				fmt.Fprintln(a.stdout, "nothing to recover: every deployed service is running")
				return nil
			}
			verb := "recovered"
			if dryRun {
				verb = "would recover"
			}
			tw := a.table()
			fmt.Fprintln(tw, "TENANT\tNAME\tWAS\tRESULT")
			failed := 0
			for _, it := range res.Items {
				result := verb
				if it.Error != "" {
					result, failed = "error: "+it.Error, failed+1
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Tenant, it.Name, it.State, result)
			}
			tw.Flush()
			if failed > 0 {
				return fmt.Errorf("%d service(s) could not be recovered", failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "default", "tenant of NAME, or the only tenant to recover")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	return cmd
}
