package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults that [Spec.Normalize] fills into zero fields. DefaultStopTimeout
// is the one default stop timeout of a service; the supervisor's own
// DefaultStopTimeout is only the fallback of a caller that passes none, and
// a test keeps it equal to this one (the two packages may not import each
// other).
const (
	DefaultTenant        = "default"
	DefaultRestart       = RestartAlways
	DefaultMaxRestarts   = 5
	DefaultRestartWindow = Duration(60 * time.Second)
	DefaultStopSignal    = "SIGTERM"
	DefaultStopTimeout   = Duration(10 * time.Second)
)

// Limits that [Spec.Validate] enforces.
const (
	// NamePattern is what service names, tenants and kinds must match.
	NamePattern = `^[a-z0-9][a-z0-9._-]{0,62}$`
	// MaxNameLen is the longest name NamePattern allows.
	MaxNameLen = 63

	MaxArgs        = 256      // arguments in Command, argv[0] included
	MaxArgBytes    = 64 << 10 // sum of len(arg)+1 over Command
	MaxEnvVars     = 256      // entries in Env
	MaxEnvBytes    = 64 << 10 // sum of len(key)+len(value)+2 over Env
	MaxConfigBytes = 64 << 10 // len(Config)
	// MaxConfigDepth bounds how deeply Config nests: the deploy event that
	// carries it must stay within encoding/json's own nesting limit.
	MaxConfigDepth = 100
	MaxDuration    = Duration(24 * time.Hour)

	// ReservedEnv is set by the supervisor in every child's environment to
	// mark it as ours (its MarkerEnv; a test keeps the two equal); a spec
	// may not set it.
	ReservedEnv = "SOLO_SERVICE"
)

// RestartPolicy says when an exited service is started again.
type RestartPolicy string

// Restart policies.
const (
	RestartAlways    RestartPolicy = "always"     // after any exit
	RestartOnFailure RestartPolicy = "on-failure" // after a non-zero exit, a signal, or an unknown exit
	RestartNever     RestartPolicy = "never"      // never
)

// Valid reports whether p is one of the known policies.
func (p RestartPolicy) Valid() bool {
	switch p {
	case RestartAlways, RestartOnFailure, RestartNever:
		return true
	}
	return false
}

// ShouldRestart reports whether policy p restarts a service that exited with
// exitCode, or was killed by signal (a name such as "SIGKILL", empty if
// none). unknown means the exit status could not be observed (a re-adopted
// process); it counts as a failure. An empty or unknown policy behaves as
// [DefaultRestart]. This is the one rule both the supervisor and
// [Service.State] use.
func (p RestartPolicy) ShouldRestart(exitCode int, signal string, unknown bool) bool {
	switch p {
	case RestartNever:
		return false
	case RestartOnFailure:
		return unknown || signal != "" || exitCode != 0
	}
	return true
}

// Duration is a time.Duration that encodes in JSON (and text) as a Go
// duration string such as "10s", and decodes from such a string or from an
// integer number of nanoseconds.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a duration string ("1m30s") or integer nanoseconds.
// null leaves d unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		return d.UnmarshalText([]byte(s))
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"10s\" or integer nanoseconds, got %.20s", b)
	}
	*d = Duration(n)
	return nil
}

// MarshalText encodes d as a duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts a duration string or a decimal integer of
// nanoseconds (for YAML and flags).
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// signals are the names a stop signal may take. Exits by other signals are
// still named by [SignalName].
var signals = map[string]syscall.Signal{
	"SIGHUP":   syscall.SIGHUP,
	"SIGINT":   syscall.SIGINT,
	"SIGQUIT":  syscall.SIGQUIT,
	"SIGABRT":  syscall.SIGABRT,
	"SIGKILL":  syscall.SIGKILL,
	"SIGUSR1":  syscall.SIGUSR1,
	"SIGUSR2":  syscall.SIGUSR2,
	"SIGALRM":  syscall.SIGALRM,
	"SIGTERM":  syscall.SIGTERM,
	"SIGWINCH": syscall.SIGWINCH,
}

// otherSignals only name exits; they are not accepted as stop signals.
var otherSignals = map[syscall.Signal]string{
	syscall.SIGILL:  "SIGILL",
	syscall.SIGTRAP: "SIGTRAP",
	syscall.SIGBUS:  "SIGBUS",
	syscall.SIGFPE:  "SIGFPE",
	syscall.SIGSEGV: "SIGSEGV",
	syscall.SIGPIPE: "SIGPIPE",
	syscall.SIGSTOP: "SIGSTOP",
	syscall.SIGTSTP: "SIGTSTP",
	syscall.SIGCONT: "SIGCONT",
	syscall.SIGXCPU: "SIGXCPU",
	syscall.SIGXFSZ: "SIGXFSZ",
	syscall.SIGSYS:  "SIGSYS",
}

