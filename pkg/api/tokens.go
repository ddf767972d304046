package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// tokenRoutes registers the token routes, all of which need scope admin
// (see [RouteScope]):
//
//	POST   /v1/tokens                            body: wire.TokenRequest; 201 wire.TokenGrant (the plaintext, this once)
//	GET    /v1/tokens?tenant=T                   200 [wire.TokenView] ("" or absent: every tenant the caller sees)
//	DELETE /v1/tokens/{id}                       200 wire.TokenView (revoked); 404 for an id the caller cannot see
//
// A token (as opposed to the local admin) grants, lists and revokes in its
// own tenant only, and grants nothing that outlives it.
func (s *Server) tokenRoutes() {
	s.handle("POST /v1/tokens", authed, s.grantToken)
	s.handle("GET /v1/tokens", authed, s.listTokens)
	s.handle("DELETE /v1/tokens/{id}", authed, s.revokeToken)
}

func (s *Server) grantToken(w http.ResponseWriter, r *http.Request) error {
	var req wire.TokenRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("grant token: %w", err)
	}
	p, _ := PrincipalFrom(r.Context())
	switch {
	case req.Tenant == "" && p.admin():
		req.Tenant = state.DefaultTenant
	case req.Tenant == "":
		req.Tenant = p.Tenant
	case !p.sees(req.Tenant):
		return fmt.Errorf("grant token: tenant %q: %w: this token may only grant tokens in tenant %q", req.Tenant, errDenied, p.Tenant)
	}
	scopes := make([]capability.Scope, 0, len(req.Scopes))
	for _, v := range req.Scopes {
		sc, err := capability.ParseScope(v)
		if err != nil {
			return &fieldError{Field: "scopes", Err: fmt.Errorf("%w: %w", errBadRequest, err)}
		}
		scopes = append(scopes, sc)
	}
	ttl := req.TTL.Std()
	if !p.admin() {
		// A token cannot mint one that outlives it.
		if granter, ok := s.findToken(p.Tenant, p.Actor); ok {
			left := granter.ExpiresAt.Sub(s.rt.Tokens().Now())
			switch {
			case ttl > left:
				return &fieldError{Field: "ttl", Err: badRequest("ttl %s outlives the granting token, which expires in %s", ttl, left.Round(time.Second))}
			case ttl == 0 && left < capability.DefaultTTL:
				ttl = left
			}
		}
	}
	tok, plaintext, err := s.rt.Tokens().Grant(r.Context(), capability.GrantRequest{
		Tenant: req.Tenant, Scopes: scopes, TTL: ttl, Services: req.Services,
	})
	if err != nil {
		if errors.Is(err, capability.ErrInvalid) {
			return fmt.Errorf("%w: %w", errBadRequest, err)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, wire.TokenGrant{Token: plaintext, TokenView: s.tokenView(tok)})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" {
		if err := state.ValidName(tenant); err != nil {
			return &fieldError{Field: "tenant", Err: fmt.Errorf("list tokens: tenant: %w", err)}
		}
	}
	views := []wire.TokenView{}
	p, _ := PrincipalFrom(r.Context())
	if !p.admin() {
		if tenant != "" && tenant != p.Tenant {
			writeJSON(w, http.StatusOK, views)
			return nil
		}
		tenant = p.Tenant
	}
	for _, t := range s.rt.Tokens().List(tenant) {
		views = append(views, s.tokenView(t))
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	p, _ := PrincipalFrom(r.Context())
	// Echo the id only if it is one: a plaintext pasted by mistake must
	// not come back in a reply.
	if _, err := ulid.ParseStrict(id); err != nil {
		return &AuthError{Status: http.StatusNotFound, Code: wire.CodeNotFound,
			Msg: "revoke token: not a token id (ids are 26-character ULIDs, listed by GET /v1/tokens)"}
	}
	notFound := &AuthError{Status: http.StatusNotFound, Code: wire.CodeNotFound, Msg: fmt.Sprintf("revoke token %s: token not found", id)}
	if !p.admin() {
		if _, ok := s.findToken(p.Tenant, id); !ok {
			return notFound // another tenant's token answers like no token
		}
	}
	tok, err := s.rt.Tokens().Revoke(r.Context(), id)
	if errors.Is(err, capability.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.tokenView(tok))
	return nil
}

// findToken returns the token of tenant with id.
func (s *Server) findToken(tenant, id string) (capability.Token, bool) {
	toks := s.rt.Tokens().List(tenant)
	i := slices.IndexFunc(toks, func(t capability.Token) bool { return t.ID == id })
	if i < 0 {
		return capability.Token{}, false
	}
	return toks[i], true
}

func (s *Server) tokenView(t capability.Token) wire.TokenView {
	v := wire.TokenView{
		ID: t.ID, Tenant: t.Tenant, Services: t.Services, Actor: t.Actor,
		State: wire.TokenActive, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt,
	}
	for _, sc := range t.Scopes {
		v.Scopes = append(v.Scopes, string(sc))
	}
	switch {
	case t.Revoked():
		v.State = wire.TokenRevoked
	case t.Expired(s.rt.Tokens().Now()):
		v.State = wire.TokenExpired
	}
	return v
}
