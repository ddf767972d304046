package api

import (
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/wire"
)

// nodeRoutes serves the cluster's nodes (cluster mode; Options.Nodes).
func (s *Server) nodeRoutes() {
	s.handle("GET /v1/nodes", authed, s.listNodes)
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Nodes == nil {
		return fmt.Errorf("%w: this daemon is not part of a cluster (start it with solo daemon --cluster)", errNoRoute)
	}
	nodes, err := s.opts.Nodes(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NodesReply{Nodes: nodes})
	return nil
}
