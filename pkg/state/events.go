package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
)

// EventType names a kind of event; it is stored as [event.Event.Type].
type EventType string

// The event types of Solo. Service events have the service's tenant and name
// as their envelope's tenant and subject; token events the token's tenant
// and id; tenant events the tenant as both; system events an empty tenant
// and subject.
const (
	TypeServiceDeployed         EventType = "service_deployed"
	TypeServiceStarted          EventType = "service_started"
	TypeServiceReady            EventType = "service_ready"
	TypeServiceHealth           EventType = "service_health"
	TypeServiceExited           EventType = "service_exited"
	TypeServiceFailed           EventType = "service_failed"
	TypeServiceKilled           EventType = "service_killed"
	TypeServiceRecovered        EventType = "service_recovered"
	TypeServiceRecoveryFailed   EventType = "service_recovery_failed"
	TypeServiceStartRequested   EventType = "service_start_requested"
	TypeServiceRestartRequested EventType = "service_restart_requested"
	TypeServiceSignalled        EventType = "service_signalled"
	TypeServiceRemoved          EventType = "service_removed"
	TypeServiceWaiting          EventType = "service_waiting"
	TypeServicePlaced           EventType = "service_placed"
	TypeDriftFound              EventType = "drift_found"
	TypeDriftFixed              EventType = "drift_fixed"
	TypeTokenGranted            EventType = "token_granted"
	TypeTokenRevoked            EventType = "token_revoked"
	TypeSecretSet               EventType = "secret_set"
	TypeSecretRemoved           EventType = "secret_removed"
	TypeTenantPolicySet         EventType = "tenant_policy_set"
	TypeTenantUserAllocated     EventType = "tenant_user_allocated"
	TypeSystemStarted           EventType = "system_started"
	TypeShutdownStarted         EventType = "system_shutdown_started"
	TypeShutdownComplete        EventType = "system_shutdown_complete"
)

// newPayload maps each known type to a function returning a pointer to its
// zero payload, for [Decode].
var newPayload = map[EventType]func() Payload{
	TypeServiceDeployed:         func() Payload { return new(Deployed) },
	TypeServiceStarted:          func() Payload { return new(Started) },
	TypeServiceReady:            func() Payload { return new(Ready) },
	TypeServiceHealth:           func() Payload { return new(Health) },
	TypeServiceExited:           func() Payload { return new(Exited) },
	TypeServiceFailed:           func() Payload { return new(Failed) },
	TypeServiceKilled:           func() Payload { return new(Killed) },
	TypeServiceRecovered:        func() Payload { return new(Recovered) },
	TypeServiceRecoveryFailed:   func() Payload { return new(RecoveryFailed) },
	TypeServiceStartRequested:   func() Payload { return new(StartRequested) },
	TypeServiceRestartRequested: func() Payload { return new(RestartRequested) },
	TypeServiceSignalled:        func() Payload { return new(Signalled) },
	TypeServiceRemoved:          func() Payload { return new(Removed) },
	TypeServiceWaiting:          func() Payload { return new(Waiting) },
	TypeServicePlaced:           func() Payload { return new(Placed) },
	TypeDriftFound:              func() Payload { return new(DriftFound) },
	TypeDriftFixed:              func() Payload { return new(DriftFixed) },
	TypeTokenGranted:            func() Payload { return new(TokenGranted) },
	TypeTokenRevoked:            func() Payload { return new(TokenRevoked) },
	TypeSecretSet:               func() Payload { return new(SecretSet) },
	TypeSecretRemoved:           func() Payload { return new(SecretRemoved) },
	TypeTenantPolicySet:         func() Payload { return new(TenantPolicySet) },
	TypeTenantUserAllocated:     func() Payload { return new(TenantUserAllocated) },
	TypeSystemStarted:           func() Payload { return new(SystemStarted) },
	TypeShutdownStarted:         func() Payload { return new(ShutdownStarted) },
	TypeShutdownComplete:        func() Payload { return new(ShutdownComplete) },
}

// Known reports whether t is one of the types this package decodes.
func (t EventType) Known() bool { _, ok := newPayload[t]; return ok }

func (t EventType) String() string { return string(t) }

// EventTypes returns every type this package decodes, sorted: the names a
// reader of the API's Server-Sent Events listens to.
func EventTypes() []EventType { return slices.Sorted(maps.Keys(newPayload)) }

