package state

import "time"

// State is a service's state as the CLI and API show it, derived from the
// log by [Service.State].
type State string

// States.
const (
	StateStarting State = "starting" // desired; no instance of the current generation has started yet
	StateRunning  State = "running"  // an instance runs
	StateBackoff  State = "backoff"  // the instance exited and the restart policy will start it again
	StateExited   State = "exited"   // the instance exited and the restart policy will not start it again
	StateFailed   State = "failed"   // the restart limit was reached
	StateKilled   State = "killed"   // killed after its latest deploy
	StateStopped  State = "stopped"  // the instance exited during a daemon shutdown; it comes back on the next start
)

// State derives the service's state, checking in this order:
//   - killed: not desired (killed after the latest deploy);
//   - failed: a service_failed of the current generation and no start since;
//   - starting: no instance yet;
//   - running: the instance has not exited, whatever its generation (an
//     older generation still running after a redeploy is running: it serves
//     until the supervisor replaces it);
//   - stopped: the instance exited during a shutdown;
//   - starting: the exited instance is of an older generation;
//   - starting: a start or restart was requested after the instance began;
//   - exited: the restart policy would not restart it ([RestartPolicy.ShouldRestart]);
//   - backoff: otherwise.
func (s *Service) State() State {
	in := s.Instance
	switch {
	case !s.Desired:
		return StateKilled
	case s.Failed:
		return StateFailed
	case in == nil:
		return StateStarting
	case !in.Exited:
		return StateRunning
	case in.InShutdown:
		return StateStopped
	case in.Generation != s.Generation:
		return StateStarting
	case s.RequestPos > in.beginPos():
		return StateStarting
	case !s.Spec.Restart.ShouldRestart(in.ExitCode, in.Signal, in.Unknown):
		if in.StartError != "" {
			return StateFailed // it could not start, and will not be tried again
		}
		return StateExited
	}
	return StateBackoff
}

// ShouldRun reports whether the log says the service should be running:
// desired, not failed, and not ended for good under its restart policy.
// It is the one rule the Replayer, the Verifier, recover and the runtime
// all apply.
func (s *Service) ShouldRun() bool {
	switch s.State() {
	case StateKilled, StateFailed, StateExited:
		return false
	}
	return true
}

// ServiceView is one service as `solo ls --json` and `solo status --json`
// print it (the CLI contract of DESIGN.md).
type ServiceView struct {
	Tenant     string `json:"tenant"`
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	State      State  `json:"state"`
	// PID is the live instance's pid; 0 when none runs (or for an in-process
	// service).
	PID      int `json:"pid"`
	Restarts int `json:"restarts"`
	// StartedAt is when the running instance started; omitted when none
	// runs (before the first start, and once it exited or was stopped).
	StartedAt time.Time `json:"started_at,omitzero"`
	// Command is set for OS processes, Kind for in-process services.
	Command []string `json:"command,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	// ExitCode and Signal are set when the last instance exited with a known
	// status.
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	// StartError is why the last attempt could not start (a command not
	// found, a bad interpreter): empty if it started.
	StartError string `json:"start_error,omitempty"`
}

// View returns the service as the CLI shows it. It shares nothing with s.
func (s *Service) View() ServiceView {
	v := ServiceView{
		Tenant:     s.Tenant,
		Name:       s.Name,
		Generation: s.Generation,
		State:      s.State(),
		Restarts:   s.Restarts,
		Command:    s.Spec.Clone().Command,
		Kind:       s.Spec.Kind,
	}
	if in := s.Instance; in != nil {
		v.StartError = in.StartError
		if !in.Exited {
			v.PID = in.PID
			v.StartedAt = in.StartedAt
		} else if !in.Unknown {
			code := in.ExitCode
			v.ExitCode = &code
			v.Signal = in.Signal
		}
	}
	return v
}