// ParseSignal returns the stop signal called name. It accepts "SIGTERM",
// "TERM" and any letter case of either; only the signals that make sense to
// stop a service are known (HUP INT QUIT ABRT KILL USR1 USR2 ALRM TERM WINCH).
func ParseSignal(name string) (syscall.Signal, error) {
	canon, ok := canonicalSignal(name)
	if !ok {
		return 0, fmt.Errorf("unknown signal %q", name)
	}
	return signals[canon], nil
}

// SignalNames returns the names [ParseSignal] accepts, sorted, in their
// canonical form ("SIGHUP").
func SignalNames() []string { return slices.Sorted(maps.Keys(signals)) }

func canonicalSignal(name string) (string, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	_, ok := signals[n]
	return n, ok
}

// SignalName returns the conventional name of sig, such as "SIGKILL", or
// "SIG<n>" for one it does not know, and "" for 0 (no signal). Use it to
// fill [Exited.Signal].
func SignalName(sig syscall.Signal) string {
	if sig == 0 {
		return ""
	}
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	if name, ok := otherSignals[sig]; ok {
		return name
	}
	return "SIG" + strconv.Itoa(int(sig))
}

// Spec is what a caller asks to run: one OS process (Command) or one
// in-process Go service (Kind and Config). Zero fields mean the Default*
// values; [Spec.Normalize] fills them in, and [NewEvent] stores only
// normalised specs in the log.
type Spec struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`

	// Command is the argv of an OS process. Exactly one of Command and Kind
	// is set.
	Command []string `json:"command,omitempty"`
	// Kind names an in-process Go service registered with the runtime, and
	// Config is its configuration, passed through as is.
	Kind   string          `json:"kind,omitempty"`
	Config json.RawMessage `json:"config,omitempty"`

	// Env and Dir apply to Command only. An empty Dir is the daemon's
	// working directory (the CLI sends the caller's instead).
	Env map[string]string `json:"env,omitempty"`
	Dir string            `json:"dir,omitempty"`

	// Who and where, for Command only; see [Spec.Validate] for the syntax.
	// The runtime resolves them at deploy (an unknown user, a missing env
	// file, a directory or command that cannot be used is refused, nothing
	// written) and again at every start.
	//
	// User runs the process as that user (a name or a numeric id) as
	// runuser does: its uid, its primary group unless Group says another,
	// its supplementary groups from the group database plus Groups, and
	// HOME, USER, LOGNAME and SHELL from its passwd entry unless the env
	// (or an env file) sets them. Empty: the daemon's own user.
	User   string   `json:"user,omitempty"`
	Group  string   `json:"group,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Umask is the process's file mode creation mask, in octal ("0027");
	// empty: the daemon's.
	Umask string `json:"umask,omitempty"`
	// EnvFile lists env files (absolute paths; see package envfile for the
	// syntax), read by the daemon at every start, in order, under Env: a
	// key of Env wins over a file's. Their contents never enter the log.
	EnvFile []string `json:"env_file,omitempty"`
	// EnvSecrets maps an environment variable to the name of a secret of
	// the service's tenant in the runtime's vault. The runtime reads the
	// secret at every start (a rotated secret reaches the next start) and
	// sets the variable over the env files' and Env's; only the names
	// enter the log, never a value. A key may not also be in Env.
	EnvSecrets map[string]string `json:"env_secrets,omitempty"`

	Restart RestartPolicy `json:"restart"`
	// MaxRestarts within RestartWindow before the service is failed. It is a
	// pointer so that 0 ("fail on the first exit that would restart") is
	// distinct from unset; see [Spec.RestartLimit].
	MaxRestarts   *int     `json:"max_restarts,omitempty"`
	RestartWindow Duration `json:"restart_window"`

	// StopSignal is sent to the process group to stop it; after StopTimeout
	// the group gets SIGKILL.
	StopSignal  string   `json:"stop_signal"`
	StopTimeout Duration `json:"stop_timeout"`

	// Log is how the service's output is kept; nil means the defaults
	// (see [LogSpec]).
	Log *LogSpec `json:"log,omitempty"`

	// Ready says when an instance is ready; nil: as soon as it runs. Until
	// then the service is starting (see [ReadySpec]).
	Ready *ReadySpec `json:"ready,omitempty"`

	// Health watches a ready instance; nil: it is never probed again once
	// ready (see [HealthSpec]).
	Health *HealthSpec `json:"health,omitempty"`
	// After names services of the same tenant that this one starts after:
	// each start (deploy, apply, start, restart, recovery) waits until
	// every one of them that is coming up is ready. Requires names
	// services it cannot run without: it implies After, a start waits
	// until each is running and ready, and when one stops or fails this
	// service is stopped too, and started again once it is ready. See
	// [CheckOrder] and [World.Blockers].
	After    []string `json:"after,omitempty"`
	Requires []string `json:"requires,omitempty"`

	// Nodes, in a cluster, are the only nodes the placement leader may
	// place the service on (a drained one never); empty: any node. While
	// none of them is alive the service stays unplaced, and its status
	// says so. A daemon that is not a cluster refuses it. See [checkNodes].
	Nodes []string `json:"nodes,omitempty"`

	// Limits of a Command service, held by its cgroup; zero means none.
	// MemoryMax is the most memory its processes may use together (at
	// least [MinMemoryMax]; past it the kernel's OOM killer ends one, and
	// the exit is recorded with the reason "oom"); CPU is a share of CPU
	// time in cores (0.5: half a core; [MinCPU] to [MaxCPU]); PIDsMax is
	// the most processes and threads it may have.
	MemoryMax MemorySize `json:"memory_max,omitempty"`
	CPU       float64    `json:"cpu,omitempty"`
	PIDsMax   int64      `json:"pids_max,omitempty"`
}