// Payload is the data of one event type. Every payload type has value
// receivers, so both Deployed and *Deployed are Payloads.
type Payload interface {
	EventType() EventType
}

// Deployed (service_deployed) is the intent to run Spec as generation
// Generation (1 for the first deploy of a name, then one more each time; see
// [World.NextGeneration]).
type Deployed struct {
	Spec       Spec   `json:"spec"`
	Generation uint64 `json:"generation"`
}

// Started (service_started) is the observed start of one instance. Attempt
// counts from 1 within a generation; PID, StartTicks (field 22 of
// /proc/PID/stat) and BootID identify the process (I4). In-process services
// have PID 0.
type Started struct {
	Generation uint64 `json:"generation"`
	Attempt    int    `json:"attempt"`
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
	// Fence is the fencing token of the placement the instance was started
	// under (cluster mode; see [Placed]), 0 on a single machine. A start
	// under an older fence than the service's is ignored by the fold.
	Fence uint64 `json:"fence,omitempty"`
}

// Ready (service_ready) says an instance passed its readiness probe
// (spec.ready), After its start.
type Ready struct {
	Generation uint64   `json:"generation"`
	Attempt    int      `json:"attempt"`
	PID        int      `json:"pid"`
	After      Duration `json:"after"`
}

// Health (service_health) is a change of a ready instance's health
// (spec.health), recorded only when it changes, never per probe: Healthy
// once its first probe passes; not healthy when its probe failed its
// retries in a row or its watchdog expired (Reason says which, with the
// last probe's error), after which the instance is stopped and its exit
// recorded with the reason [ExitUnhealthy].
type Health struct {
	Generation uint64 `json:"generation"`
	Attempt    int    `json:"attempt"`
	PID        int    `json:"pid"`
	Healthy    bool   `json:"healthy"`
	Reason     string `json:"reason,omitempty"`
}

// Exited (service_exited) is the observed end of an instance. Signal is the
// name of the signal that ended it (see [SignalName]), empty if it exited.
// Unknown means the status could not be observed (a re-adopted process).
type Exited struct {
	Generation uint64   `json:"generation,omitempty"`
	PID        int      `json:"pid"`
	Attempt    int      `json:"attempt,omitempty"`
	ExitCode   int      `json:"exit_code"`
	Signal     string   `json:"signal,omitempty"`
	RanFor     Duration `json:"ran_for"`
	Unknown    bool     `json:"unknown,omitempty"`
	// Error says why an instance ended without an exit status of its own:
	// it could not be started, or an in-process service returned an error
	// or panicked.
	Error string `json:"error,omitempty"`
	// Restart and Backoff are set when the supervisor starts another
	// attempt after this one: the restart's number within the spec's
	// restart window (1 for the first; the spec's max_restarts is the
	// limit), and the delay before it. The supervisor decides both before
	// it records the exit, so the log says when the next attempt comes.
	Restart int      `json:"restart,omitempty"`
	Backoff Duration `json:"backoff,omitempty"`
	// Reason says why the instance ended when the kernel, not the service,
	// decided it: [ExitOOM] when the OOM killer ended a process of the
	// service's cgroup (its memory_max was reached); [ExitUnhealthy] when
	// Solo stopped it because its health check failed.
	Reason string `json:"reason,omitempty"`
	// Fence is the fencing token of the instance's placement (see
	// [Started.Fence]); an exit matches only the instance of its fence.
	Fence uint64 `json:"fence,omitempty"`
}

// ExitOOM is the [Exited] reason of an instance the OOM killer ended.
const ExitOOM = "oom"

// ExitUnhealthy is the [Exited] reason of an instance stopped because its
// health check failed (see [Health]).
const ExitUnhealthy = "unhealthy"

// Failed (service_failed) says the restart limit was reached: Restarts
// within Window. The service stays down until deployed again or recovered.
type Failed struct {
	Generation uint64   `json:"generation"`
	Restarts   int      `json:"restarts"`
	Window     Duration `json:"window"`
}

// Killed (service_killed) is the intent to stop a service for good (I5).
//
// Node is set when the placement leader kills a service because its node
// died (a lost session's kernel, see [SessionLost]): no exit of its
// instance will ever be recorded, so the fold ends the view of it there,
// as a move elsewhere does.
type Killed struct {
	Reason string `json:"reason,omitempty"`
	Node   string `json:"node,omitempty"`
}

