package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// LocalActor is the actor of requests when [Options.Authorize] is nil.
const LocalActor = "local"

// Principal is who a request runs as, as [Options.Authorize] decides.
//
// This is the seam for capability tokens: Authorize reads the request's
// credentials (say, the Authorization header), resolves them to a
// Principal, or refuses with an [*AuthError]. [NewAuthorizer] is the one
// the daemon uses: it checks a token's scope for the route and its tenant
// before the handler runs; handlers find the Principal with [PrincipalFrom]
// to confine what they list and act on.
type Principal struct {
	// Actor is recorded as the actor of every event the request causes (see
	// [solo.WithActor]): a token id, or "local". "" means "local".
	Actor string
	// Tenant confines the request to one tenant; "" allows every tenant
	// (the local admin). A confined principal sees the services of other
	// tenants as if they did not exist (404, absent from lists, their
	// events left out), may not deploy into another tenant (403), and may
	// not check or back up the database (403).
	Tenant string
}

// sees reports whether p may see tenant's services.
func (p Principal) sees(tenant string) bool {
	return p.Tenant == "" || p.Tenant == tenant
}

// admin reports whether p is allowed every tenant.
func (p Principal) admin() bool { return p.Tenant == "" }

type principalKey struct{}

// PrincipalFrom returns the principal a request runs as. It is set on the
// context of every /v1 request before its handler runs.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// withPrincipal puts p on ctx, with its actor; an unconfined principal
// (the local admin) is the operator, whom no tenant quota binds (see
// [solo.AsOperator]).
func withPrincipal(ctx context.Context, p Principal) context.Context {
	ctx = context.WithValue(ctx, principalKey{}, p)
	if p.admin() {
		ctx = solo.AsOperator(ctx)
	}
	return solo.WithActor(ctx, p.Actor)
}

// authorize runs Options.Authorize and counts its refusals (not the
// server's own faults, see [refused]).
func (s *Server) authorize(r *http.Request) (Principal, error) {
	if s.opts.Authorize == nil {
		return Principal{Actor: LocalActor}, nil
	}
	p, err := s.opts.Authorize(r)
	if err != nil {
		if refused(err) {
			s.metrics.authFailure()
		}
		return Principal{}, fmt.Errorf("authorize: %w", err)
	}
	if p.Actor == "" {
		p.Actor = LocalActor
	}
	return p, nil
}

// lookupKey validates a (tenant, name) from the path and hides the services
// of other tenants from a confined principal: they answer exactly like a
// service that does not exist.
func lookupKey(r *http.Request, op string) (state.Key, error) {
	key := state.Key{Tenant: r.PathValue("tenant"), Name: r.PathValue("name")}
	if err := state.ValidName(key.Tenant); err != nil {
		return key, &fieldError{Field: "tenant", Err: fmt.Errorf("%s: tenant: %w", op, err)}
	}
	if err := state.ValidName(key.Name); err != nil {
		return key, &fieldError{Field: "name", Err: fmt.Errorf("%s: name: %w", op, err)}
	}
	if p, _ := PrincipalFrom(r.Context()); !p.sees(key.Tenant) {
		return key, notFound(key)
	}
	return key, nil
}

// notFound is the one not-found error of a service. Handlers return it
// (through [sameNotFound]) for the runtime's not-found too, so that a
// hidden service and a missing one answer with the same words.
func notFound(key state.Key) error {
	return fmt.Errorf("service %s: %w", key, solo.ErrNotFound)
}

// sameNotFound replaces a runtime not-found error by [notFound].
func sameNotFound(key state.Key, err error) error {
	if errors.Is(err, solo.ErrNotFound) {
		return notFound(key)
	}
	return err
}
