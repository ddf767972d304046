package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

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

// Drain starts (on) or ends the drain of a cluster node: while it drains,
// its services are moved away, each stopped before it starts elsewhere,
// and no new one is placed on it.
func (c *Client) Drain(ctx context.Context, node string, on bool) (wire.DrainReply, error) {
	method := http.MethodPost
	if !on {
		method = http.MethodDelete
	}
	var reply wire.DrainReply
	if err := c.Do(ctx, method, "/v1/nodes/"+url.PathEscape(node)+"/drain", nil, &reply); err != nil {
		return wire.DrainReply{}, fmt.Errorf("drain %s: %w", node, err)
	}
	return reply, nil
}