// StartRequested (service_start_requested) is the intent to run a service
// again with the spec it has, after a stop (a kill), a failure or an end
// under its policy. It keeps the generation: nothing about what runs
// changed, only that it should run, so the attempts of that generation go
// on counting and an old instance's marker still tells it apart.
// Generation is the generation it was asked for; a request for another
// generation than the latest deploy's is stale and changes nothing.
type StartRequested struct {
	Generation uint64 `json:"generation"`
	Reason     string `json:"reason,omitempty"`
}

// RestartRequested (service_restart_requested) is the intent to stop the
// running instance of Generation with its stop procedure and start a new
// attempt of the same spec. It makes the service desired, as
// [StartRequested] does (a restart of a stopped service starts it). The
// start that follows is not counted in [Service.Restarts] nor toward the
// restart limit: it was asked for, not caused by a failure.
type RestartRequested struct {
	Generation uint64 `json:"generation"`
	Reason     string `json:"reason,omitempty"`
}

// Signalled (service_signalled) records a signal sent, on request, to the
// process group of the instance PID, after its identity was checked.
// Signal is its name, such as "SIGHUP". It changes nothing in the world.
type Signalled struct {
	PID    int    `json:"pid"`
	Signal string `json:"signal"`
}

// Removed (service_removed) forgets a service that neither runs nor is
// desired: it is gone from the world, and the name is free; a later deploy
// of it starts again at generation 1.
type Removed struct {
	Reason string `json:"reason,omitempty"`
}

// Waiting (service_waiting) says that a start of Generation waits for
// services it is after or requires that are not ready, For (see
// [World.Blockers]); it starts once they are, which its service_started
// tells. Reason is set when a running instance is stopped for it: "required
// service db stopped".
type Waiting struct {
	Generation uint64    `json:"generation"`
	For        []Blocker `json:"for"`
	Reason     string    `json:"reason,omitempty"`
}

// Placed (service_placed) puts a service on a node of a cluster: the
// placement leader appends it with a fenced write, so a deposed leader
// cannot. Lease is the node's etcd lease when it was placed: a node that
// lost its lease and came back with another runs none of the placements
// of its old one (they are stale; the leader places them again). The
// event's position is the placement's fencing token, strictly increasing
// for each service: the node passes it to the child as SOLO_FENCE and
// records it with every fact about the instance.
//
// Waiting, when set, says the service waits for one of these nodes (its
// spec's nodes) to be alive and undrained: the leader found none, and
// left it where it was (unplaced, or under a lease that is gone, which no
// node runs). It is written once, not at every round.
type Placed struct {
	Node    string   `json:"node"`
	Lease   int64    `json:"lease"`
	Reason  string   `json:"reason,omitempty"`
	Waiting []string `json:"waiting,omitempty"`
}

// RecoveryHow says how a service was brought back after a daemon start.
type RecoveryHow string

// Recovery methods.
const (
	RecoveryReadopted RecoveryHow = "readopted" // the old process still ran and was re-adopted
	RecoveryRestarted RecoveryHow = "restarted" // it was started again
)

// Recovered (service_recovered) records how the Replayer brought a desired
// service back. DeployPos is the position of the deploy it recovered.
type Recovered struct {
	How        RecoveryHow `json:"how"`
	PID        int         `json:"pid"`
	DeployPos  uint64      `json:"deploy_pos"`
	Generation uint64      `json:"generation"`
}

// RecoveryFailed (service_recovery_failed) records why the Replayer could
// not bring a desired service back.
type RecoveryFailed struct {
	Reason    string `json:"reason"`
	DeployPos uint64 `json:"deploy_pos"`
}

// DriftKind classifies a difference the Verifier found between the log and
// the live processes.
type DriftKind string

// Drift kinds.
const (
	DriftNotRunning       DriftKind = "not_running"       // desired, no live instance
	DriftRunningKilled    DriftKind = "running_killed"    // killed in the log, still alive
	DriftStranger         DriftKind = "stranger"          // a live child of ours that the log does not know
	DriftIdentityMismatch DriftKind = "identity_mismatch" // pid alive but start time or boot id differ
)

// Valid reports whether k is a known drift kind.
func (k DriftKind) Valid() bool {
	switch k {
	case DriftNotRunning, DriftRunningKilled, DriftStranger, DriftIdentityMismatch:
		return true
	}
	return false
}