// Bounds of a spec's limits.
const (
	MinMemoryMax MemorySize = 1 << 20
	MinCPU                  = 0.01
	MaxCPU                  = 1024
)

// HasLimits reports whether the spec asks for a memory, CPU or pids limit.
func (s Spec) HasLimits() bool { return s.LimitField() != "" }

// LimitField names the first limit the spec sets (memory_max, cpu,
// pids_max), for an error about its limits; "" if it sets none.
func (s Spec) LimitField() string {
	switch {
	case s.MemoryMax != 0:
		return "memory_max"
	case s.CPU != 0:
		return "cpu"
	case s.PIDsMax != 0:
		return "pids_max"
	}
	return ""
}

// checkLimits is the one check of a spec's limits: the field at fault and
// the problem, or "".
func checkLimits(s Spec) (field, problem string) {
	switch {
	case s.MemoryMax < 0:
		return "memory_max", fmt.Sprintf("is %d, must be positive (or 0 for no limit)", s.MemoryMax)
	case s.MemoryMax != 0 && s.MemoryMax < MinMemoryMax:
		return "memory_max", fmt.Sprintf("is %s, at least %s", s.MemoryMax, MinMemoryMax)
	case math.IsNaN(s.CPU) || s.CPU < 0 || s.CPU > MaxCPU:
		return "cpu", fmt.Sprintf("is %v, want cores between %v and %v, such as 0.5 (or 0 for no limit)", s.CPU, MinCPU, MaxCPU)
	case s.CPU != 0 && s.CPU < MinCPU:
		return "cpu", fmt.Sprintf("is %v, at least %v of a core", s.CPU, MinCPU)
	case s.PIDsMax < 0:
		return "pids_max", fmt.Sprintf("is %d, must be positive (or 0 for no limit)", s.PIDsMax)
	case s.Kind != "" && s.HasLimits():
		return s.LimitField(), "is only for command services, not kind (an in-process service shares the daemon's cgroup)"
	}
	return "", ""
}

