package recovery

import (
	"fmt"
	"slices"
	"sort"

	"github.com/solo-rt/solo/pkg/state"
)

// Action is what the Replayer does for one service.
type Action string

// Actions of a [Decision].
const (
	// ActionReadopt carries on with a live instance of the current
	// generation: the process keeps its pid.
	ActionReadopt Action = "readopt"
	// ActionRestart starts a new instance: the service should run and
	// nothing of its current generation does.
	ActionRestart Action = "restart"
	// ActionFail records service_recovery_failed: the service should run
	// but cannot be brought back by this program.
	ActionFail Action = "fail"
	// ActionStop only stops strays: the service should not run (killed,
	// ended under its policy, failed) or was never deployed.
	ActionStop Action = "stop"
)

// Decision is the plan for one (tenant, name).
type Decision struct {
	Key    state.Key `json:"-"`
	Tenant string    `json:"tenant"`
	Name   string    `json:"name"`
	Action Action    `json:"action"`
	// Adopt is the instance to carry on with (ActionReadopt).
	Adopt *Observation `json:"adopt,omitempty"`
	// Unrecorded is true when Adopt's start never reached the log: the
	// daemon died between the fork and the append. Its start is recorded
	// before it is adopted.
	Unrecorded bool `json:"unrecorded,omitempty"`
	// Attempt is the attempt number of the instance adopted or started.
	Attempt int `json:"attempt,omitempty"`
	// CloseRecorded is true when the log's last instance never had its
	// exit recorded and is gone: its exit is recorded, status unknown.
	CloseRecorded bool `json:"close_recorded,omitempty"`
	// Strays are marked processes of this key that must not run: older
	// generations, extra instances, leftovers of a killed service, and
	// members of a group whose leader is gone. They are stopped first.
	Strays []Observation `json:"strays,omitempty"`
	// Reason explains ActionFail, and what the plan saw.
	Reason string `json:"reason,omitempty"`
}

// Plan decides, for every service of the world and every marked process,
// what the Replayer does. It is a pure function of its inputs: the world
// folded from the log, the marked processes alive now, and which in-process
// kinds this program registers (hasKind).
//
// The rules, by service:
//
//   - Should run (desired, not ended under its policy, not failed):
//     the recorded instance, if alive with the same identity and of the
//     current generation, is re-adopted. Otherwise a live, marked instance
//     of the current generation whose start was never recorded is adopted
//     (the highest attempt). Otherwise a new instance is started; an
//     in-process service whose kind is not registered fails instead.
//   - Should not run: nothing is started.
//
// In both cases every other marked process of the key is a stray, and so is
// every marked process of a key the log does not know. With cgroups, a
// process in the service's cgroup is one of its processes even without a
// marker: a stray unless it belongs to the instance kept
// ([Observation.MemberOf]). Strays are provably
// ours (the marker names this installation) and are stopped.
func Plan(w *state.World, live []Observation, hasKind func(string) bool) []Decision {
	byKey := map[state.Key][]Observation{}
	for _, o := range live {
		byKey[o.Key()] = append(byKey[o.Key()], o)
	}
	var out []Decision
	seen := map[state.Key]bool{}
	for _, svc := range w.Services() {
		key := state.Key{Tenant: svc.Tenant, Name: svc.Name}
		seen[key] = true
		if d, ok := decide(svc, byKey[key], hasKind); ok {
			out = append(out, d)
		}
	}
	var unknown []state.Key
	for key := range byKey {
		if !seen[key] {
			unknown = append(unknown, key)
		}
	}
	sort.Slice(unknown, func(i, j int) bool {
		if unknown[i].Tenant != unknown[j].Tenant {
			return unknown[i].Tenant < unknown[j].Tenant
		}
		return unknown[i].Name < unknown[j].Name
	})
	for _, key := range unknown {
		out = append(out, Decision{Key: key, Tenant: key.Tenant, Name: key.Name, Action: ActionStop,
			Strays: sortObs(byKey[key]), Reason: "marked processes of a service the log does not know"})
	}
	return out
}

