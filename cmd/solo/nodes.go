package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) nodesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes of the cluster (solo daemon --cluster)",
		Long: `nodes lists the nodes of the cluster the daemon belongs to: each live node (one
that holds its etcd lease), its API address, how long its lease has left unless renewed,
how many services are placed on it, and whether it leads placement or drains; a node that
has services placed on it but no lease is listed as not alive.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			return printList(a, nodes, "NAME\tADDRESS\tALIVE\tLEASE LEFT\tSERVICES\tROLE", func(n wire.Node) []any {
				lease := "-"
				if n.Alive {
					lease = n.LeaseRemaining.Round(time.Second).String()
				}
				return []any{n.Name, orDash(n.Address), yesNo(n.Alive), lease, n.Services, nodeRole(n)}
			})
		},
	}
}

func nodeRole(n wire.Node) string {
	switch {
	case n.Leader && n.Draining:
		return "leader,draining"
	case n.Leader:
		return "leader"
	case n.Draining:
		return "draining"
	}
	return "-"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (a *app) drainCmd() *cobra.Command {
	var undo bool
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move every service off a cluster node and keep new ones off it (--undo to end)",
		Long: `drain marks NODE as draining: the placement leader moves its services to the
other nodes, each stopped on NODE before it starts elsewhere, and places nothing new on
it. The mark stays until solo drain --undo NODE, across the node's restarts.`,
		Args: exactArgs(1, "a node name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := state.ValidName(args[0]); err != nil {
				return usagef(fmt.Errorf("node: %w", err))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.Drain(ctx, args[0], !undo)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			if res.Draining {
				fmt.Fprintf(a.stdout, "node %s drains: its services move to the other nodes\n", res.Node)
			} else {
				fmt.Fprintf(a.stdout, "node %s no longer drains\n", res.Node)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&undo, "undo", false, "end the drain: the node takes services again")
	return cmd
}