// ReadySpec is a readiness probe: exactly one of HTTP (a GET answered 2xx or
// 3xx), TCP ("HOST:PORT" accepts a connection), Exec (a command, no shell,
// exits 0) and Notify (the service sends READY=1 to $NOTIFY_SOCKET, the
// systemd notify protocol). An instance not ready within Timeout (zero:
// [DefaultReadyTimeout], at most [MaxReadyTimeout]) is a failed start: it is
// stopped and its restart policy applies.
type ReadySpec struct {
	HTTP    string   `json:"http,omitempty"`
	TCP     string   `json:"tcp,omitempty"`
	Exec    []string `json:"exec,omitempty"`
	Notify  bool     `json:"notify,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Readiness timeouts.
const (
	DefaultReadyTimeout = Duration(60 * time.Second)
	MaxReadyTimeout     = Duration(time.Hour)
)

// Deadline is how long an instance has to become ready.
func (r *ReadySpec) Deadline() time.Duration {
	if r.Timeout == 0 {
		return DefaultReadyTimeout.Std()
	}
	return r.Timeout.Std()
}

// check returns the field and problem of the first bad part of r.
func (r *ReadySpec) check(kind string) (field, problem string) {
	set := 0
	for _, on := range []bool{r.HTTP != "", r.TCP != "", r.Exec != nil, r.Notify} {
		if on {
			set++
		}
	}
	switch {
	case set == 0:
		return "ready", "sets no probe; set one of http, tcp, exec or notify"
	case set > 1:
		return "ready", "sets more than one probe; set one of http, tcp, exec or notify"
	case kind != "":
		return "ready", "is only for command services, not kind"
	}
	if field, problem := r.checkProbe("ready"); field != "" {
		return field, problem
	}
	if r.Timeout != 0 {
		if r.Timeout < 0 {
			return "ready.timeout", fmt.Sprintf("is %s, must be > 0", r.Timeout)
		}
		if r.Timeout > MaxReadyTimeout {
			return "ready.timeout", fmt.Sprintf("is %s, limit %s", r.Timeout, MaxReadyTimeout)
		}
	}
	return "", ""
}

// HealthSpec is a liveness check of a ready instance: a probe (one of
// HTTP, TCP, Exec, as in [ReadySpec]) run every Interval, each try bounded
// by Timeout, the instance restarted as unhealthy after Retries failures in
// a row; and/or, for a notify service, Watchdog: the longest the service
// may go without sending WATCHDOG=1 (systemd's WatchdogSec; the service
// gets it as WATCHDOG_USEC). Zero Interval, Timeout, Retries mean
// [DefaultHealthInterval], [DefaultHealthTimeout], [DefaultHealthRetries].
type HealthSpec struct {
	HTTP     string   `json:"http,omitempty"`
	TCP      string   `json:"tcp,omitempty"`
	Exec     []string `json:"exec,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
	Retries  int      `json:"retries,omitempty"`
	Watchdog Duration `json:"watchdog,omitempty"`
}

// Health check defaults and bounds.
const (
	DefaultHealthInterval = Duration(10 * time.Second)
	DefaultHealthTimeout  = Duration(2 * time.Second)
	DefaultHealthRetries  = 3
	MaxHealthRetries      = 100
	// MinHealthInterval is the shortest interval and watchdog: a probe
	// more often than that is load, not a check.
	MinHealthInterval = Duration(10 * time.Millisecond)
)

// HasProbe reports whether h runs a probe (http, tcp or exec).
func (h *HealthSpec) HasProbe() bool { return h.HTTP != "" || h.TCP != "" || h.Exec != nil }

// Every is the probe's interval, its try's timeout and the failures in a
// row that make the instance unhealthy, defaults filled in.
func (h *HealthSpec) Every() (interval, timeout time.Duration, retries int) {
	interval, timeout, retries = DefaultHealthInterval.Std(), DefaultHealthTimeout.Std(), DefaultHealthRetries
	if h.Interval != 0 {
		interval = h.Interval.Std()
	}
	if h.Timeout != 0 {
		timeout = h.Timeout.Std()
	} else if timeout > interval {
		timeout = interval
	}
	if h.Retries != 0 {
		retries = h.Retries
	}
	return interval, timeout, retries
}

// check returns the field and problem of the first bad part of h; ready is
// the spec's readiness (a watchdog needs notify).
func (h *HealthSpec) check(kind string, ready *ReadySpec) (field, problem string) {
	set := 0
	for _, on := range []bool{h.HTTP != "", h.TCP != "", h.Exec != nil} {
		if on {
			set++
		}
	}
	switch {
	case set == 0 && h.Watchdog == 0:
		return "health", "sets no probe; set one of http, tcp, exec (or watchdog, for a notify service)"
	case set > 1:
		return "health", "sets more than one probe; set one of http, tcp or exec"
	case kind != "":
		return "health", "is only for command services, not kind"
	}
	p := ReadySpec{HTTP: h.HTTP, TCP: h.TCP, Exec: h.Exec}
	if field, problem := p.checkProbe("health"); field != "" {
		return field, problem
	}
	interval, timeout, _ := h.Every()
	switch {
	case h.Interval < 0 || (h.Interval != 0 && h.Interval < MinHealthInterval) || h.Interval > MaxDuration:
		return "health.interval", fmt.Sprintf("is %s, want %s to %s", h.Interval, MinHealthInterval, MaxDuration)
	case h.Timeout < 0:
		return "health.timeout", fmt.Sprintf("is %s, must be > 0", h.Timeout)
	case timeout > interval:
		return "health.timeout", fmt.Sprintf("is %s, above the interval %s; a try must end before the next", Duration(timeout), Duration(interval))
	case h.Retries < 0 || h.Retries > MaxHealthRetries:
		return "health.retries", fmt.Sprintf("is %d, want 1 to %d", h.Retries, MaxHealthRetries)
	case h.Watchdog < 0 || (h.Watchdog != 0 && h.Watchdog < MinHealthInterval) || h.Watchdog > MaxDuration:
		return "health.watchdog", fmt.Sprintf("is %s, want %s to %s", h.Watchdog, MinHealthInterval, MaxDuration)
	case h.Watchdog != 0 && (ready == nil || !ready.Notify):
		return "health.watchdog", "needs a notify service (ready: {notify: true}, --notify): WATCHDOG=1 comes on its NOTIFY_SOCKET"
	case set == 0 && (h.Interval != 0 || h.Timeout != 0 || h.Retries != 0):
		return "health", "sets interval, timeout or retries but no probe; set one of http, tcp or exec"
	}
	return "", ""
}

