package wire

import "github.com/solo-rt/solo/pkg/state"

// The body of POST /v1/services is a state.Spec, and a service is reported
// as a state.ServiceView: both are the domain's own types.

// DeployResult is the reply of POST /v1/services: what a deploy did.
type DeployResult struct {
	Service state.ServiceView `json:"service"`
	// Changed is false when the deploy changed nothing (the same spec,
	// running or in hand, or a one-shot that finished; see solo's
	// Runtime.Deploy): nothing was written and nothing restarted.
	Changed bool `json:"changed"`
	// Pos is the position of the service_deployed event, 0 if unchanged.
	Pos uint64 `json:"pos,omitempty"`
}

// KillResult is the reply of DELETE /v1/services/{tenant}/{name}.
type KillResult struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	Killed bool   `json:"killed"`
}

// Story is the reply of GET /v1/services/{tenant}/{name}/why: the
// service's recent story, oldest sentence first (see state.Story).
type Story struct {
	Tenant string            `json:"tenant"`
	Name   string            `json:"name"`
	Lines  []state.StoryLine `json:"lines"`
}
