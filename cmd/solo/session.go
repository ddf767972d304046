package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) sessionCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "session",
		Short: "Manage kernel sessions: long-lived Jupyter kernels with a durable task queue",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&tenant, "tenant", state.DefaultTenant, "tenant of the session")
	cmd.AddCommand(a.sessionCreateCmd(&tenant), a.sessionLsCmd(&tenant), a.sessionStatusCmd(&tenant), a.sessionRestartCmd(&tenant), a.sessionRmCmd(&tenant),
		a.sessionCheckpointCmd(&tenant, state.TaskCheckpoint), a.sessionCheckpointCmd(&tenant, state.TaskRestore),
		a.sessionAssetsCmd(&tenant), a.sessionAssetCmd(&tenant))
	return cmd
}

// sessionAssetsCmd is `session assets NAME`: the session's assets and
// their leases. Listing renews them.
func (a *app) sessionAssetsCmd(tenant *string) *cobra.Command {
	return &cobra.Command{
		Use:   "assets NAME",
		Short: "List a session's assets (task outputs, kept files) and their leases; listing renews them",
		Long: `assets lists what Solo keeps for session NAME: the output of each task (kind
output, path tasks/ID.out) and the files marked with "solo session asset add" (kind
file). Each is kept under a lease, 24 hours by default, renewed whenever it is read
(a task's output printed, or this listing), and deleted once the lease has ended;
the output of a running task is held until it ends. Paths are relative to the
session's directory, the kernel's working directory.`,
		Args: exactArgs(1, "one session NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			vs, err := c.Assets(ctx, *tenant, args[0])
			if err != nil {
				return err
			}
			return printList(a, vs, "ID\tKIND\tPATH\tSIZE\tLEASE EXPIRES", func(v wire.AssetView) []any {
				lease := "held (task running)"
				if !v.Held {
					lease = v.ExpiresAt.Local().Format(time.RFC3339)
				}
				return []any{v.ID, v.Kind, v.Path, v.Size, lease}
			})
		},
	}
}

// sessionAssetCmd is `session asset add NAME PATH`.
func (a *app) sessionAssetCmd(tenant *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "asset",
		Short: "Keep files of a session's directory as assets",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	add := &cobra.Command{
		Use:   "add NAME PATH",
		Short: "Keep a file of the session's directory as an asset, under a lease",
		Long: `add marks the regular file PATH of session NAME's directory (the kernel's
working directory; PATH is relative to it) as an asset: it is kept under a lease,
renewed when the session's assets are listed, and deleted once the lease has ended.
A PATH that is absolute, leaves the directory (.. or a link), or is Solo's own
(kernel.json, kernels/, checkpoints/, tasks/) is refused. Adding a file again renews its lease.`,
		Example: `  solo exec nb --wait -- 'df.to_csv("result.csv")'
  solo session asset add nb result.csv`,
		Args: exactArgs(2, "a session NAME and a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.AddAsset(ctx, *tenant, args[0], args[1])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "asset %s: %s (%d bytes), kept until %s unless read\n", v.ID, v.Path, v.Size, v.ExpiresAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	cmd.AddCommand(add)
	return cmd
}

func (a *app) sessionCreateCmd(tenant *string) *cobra.Command {
	var kernelName, python string
	cmd := &cobra.Command{
		Use:   "create NAME [--kernel python3] [--python PATH]",
		Short: "Create a session: start its kernel as the service session.NAME",
		Args:  exactArgs(1, "one session NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.CreateSession(ctx, wire.CreateSessionRequest{Tenant: *tenant, Name: args[0], Kernel: kernelName, Python: python})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "created session %s/%s (kernel %s, service %s)\n", v.Tenant, v.Name, v.Kernel, v.Service)
			return nil
		},
	}
	cmd.Flags().StringVar(&kernelName, "kernel", "python3", "kernel to run (python3)")
	cmd.Flags().StringVar(&python, "python", "", "absolute path of the python3 that has ipykernel (default: the daemon's, /usr/bin/python3)")
	return cmd
}

func (a *app) sessionLsCmd(tenant *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List sessions",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			t := *tenant
			if !cmd.Flags().Changed("tenant") {
				t = ""
			}
			vs, err := c.Sessions(ctx, t)
			if err != nil {
				return err
			}
			// In a cluster, a NODE column says where each session runs.
			clustered := slices.ContainsFunc(vs, func(v wire.SessionView) bool { return v.Node != "" })
			header := "TENANT\tNAME\tKERNEL\tSTATE\tPID\tPENDING\tRUNNING\tDONE\tSTATE LOST"
			if clustered {
				header = "TENANT\tNAME\tKERNEL\tSTATE\tNODE\tPID\tPENDING\tRUNNING\tDONE\tSTATE LOST"
			}
			return printList(a, vs, header, func(v wire.SessionView) []any {
				pid := "-"
				if v.PID > 0 {
					pid = fmt.Sprint(v.PID)
				}
				running := v.Running
				if running == "" {
					running = "-"
				}
				if clustered {
					return []any{v.Tenant, v.Name, v.Kernel, v.State, v.Node, pid, v.Pending, running, v.Done, v.StateLost}
				}
				return []any{v.Tenant, v.Name, v.Kernel, v.State, pid, v.Pending, running, v.Done, v.StateLost}
			})
		},
	}
}

