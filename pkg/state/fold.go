package state

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
)

// Key names a service: its tenant and name, which are the tenant and subject
// of its events' envelopes.
type Key struct {
	Tenant, Name string
}

func (k Key) String() string { return k.Tenant + "/" + k.Name }

// World is the fold of the log up to [World.Pos]: every service ever
// deployed, plus the daemon's last start and shutdown.
//
// The zero World is empty and ready to use. A World is not safe for
// concurrent use: readers that must not see it change take a [World.Clone].
// Pointers returned by [World.Service], [World.Services] and
// [World.Desired] point into the World; do not change what they point to.
type World struct {
	pos      uint64
	services map[Key]*Service
	boot     *Boot
	shutdown *Shutdown
	sessions *Sessions // kernel sessions and their tasks, folded alongside
	tenants  map[string]*Tenant
}

// Boot is the last system_started.
type Boot struct {
	SystemStarted
	Pos uint64    `json:"pos"`
	At  time.Time `json:"at"`
}

// Shutdown is the last shutdown: started, and possibly complete.
type Shutdown struct {
	Reason     string    `json:"reason"`
	Grace      Duration  `json:"grace"`
	StartedPos uint64    `json:"started_pos,omitempty"` // 0 if the log holds no shutdown_started for it
	StartedAt  time.Time `json:"started_at,omitzero"`

	Complete    bool      `json:"complete"`
	CompletePos uint64    `json:"complete_pos,omitempty"`
	CompleteAt  time.Time `json:"complete_at,omitzero"`
	ExitCode    int       `json:"exit_code"`
	Stopped     int       `json:"stopped"`
	Forced      int       `json:"forced"`
}

// Service is what the log says about one (tenant, name). It exists from its
// first deploy until a service_removed: after a kill it stays, not desired,
// so that its generation keeps counting; once removed it is gone, and a
// later deploy of the name starts again at generation 1.
type Service struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`

	// Spec and Generation are those of the latest deploy, at DeployPos.
	Spec       Spec      `json:"spec"`
	Generation uint64    `json:"generation"`
	DeployPos  uint64    `json:"deploy_pos"`
	DeployedAt time.Time `json:"deployed_at"`

	// DeployedBy is the actor of the latest deploy: "local" (the local
	// admin or the library), or the id of the token that deployed it.
	DeployedBy string `json:"deployed_by,omitempty"`

	// Desired is true when the latest deploy has no later kill (I5).
	Desired bool `json:"desired"`
	// Killed, KillPos and KillReason describe a kill after the latest deploy.
	Killed     bool   `json:"killed,omitempty"`
	KillPos    uint64 `json:"kill_pos,omitempty"`
	KillReason string `json:"kill_reason,omitempty"`

	// Instance is the last instance observed to start, nil before the first,
	// and nil again after a placement on another node until the start
	// there is recorded (see [Service.leave]).
	// After a redeploy it may still be of an older generation.
	Instance *Instance `json:"instance,omitempty"`

	// Restarts counts the starts of the current generation, since the
	// latest deploy, that followed an instance's own end: service_started
	// events with attempt > 1, except a start after an instance that
	// exited in a daemon shutdown (a clean stop and start is not a
	// restart) and the start that a start or restart request asked for.
	Restarts int `json:"restarts"`

	// RequestPos is the position of the last service_start_requested or
	// service_restart_requested of the current generation, 0 if none: a
	// new attempt was asked for there.
	RequestPos uint64 `json:"request_pos,omitempty"`

	// Failed is set by service_failed of the current generation, and cleared
	// by a new deploy or by a service_started of the current generation (a
	// `solo recover`).
	Failed    bool   `json:"failed,omitempty"`
	FailedPos uint64 `json:"failed_pos,omitempty"`

	// LastRecovery is the last service_recovered.
	LastRecovery *Recovery `json:"last_recovery,omitempty"`
	// RecoveryError is the reason of the last service_recovery_failed; it is
	// cleared by a later start, recovery or deploy.
	RecoveryError    string `json:"recovery_error,omitempty"`
	RecoveryErrorPos uint64 `json:"recovery_error_pos,omitempty"`

	// Waiting is set while a start of the current generation waits for
	// services it is after or requires (its last service_waiting); a
	// start, deploy, kill or start or restart request clears it.
	Waiting *Wait `json:"waiting,omitempty"`
	// Node, NodeLease and Fence are the service's placement in a cluster
	// (the last service_placed: its node, that node's lease, and its
	// position, the fencing token); empty on a single machine.
	Node      string `json:"node,omitempty"`
	NodeLease int64  `json:"node_lease,omitempty"`
	Fence     uint64 `json:"fence,omitempty"`
	// NodeWait is the last service_placed's waiting: the nodes of its
	// spec it waits for, none of them alive and undrained.
	NodeWait []string `json:"node_wait,omitempty"`

	// Exits are the last [MaxExits] exits of its instances, of any
	// generation, oldest first: a small ring, so that a status can say how
	// the service ended lately without reading the log.
	Exits []ExitRecord `json:"exits,omitempty"`

	// UnhealthyAt and UnhealthyReason are the last service_health that
	// found an instance unhealthy, of any instance: the last failure a
	// status shows after the restart it caused.
	UnhealthyAt     time.Time `json:"unhealthy_at,omitzero"`
	UnhealthyReason string    `json:"unhealthy_reason,omitempty"`
}

// Wait is a service's last service_waiting: what it waits for, and why it
// was stopped if it ran.
type Wait struct {
	For    []Blocker `json:"for"`
	Reason string    `json:"reason,omitempty"`
	Pos    uint64    `json:"pos"`
	At     time.Time `json:"at"`
}

// MaxExits is how many exits a [Service] keeps in Exits.
const MaxExits = 5

// ExitRecord is one exit of an instance, as service_exited recorded it.
type ExitRecord struct {
	Pos        uint64    `json:"pos"`
	At         time.Time `json:"at"`
	Generation uint64    `json:"generation"`
	Attempt    int       `json:"attempt"`
	PID        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exit_code"`
	Signal     string    `json:"signal,omitempty"`
	// Unknown: the status could not be observed (a re-adopted process).
	Unknown bool     `json:"unknown,omitempty"`
	RanFor  Duration `json:"ran_for"`
	// Error says why it ended without a status of its own; with PID 0, why
	// it could not start.
	Error string `json:"error,omitempty"`
	// InShutdown: it ended while the daemon was shutting down.
	InShutdown bool `json:"in_shutdown,omitempty"`
	// Restart and Backoff: the supervisor started restart number Restart
	// (of the spec's max_restarts within its window) Backoff after this
	// exit. Zero when it did not restart.
	Restart int      `json:"restart,omitempty"`
	Backoff Duration `json:"backoff,omitempty"`
	// Reason is why it ended when the service did not decide it:
	// [ExitOOM], [ExitUnhealthy].
	Reason string `json:"reason,omitempty"`
}

