package wire

import (
	"time"

	"github.com/solo-rt/solo/pkg/state"
)

// A task (of POST /v1/sessions/{tenant}/{name}/tasks and the /v1/tasks
// routes) is reported as a state.Task, the domain's own type.

// CreateSessionRequest is the body of POST /v1/sessions.
type CreateSessionRequest struct {
	Tenant string `json:"tenant,omitempty"`
	Name   string `json:"name"`
	Kernel string `json:"kernel,omitempty"` // "python3" (the default)
	// Python is the interpreter's absolute path; "" means the daemon's
	// default (/usr/bin/python3).
	Python string `json:"python,omitempty"`
}

// SubmitRequest is the body of POST /v1/sessions/{tenant}/{name}/tasks.
// Kind "" runs Code; "checkpoint" and "restore" save or load the
// session's variables under Label.
type SubmitRequest struct {
	Kind      state.TaskKind `json:"kind,omitempty"`
	Code      string         `json:"code,omitempty"`
	Label     string         `json:"label,omitempty"`
	Retryable bool           `json:"retryable,omitempty"`
}

// AddAssetRequest is the body of POST /v1/sessions/{tenant}/{name}/assets:
// a regular file of the session's directory to keep as an asset. Path is
// relative to that directory (the kernel's working directory).
type AddAssetRequest struct {
	Path string `json:"path"`
}

// SessionView is a kernel session as the session routes report it.
type SessionView struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Kernel  string `json:"kernel"`
	Service string `json:"service"`
	// State is "starting" (no kernel connected yet, or a new one coming
	// up), "ready", "lost" (its node died: see Lost), or "removed".
	State string `json:"state"`
	// Node is the cluster node the session runs on; empty on a single
	// machine. Lost, set when State is "lost", says which node died, when,
	// and how to restart the session elsewhere (empty).
	Node        string    `json:"node,omitempty"`
	Lost        string    `json:"lost,omitempty"`
	PID         int       `json:"pid,omitempty"`
	Pending     int       `json:"pending"`
	Running     string    `json:"running,omitempty"`
	Done        int       `json:"done"`
	StateLost   int       `json:"state_lost,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Checkpoints []string  `json:"checkpoints,omitempty"`
}

// RestartSessionRequest is the body of POST
// /v1/sessions/{tenant}/{name}/restart, which runs a lost session (its
// node died) again on the node that answers, empty.
type RestartSessionRequest struct {
	// Python is the interpreter's absolute path on that node; "" means
	// its daemon's default.
	Python string `json:"python,omitempty"`
}

// RemoveSessionResult is the reply of DELETE /v1/sessions/{tenant}/{name}.
// Its keys are in the order the API has always sent them.
type RemoveSessionResult struct {
	Name    string `json:"name"`
	Removed bool   `json:"removed"`
	Tenant  string `json:"tenant"`
}

// AssetView is an asset of a session (a task's output or a marked file),
// as GET and POST /v1/sessions/{tenant}/{name}/assets report it.
type AssetView struct {
	ID   string          `json:"id"`
	Kind state.AssetKind `json:"kind"`
	// Path is relative to the session's directory (the kernel's working
	// directory): tasks/ID.out for an output.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// ExpiresAt is when the lease ends, unless the asset is read before;
	// zero while Held.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Held is set for the output of a task that has not ended: it is kept
	// whatever the time, and its lease starts when the task ends.
	Held bool `json:"held,omitempty"`
}