// DriftFound (drift_found) is one Verifier finding.
type DriftFound struct {
	Kind   DriftKind `json:"kind"`
	PID    int       `json:"pid,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// DriftFixed (drift_fixed) is what the Verifier did about a finding.
type DriftFixed struct {
	Kind   DriftKind `json:"kind"`
	PID    int       `json:"pid,omitempty"`
	Action string    `json:"action"`
}

// TokenGranted (token_granted) describes a token. It never holds the secret
// or its hash (I7).
type TokenGranted struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Scopes    []string  `json:"scopes"`
	Services  []string  `json:"services,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// TokenRevoked (token_revoked) ends a token.
type TokenRevoked struct {
	ID string `json:"id"`
}

// SecretSet (secret_set) records a new version of a secret of the
// event's tenant. It never holds the value, nor a hash of it.
type SecretSet struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

// SecretRemoved (secret_removed) records the removal of a secret.
type SecretRemoved struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

// SystemStarted (system_started) is appended by each daemon start.
type SystemStarted struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	BootID  string `json:"boot_id"`
}

// ShutdownStarted (system_shutdown_started) begins a drain. It is not a kill:
// services stay desired and come back on the next start (I5).
type ShutdownStarted struct {
	Reason string   `json:"reason"`
	Grace  Duration `json:"grace"`
}

// ShutdownComplete (system_shutdown_complete) ends a drain: Stopped services
// stopped within the grace, Forced ones got SIGKILL.
type ShutdownComplete struct {
	ExitCode int `json:"exit_code"`
	Stopped  int `json:"stopped"`
	Forced   int `json:"forced"`
}

// EventType methods: the one place each payload is tied to its type.

func (Deployed) EventType() EventType         { return TypeServiceDeployed }
func (Started) EventType() EventType          { return TypeServiceStarted }
func (Exited) EventType() EventType           { return TypeServiceExited }
func (Ready) EventType() EventType            { return TypeServiceReady }
func (Health) EventType() EventType           { return TypeServiceHealth }
func (Waiting) EventType() EventType          { return TypeServiceWaiting }
func (Failed) EventType() EventType           { return TypeServiceFailed }
func (Killed) EventType() EventType           { return TypeServiceKilled }
func (Recovered) EventType() EventType        { return TypeServiceRecovered }
func (RecoveryFailed) EventType() EventType   { return TypeServiceRecoveryFailed }
func (StartRequested) EventType() EventType   { return TypeServiceStartRequested }
func (RestartRequested) EventType() EventType { return TypeServiceRestartRequested }
func (Signalled) EventType() EventType        { return TypeServiceSignalled }
func (Removed) EventType() EventType          { return TypeServiceRemoved }
func (Placed) EventType() EventType           { return TypeServicePlaced }
func (DriftFound) EventType() EventType       { return TypeDriftFound }
func (DriftFixed) EventType() EventType       { return TypeDriftFixed }
func (TokenGranted) EventType() EventType     { return TypeTokenGranted }
func (TokenRevoked) EventType() EventType     { return TypeTokenRevoked }
func (SecretSet) EventType() EventType        { return TypeSecretSet }
func (SecretRemoved) EventType() EventType    { return TypeSecretRemoved }
func (SystemStarted) EventType() EventType    { return TypeSystemStarted }
func (ShutdownStarted) EventType() EventType  { return TypeShutdownStarted }
func (ShutdownComplete) EventType() EventType { return TypeShutdownComplete }

// NewEvent encodes p as the data of a new event of p's type on stream
// (tenant, subject). It writes nothing; the caller appends the result and
// may set ID, Causation, Actor and Expect on it.
//
// A [Deployed] payload is checked first: its spec is normalised (so the log
// holds explicit defaults), its tenant and name must equal tenant and subject
// (an empty tenant or subject is taken from the spec), it must pass
// [Spec.Validate], and its generation must be at least 1. A [Recovered] needs
// a known How, a [DriftFound] or [DriftFixed] a known Kind. Refusals wrap
// [ErrInvalidEvent] or, for the spec, [ErrInvalidSpec].
func NewEvent(tenant, subject string, p Payload) (event.Event, error) {
	if p == nil {
		return event.Event{}, fmt.Errorf("new event: %w: nil payload", ErrInvalidEvent)
	}
	if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer && v.IsNil() {
		return event.Event{}, fmt.Errorf("new event: %w: nil payload", ErrInvalidEvent)
	}
	p = deref(p)
	t := p.EventType()
	switch v := p.(type) {
	case Deployed:
		d, err := checkDeployed(&tenant, &subject, v)
		if err != nil {
			return event.Event{}, fmt.Errorf("new event %s: %w", t, err)
		}
		p = d
	case checker:
		if err := v.check(); err != nil {
			return event.Event{}, fmt.Errorf("new event %s: %w", t, err)
		}
	}
	data, err := encodeJSON(p)
	if err != nil {
		return event.Event{}, fmt.Errorf("new event %s: %w", t, err)
	}
	return event.Event{Type: string(t), Tenant: tenant, Subject: subject, Data: data}, nil
}