// NextAttemptAt is when the supervisor said it would start the next
// attempt after this exit; zero if it said none.
func (e ExitRecord) NextAttemptAt() time.Time {
	if e.Restart == 0 {
		return time.Time{}
	}
	return e.At.Add(e.Backoff.Std())
}

// addExit appends e to the ring of exits.
func (s *Service) addExit(e ExitRecord) {
	if len(s.Exits) >= MaxExits {
		s.Exits = slices.Delete(s.Exits, 0, len(s.Exits)-MaxExits+1)
	}
	s.Exits = append(s.Exits, e)
}

// LastExit returns the newest exit, if any.
func (s *Service) LastExit() (ExitRecord, bool) {
	if len(s.Exits) == 0 {
		return ExitRecord{}, false
	}
	return s.Exits[len(s.Exits)-1], true
}

// Instance is one observed run of a service.
type Instance struct {
	Generation uint64    `json:"generation"`
	Attempt    int       `json:"attempt"`
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks,omitempty"`
	BootID     string    `json:"boot_id,omitempty"`
	Fence      uint64    `json:"fence,omitempty"` // its placement's (cluster mode)
	StartPos   uint64    `json:"start_pos"`
	StartedAt  time.Time `json:"started_at"`

	Exited   bool      `json:"exited,omitempty"`
	ExitCode int       `json:"exit_code,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	Unknown  bool      `json:"unknown,omitempty"`
	RanFor   Duration  `json:"ran_for,omitempty"`
	ExitPos  uint64    `json:"exit_pos,omitempty"`
	ExitedAt time.Time `json:"exited_at,omitzero"`
	// InShutdown is set when the exit was recorded while the daemon was
	// shutting down (after system_shutdown_started, before the next
	// system_started).
	InShutdown bool `json:"in_shutdown,omitempty"`
	// StartError is set for an attempt that could not be started (its
	// PID is 0): why.
	StartError string `json:"start_error,omitempty"`
	// Ready is set by its service_ready (a spec with a ready probe), After
	// its start.
	Ready      bool     `json:"ready,omitempty"`
	ReadyAfter Duration `json:"ready_after,omitempty"`
	// Health is its last service_health (a spec with a health check):
	// empty until the first, and HealthAt when it was recorded.
	Health   HealthState `json:"health,omitempty"`
	HealthAt time.Time   `json:"health_at,omitzero"`
}

// HealthState is an instance's health as its service_health events say.
type HealthState string

// Health states; an instance not yet probed has none ("").
const (
	Healthy   HealthState = "healthy"
	Unhealthy HealthState = "unhealthy"
)

// instance is s's instance; nil for no service or no instance.
func (s *Service) instance() *Instance {
	if s == nil {
		return nil
	}
	return s.Instance
}

// beginPos is where the instance begins in the log: its service_started,
// or for an attempt that could not start, its service_exited.
func (in *Instance) beginPos() uint64 {
	if in.StartPos != 0 {
		return in.StartPos
	}
	return in.ExitPos
}

// countsAsRestart reports whether a start of attempt > 1 that follows prev
// (the instance before it, nil if none is known) is a restart in the sense
// of [Service.Restarts]: prev ended on its own, not in a daemon shutdown,
// and no start or restart was requested since prev began.
func (s *Service) countsAsRestart(prev *Instance) bool {
	if prev == nil {
		return true
	}
	if prev.Exited && prev.InShutdown {
		return false
	}
	return s.RequestPos <= prev.beginPos()
}

// leave ends the view of the instance that ran under the service's
// placement when a service_placed puts it under another node (or another
// lease of the same node), or a service_killed says its node died: the
// leader does either only once the node's lease is gone, and the node's
// keeper has killed the instance by then, but no exit of it will ever be
// recorded (its node is dead, or its writes are fenced). Until the new
// node records its start, the service shows no instance (starting, no
// pid), never the old node's pid under the new node's name; the instance
// is kept among its exits, of unknown status, with why it was left.
func (s *Service) leave(pos uint64, at time.Time, reason string) {
	in := s.Instance
	why := "left on node " + s.Node
	if reason != "" {
		why += ": " + reason
	}
	s.addExit(ExitRecord{
		Pos: pos, At: at, Generation: in.Generation, Attempt: in.Attempt, PID: in.PID,
		Unknown: true, Error: why,
	})
	s.Instance = nil
}

// Recovery is the last service_recovered of a service.
type Recovery struct {
	How        RecoveryHow `json:"how"`
	Pos        uint64      `json:"pos"`
	PID        int         `json:"pid"`
	DeployPos  uint64      `json:"deploy_pos"`
	Generation uint64      `json:"generation"`
}

// NewWorld returns an empty World.
func NewWorld() *World { return &World{services: map[Key]*Service{}, sessions: NewSessions()} }

// Sessions returns the kernel sessions and tasks folded with the world, so
// they share its snapshots. The pointer is into w: clone w to keep a copy.
func (w *World) Sessions() *Sessions {
	if w.sessions == nil {
		w.sessions = NewSessions()
	}
	return w.sessions
}

// Pos returns the position of the last envelope folded, 0 if none.
func (w *World) Pos() uint64 { return w.pos }

// Len returns the number of services, desired or not.
func (w *World) Len() int { return len(w.services) }

// Service returns the service (tenant, name), if it was ever deployed.
func (w *World) Service(tenant, name string) (*Service, bool) {
	s, ok := w.services[Key{tenant, name}]
	return s, ok
}

// Services returns every service, sorted by tenant, then name.
func (w *World) Services() []*Service {
	out := slices.Collect(maps.Values(w.services))
	slices.SortFunc(out, func(a, b *Service) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Desired returns the services that should run, sorted like [World.Services].
// A service that failed is still desired; the caller decides whether to
// bring it back.
func (w *World) Desired() []*Service {
	return slices.DeleteFunc(w.Services(), func(s *Service) bool { return !s.Desired })
}

// NextGeneration returns the generation the next deploy of (tenant, name)
// should carry: one more than the last, 1 for a new name.
func (w *World) NextGeneration(tenant, name string) uint64 {
	if s, ok := w.services[Key{tenant, name}]; ok {
		return s.Generation + 1
	}
	return 1
}

// Boot returns the last system_started, if any.
func (w *World) Boot() (Boot, bool) {
	if w.boot == nil {
		return Boot{}, false
	}
	return *w.boot, true
}

// LastShutdown returns the last shutdown, if any.
func (w *World) LastShutdown() (Shutdown, bool) {
	if w.shutdown == nil {
		return Shutdown{}, false
	}
	return *w.shutdown, true
}

// ShuttingDown reports whether a system_shutdown_started was folded with no
// system_started after it: the daemon is draining, or died while draining.
func (w *World) ShuttingDown() bool {
	return w.shutdown != nil && w.shutdown.StartedPos != 0 && w.shutdown.StartedPos > w.bootPos()
}

// ShutdownComplete reports whether the last run ended cleanly: a
// system_shutdown_complete was folded and no system_started came after it.
// A Replayer calls it before appending its own system_started.
func (w *World) ShutdownComplete() bool {
	return w.shutdown != nil && w.shutdown.Complete && w.shutdown.CompletePos > w.bootPos()
}

func (w *World) bootPos() uint64 {
	if w.boot == nil {
		return 0
	}
	return w.boot.Pos
}

// Keep removes from w every service for which keep is false.
func (w *World) Keep(keep func(*Service) bool) {
	for k, svc := range w.services {
		if !keep(svc) {
			delete(w.services, k)
		}
	}
}

// Clone returns a deep copy of w; a nil w gives an empty World.
func (w *World) Clone() *World {
	c := NewWorld()
	if w == nil {
		return c
	}
	c.pos = w.pos
	for k, s := range w.services {
		c.services[k] = s.Clone()
	}
	if w.sessions != nil {
		c.sessions = w.sessions.Clone()
	}
	for n, t := range w.tenants {
		if c.tenants == nil {
			c.tenants = map[string]*Tenant{}
		}
		c.tenants[n] = t.Clone()
	}
	if w.boot != nil {
		b := *w.boot
		c.boot = &b
	}
	if w.shutdown != nil {
		s := *w.shutdown
		c.shutdown = &s
	}
	return c
}

// Clone returns a deep copy of s.
func (s *Service) Clone() *Service {
	c := *s
	c.Spec = s.Spec.Clone()
	if s.Instance != nil {
		i := *s.Instance
		c.Instance = &i
	}
	if s.LastRecovery != nil {
		r := *s.LastRecovery
		c.LastRecovery = &r
	}
	c.Exits = slices.Clone(s.Exits)
	c.NodeWait = slices.Clone(s.NodeWait)
	if s.Waiting != nil {
		wt := *s.Waiting
		wt.For = slices.Clone(s.Waiting.For)
		c.Waiting = &wt
	}
	return &c
}

// Fold returns the World that results from applying events, in order, to a
// deep copy of snapshot (nil means the empty World); snapshot is not
// changed. It is pure: it does no I/O and reads no clock, so the same
// snapshot and events give a deep-equal World every time (I6).
//
// It stops at the first error, from the sequence or from [World.Apply], and
// returns it with the World folded so far (never nil).
func Fold(snapshot *World, events iter.Seq2[event.Envelope, error]) (*World, error) {
	w := snapshot.Clone()
	for env, err := range events {
		if err != nil {
			return w, fmt.Errorf("fold after pos %d: %w", w.pos, err)
		}
		if err := w.Apply(env); err != nil {
			return w, fmt.Errorf("fold: %w", err)
		}
	}
	return w, nil
}

// Apply folds one envelope into w.
//
// Ordering: envelopes must come in increasing position. One at or below
// [World.Pos] was already folded and is skipped without error, so replaying
// a log, or a tail that overlaps a snapshot, is idempotent (I6). Gaps are
// allowed (a filtered reader may skip events).
//
// Forward compatibility: an envelope of an unknown type only advances Pos.
// So does one that needs a service that was never deployed (a start, exit,
// kill, failure or recovery of an unknown name): it is recorded nowhere, and
// is no error. Token, drift and system events never change services; in
// particular a shutdown is not a kill, and services stay desired (I5).
//
// Errors: an envelope of a known type whose data does not decode, or a
// deploy whose spec names another service than its envelope, returns a
// [*DecodeError] wrapping [ErrBadPayload] and leaves w unchanged, Pos
// included. A caller that wants to go on past it may simply apply the next
// envelope.
func (w *World) Apply(env event.Envelope) error {
	if env.Pos <= w.pos {
		return nil
	}
	// Session and task events belong to the sessions alone; every other
	// event folds here first and then into the sessions, which follow
	// their kernels' services. Either way a failed Apply changes nothing.
	if _, ok := sessionPayloads[EventType(env.Type)]; ok {
		if err := w.Sessions().Apply(env); err != nil {
			return err
		}
		w.pos = env.Pos
		return nil
	}
	if err := w.applyService(env); err != nil {
		return err
	}
	return w.Sessions().Apply(env)
}

// request folds a start or restart request at pos for generation gen: the
// service is desired again, its failure forgotten, and a new attempt is
// due. A request for another generation (or of a name not deployed) is
// stale and changes nothing.
func (s *Service) request(pos, gen uint64) {
	if s == nil || gen != s.Generation {
		return
	}
	s.Desired = true
	s.Killed, s.KillPos, s.KillReason = false, 0, ""
	s.Failed, s.FailedPos = false, 0
	s.RecoveryError, s.RecoveryErrorPos = "", 0
	s.Waiting = nil
	s.RequestPos = pos
}

// applyService folds one envelope into the services.
func (w *World) applyService(env event.Envelope) error {
	p, err := Decode(env)
	if errors.Is(err, ErrUnknownType) {
		w.pos = env.Pos
		return nil
	}
	if err != nil {
		return err
	}
	if w.services == nil {
		w.services = map[Key]*Service{}
	}
	at := env.Time.UTC() // canonical, so that snapshots round-trip exactly
	key := Key{env.Tenant, env.Subject}
	svc := w.services[key]

	switch p := p.(type) {
	case Deployed:
		spec := p.Spec.Clone()
		spec.Normalize()
		if spec.Key() != key {
			return &DecodeError{Pos: env.Pos, Type: env.Type, Err: fmt.Errorf(
				"%w: spec is for %s but the envelope for %s", ErrBadPayload, spec.Key(), key)}
		}
		if svc == nil {
			svc = &Service{Tenant: key.Tenant, Name: key.Name}
			w.services[key] = svc
		}
		svc.Spec = spec
		svc.Generation = p.Generation
		svc.DeployPos = env.Pos
		svc.DeployedAt = at
		svc.DeployedBy = env.Actor
		svc.Desired = true
		svc.Killed, svc.KillPos, svc.KillReason = false, 0, ""
		svc.Restarts = 0
		svc.RequestPos = 0
		svc.Failed, svc.FailedPos = false, 0
		svc.RecoveryError, svc.RecoveryErrorPos = "", 0
		svc.Waiting = nil
		// The instance stays: an older generation may still run until the
		// supervisor replaces it.

	case Started:
		if svc == nil || p.Fence < svc.Fence {
			break // unknown, or started under a placement since replaced
		}
		if p.Generation == svc.Generation && p.Attempt > 1 && svc.countsAsRestart(svc.Instance) {
			svc.Restarts++
		}
		svc.Instance = &Instance{
			Generation: p.Generation,
			Attempt:    p.Attempt,
			PID:        p.PID,
			StartTicks: p.StartTicks,
			BootID:     p.BootID,
			Fence:      p.Fence,
			StartPos:   env.Pos,
			StartedAt:  at,
		}
		if p.Generation == svc.Generation {
			svc.Failed, svc.FailedPos = false, 0
			svc.Waiting = nil
		}
		svc.RecoveryError, svc.RecoveryErrorPos = "", 0

	case Ready:
		if in := svc.instance(); in != nil && in.Generation == p.Generation && in.Attempt == p.Attempt && !in.Exited {
			in.Ready, in.ReadyAfter = true, p.After
		}

	case Health:
		in := svc.instance()
		if in == nil || in.Generation != p.Generation || in.Attempt != p.Attempt || in.Exited {
			break
		}
		in.Health, in.HealthAt = Healthy, at
		if !p.Healthy {
			in.Health = Unhealthy
			svc.UnhealthyAt, svc.UnhealthyReason = at, p.Reason
		}

	case Exited:
		if svc == nil {
			break
		}
		if p.PID == 0 && p.Error != "" {
			// An attempt that could not start (no such program, a bad
			// directory): it ended without running. It is the service's
			// last attempt like any other, so that a service whose start
			// fails and will not be retried does not look "starting" for
			// good.
			if p.Generation != 0 && p.Generation != svc.Generation {
				break
			}
			if in := svc.Instance; in != nil && !in.Exited && in.Generation == svc.Generation && in.Attempt >= p.Attempt {
				break // a repeat, or older than what runs
			}
			svc.Instance = &Instance{
				Generation: svc.Generation, Attempt: p.Attempt,
				Exited: true, ExitCode: p.ExitCode, RanFor: p.RanFor, StartError: p.Error,
				ExitPos: env.Pos, ExitedAt: at, StartedAt: at, InShutdown: w.ShuttingDown(),
			}
			svc.addExit(exitRecord(env.Pos, at, svc.Generation, p, w.ShuttingDown()))
			break
		}
		if svc.Instance == nil {
			break
		}
		in := svc.Instance
		if in.Exited || in.PID != p.PID || p.Fence != 0 && in.Fence != p.Fence ||
			p.Attempt != 0 && p.Attempt != in.Attempt ||
			p.Generation != 0 && p.Generation != in.Generation {
			break // an exit of some other instance, or a repeat
		}
		in.Exited = true
		in.ExitCode, in.Signal, in.Unknown, in.RanFor = p.ExitCode, p.Signal, p.Unknown, p.RanFor
		in.ExitPos, in.ExitedAt = env.Pos, at
		in.InShutdown = w.ShuttingDown()
		svc.addExit(exitRecord(env.Pos, at, in.Generation, p, in.InShutdown))

	case Failed:
		if svc == nil || p.Generation != 0 && p.Generation != svc.Generation {
			break
		}
		svc.Failed, svc.FailedPos = true, env.Pos

	case Killed:
		if svc == nil {
			break
		}
		svc.Desired = false
		svc.Killed, svc.KillPos, svc.KillReason = true, env.Pos, p.Reason
		svc.Waiting = nil
		if in := svc.Instance; in != nil && !in.Exited && p.Node != "" && p.Node == svc.Node {
			svc.leave(env.Pos, at, p.Reason)
		}

	case Waiting:
		if svc == nil || !svc.Desired || p.Generation != svc.Generation {
			break
		}
		svc.Waiting = &Wait{For: slices.Clone(p.For), Reason: p.Reason, Pos: env.Pos, At: at}

	case StartRequested:
		svc.request(env.Pos, p.Generation)

	case RestartRequested:
		svc.request(env.Pos, p.Generation)

	case Placed:
		if svc == nil {
			break
		}
		if in := svc.Instance; in != nil && !in.Exited && p.Node != "" && (p.Node != svc.Node || p.Lease != svc.NodeLease) {
			svc.leave(env.Pos, at, p.Reason)
		}
		svc.Node, svc.NodeLease, svc.Fence = p.Node, p.Lease, env.Pos
		svc.NodeWait = slices.Clone(p.Waiting)

	case Removed:
		if svc != nil {
			delete(w.services, key)
		}

	case Recovered:
		if svc == nil {
			break
		}
		svc.LastRecovery = &Recovery{How: p.How, Pos: env.Pos, PID: p.PID, DeployPos: p.DeployPos, Generation: p.Generation}
		svc.RecoveryError, svc.RecoveryErrorPos = "", 0

	case RecoveryFailed:
		if svc == nil {
			break
		}
		svc.RecoveryError, svc.RecoveryErrorPos = p.Reason, env.Pos

	case SystemStarted:
		w.boot = &Boot{SystemStarted: p, Pos: env.Pos, At: at}

	case ShutdownStarted:
		w.shutdown = &Shutdown{Reason: p.Reason, Grace: p.Grace, StartedPos: env.Pos, StartedAt: at}

	case ShutdownComplete:
		if w.shutdown == nil || w.shutdown.Complete || w.shutdown.StartedPos < w.bootPos() {
			w.shutdown = &Shutdown{} // a complete without its start
		}
		s := w.shutdown
		s.Complete, s.CompletePos, s.CompleteAt = true, env.Pos, at
		s.ExitCode, s.Stopped, s.Forced = p.ExitCode, p.Stopped, p.Forced

	case TenantPolicySet, TenantUserAllocated:
		w.applyTenant(env, p)

	case Signalled, DriftFound, DriftFixed, TokenGranted, TokenRevoked, SecretSet, SecretRemoved:
		// Not part of the service world; readers of those decode the log.
	}
	w.pos = env.Pos
	return nil
}

// exitRecord is the [ExitRecord] of service_exited p of generation gen.
func exitRecord(pos uint64, at time.Time, gen uint64, p Exited, inShutdown bool) ExitRecord {
	return ExitRecord{
		Pos: pos, At: at, Generation: gen, Attempt: p.Attempt, PID: p.PID,
		ExitCode: p.ExitCode, Signal: p.Signal, Unknown: p.Unknown, RanFor: p.RanFor,
		Error: p.Error, InShutdown: inShutdown, Restart: p.Restart, Backoff: p.Backoff,
		Reason: p.Reason,
	}
}
