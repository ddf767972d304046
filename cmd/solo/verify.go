package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/exitcode"
)

func (a *app) verifyCmd() *cobra.Command {
	var fix bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare the log with the processes that run; exit 1 on drift",
		Long: `verify lists the differences between the event log and the live processes:
services that should run and do not, killed services still running, marked
processes no record accounts for (strangers), and recorded pids now held by
another process. With --fix it acts on them and records what it did. It never
touches a process that does not carry this installation's marker.
It exits 0 when clean (or when --fix fixed everything), 1 otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			rep, err := c.Verify(ctx, fix)
			if err != nil {
				return err
			}
			unfixed := 0
			for _, f := range rep.Findings {
				if f.Fixed == "" || strings.HasPrefix(f.Fixed, "not fixed:") {
					unfixed++
				}
			}
			if unfixed > 0 {
				a.exit = exitcode.Error
			}
			if a.json {
				return a.printJSON(rep)
			}
			if rep.Clean {
				fmt.Fprintln(a.stdout, "clean: the log and the live processes agree")
				return nil
			}
			tw := a.table()
			fmt.Fprintln(tw, "KIND\tSERVICE\tPID\tDETAIL\tFIXED")
			for _, f := range rep.Findings {
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\n", f.Kind, f.Tenant, f.Name, pidText(f.PID), f.Detail, f.Fixed)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&fix, "fix", false, "act on the findings and record drift_found and drift_fixed")
	return cmd
}
