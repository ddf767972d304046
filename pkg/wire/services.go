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
	// For a start or restart, it is where the new attempts begin: the
	// request, or the old instance's last recorded fact if that came
	// later; wait on it with solo's Runtime.WaitStarted.
	Pos uint64 `json:"pos,omitempty"`
	// Started and StartError are set when the caller asked to wait
	// (?wait=DUR) for the attempt to start: Started once it did (exec
	// succeeded) within the wait, StartError with the reason if it could
	// not start. Neither is set if the wait ended first: Service.State
	// says where it is.
	Started    bool   `json:"started,omitempty"`
	StartError string `json:"start_error,omitempty"`
}

// SignalRequest is the body of POST /v1/services/{tenant}/{name}/signal:
// a signal name such as "HUP" or "SIGUSR1".
type SignalRequest struct {
	Signal string `json:"signal"`
}

// SignalResult is its reply: the signal sent, and the pid whose process
// group got it.
type SignalResult struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	Signal string `json:"signal"`
}

// RemoveResult is the reply of POST /v1/services/{tenant}/{name}/remove.
type RemoveResult struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Removed bool   `json:"removed"`
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