func decide(svc *state.Service, obs []Observation, hasKind func(string) bool) (Decision, bool) {
	key := state.Key{Tenant: svc.Tenant, Name: svc.Name}
	d := Decision{Key: key, Tenant: key.Tenant, Name: key.Name}
	rec := svc.Instance
	recordedAlive := false

	// Leaders are instances; a member is a stray only if its leader is gone.
	leaders := map[int]bool{}
	for _, o := range obs {
		if o.Leader() {
			leaders[o.Identity.PID] = true
		}
	}
	var instances []Observation
	for _, o := range obs {
		switch {
		case o.Leader():
			instances = append(instances, o)
		case !leaders[o.PGID]:
			d.Strays = append(d.Strays, o)
		}
	}

	if !svc.ShouldRun() {
		d.Strays = append(d.Strays, instances...)
		d.CloseRecorded = rec != nil && !rec.Exited
		if len(d.Strays) == 0 && !d.CloseRecorded {
			return d, false
		}
		d.Action, d.Strays = ActionStop, sortObs(d.Strays)
		d.Reason = fmt.Sprintf("service is %s", svc.State())
		return d, true
	}

	// Should run: pick the instance to keep, if any.
	var keep *Observation
	maxAttempt := 0
	if rec != nil && rec.Generation == svc.Generation {
		maxAttempt = rec.Attempt
	}
	for i, o := range instances {
		if o.Marker.Generation == svc.Generation && o.Marker.Attempt > maxAttempt {
			maxAttempt = o.Marker.Attempt
		}
		if rec != nil && !rec.Exited && rec.Generation == svc.Generation && sameIdentity(o, rec) {
			keep = &instances[i]
			recordedAlive = true
		}
	}
	if keep == nil {
		// Forked but never recorded: the newest attempt of this generation
		// that came after the recorded one. A marked process that claims
		// the recorded attempt but is another process is a stray.
		after := 0
		if rec != nil && rec.Generation == svc.Generation {
			after = rec.Attempt
		}
		for i, o := range instances {
			if o.Marker.Generation == svc.Generation && o.Marker.Attempt > after && (keep == nil || o.Marker.Attempt > keep.Marker.Attempt) {
				keep = &instances[i]
			}
		}
	}
	for _, o := range instances {
		if keep == nil || o.Identity != keep.Identity {
			d.Strays = append(d.Strays, o)
		}
	}
	if keep != nil {
		// What escaped the kept instance's group is still in its cgroup:
		// it ends with the instance, it is not a stray.
		d.Strays = slices.DeleteFunc(d.Strays, func(o Observation) bool {
			return o.MemberOf(keep.Marker.Generation, keep.Marker.Attempt)
		})
	}
	d.CloseRecorded = rec != nil && !rec.Exited && !recordedAlive
	d.Strays = sortObs(d.Strays)

	switch {
	case keep != nil:
		d.Action, d.Adopt, d.Attempt = ActionReadopt, keep, keep.Marker.Attempt
		d.Unrecorded = !recordedAlive
	case svc.Spec.Kind != "" && !hasKind(svc.Spec.Kind):
		d.Action = ActionFail
		d.Reason = fmt.Sprintf("in-process service kind %q is not registered in this program: register it with solo.Register before Open, or kill the service", svc.Spec.Kind)
	default:
		d.Action, d.Attempt = ActionRestart, maxAttempt+1
	}
	return d, true
}

func sameIdentity(o Observation, in *state.Instance) bool {
	return o.Identity.PID == in.PID && o.Identity.StartTicks == in.StartTicks && o.Identity.BootID == in.BootID
}

func sortObs(obs []Observation) []Observation {
	sort.Slice(obs, func(i, j int) bool { return obs[i].Identity.PID < obs[j].Identity.PID })
	return obs
}
