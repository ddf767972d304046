package wire

import (
	"time"

	"github.com/solo-rt/solo/pkg/state"
)

// TenantSetRequest is the body of PUT /v1/tenants/{tenant}: the fields of
// the tenant's policy to change. A nil field is left as it is; an empty
// list clears it.
type TenantSetRequest struct {
	// Users the tenant's services may run as (names or uids); the first
	// is the default. Empty: the tenant's dynamic user.
	Users *[]string `json:"users,omitempty"`
	// Groups the tenant's services may name in group and groups.
	Groups *[]string `json:"groups,omitempty"`
	// The tenant's own quotas and request rate, in place of the
	// operator's; 0 goes back to the operator's. A rate needs a burst.
	MaxServices *int     `json:"max_services,omitempty"`
	MaxSessions *int     `json:"max_sessions,omitempty"`
	MaxTasks    *int     `json:"max_tasks,omitempty"`
	Rate        *float64 `json:"rate,omitempty"`
	Burst       *int     `json:"burst,omitempty"`
}

// TenantView is what the log says of a tenant beyond its services.
type TenantView struct {
	Name string `json:"name"`
	// Policy is false when no policy was ever set: Users and Groups are
	// then empty and the tenant's services run as its dynamic user.
	Policy      bool      `json:"policy"`
	Users       []string  `json:"users"`
	Groups      []string  `json:"groups"`
	PolicySetAt time.Time `json:"policy_set_at,omitzero"`
	// DynamicUID and DynamicGID are the tenant's dynamic user, 0 if none
	// was allocated yet.
	DynamicUID uint32 `json:"dynamic_uid,omitempty"`
	DynamicGID uint32 `json:"dynamic_gid,omitempty"`
	// Own holds the quotas the policy sets (0: the operator's), Rate and
	// Burst its request rate (0: the operator's); Limits the quotas in
	// force, the policy's or else the operator's (0: no limit).
	Own    state.Limits `json:"own_limits"`
	Rate   float64      `json:"rate,omitempty"`
	Burst  int          `json:"burst,omitempty"`
	Limits state.Limits `json:"limits"`
}