// checkProbe checks the http, tcp and exec of a probe, naming the fields
// under prefix (ready, health).
func (r *ReadySpec) checkProbe(prefix string) (field, problem string) {
	if r.HTTP != "" {
		u, err := url.Parse(r.HTTP)
		switch {
		case err != nil:
			return prefix + ".http", fmt.Sprintf("%q is not a URL: %v", r.HTTP, err)
		case u.Scheme != "http" && u.Scheme != "https":
			return prefix + ".http", fmt.Sprintf("%q: scheme must be http or https", r.HTTP)
		case u.Hostname() == "":
			return prefix + ".http", fmt.Sprintf("%q has no host", r.HTTP)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return prefix + ".http", fmt.Sprintf("%q: port must be 1 to 65535", r.HTTP)
			}
		}
	}
	if r.TCP != "" {
		host, port, err := net.SplitHostPort(r.TCP)
		if err != nil {
			return prefix + ".tcp", fmt.Sprintf("%q: want HOST:PORT", r.TCP)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return prefix + ".tcp", fmt.Sprintf("%q: port must be 1 to 65535", r.TCP)
		}
		if host == "" {
			return prefix + ".tcp", fmt.Sprintf("%q has no host", r.TCP)
		}
	}
	if r.Exec != nil {
		if len(r.Exec) == 0 || r.Exec[0] == "" {
			return prefix + ".exec", "argv[0] is empty"
		}
		for i, a := range r.Exec {
			if strings.IndexByte(a, 0) >= 0 {
				return prefix + ".exec", fmt.Sprintf("argv[%d] contains a NUL byte", i)
			}
		}
	}
	return "", ""
}

// Key returns the service's key.
func (s Spec) Key() Key { return Key{Tenant: s.Tenant, Name: s.Name} }

// Signal returns the stop signal, SIGTERM if it is unset or unknown.
func (s Spec) Signal() syscall.Signal {
	if sig, err := ParseSignal(s.StopSignal); err == nil {
		return sig
	}
	return syscall.SIGTERM
}

// RestartLimit returns MaxRestarts, or [DefaultMaxRestarts] if it is unset.
func (s Spec) RestartLimit() int {
	if s.MaxRestarts == nil {
		return DefaultMaxRestarts
	}
	return *s.MaxRestarts
}

