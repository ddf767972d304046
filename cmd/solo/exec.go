package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) execCmd() *cobra.Command {
	var (
		tenant          string
		wait, retryable bool
	)
	cmd := &cobra.Command{
		Use:   "exec NAME [--wait] [-- CODE | < FILE]",
		Short: "Queue code on a kernel session",
		Long: `exec queues CODE (the arguments after --, joined by spaces, or else stdin) on
session NAME and prints the task's id once it is durably queued. Tasks run one at a
time, in order. With --wait it prints the task's outputs as they come and exits 1 if
the task fails. A task that was running when the daemon died is reported as
interrupted, never run again, unless queued with --retryable.`,
		Example: `  solo exec nb -- 'x = 41'
  solo exec nb --wait -- 'x + 1'
  solo exec nb --wait < train.py`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if len(args) < 1 || dash == 0 || (dash < 0 && len(args) != 1) {
				return usagef(fmt.Errorf("usage: solo exec NAME [--wait] [-- CODE | < FILE]"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := readCode(args[1:], a.stdin)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			t, err := c.Submit(ctx, tenant, args[0], wire.SubmitRequest{Kind: state.TaskExec, Code: code, Retryable: retryable}, false)
			cancel()
			if err != nil {
				return err
			}
			if !wait {
				if a.json {
					return a.printJSON(t)
				}
				fmt.Fprintln(a.stdout, t.ID)
				return nil
			}
			return a.runTask(cmd.Context(), c, t.ID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the session")
	f.BoolVar(&wait, "wait", false, "print the outputs until the task ends; exit 1 if it fails")
	f.BoolVar(&retryable, "retryable", false, "run it again if the daemon or kernel dies while it runs")
	return cmd
}
