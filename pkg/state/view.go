package state

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

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
//   - starting: the instance of the current generation runs but its
//     readiness probe has not passed yet (see [Service.IsReady]);
//   - running: the instance has not exited, whatever its generation (an
//     older generation still running after a redeploy is running: it serves
//     until the supervisor replaces it);
//   - stopped: the instance exited during a shutdown;
//   - starting: no instance runs and a start waits for services it is
//     after (see [Service.Waiting]);
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
	case s.Waiting != nil && (in == nil || in.Exited):
		return StateStarting // its start waits for services it is after
	case in == nil:
		return StateStarting
	case !in.Exited && !s.IsReady():
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

// IsReady reports whether the service's instance runs and is ready: at
// once without a ready probe, after its service_ready with one. An
// instance of an older generation still running counts as ready.
func (s *Service) IsReady() bool {
	in := s.Instance
	switch {
	case in == nil || in.Exited:
		return false
	case s.Spec.Ready == nil || in.Generation != s.Generation:
		return true
	}
	return in.Ready
}

// HealthOf is the running instance's health: empty when no instance of the
// current generation runs, the spec has no health check, or none was
// recorded yet.
func (s *Service) HealthOf() HealthState {
	in := s.Instance
	if in == nil || in.Exited || s.Spec.Health == nil || in.Generation != s.Generation {
		return ""
	}
	return in.Health
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
	// Ready: an instance runs and is ready (see [Service.IsReady]).
	Ready bool `json:"ready"`
	// Healthy is the running instance's health (see [Service.HealthOf]):
	// omitted while unknown (no health check, not probed yet).
	Healthy *bool `json:"healthy,omitempty"`
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
	// WaitingFor, while no instance runs, names the services a start
	// waits for (spec after, requires) and their states then.
	WaitingFor []Blocker `json:"waiting_for,omitempty"`
	// Node is the cluster node the service is placed on, and Fence that
	// placement's fencing token; both empty on a single machine.
	Node  string `json:"node,omitempty"`
	Fence uint64 `json:"fence,omitempty"`
}

