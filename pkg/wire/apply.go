package wire

import "github.com/solo-rt/solo/pkg/state"

// ApplyAction is what an apply does to one service.
type ApplyAction string

// Apply actions.
const (
	ApplyCreate    ApplyAction = "create"    // first deploy of the name (or first since it was killed)
	ApplyUpdate    ApplyAction = "update"    // the spec changed, or the service failed: redeployed as a new generation
	ApplyUnchanged ApplyAction = "unchanged" // the same spec is deployed: nothing written, nothing touched
	ApplyPrune     ApplyAction = "prune"     // desired, in one of the file's tenants, not named by the file: killed
)

// ApplyRequest is the body of POST /v1/apply: a declarative set of
// services, as `solo apply -f FILE` sends it.
type ApplyRequest struct {
	// Services are the services the caller wants, each a full spec (zero
	// fields mean the defaults of [state.Spec.Normalize]). A (tenant, name)
	// may appear once.
	Services []state.Spec `json:"services"`
	// Prune kills the desired services of the tenants that Services name
	// which Services no longer names. Tenants that no entry names are
	// never touched.
	Prune bool `json:"prune,omitempty"`
	// DryRun computes and returns the plan and writes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ApplyItem is the plan, and after a real apply the outcome, for one
// service.
type ApplyItem struct {
	Tenant string      `json:"tenant"`
	Name   string      `json:"name"`
	Action ApplyAction `json:"action"`
	// Generation is the generation the service runs after the apply: the
	// new one for create and update, the current one otherwise.
	Generation uint64 `json:"generation"`
	// Pos is the position of the event written for this service
	// (service_deployed, or service_killed for a prune); 0 when unchanged
	// or in a dry run.
	Pos uint64 `json:"pos,omitempty"`
	// State is the service's state before the apply, empty for a create.
	State state.State `json:"state,omitempty"`
	// Started and StartError say, for a create or update when the caller
	// asked to wait (?wait=DUR), whether its first attempt started, as in
	// [DeployResult].
	Started    bool   `json:"started,omitempty"`
	StartError string `json:"start_error,omitempty"`
}

// ApplyResult is the reply of POST /v1/apply: what an apply planned and
// did.
type ApplyResult struct {
	// Items lists the file's services in file order, then the pruned
	// services sorted by tenant and name.
	Items  []ApplyItem `json:"items"`
	DryRun bool        `json:"dry_run,omitempty"`
	// FirstPos and LastPos bound the one append that holds every event of
	// the apply; both 0 when nothing was written.
	FirstPos uint64 `json:"first_pos,omitempty"`
	LastPos  uint64 `json:"last_pos,omitempty"`
}

// Count returns how many items have action a.
func (r ApplyResult) Count(a ApplyAction) int {
	n := 0
	for _, it := range r.Items {
		if it.Action == a {
			n++
		}
	}
	return n
}
