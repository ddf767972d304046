package solo

import (
	"context"
	"fmt"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// SetTenantPolicy changes the policy of tenant (see [state.TenantPolicy]):
// change is given a copy of the policy it has now (the zero policy if
// none) and edits it; the result is checked and recorded, whole, as
// tenant_policy_set. Deciding who may call it is the caller's job (the
// API lets the local admin only).
//
// Every user and group must exist on this host (passwd and group files,
// or NSS) and none may be root (uid or gid 0): an error is a
// [*state.PolicyError] naming "users" or "groups" and the account, and
// nothing is written (I9). Calls for one tenant are serialised, so two
// changes of different fields both take effect.
func (r *Runtime) SetTenantPolicy(ctx context.Context, tenant string, change func(*state.TenantPolicy)) (state.Tenant, error) {
	if err := r.writable(); err != nil {
		return state.Tenant{}, err
	}
	if err := state.ValidName(tenant); err != nil {
		return state.Tenant{}, fmt.Errorf("tenant: %w", err)
	}
	key := state.Key{Tenant: tenant} // no service has an empty name
	defer r.keys.lock(key)()
	var p state.TenantPolicy
	if t, ok := r.world.tenant(tenant); ok && t.Policy != nil {
		p = t.Policy.Clone()
	}
	change(&p)
	if err := p.Validate(); err != nil {
		return state.Tenant{}, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	if err := checkPolicyAccounts(p); err != nil {
		return state.Tenant{}, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	if _, err := r.append(ctx, state.Key{Tenant: tenant, Name: tenant}, state.TenantPolicySet{TenantPolicy: p}, actorFrom(ctx)); err != nil {
		return state.Tenant{}, fmt.Errorf("tenant %s: record: %w", tenant, err)
	}
	t, _ := r.world.tenant(tenant)
	return t, nil
}

// checkPolicyAccounts checks that a policy's users and groups exist here
// and that none is root.
func checkPolicyAccounts(p state.TenantPolicy) error {
	for _, u := range p.Users {
		a, err := supervisor.LookupAccount(u, "", nil)
		if err != nil {
			return &state.PolicyError{Field: "users", Problem: err.Error()}
		}
		if a.UID == 0 {
			return &state.PolicyError{Field: "users", Problem: fmt.Sprintf("user %q is root (uid 0): a tenant's services never run as root", u)}
		}
	}
	for _, g := range p.Groups {
		gid, err := supervisor.LookupGroup(g)
		if err != nil {
			return &state.PolicyError{Field: "groups", Problem: err.Error()}
		}
		if gid == 0 {
			return &state.PolicyError{Field: "groups", Problem: fmt.Sprintf("group %q is root's (gid 0): a tenant's services never run in it", g)}
		}
	}
	return nil
}

// Tenant returns what the log says of tenant name beyond its services:
// its policy and its dynamic user. ok is false if it has neither.
func (r *Runtime) Tenant(name string) (state.Tenant, bool) { return r.world.tenant(name) }

// Tenants returns every tenant with a policy or a dynamic user, sorted by
// name.
func (r *Runtime) Tenants() []state.Tenant { return r.world.tenants() }
