package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) taskCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Inspect and cancel the tasks of kernel sessions",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.taskStatusCmd(), a.taskOutputCmd(), a.taskCancelCmd())
	return cmd
}

func (a *app) taskStatusCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a task: its state, and how it ended",
		Args:  exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !wait {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.timeout)
				defer cancel()
			}
			t, err := c.Task(ctx, args[0], wait)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(t)
			}
			a.printTask(t)
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the task ends")
	return cmd
}

// printTask prints a task's summary.
func (a *app) printTask(t *state.Task) {
	fmt.Fprintf(a.stdout, "task:      %s\nsession:   %s/%s\nstate:     %s\n", t.ID, t.Tenant, t.Session, t.State)
	if t.Kind != state.TaskExec {
		fmt.Fprintf(a.stdout, "kind:      %s %s\n", t.Kind, t.Label)
	}
	if t.Attempts > 0 {
		fmt.Fprintf(a.stdout, "attempts:  %d\n", t.Attempts)
	}
	if t.CancelRequested {
		fmt.Fprintf(a.stdout, "cancel:    requested\n")
	}
	if t.State == state.TaskStateFailed {
		fmt.Fprintf(a.stdout, "reason:    %s\n", t.Reason)
		if t.Detail != "" {
			fmt.Fprintf(a.stdout, "detail:    %s\n", t.Detail)
		}
		if t.EName != "" {
			fmt.Fprintf(a.stdout, "error:     %s: %s\n", t.EName, t.EValue)
		}
	}
}

// taskError is the error a failed or cancelled task makes a command exit 1
// with.
func taskError(t *state.Task) error {
	switch t.State {
	case state.TaskStateFailed:
		msg := fmt.Sprintf("task %s failed (%s)", t.ID, t.Reason)
		if t.EName != "" {
			msg += ": " + t.EName + ": " + t.EValue
		}
		if t.Detail != "" {
			msg += ": " + t.Detail
		}
		return fmt.Errorf("%s", msg)
	case state.TaskStateCancelled:
		return fmt.Errorf("task %s was cancelled", t.ID)
	}
	return nil
}

func (a *app) taskOutputCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "output ID",
		Short: "Print what a task wrote (stdout, stderr, results, errors)",
		Long: `output prints what task ID wrote, as it wrote it. Outputs are kept in a file per
task as they arrive, bounded at 256 KiB (past it, a note says they were truncated),
so what a task printed before the daemon was killed is still there after it
restarts. The output is an asset of its session: kept for 24 hours after the task
ends, renewed each time it is printed, then collected (see "solo session assets").`,
		Args: exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.TaskOutput(cmd.Context(), args[0], follow, a.stdout)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the task ends")
	return cmd
}

func (a *app) taskCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task: a pending one never runs, a running one is interrupted",
		Args:  exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			t, err := c.CancelTask(ctx, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(t)
			}
			switch {
			case t.State == state.TaskStateCancelled:
				fmt.Fprintf(a.stdout, "cancelled %s\n", t.ID)
			case t.State.Final():
				fmt.Fprintf(a.stdout, "%s already %s\n", t.ID, t.State)
			default:
				fmt.Fprintf(a.stdout, "interrupting %s\n", t.ID)
			}
			return nil
		},
	}
}

// runTask follows a task's output to stdout until it ends, then returns
// the error of a task that did not complete.
func (a *app) runTask(ctx context.Context, c *client.Client, id string) error {
	if err := c.TaskOutput(ctx, id, true, a.stdout); err != nil {
		return err
	}
	t, err := c.Task(ctx, id, true)
	if err != nil {
		return err
	}
	if a.json {
		if err := a.printJSON(t); err != nil {
			return err
		}
	}
	return taskError(t)
}

// readCode is the code of `solo exec`: the arguments after --, else stdin.
func readCode(args []string, stdin io.Reader) (string, error) {
	if len(args) > 0 {
		return strings.Join(args, " "), nil
	}
	if stdin == nil {
		return "", usagef(fmt.Errorf("no code: pass it after -- or on stdin"))
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 1<<20+1))
	if err != nil {
		return "", fmt.Errorf("read code from stdin: %w", err)
	}
	if len(b) == 0 {
		return "", usagef(fmt.Errorf("no code: pass it after -- or on stdin"))
	}
	return string(b), nil
}
