package main

import (
	"time"

	"github.com/spf13/cobra"

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
