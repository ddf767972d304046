package api

import (
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// secretRoutes registers the vault's routes, all of which need scope
// secrets (or admin; see [RouteScope]):
//
//	PUT    /v1/secrets/{tenant}/{name}   body: wire.SecretSetRequest; 200 wire.SecretSetReply
//	GET    /v1/secrets?tenant=T          200 [wire.SecretView] (never a value)
//	DELETE /v1/secrets/{tenant}/{name}   200 wire.SecretView
//
// No route returns a value. A token acts in its own tenant only: another
// tenant's secret answers 404 as one that does not exist. A token bound
// to a service pattern acts only on secrets whose names match it.
func (s *Server) secretRoutes() {
	s.handle("PUT /v1/secrets/{tenant}/{name}", authed, s.setSecret)
	s.handle("GET /v1/secrets", authed, s.listSecrets)
	s.handle("DELETE /v1/secrets/{tenant}/{name}", authed, s.removeSecret)
}

func secretView(m solo.SecretMeta) wire.SecretView {
	return wire.SecretView{Tenant: m.Tenant, Name: m.Name, Version: m.Version, Created: m.Created, Updated: m.Updated}
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request) error {
	var req wire.SecretSetRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("secret set: %w", err)
	}
	res, err := s.rt.Secrets().Set(r.Context(), r.PathValue("tenant"), r.PathValue("name"), req.Value, req.RestartUsers)
	if err != nil {
		return err
	}
	out := wire.SecretSetReply{Secret: secretView(res.Secret), Users: res.Users, Restarted: res.Restarted}
	if out.Users == nil {
		out.Users = []string{}
	}
	if out.Restarted == nil {
		out.Restarted = []string{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) error {
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" {
		if err := state.ValidName(tenant); err != nil {
			return &fieldError{Field: "tenant", Err: fmt.Errorf("secret ls: tenant: %w", err)}
		}
	}
	views := []wire.SecretView{}
	p, _ := PrincipalFrom(r.Context())
	if !p.admin() {
		if tenant != "" && tenant != p.Tenant {
			writeJSON(w, http.StatusOK, views)
			return nil
		}
		tenant = p.Tenant
	}
	list, err := s.rt.Secrets().List(tenant)
	if err != nil {
		return err
	}
	for _, m := range list {
		views = append(views, secretView(m))
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

func (s *Server) removeSecret(w http.ResponseWriter, r *http.Request) error {
	m, err := s.rt.Secrets().Remove(r.Context(), r.PathValue("tenant"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, secretView(m))
	return nil
}
