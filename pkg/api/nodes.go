package api

import (
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// nodeRoutes serves the cluster's nodes (cluster mode; Options.Nodes).
func (s *Server) nodeRoutes() {
	s.handle("GET /v1/nodes", authed, s.listNodes)
	s.handle("POST /v1/nodes/{name}/drain", authed, s.drainNode(true))
	s.handle("DELETE /v1/nodes/{name}/drain", authed, s.drainNode(false))
}

// drainNode starts (on) or ends a node's drain.
func (s *Server) drainNode(on bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.opts.Drain == nil {
			return fmt.Errorf("%w: this daemon is not part of a cluster (start it with solo daemon --cluster)", errNoRoute)
		}
		name := r.PathValue("name")
		if err := state.ValidName(name); err != nil {
			return fmt.Errorf("drain: %w", &fieldError{Field: "name", Err: err})
		}
		if err := s.opts.Drain(r.Context(), name, on); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, wire.DrainReply{Node: name, Draining: on})
		return nil
	}
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
