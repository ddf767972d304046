package api

import (
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// tenantRoutes registers the tenant policy's routes. They serve the local
// admin only (scope admin, and a token is always confined to its tenant,
// so every token gets 403): a tenant may not widen whom its own services
// run as.
//
//	PUT /v1/tenants/{id}       body: wire.TenantSetRequest (run-as users and groups, quotas, rate); 200 wire.TenantView
//	GET /v1/tenants/{id}       200 wire.TenantView (a tenant without a record: no policy)
//	GET /v1/tenants            200 [wire.TenantView]
//
// The path names the tenant {id}, not {tenant}: the authorizer confines
// {tenant} routes to a token's own tenant (404 for another), and these
// must answer 403 to every token alike.
func (s *Server) tenantRoutes() {
	s.handle("PUT /v1/tenants/{id}", authed, s.setTenant)
	s.handle("GET /v1/tenants/{id}", authed, s.showTenant)
	s.handle("GET /v1/tenants", authed, s.listTenants)
}

// adminOnly refuses every principal but the local admin.
func adminOnly(r *http.Request, op string) error {
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		return fmt.Errorf("%s: %w: only the local admin (on the unix socket, without a token) may read or change tenant policies", op, errDenied)
	}
	return nil
}

// tenantView is t as the API shows it, with the quotas in force.
func (s *Server) tenantView(t state.Tenant) wire.TenantView {
	v := wire.TenantView{Name: t.Name, Users: []string{}, Groups: []string{}, Limits: s.rt.Limits(t.Name)}
	if t.Policy != nil {
		v.Policy, v.PolicySetAt = true, t.PolicySetAt
		v.Users = append(v.Users, t.Policy.Users...)
		v.Groups = append(v.Groups, t.Policy.Groups...)
		v.Own, v.Rate, v.Burst = t.Policy.Limits, t.Policy.Rate, t.Policy.Burst
	}
	if d := t.DynamicUser; d != nil {
		v.DynamicUID, v.DynamicGID = d.UID, d.GID
	}
	return v
}

// tenantName reads and checks the {id} of the path.
func tenantName(r *http.Request, op string) (string, error) {
	name := r.PathValue("id")
	if err := state.ValidName(name); err != nil {
		return "", &fieldError{Field: "tenant", Err: fmt.Errorf("%s: tenant: %w", op, err)}
	}
	return name, nil
}

func (s *Server) setTenant(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "tenant set"); err != nil {
		return err
	}
	name, err := tenantName(r, "tenant set")
	if err != nil {
		return err
	}
	var req wire.TenantSetRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("tenant set: %w", err)
	}
	t, err := s.rt.SetTenantPolicy(r.Context(), name, func(p *state.TenantPolicy) {
		if req.Users != nil {
			p.Users = *req.Users
		}
		if req.Groups != nil {
			p.Groups = *req.Groups
		}
		set := func(dst *int, v *int) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.Services, req.MaxServices)
		set(&p.Sessions, req.MaxSessions)
		set(&p.Tasks, req.MaxTasks)
		set(&p.Burst, req.Burst)
		if req.Rate != nil {
			p.Rate = *req.Rate
		}
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.tenantView(t))
	return nil
}

func (s *Server) showTenant(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "tenant show"); err != nil {
		return err
	}
	name, err := tenantName(r, "tenant show")
	if err != nil {
		return err
	}
	t, ok := s.rt.Tenant(name)
	if !ok {
		t = state.Tenant{Name: name}
	}
	writeJSON(w, http.StatusOK, s.tenantView(t))
	return nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "tenant ls"); err != nil {
		return err
	}
	views := []wire.TenantView{}
	for _, t := range s.rt.Tenants() {
		views = append(views, s.tenantView(t))
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}
