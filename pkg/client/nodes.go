package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/wire"
)

// Nodes lists the nodes of the cluster the daemon belongs to (GET
// /v1/nodes). A daemon that is not part of a cluster answers not found.
func (c *Client) Nodes(ctx context.Context) ([]wire.Node, error) {
	var reply wire.NodesReply
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes", nil, &reply); err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	if reply.Nodes == nil {
		reply.Nodes = []wire.Node{}
	}
	return reply.Nodes, nil
}
