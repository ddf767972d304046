package state

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
)

// TenantPolicy is what the operator allows a tenant: the users and groups
// its services may run as. It is the whole of a [TenantPolicySet]; a field
// added here (a quota, say) is recorded and folded with the rest, and a
// zero value means "not set".
//
// Users: the users (names or numeric ids) a service of the tenant may name
// in its spec's user; the first is the default of a spec that names none.
// Empty: the tenant's services run as its dynamic user (see
// [TenantUserAllocated]). Groups: the groups a spec may name in group and
// groups, besides the run-as user's own. Whether they exist on this host,
// and that none is root, is the runtime's check.
//
// Limits override the operator's quotas of the tenant (services, sessions,
// queued tasks), Rate and Burst the operator's request rate of the
// tenant's tokens together (requests per second, and at once); a zero
// field keeps the operator's.
type TenantPolicy struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Limits
	Rate  float64 `json:"rate,omitempty"`
	Burst int     `json:"burst,omitempty"`
}

// Validate checks the syntax of a policy: each user and group as in a
// spec (see [Spec.Validate]), at most [MaxGroups] of each, no repeats;
// no negative quota, rate or burst, and a rate and a burst together. An
// error is a [*PolicyError] naming the field ("users", "groups",
// "max_services", "rate", ...).
func (p TenantPolicy) Validate() error {
	if err := p.validateLimits(); err != nil {
		return err
	}
	for _, f := range []struct {
		field string
		names []string
	}{{"users", p.Users}, {"groups", p.Groups}} {
		if len(f.names) > MaxGroups {
			return &PolicyError{Field: f.field, Problem: fmt.Sprintf("has %d entries, limit %d", len(f.names), MaxGroups)}
		}
		for i, n := range f.names {
			if n == "" {
				return &PolicyError{Field: f.field, Problem: fmt.Sprintf("entry %d is empty", i)}
			}
			if pr := accountProblem(n); pr != "" {
				return &PolicyError{Field: f.field, Problem: pr}
			}
			if slices.Index(f.names, n) != i {
				return &PolicyError{Field: f.field, Problem: fmt.Sprintf("%q is listed twice", n)}
			}
		}
	}
	return nil
}

// Clone returns a deep copy of p.
func (p TenantPolicy) Clone() TenantPolicy {
	c := p
	c.Users, c.Groups = slices.Clone(p.Users), slices.Clone(p.Groups)
	return c
}

// validateLimits checks the policy's quotas and rate: none negative, and a
// rate and a burst given together.
func (p TenantPolicy) validateLimits() error {
	if q, bad := p.Limits.negative(); bad {
		return &PolicyError{Field: q, Problem: fmt.Sprintf("%d is negative: a quota is 1 or more (0 keeps the operator's)", p.Limits.Max(q))}
	}
	switch {
	case p.Rate < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0):
		return &PolicyError{Field: "rate", Problem: fmt.Sprintf("%v is not a rate: give requests per second, more than 0 (0 keeps the operator's)", p.Rate)}
	case p.Burst < 0:
		return &PolicyError{Field: "burst", Problem: fmt.Sprintf("%d is negative: a burst is 1 or more (0 keeps the operator's)", p.Burst)}
	case p.Rate > 0 && p.Burst == 0:
		return &PolicyError{Field: "burst", Problem: "a rate needs a burst (the requests allowed at once, at least 1)"}
	case p.Burst > 0 && p.Rate == 0:
		return &PolicyError{Field: "rate", Problem: "a burst needs a rate (requests per second)"}
	}
	return nil
}

// TenantPolicySet (tenant_policy_set) sets the whole policy of the
// envelope's tenant (its subject is the tenant too), replacing the one
// before. It holds names only, never a secret.
type TenantPolicySet struct {
	TenantPolicy
}

// TenantUserAllocated (tenant_user_allocated) records the dynamic user of
// the envelope's tenant (its subject is the tenant too): the uid and gid,
// equal, that its services run as when its policy names no user, the way
// systemd's DynamicUser allocates one (a number of [DynamicUIDMin] to
// [DynamicUIDMax] with no passwd entry). It is recorded once, so the
// number is stable across restarts.
type TenantUserAllocated struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// The range of dynamic users, systemd's (DYNAMIC_UID_MIN, DYNAMIC_UID_MAX).
const (
	DynamicUIDMin = 61184
	DynamicUIDMax = 65519
)

func (TenantPolicySet) EventType() EventType     { return TypeTenantPolicySet }
func (TenantUserAllocated) EventType() EventType { return TypeTenantUserAllocated }

func (p TenantPolicySet) check() error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return nil
}

func (a TenantUserAllocated) check() error {
	if a.UID < DynamicUIDMin || a.UID > DynamicUIDMax || a.GID < DynamicUIDMin || a.GID > DynamicUIDMax {
		return fmt.Errorf("%w: dynamic uid %d, gid %d outside %d-%d", ErrInvalidEvent, a.UID, a.GID, DynamicUIDMin, DynamicUIDMax)
	}
	return nil
}

// Tenant is what the log says about one tenant beyond its services: its
// policy, if one was set, and its dynamic user, if one was allocated.
type Tenant struct {
	Name string `json:"name"`
	// Policy is the last tenant_policy_set; nil if none.
	Policy      *TenantPolicy `json:"policy,omitempty"`
	PolicyPos   uint64        `json:"policy_pos,omitempty"`
	PolicySetAt time.Time     `json:"policy_set_at,omitzero"`
	// DynamicUser is its tenant_user_allocated; nil if none.
	DynamicUser *TenantUserAllocated `json:"dynamic_user,omitempty"`
}

// Clone returns a deep copy of t.
func (t *Tenant) Clone() *Tenant {
	c := *t
	if t.Policy != nil {
		p := t.Policy.Clone()
		c.Policy = &p
	}
	if t.DynamicUser != nil {
		d := *t.DynamicUser
		c.DynamicUser = &d
	}
	return &c
}

// Tenant returns what the log says of tenant name, if anything: a policy
// or a dynamic user. The pointer is into w.
func (w *World) Tenant(name string) (*Tenant, bool) {
	t, ok := w.tenants[name]
	return t, ok
}

// Tenants returns every tenant with a policy or a dynamic user, sorted by
// name. The pointers are into w.
func (w *World) Tenants() []*Tenant {
	out := slices.Collect(maps.Values(w.tenants))
	slices.SortFunc(out, func(a, b *Tenant) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// applyTenant folds a tenant event p of env.
func (w *World) applyTenant(env event.Envelope, p Payload) {
	if w.tenants == nil {
		w.tenants = map[string]*Tenant{}
	}
	t := w.tenants[env.Tenant]
	if t == nil {
		t = &Tenant{Name: env.Tenant}
	}
	switch p := p.(type) {
	case TenantPolicySet:
		pol := p.TenantPolicy.Clone()
		t.Policy, t.PolicyPos, t.PolicySetAt = &pol, env.Pos, env.Time.UTC()
	case TenantUserAllocated:
		if t.DynamicUser != nil {
			return // the first allocation stands
		}
		t.DynamicUser = &p
	}
	w.tenants[env.Tenant] = t
}