func checkDeployed(tenant, subject *string, d Deployed) (Deployed, error) {
	d.Spec = d.Spec.Clone()
	d.Spec.Normalize()
	if *tenant == "" {
		*tenant = d.Spec.Tenant
	}
	if *subject == "" {
		*subject = d.Spec.Name
	}
	if d.Spec.Tenant != *tenant || d.Spec.Name != *subject {
		return d, fmt.Errorf("%w: spec is %s/%s but the event is for %s/%s",
			ErrInvalidEvent, d.Spec.Tenant, d.Spec.Name, *tenant, *subject)
	}
	if err := d.Spec.Validate(); err != nil {
		return d, err
	}
	if d.Generation == 0 {
		return d, fmt.Errorf("%w: generation must be >= 1", ErrInvalidEvent)
	}
	return d, nil
}

// checker is implemented by payloads with enum fields that [NewEvent]
// checks. [Decode] does not: what is in the log is the truth.
type checker interface{ check() error }

func (r Recovered) check() error {
	if r.How != RecoveryReadopted && r.How != RecoveryRestarted {
		return fmt.Errorf("%w: unknown recovery method %q", ErrInvalidEvent, r.How)
	}
	return nil
}

func (s Signalled) check() error {
	if _, err := ParseSignal(s.Signal); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return nil
}

func (d DriftFound) check() error { return checkDriftKind(d.Kind) }
func (d DriftFixed) check() error { return checkDriftKind(d.Kind) }

func checkDriftKind(k DriftKind) error {
	if !k.Valid() {
		return fmt.Errorf("%w: unknown drift kind %q", ErrInvalidEvent, k)
	}
	return nil
}

// encodeJSON marshals v without HTML escaping and without a trailing
// newline, so that raw JSON (a spec's config) survives byte for byte.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode returns the payload of env as a value (Deployed, not *Deployed).
// Unknown fields in the data are ignored, and empty data decodes as the zero
// payload. Errors are [*DecodeError]s naming the position and type, wrapping
// [ErrUnknownType] for a type this version does not know, or
// [ErrBadPayload] and the JSON error for data that does not decode.
func Decode(env event.Envelope) (Payload, error) {
	mk, ok := newPayload[EventType(env.Type)]
	if !ok {
		return nil, &DecodeError{Pos: env.Pos, Type: env.Type, Err: ErrUnknownType}
	}
	p := mk()
	if len(bytes.TrimSpace(env.Data)) > 0 {
		if err := json.Unmarshal(env.Data, p); err != nil {
			return nil, &DecodeError{Pos: env.Pos, Type: env.Type, Err: fmt.Errorf("%w: %w", ErrBadPayload, err)}
		}
	}
	return deref(p), nil
}

// deref turns the pointer from newPayload into the value it points to.
func deref(p Payload) Payload {
	switch v := p.(type) {
	case *Deployed:
		return *v
	case *Started:
		return *v
	case *Ready:
		return *v
	case *Health:
		return *v
	case *Exited:
		return *v
	case *Failed:
		return *v
	case *Killed:
		return *v
	case *Recovered:
		return *v
	case *RecoveryFailed:
		return *v
	case *StartRequested:
		return *v
	case *RestartRequested:
		return *v
	case *Signalled:
		return *v
	case *Removed:
		return *v
	case *Waiting:
		return *v
	case *Placed:
		return *v
	case *DriftFound:
		return *v
	case *DriftFixed:
		return *v
	case *TokenGranted:
		return *v
	case *TokenRevoked:
		return *v
	case *SecretSet:
		return *v
	case *SecretRemoved:
		return *v
	case *TenantPolicySet:
		return *v
	case *TenantUserAllocated:
		return *v
	case *SystemStarted:
		return *v
	case *ShutdownStarted:
		return *v
	case *ShutdownComplete:
		return *v
	}
	if v, ok := derefSession(p); ok {
		return v
	}
	return p
}