// View returns the service as the CLI shows it. It shares nothing with s.
func (s *Service) View() ServiceView {
	v := ServiceView{
		Tenant:     s.Tenant,
		Name:       s.Name,
		Generation: s.Generation,
		State:      s.State(),
		Ready:      s.IsReady(),
		Restarts:   s.Restarts,
		Command:    s.Spec.Clone().Command,
		Kind:       s.Spec.Kind,
		Node:       s.Node,
		Fence:      s.Fence,
	}
	if h := s.HealthOf(); h != "" {
		ok := h == Healthy
		v.Healthy = &ok
	}
	if wt := s.Waiting; wt != nil && v.State == StateStarting && (s.Instance == nil || s.Instance.Exited) {
		v.WaitingFor = slices.Clone(wt.For)
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

// ServiceStatus is one service as `solo status` shows it: its [ServiceView]
// (the CLI contract's fields, unchanged) and what explains it: the spec,
// how long the instance has run, its last exits, and, in backoff, why and
// when the next attempt comes.
type ServiceStatus struct {
	ServiceView
	Spec SpecView `json:"spec"`
	// DeployedAt is when the current generation was deployed.
	DeployedAt time.Time `json:"deployed_at"`
	// Uptime is how long the running instance has run; zero when none runs.
	Uptime Duration `json:"uptime,omitempty"`
	// Exits are the last exits, newest first (at most [MaxExits]).
	Exits []ExitRecord `json:"exits,omitempty"`
	// Reason says why the service is not running, when it is not: the last
	// exit, a start that failed, the restart limit, a kill, the nodes it
	// waits for (in a cluster, see [Spec.Nodes]).
	Reason string `json:"reason,omitempty"`
	// NextAttemptAt is, in backoff, when the supervisor said it would start
	// the next attempt; Restart is that restart's number and RestartLimit
	// the spec's max_restarts within its window.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Restart       int       `json:"restart,omitempty"`
	RestartLimit  int       `json:"restart_limit,omitempty"`
	// Readiness says how the running instance became ready, or what it is
	// waiting for: "ready after 1.5s", "waiting for READY=1 on
	// NOTIFY_SOCKET"; empty when none runs.
	Readiness string `json:"readiness,omitempty"`
	// Waiting says, while a start waits for services it is after or
	// requires, which and in what state they were: "db (starting)"; and
	// why it stopped, if it ran: "required service db stopped".
	Waiting string `json:"waiting,omitempty"`
	// NotifyStatus is the latest STATUS= a notify service sent (kept in
	// memory, not in the log).
	NotifyStatus string `json:"notify_status,omitempty"`
	// Health says the running instance's health and since when: "healthy
	// since ...", "not probed yet (GET ... every 10s)"; empty without a
	// health check or an instance. LastUnhealthy is the last time an
	// instance was found unhealthy, and why (it was restarted then).
	Health          string    `json:"health,omitempty"`
	LastUnhealthy   time.Time `json:"last_unhealthy,omitzero"`
	UnhealthyReason string    `json:"unhealthy_reason,omitempty"`
}

// SpecView is a spec as a status shows it: everything but the values of
// its environment, which may hold secrets; only their keys, sorted.
type SpecView struct {
	Command       []string      `json:"command,omitempty"`
	Kind          string        `json:"kind,omitempty"`
	Dir           string        `json:"dir,omitempty"`
	EnvKeys       []string      `json:"env_keys,omitempty"`
	Restart       RestartPolicy `json:"restart"`
	MaxRestarts   int           `json:"max_restarts"`
	RestartWindow Duration      `json:"restart_window"`
	StopSignal    string        `json:"stop_signal"`
	StopTimeout   Duration      `json:"stop_timeout"`
	// Log is the log's rotation and stamping, defaults filled in.
	Log LogSpec `json:"log"`
	// Who and where: the env files' paths, never their contents.
	User    string   `json:"user,omitempty"`
	Group   string   `json:"group,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Umask   string   `json:"umask,omitempty"`
	EnvFile []string `json:"env_file,omitempty"`
	// Ready is the readiness probe, if any.
	Ready *ReadySpec `json:"ready,omitempty"`
	// Health is the health check, if any.
	Health *HealthSpec `json:"health,omitempty"`
	// After and Requires are the services it starts after and requires.
	After    []string `json:"after,omitempty"`
	Requires []string `json:"requires,omitempty"`
	// Nodes are the only nodes it may be placed on; empty: any.
	Nodes []string `json:"nodes,omitempty"`
	// EnvSecrets maps a variable to the name of the secret it takes:
	// names only, never a value.
	EnvSecrets map[string]string `json:"env_secrets,omitempty"`
	// The limits; zero: none.
	MemoryMax MemorySize `json:"memory_max,omitempty"`
	CPU       float64    `json:"cpu,omitempty"`
	PIDsMax   int64      `json:"pids_max,omitempty"`
}

// View returns the spec as a status shows it; it shares nothing with s.
func (s Spec) View() SpecView {
	return SpecView{
		Command:       slices.Clone(s.Command),
		Kind:          s.Kind,
		Dir:           s.Dir,
		EnvKeys:       slices.Sorted(maps.Keys(s.Env)),
		Restart:       s.Restart,
		MaxRestarts:   s.RestartLimit(),
		RestartWindow: s.RestartWindow,
		StopSignal:    s.StopSignal,
		StopTimeout:   s.StopTimeout,
		Log:           logView(s.Log),
		Ready:         s.Clone().Ready,
		Health:        s.Clone().Health,
		After:         slices.Clone(s.After),
		Requires:      slices.Clone(s.Requires),
		Nodes:         slices.Clone(s.Nodes),
		User:          s.User,
		Group:         s.Group,
		Groups:        slices.Clone(s.Groups),
		Umask:         s.Umask,
		EnvFile:       slices.Clone(s.EnvFile),
		EnvSecrets:    maps.Clone(s.EnvSecrets),
		MemoryMax:     s.MemoryMax,
		CPU:           s.CPU,
		PIDsMax:       s.PIDsMax,
	}
}

// WaitingForNodes is how a service that waits for one of nodes is
// described (status, the placement leader's reason): "waiting for a node
// among n1, n2".
func WaitingForNodes(nodes []string) string {
	return "waiting for a node among " + strings.Join(nodes, ", ")
}

// addReason joins one more reason to a status's reason, if it has one.
func addReason(reason, more string) string {
	if reason == "" {
		return more
	}
	return reason + "; " + more
}

// logView is l with the defaults filled in.
func logView(l *LogSpec) LogSpec {
	size, files := l.Limits()
	return LogSpec{MaxSize: size, Files: files, Timestamps: l.Stamped()}
}

// Status returns the service as `solo status` shows it at time now (which
// only the uptime depends on). It shares nothing with s.
func (s *Service) Status(now time.Time) ServiceStatus {
	st := ServiceStatus{
		ServiceView: s.View(),
		Spec:        s.Spec.View(),
		DeployedAt:  s.DeployedAt,
	}
	for _, e := range slices.Backward(s.Exits) {
		st.Exits = append(st.Exits, e)
	}
	in := s.Instance
	if in != nil && !in.Exited && !in.StartedAt.IsZero() && now.After(in.StartedAt) {
		st.Uptime = Duration(now.Sub(in.StartedAt))
	}
	last, hasExit := s.LastExit()
	// The last exit is the instance's when they are the same record.
	instanceExit := hasExit && in != nil && in.Exited && in.ExitPos == last.Pos
	switch st.State {
	case StateKilled:
		st.Reason = "stopped: " + cmp.Or(s.KillReason, "requested")
	case StateFailed:
		if instanceExit && last.Error != "" && last.PID == 0 {
			st.Reason = "could not start: " + last.Error
		} else {
			st.Reason = fmt.Sprintf("gave up: restart limit reached (%d restarts within %s)", s.Spec.RestartLimit(), s.Spec.RestartWindow)
		}
	case StateBackoff, StateExited, StateStopped:
		if instanceExit {
			st.Reason = last.Describe()
		}
	case StateStarting:
		if in == nil && hasExit && s.Node != "" && last.Pos == s.Fence {
			// Moved by this placement (see [Service.leave]).
			st.Reason = "starting on node " + s.Node + ": the instance was " + last.Error
		}
	}
	if len(s.NodeWait) > 0 && s.ShouldRun() && (in == nil || in.Exited) {
		// First: it is why no start comes; the last exit only how it ended.
		wait := WaitingForNodes(s.NodeWait)
		if st.Reason != "" {
			wait += "; " + st.Reason
		}
		st.Reason = wait
	}
	if s.RecoveryError != "" && st.State != StateRunning {
		st.Reason = addReason(st.Reason, "recovery failed: "+s.RecoveryError)
	}
	if in != nil && !in.Exited {
		st.Readiness = s.readiness()
		st.Health = s.health()
	}
	st.LastUnhealthy, st.UnhealthyReason = s.UnhealthyAt, s.UnhealthyReason
	if wt := s.Waiting; wt != nil && st.WaitingFor != nil {
		st.WaitingNow(wt.For, wt.Reason)
	}
	if st.State == StateBackoff && instanceExit && last.Restart > 0 {
		st.NextAttemptAt = last.NextAttemptAt()
		st.Restart, st.RestartLimit = last.Restart, s.Spec.RestartLimit()
	}
	return st
}

// WaitingNow sets what a waiting service waits for to bs (as recorded, or
// the states now: [World.Blockers]), with reason, why it was stopped if
// it ran.
func (st *ServiceStatus) WaitingNow(bs []Blocker, reason string) {
	st.WaitingFor = slices.Clone(bs)
	st.Waiting = DescribeBlockers(bs)
	if reason != "" {
		st.Waiting += "; " + reason
	}
}

// readiness describes the running instance's readiness.
func (s *Service) readiness() string {
	r, in := s.Spec.Ready, s.Instance
	switch {
	case r == nil || in.Generation != s.Generation:
		return "ready (no probe)"
	case in.Ready:
		return "ready after " + span(in.ReadyAfter)
	}
	return fmt.Sprintf("waiting for %s (deadline %s)", r.Describe(), Duration(r.Deadline()))
}

// health describes the running instance's health; empty without a check.
func (s *Service) health() string {
	h, in := s.Spec.Health, s.Instance
	if h == nil || in.Generation != s.Generation {
		return ""
	}
	switch s.HealthOf() {
	case Healthy:
		return "healthy since " + in.HealthAt.Format(time.RFC3339)
	case Unhealthy:
		return "unhealthy since " + in.HealthAt.Format(time.RFC3339) + ", being restarted"
	}
	if !s.IsReady() {
		return "checked once ready: " + h.Describe()
	}
	return "not checked yet: " + h.Describe()
}

// Describe names the check: "GET URL every 10s (timeout 2s, 3 tries)",
// "WATCHDOG=1 at least every 30s", or both.
func (h *HealthSpec) Describe() string {
	var parts []string
	if h.HasProbe() {
		interval, timeout, retries := h.Every()
		r := ReadySpec{HTTP: h.HTTP, TCP: h.TCP, Exec: h.Exec}
		parts = append(parts, fmt.Sprintf("%s every %s (timeout %s, %d tries)", r.Describe(), Duration(interval), Duration(timeout), retries))
	}
	if h.Watchdog != 0 {
		parts = append(parts, "WATCHDOG=1 at least every "+h.Watchdog.String())
	}
	return strings.Join(parts, "; ")
}

// Describe names the probe: "GET http://...", "a connection to
// HOST:PORT", "`CMD ...` to exit 0", "READY=1 on NOTIFY_SOCKET".
func (r *ReadySpec) Describe() string {
	switch {
	case r.HTTP != "":
		return "GET " + r.HTTP + " to answer 2xx/3xx"
	case r.TCP != "":
		return "a connection to " + r.TCP
	case r.Exec != nil:
		return "`" + QuoteCommand(r.Exec) + "` to exit 0"
	}
	return "READY=1 on NOTIFY_SOCKET"
}

// Describe says how the instance ended, in a few words: "exited with code
// 1", "killed by SIGKILL", "could not start: ...".
func (e ExitRecord) Describe() string {
	switch {
	case e.PID == 0 && e.Error != "":
		return "could not start: " + e.Error
	case e.Unknown && e.Error != "":
		return "ended, status unknown: " + e.Error
	case e.Unknown:
		return "ended, status unknown (a re-adopted process)"
	case e.Reason == ExitUnhealthy:
		how := fmt.Sprintf("exited with code %d", e.ExitCode)
		if e.Signal != "" {
			how = "killed by " + e.Signal
		}
		return "stopped as unhealthy (" + how + "): " + strings.TrimPrefix(e.Error, "unhealthy: ")
	case e.Signal != "" && e.Error != "":
		return "killed by " + e.Signal + ": " + e.Error
	case e.Reason == ExitOOM && e.Signal != "":
		return "killed by the OOM killer (" + e.Signal + "): its memory_max was reached"
	case e.Reason == ExitOOM:
		return fmt.Sprintf("exited with code %d after the OOM killer ended one of its processes: its memory_max was reached", e.ExitCode)
	case e.Signal != "":
		return "killed by " + e.Signal
	case e.Error != "":
		return fmt.Sprintf("exited with code %d: %s", e.ExitCode, e.Error)
	}
	return fmt.Sprintf("exited with code %d", e.ExitCode)
}

// Figures are the numbers the metrics report of one service, taken from
// the fold without copying the service.
type Figures struct {
	Tenant, Name string
	State        State
	Restarts     int
	Ready        bool
	// Checked: the spec has a health check; Health is the running
	// instance's ([Service.HealthOf]).
	Checked bool
	Health  HealthState
	// StartedAt is when the running instance started; zero when none runs.
	StartedAt time.Time
	// LastExit is the newest of [Service.Exits], if HasExit.
	HasExit  bool
	LastExit ExitRecord
}

// Figures returns the service's figures.
func (s *Service) Figures() Figures {
	f := Figures{Tenant: s.Tenant, Name: s.Name, State: s.State(), Restarts: s.Restarts, Ready: s.IsReady(), Checked: s.Spec.Health != nil, Health: s.HealthOf()}
	if in := s.Instance; in != nil && !in.Exited {
		f.StartedAt = in.StartedAt
	}
	f.LastExit, f.HasExit = s.LastExit()
	return f
}