// sessionStatusCmd is `session status NAME`: one session, with the node it
// runs on in a cluster, and how it was lost if its node died.
func (a *app) sessionStatusCmd(tenant *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a session: its state, kernel, node (in a cluster) and queue",
		Args:  exactArgs(1, "one session NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.Session(ctx, *tenant, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "session:  %s/%s\n", v.Tenant, v.Name)
			fmt.Fprintf(a.stdout, "state:    %s\n", v.State)
			if v.Lost != "" {
				fmt.Fprintf(a.stdout, "          %s\n", v.Lost)
			}
			fmt.Fprintf(a.stdout, "kernel:   %s (service %s)\n", v.Kernel, v.Service)
			if v.Node != "" {
				fmt.Fprintf(a.stdout, "node:     %s\n", v.Node)
			}
			if v.PID > 0 {
				fmt.Fprintf(a.stdout, "pid:      %d\n", v.PID)
			}
			fmt.Fprintf(a.stdout, "tasks:    %d pending, %d done\n", v.Pending, v.Done)
			if v.Running != "" {
				fmt.Fprintf(a.stdout, "running:  %s\n", v.Running)
			}
			if v.StateLost > 0 {
				fmt.Fprintf(a.stdout, "restarts: its kernel restarted %d times, losing its variables\n", v.StateLost)
			}
			return nil
		},
	}
}

// sessionRestartCmd is `session restart NAME`: a lost session (its node
// died) runs again, empty, on the node the CLI talks to.
func (a *app) sessionRestartCmd(tenant *string) *cobra.Command {
	var python string
	cmd := &cobra.Command{
		Use:   "restart NAME [--python PATH]",
		Short: "Run a lost session (its node died) again on this node, empty: no variables, no queue are carried over",
		Args:  exactArgs(1, "one session NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.RestartSession(ctx, *tenant, args[0], wire.RestartSessionRequest{Python: python})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "restarted session %s/%s on node %s, empty: its old kernel's variables and queue are gone\n", v.Tenant, v.Name, v.Node)
			return nil
		},
	}
	cmd.Flags().StringVar(&python, "python", "", "absolute path of the python3 that has ipykernel on this node (default: the daemon's)")
	return cmd
}

func (a *app) sessionRmCmd(tenant *string) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a session: fail its queued tasks and stop its kernel",
		Args:  exactArgs(1, "one session NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.RemoveSession(ctx, *tenant, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed session %s\n", args[0])
			return nil
		},
	}
}

// sessionCheckpointCmd is `session checkpoint` or `session restore`: a task
// queued like any other, waited for.
func (a *app) sessionCheckpointCmd(tenant *string, kind state.TaskKind) *cobra.Command {
	short := "Save the session's variables (pickled, signed) under LABEL"
	if kind == state.TaskRestore {
		short = "Load the variables saved under LABEL, once the checkpoint verifies"
	}
	return &cobra.Command{
		Use:   string(kind) + " NAME LABEL",
		Short: short,
		Args:  exactArgs(2, "a session NAME and a LABEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			t, err := c.Submit(ctx, *tenant, args[0], wire.SubmitRequest{Kind: kind, Label: args[1]}, false)
			cancel()
			if err != nil {
				return err
			}
			return a.runTask(cmd.Context(), c, t.ID)
		},
	}
}