// Normalize fills the defaults into zero fields: tenant "default", restart
// "always", max_restarts 5, restart_window 60s, stop_signal SIGTERM,
// stop_timeout 10s. It also puts fields in canonical form so that
// [Spec.Equal] and snapshots compare exactly: stop_signal becomes "SIGTERM"
// style, empty command and env become nil, config is compacted (with <, > and &
// escaped as encoding/json does) and a JSON null config becomes nil. It never rejects anything; see [Spec.Validate].
func (s *Spec) Normalize() {
	if s.Tenant == "" {
		s.Tenant = DefaultTenant
	}
	if len(s.Command) == 0 {
		s.Command = nil
	}
	if len(s.Env) == 0 {
		s.Env = nil
	}
	if len(s.EnvSecrets) == 0 {
		s.EnvSecrets = nil
	}
	if len(s.After) == 0 {
		s.After = nil
	}
	if len(s.Requires) == 0 {
		s.Requires = nil
	}
	if len(s.Nodes) == 0 {
		s.Nodes = nil
	}
	s.normalizeWho()
	s.Config = canonicalConfig(s.Config)
	if s.Restart == "" {
		s.Restart = DefaultRestart
	}
	if s.MaxRestarts == nil {
		n := DefaultMaxRestarts
		s.MaxRestarts = &n
	}
	if s.RestartWindow == 0 {
		s.RestartWindow = DefaultRestartWindow
	}
	if s.StopSignal == "" {
		s.StopSignal = DefaultStopSignal
	} else if canon, ok := canonicalSignal(s.StopSignal); ok {
		s.StopSignal = canon
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	s.Log = normalizeLog(s.Log)
}

// jsonDepth returns how deeply valid JSON nests its objects and arrays,
// counting brackets outside strings.
func jsonDepth(b []byte) int {
	depth, most, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			most = max(most, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return most
}

func canonicalConfig(c json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(c)
	if len(t) == 0 || string(t) == "null" {
		return nil
	}
	var buf, esc bytes.Buffer
	if err := json.Compact(&buf, t); err != nil {
		return c // Validate reports it
	}
	// Escape <, >, & as encoding/json does by default, so that the bytes
	// stay the same whichever encoder writes them again.
	json.HTMLEscape(&esc, buf.Bytes())
	return json.RawMessage(esc.Bytes())
}

// Clone returns a deep copy of s.
func (s Spec) Clone() Spec {
	c := s
	c.Command = slices.Clone(s.Command)
	c.Env = maps.Clone(s.Env)
	c.EnvSecrets = maps.Clone(s.EnvSecrets)
	c.Config = slices.Clone(s.Config)
	c.Groups = slices.Clone(s.Groups)
	c.EnvFile = slices.Clone(s.EnvFile)
	c.After = slices.Clone(s.After)
	c.Requires = slices.Clone(s.Requires)
	c.Nodes = slices.Clone(s.Nodes)
	if s.MaxRestarts != nil {
		n := *s.MaxRestarts
		c.MaxRestarts = &n
	}
	if s.Log != nil {
		l := *s.Log
		c.Log = &l
	}
	if s.Ready != nil {
		r := *s.Ready
		r.Exec = slices.Clone(s.Ready.Exec)
		c.Ready = &r
	}
	if s.Health != nil {
		h := *s.Health
		h.Exec = slices.Clone(s.Health.Exec)
		c.Health = &h
	}
	return c
}

// Equal reports whether s and o ask for the same thing once both are
// normalised, so that a redeploy of an unchanged spec can be told apart.
func (s Spec) Equal(o Spec) bool {
	a, b := s.Clone(), o.Clone()
	a.Normalize()
	b.Normalize()
	return reflect.DeepEqual(a, b)
}

// NewKey is the one check of a (tenant, name) that a caller names: an
// empty tenant means [DefaultTenant], and both must be valid names (see
// [ValidName]). The error says which of the two is wrong and wraps
// [ErrInvalidName].
func NewKey(tenant, name string) (Key, error) {
	if tenant == "" {
		tenant = DefaultTenant
	}
	if err := ValidName(tenant); err != nil {
		return Key{}, fmt.Errorf("tenant: %w", err)
	}
	if err := ValidName(name); err != nil {
		return Key{}, fmt.Errorf("name: %w", err)
	}
	return Key{Tenant: tenant, Name: name}, nil
}

// ValidName returns an error wrapping [ErrInvalidName] unless s matches
// [NamePattern]: 1 to 63 bytes of a-z, 0-9, '.', '_', '-', starting with a
// letter or digit. The same rule holds for service names, tenants and kinds.
func ValidName(s string) error {
	if p := nameProblem(s); p != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, s, p)
	}
	return nil
}

func nameProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > MaxNameLen {
		return fmt.Sprintf("is %d bytes, limit %d", len(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			continue
		}
		if i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		if i == 0 {
			return fmt.Sprintf("starts with %q; must start with a-z or 0-9", s[:1])
		}
		return fmt.Sprintf("has %q at byte %d; allowed are a-z 0-9 . _ -", s[i:i+1], i)
	}
	return ""
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// Validate returns nil or a [*FieldError] (wrapping [ErrInvalidSpec]) that
// names the first bad field, checked in declaration order. It checks s as
// [Spec.Normalize] would leave it, so zero fields that have a default are
// fine; s itself is not changed. The rules:
//   - tenant, name and kind match [NamePattern];
//   - exactly one of command and kind; config and env/dir only with the one
//     they belong to;
//   - command: argv[0] non-empty, no NUL, at most [MaxArgs] args and
//     [MaxArgBytes] in total;
//   - env: keys match ^[A-Za-z_][A-Za-z0-9_]*$, not [ReservedEnv], no NUL in
//     values, at most [MaxEnvVars] entries and [MaxEnvBytes] in total;
//   - config: valid JSON, at most [MaxConfigBytes], nesting at most
//     [MaxConfigDepth] levels;
//   - dir: absolute, no NUL;
//   - user, group and each of groups: 1 to [MaxAccountName] bytes, no NUL,
//     ':', '/', blank or control character; at most [MaxGroups] groups;
//   - umask: octal, 0000 to 0777;
//   - env_file: at most [MaxEnvFiles] paths, each absolute, no NUL;
//   - restart a known policy, max_restarts >= 0;
//   - restart_window and stop_timeout > 0 and <= [MaxDuration];
//   - stop_signal known to [ParseSignal];
//   - ready: exactly one probe, command services only; http an http(s) URL
//     with a host, tcp HOST:PORT with a port from 1 to 65535, exec a
//     non-empty argv; timeout > 0 and <= [MaxReadyTimeout] when set;
//   - health: at most one probe (as ready's), or a watchdog, command
//     services only; interval and watchdog from [MinHealthInterval] to
//     [MaxDuration]; timeout > 0 and not above the interval; retries 1 to
//     [MaxHealthRetries]; watchdog only with ready.notify;
//   - after and requires: at most [MaxDeps] names each, valid names, no
//     name twice in one list, not the service itself (that the names
//     exist and form no cycle is [CheckOrder]'s, which sees the tenant);
//   - nodes: at most [MaxNodes] valid node names, none twice (whether a
//     node of that name is in the cluster is not checked: one may join
//     later);
//   - log: max_size from [MinLogMaxSize] to [MaxLogMaxSize], files from 1
//     to [MaxLogFiles] (the fields are named log.max_size, log.files).
func (s Spec) Validate() error {
	n := s.Clone()
	n.Normalize()
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if p := nameProblem(n.Tenant); p != "" {
		return bad("tenant", "%s", p)
	}
	if p := nameProblem(n.Name); p != "" {
		return bad("name", "%s", p)
	}
	switch {
	case n.Command == nil && n.Kind == "":
		return bad("command", "is empty; set command (an OS process) or kind (an in-process service)")
	case n.Command != nil && n.Kind != "":
		return bad("kind", "must not be set together with command")
	}
	if n.Command != nil {
		if len(n.Command) > MaxArgs {
			return bad("command", "has %d args, limit %d", len(n.Command), MaxArgs)
		}
		if n.Command[0] == "" {
			return bad("command", "argv[0] is empty")
		}
		total := 0
		for i, a := range n.Command {
			if strings.IndexByte(a, 0) >= 0 {
				return bad("command", "argv[%d] contains a NUL byte", i)
			}
			total += len(a) + 1
		}
		if total > MaxArgBytes {
			return bad("command", "is %d bytes, limit %d", total, MaxArgBytes)
		}
		if n.Config != nil {
			return bad("config", "is only for kind services, not command")
		}
	} else {
		if p := nameProblem(n.Kind); p != "" {
			return bad("kind", "%s", p)
		}
		if len(n.Config) > MaxConfigBytes {
			return bad("config", "is %d bytes, limit %d", len(n.Config), MaxConfigBytes)
		}
		if n.Config != nil && !json.Valid(n.Config) {
			return bad("config", "is not valid JSON")
		}
		if d := jsonDepth(n.Config); d > MaxConfigDepth {
			return bad("config", "nests %d levels deep, limit %d", d, MaxConfigDepth)
		}
		if n.Env != nil {
			return bad("env", "is only for command services, not kind")
		}
		if n.EnvSecrets != nil {
			return bad("env_secrets", "is only for command services, not kind")
		}
		if n.Dir != "" {
			return bad("dir", "is only for command services, not kind")
		}
		if f := n.whoField(); f != "" {
			return bad(f, "is only for command services, not kind")
		}
	}
	if len(n.Env) > MaxEnvVars {
		return bad("env", "has %d entries, limit %d", len(n.Env), MaxEnvVars)
	}
	total := 0
	for _, k := range slices.Sorted(maps.Keys(n.Env)) { // sorted: the same error every time
		v := n.Env[k]
		switch {
		case !validEnvKey(k):
			return bad("env", "key %q must match ^[A-Za-z_][A-Za-z0-9_]*$", k)
		case k == ReservedEnv:
			return bad("env", "key %s is reserved by solo", k)
		case strings.IndexByte(v, 0) >= 0:
			return bad("env", "value of %s contains a NUL byte", k)
		}
		total += len(k) + len(v) + 2
	}
	if total > MaxEnvBytes {
		return bad("env", "is %d bytes, limit %d", total, MaxEnvBytes)
	}
	if len(n.EnvSecrets) > MaxEnvVars {
		return bad("env_secrets", "has %d entries, limit %d", len(n.EnvSecrets), MaxEnvVars)
	}
	for _, k := range slices.Sorted(maps.Keys(n.EnvSecrets)) {
		switch {
		case !validEnvKey(k):
			return bad("env_secrets", "key %q must match ^[A-Za-z_][A-Za-z0-9_]*$", k)
		case k == ReservedEnv:
			return bad("env_secrets", "key %s is reserved by solo", k)
		case hasKey(n.Env, k):
			return bad("env_secrets", "key %s is also in env; keep one", k)
		}
		if p := nameProblem(n.EnvSecrets[k]); p != "" {
			return bad("env_secrets", "secret name of %s: %s", k, p)
		}
	}
	if n.Dir != "" {
		if strings.IndexByte(n.Dir, 0) >= 0 {
			return bad("dir", "contains a NUL byte")
		}
		if !filepath.IsAbs(n.Dir) {
			return bad("dir", "%q is not an absolute path", n.Dir)
		}
	}
	if err := n.validateWho(); err != nil {
		return err
	}
	if !n.Restart.Valid() {
		return bad("restart", "unknown policy %q; want always, on-failure or never", n.Restart)
	}
	if *n.MaxRestarts < 0 {
		return bad("max_restarts", "is %d, must be >= 0", *n.MaxRestarts)
	}
	if err := checkDuration(n.RestartWindow); err != "" {
		return bad("restart_window", "%s", err)
	}
	if _, err := ParseSignal(n.StopSignal); err != nil {
		return bad("stop_signal", "%v", err)
	}
	if err := checkDuration(n.StopTimeout); err != "" {
		return bad("stop_timeout", "%s", err)
	}
	if field, problem := checkLog(n.Log); field != "" {
		return bad(field, "%s", problem)
	}
	if field, problem := checkLimits(n); field != "" {
		return bad(field, "%s", problem)
	}
	if n.Ready != nil {
		if field, problem := n.Ready.check(n.Kind); field != "" {
			return bad(field, "%s", problem)
		}
	}
	if n.Health != nil {
		if field, problem := n.Health.check(n.Kind, n.Ready); field != "" {
			return bad(field, "%s", problem)
		}
	}
	if field, problem := checkDeps(n); field != "" {
		return bad(field, "%s", problem)
	}
	if problem := checkNodes(n.Nodes); problem != "" {
		return bad("nodes", "%s", problem)
	}
	if n.Kind != "" && n.Log.Stamped() {
		return bad("log.timestamps", "is only for command services, not kind (an in-process service writes its own lines)")
	}
	return nil
}

// MaxNodes bounds the names in a spec's nodes.
const MaxNodes = 64

// checkNodes is the part of [Spec.Validate] that checks a spec's nodes:
// at most [MaxNodes] names, each a valid node name (as a node's own name
// must be), none twice.
func checkNodes(nodes []string) string {
	if len(nodes) > MaxNodes {
		return fmt.Sprintf("has %d names, limit %d", len(nodes), MaxNodes)
	}
	for i, n := range nodes {
		if p := nameProblem(n); p != "" {
			return fmt.Sprintf("node name %q %s", n, p)
		}
		if slices.Contains(nodes[:i], n) {
			return fmt.Sprintf("names %s twice", n)
		}
	}
	return ""
}

func checkDuration(d Duration) string {
	switch {
	case d <= 0:
		return fmt.Sprintf("is %s, must be > 0", d)
	case d > MaxDuration:
		return fmt.Sprintf("is %s, limit %s", d, MaxDuration)
	}
	return ""
}

// QuoteCommand is the one way a command is shown (ls, status, why, the web
// view): each argument as a POSIX shell would need it to get it back, so
// that an empty argument shows as a pair of single quotes and one with
// spaces or quotes is single-quoted.
func QuoteCommand(argv []string) string {
	var b strings.Builder
	for i, arg := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if arg != "" && strings.Trim(arg, shellSafe) == "" {
			b.WriteString(arg)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(arg, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

// shellSafe are the bytes an argument may hold and be shown bare.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }
