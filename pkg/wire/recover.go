package wire

import "github.com/solo-rt/solo/pkg/state"

// RecoverRequest is the body of POST /v1/recover. Without Name, every
// service of the principal's reach that is desired but not running comes
// back; Tenant defaults to "default" when Name is set.
type RecoverRequest struct {
	Tenant string `json:"tenant,omitempty"`
	Name   string `json:"name,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// RecoverResult is the reply of POST /v1/recover.
type RecoverResult struct {
	DryRun bool          `json:"dry_run"`
	Items  []RecoverItem `json:"items"`
}

// RecoverItem is one service that a recover brings back, or would.
type RecoverItem struct {
	Tenant string      `json:"tenant"`
	Name   string      `json:"name"`
	State  state.State `json:"state"`  // its state before the recover
	Action string      `json:"action"` // "restart", or "none" when it needed nothing after all
	Error  string      `json:"error,omitempty"`
}

// VerifyRequest is the body of POST /v1/verify.
type VerifyRequest struct {
	Fix bool `json:"fix,omitempty"`
}

// VerifyReport is the reply of POST /v1/verify: the drift between the log
// and the live processes.
type VerifyReport struct {
	Findings []Finding `json:"findings"`
	Clean    bool      `json:"clean"`
}

// Finding is one difference between the log and what runs.
type Finding struct {
	Kind   state.DriftKind `json:"kind"`
	Tenant string          `json:"tenant"`
	Name   string          `json:"name"`
	PID    int             `json:"pid,omitempty"`
	Detail string          `json:"detail"`
	// Fixed says what a verify with fix did about it; empty without fix.
	// It starts with "not fixed:" when the fix failed.
	Fixed string `json:"fixed,omitempty"`
}
