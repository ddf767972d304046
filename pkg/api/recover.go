package api

import (
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func (s *Server) recover(w http.ResponseWriter, r *http.Request) error {
	var req wire.RecoverRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if req.Name != "" && req.Tenant == "" {
		req.Tenant = state.DefaultTenant
	}
	p, _ := PrincipalFrom(r.Context())
	if !p.admin() {
		switch req.Tenant {
		case "", p.Tenant:
			req.Tenant = p.Tenant
		default:
			// Another tenant's services do not exist for this principal.
			return notFound(state.Key{Tenant: req.Tenant, Name: req.Name})
		}
	}
	items, err := s.rt.Recover(r.Context(), req.Tenant, req.Name, req.DryRun)
	if err != nil {
		return err
	}
	if !p.admin() || (req.Name == "" && req.Tenant != "") {
		kept := items[:0]
		for _, it := range items {
			if it.Tenant == req.Tenant {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	writeJSON(w, http.StatusOK, wire.RecoverResult{DryRun: req.DryRun, Items: recoverItems(items)})
	return nil
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	var req wire.VerifyRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		return fmt.Errorf("verify: %w: it looks at every tenant's processes; it needs an admin", errDenied)
	}
	rep, err := s.rt.Verify(r.Context(), req.Fix)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, verifyReport(rep))
	return nil
}
