package recovery

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Finding is one difference between the log and what runs.
type Finding struct {
	Kind   state.DriftKind `json:"kind"`
	Tenant string          `json:"tenant"`
	Name   string          `json:"name"`
	PID    int             `json:"pid,omitempty"`
	Detail string          `json:"detail"`
	// Fixed says what --fix did about it; empty without --fix.
	Fixed string `json:"fixed,omitempty"`

	obs *Observation // the live process behind a stranger or running_killed
}

// Compare lists the drift between the world and the marked processes alive
// now. It is pure: current holds the live identity of each pid the log says
// runs (absent when no process has that pid), and supervised tells whether
// a loop of this runtime runs a service.
//
//   - not_running: the log says an instance runs, no process has its
//     identity, and no loop supervises the service; or a service should
//     run and no loop runs it.
//   - identity_mismatch: the recorded pid is alive but is another process
//     (recycled pid), and no loop supervises the service. It is never
//     touched.
//   - running_killed: a service that should not run still has its process.
//   - stranger: a marked process that neither a live record nor a loop
//     accounts for; or, with cgroups, a process without a marker in the
//     cgroup of a service that should not run, or whose instance neither
//     runs nor has a loop (see [cgroupMember]).
//
// A recorded instance that is gone while a loop supervises its service is
// not drift: the loop holds that instance's pidfd, sees the exit, sweeps
// what is left of its process group and records the exit, and between the
// two the log lags by one fsync. Reporting it would turn every crash caught
// in that window into a finding, and --fix would record a second, unknown
// exit ahead of the loop's real one. For the same reason the members of its
// group are not strangers.
//
// A loop's start in flight is not drift either (see [inFlight]): the
// process is forked, and its service_started is being recorded. Nor are its
// children, which a service such as `sh -c "sleep 1; exit 1"` forks at once.
//
// Once recovery is done, only a loop mints attempt numbers past the log's,
// and it starts the next attempt only once the last one has exited and its
// group is swept. So a
// marked process of an older generation, of an attempt the log has already
// reached, or beside a live recorded instance is a stranger, however busy
// the loop (I3).
func Compare(w *state.World, live []Observation, current map[int]supervisor.Identity, supervised func(state.Key) bool) []Finding {
	var out []Finding
	// Which identities run: one index, so that the pass stays linear in
	// the number of services and processes.
	alive := make(map[supervisor.Identity]int, len(live))
	for i, o := range live {
		alive[o.Identity] = i
	}
	accounted := map[supervisor.Identity]bool{}
	groups := map[int]bool{}                   // process groups whose members a record accounts for
	running := map[state.Key]*state.Instance{} // services that should run, with their recorded instance alive
	for _, svc := range w.Services() {
		key := state.Key{Tenant: svc.Tenant, Name: svc.Name}
		add := func(kind state.DriftKind, pid int, obs *Observation, format string, args ...any) {
			out = append(out, Finding{Kind: kind, Tenant: key.Tenant, Name: key.Name, PID: pid, Detail: fmt.Sprintf(format, args...), obs: obs})
		}
		rec := svc.Instance
		if rec != nil && !rec.Exited && rec.PID > 0 {
			id := RecordedIdentity(rec)
			i, runs := alive[id]
			switch {
			case runs && svc.ShouldRun():
				accounted[id] = true
				running[key] = rec
			case runs:
				accounted[id] = true
				add(state.DriftRunningKilled, rec.PID, &live[i], "service is %s but pid %d still runs", svc.State(), rec.PID)
			case supervised(key):
				// Gone, and its loop is sweeping its group and recording
				// the exit (see above).
				groups[rec.PID] = true
			default:
				if cur, ok := current[rec.PID]; ok && cur != id {
					add(state.DriftIdentityMismatch, rec.PID, nil, "pid %d is now another process (start ticks %d, recorded %d)", rec.PID, cur.StartTicks, rec.StartTicks)
				} else {
					add(state.DriftNotRunning, rec.PID, nil, "the log says pid %d runs, and it does not", rec.PID)
				}
			}
		} else if svc.ShouldRun() && !supervised(key) {
			add(state.DriftNotRunning, 0, nil, "service should run (%s) and nothing supervises it", svc.State())
		}
	}
	// Members of an accounted instance's group belong to it, and so do
	// those of a group its loop is sweeping.
	for id := range accounted {
		groups[id.PID] = true
	}
	for i, o := range live {
		if accounted[o.Identity] || (!o.Leader() && groups[o.PGID]) || inFlight(w, o, alive, supervised) || cgroupMember(o, running, supervised) {
			continue
		}
		detail := fmt.Sprintf("marked generation %d attempt %d, and no record accounts for it", o.Marker.Generation, o.Marker.Attempt)
		if o.Unmarked {
			detail = "in the service's cgroup without a marker, and no running instance accounts for it"
		}
		out = append(out, Finding{Kind: state.DriftStranger, Tenant: o.Marker.Tenant, Name: o.Marker.Name, PID: o.Identity.PID,
			Detail: detail, obs: &live[i]})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.PID < b.PID
	})
	return out
}

// cgroupMember reports whether o, in its service's cgroup, belongs to the
// service's running instance ([Observation.MemberOf]). A process without
// a marker also belongs to a service whose instance is gone while its
// loop runs: the loop's end of that instance empties the cgroup, and its
// next start may be forking into it right now.
func cgroupMember(o Observation, running map[state.Key]*state.Instance, supervised func(state.Key) bool) bool {
	if in := running[o.Key()]; in != nil {
		return o.MemberOf(in.Generation, in.Attempt)
	}
	return o.InCgroup && o.Unmarked && supervised(o.Key())
}

// inFlight reports whether o belongs to the start a live loop is making
// right now: forked, its service_started not yet recorded. The loop's new
// instance leads its group; its children carry the same marker and are
// part of the same start (the loop sweeps them with the group). That is a
// process of the current generation of a service that should run and that
// a loop supervises, whose attempt is past the log's last one of this
// generation, while the recorded instance does not run (a loop starts the
// next attempt only once the last one has exited). The fold is read before
// the scan, so the log may show the last attempt still running, or be a few
// attempts behind; it can never be ahead, for the start is recorded only
// after the fork. Stopping it would kill a healthy service for nothing.
//
// A process left by a dead daemon is never in flight: recovery records (or
// stops) every attempt it finds before a loop runs, and restarts past them,
// so such a process's attempt is never past the log's.
func inFlight(w *state.World, o Observation, alive map[supervisor.Identity]int, supervised func(state.Key) bool) bool {
	svc, ok := w.Service(o.Marker.Tenant, o.Marker.Name)
	if !ok || o.Marker.Generation != svc.Generation || !svc.ShouldRun() || !supervised(o.Key()) {
		return false
	}
	in := svc.Instance
	if in == nil {
		return true
	}
	if _, runs := alive[RecordedIdentity(in)]; runs && !in.Exited {
		return false // the recorded instance runs: o is a second one
	}
	return in.Generation != svc.Generation || o.Marker.Attempt > in.Attempt
}

// VerifyTarget is what the Verifier needs beyond a [Target].
type VerifyTarget interface {
	Target
	// Supervised reports whether a loop runs the service.
	Supervised(key state.Key) bool
	// LockKeys takes the locks that deploys and kills of keys hold (keys
	// sorted and distinct), and returns the one unlock of all of them.
	// Under them no deploy or kill of those services is half done.
	LockKeys(keys []state.Key) (unlock func())
}

// VerifyReport is the result of [Verify].
type VerifyReport struct {
	Findings []Finding `json:"findings"`
	Clean    bool      `json:"clean"`
}

// Verify compares the log with what runs. A finding must show in two passes,
// each against a fresh fold and a fresh scan, so that a transition caught in
// flight (a process forked whose start is being recorded) is not drift.
// With fix, it acts on each finding and records drift_found and drift_fixed:
// strangers and running_killed processes are stopped (they are provably
// ours), a service that should run and does not is restarted, and a
// recorded instance that is gone or not ours has its exit recorded. It never
// signals a process that neither carries our marker nor is in one of our
// services' cgroups.
func Verify(ctx context.Context, t VerifyTarget, fix bool) (VerifyReport, error) {
	return verify(ctx, t, fix, nil)
}

// verify is [Verify], its first pass reading the cgroups as members
// says, if it is not nil (see [Replayer.Verify]).
func verify(ctx context.Context, t VerifyTarget, fix bool, members map[state.Key][]int) (VerifyReport, error) {
	first, err := verifyPass(t, members)
	if err != nil {
		return VerifyReport{}, err
	}
	if len(first) == 0 {
		// A finding must show in both passes: none can now.
		return VerifyReport{Findings: []Finding{}, Clean: true}, nil
	}
	second, err := verifyPass(t, nil)
	if err != nil {
		return VerifyReport{}, err
	}
	seen := map[string]bool{}
	for _, f := range first {
		seen[findingKey(f)] = true
	}
	rep := VerifyReport{Findings: []Finding{}}
	for _, f := range second {
		if seen[findingKey(f)] {
			rep.Findings = append(rep.Findings, f)
		}
	}
	rep.Clean = len(rep.Findings) == 0
	if !fix || rep.Clean {
		return rep, nil
	}
	// A fix must not race a deploy or a kill of the same service: a
	// redeploy between stopping its old loop and starting its new one looks
	// like "should run, nothing supervises it", and bringing it back then
	// ran two instances (found by the torture test, with `solo verify
	// --fix` beside a storm of deploys). So hold the services' locks, and
	// act only on the findings that a fresh pass under them still shows.
	unlock := t.LockKeys(findingKeys(rep.Findings))
	defer unlock()
	third, err := verifyPass(t, nil)
	if err != nil {
		return rep, err
	}
	confirmed := map[string]bool{}
	for _, f := range rep.Findings {
		confirmed[findingKey(f)] = true
	}
	rep.Findings = rep.Findings[:0]
	for _, f := range third {
		if confirmed[findingKey(f)] {
			rep.Findings = append(rep.Findings, f)
		}
	}
	rep.Clean = len(rep.Findings) == 0
	world := t.World()
	for i := range rep.Findings {
		f := &rep.Findings[i]
		svc, _ := world.Service(f.Tenant, f.Name)
		events, what, err := fixFinding(ctx, t, *f, svc)
		if err != nil {
			f.Fixed = "not fixed: " + err.Error()
		} else {
			f.Fixed = what
		}
		if err := t.Append(ctx, events); err != nil {
			return rep, fmt.Errorf("record drift: %w", err)
		}
	}
	return rep, nil
}

// findingKeys returns the services of findings, sorted and distinct.
func findingKeys(fs []Finding) []state.Key {
	var keys []state.Key
	seen := map[state.Key]bool{}
	for _, f := range fs {
		k := state.Key{Tenant: f.Tenant, Name: f.Name}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sortKeys(keys)
	return keys
}

func sortKeys(keys []state.Key) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Tenant != keys[j].Tenant {
			return keys[i].Tenant < keys[j].Tenant
		}
		return keys[i].Name < keys[j].Name
	})
}

func findingKey(f Finding) string {
	return fmt.Sprintf("%s|%s|%s|%d", f.Kind, f.Tenant, f.Name, f.PID)
}

// verifyPass is one pass of [Verify]: a fresh fold and a fresh scan, and a
// fresh reading of the cgroups unless members is one.
func verifyPass(t VerifyTarget, members map[state.Key][]int) ([]Finding, error) {
	w := t.World()
	live, _, err := observeAll(t, w, members)
	if err != nil {
		return nil, err
	}
	// What has the pid of a recorded instance that is not alive: Compare
	// needs it only there (a recycled pid), so the instances that run
	// cost no second read.
	alive := make(map[supervisor.Identity]bool, len(live))
	for _, o := range live {
		alive[o.Identity] = true
	}
	current := map[int]supervisor.Identity{}
	for _, svc := range w.Services() {
		if in := svc.Instance; in != nil && !in.Exited && in.PID > 0 && !alive[RecordedIdentity(in)] {
			if id, err := supervisor.ReadIdentity(in.PID); err == nil {
				current[in.PID] = id
			}
		}
	}
	return Compare(w, live, current, t.Supervised), nil
}

// fixFinding acts on one finding and returns the events that record it.
func fixFinding(ctx context.Context, t VerifyTarget, f Finding, svc *state.Service) ([]eventstore.Event, string, error) {
	var events []eventstore.Event
	emit := func(p state.Payload) {
		if ev, err := state.NewEvent(f.Tenant, f.Name, p); err == nil {
			ev.Actor = "local"
			events = append(events, ev)
		}
	}
	emit(state.DriftFound{Kind: f.Kind, PID: f.PID, Detail: f.Detail})
	sig, timeout := syscall.SIGTERM, DefaultStrayStopTimeout
	if svc != nil {
		sig, timeout = svc.Spec.Signal(), svc.Spec.StopTimeout.Std()
	}
	var what string
	switch f.Kind {
	case state.DriftStranger, state.DriftRunningKilled:
		if err := stopObserved(ctx, *f.obs, sig, timeout, strayCgroup(t, svc, state.Key{Tenant: f.Tenant, Name: f.Name})); err != nil {
			return events, "", err
		}
		what = "stopped"
		if f.Kind == state.DriftRunningKilled && svc != nil {
			if ex, ok := closeRecorded(svc, "stopped by verify"); ok {
				emit(ex)
			}
		}
	case state.DriftNotRunning, state.DriftIdentityMismatch:
		if svc == nil {
			return events, "", fmt.Errorf("service %s/%s is not in the log", f.Tenant, f.Name)
		}
		if ex, ok := closeRecorded(svc, "gone, found by verify"); ok {
			emit(ex)
			what = "recorded its exit"
		}
		if svc.ShouldRun() && !t.Supervised(state.Key{Tenant: f.Tenant, Name: f.Name}) {
			if svc.Spec.Kind != "" && !t.HasKind(svc.Spec.Kind) {
				return events, what, fmt.Errorf("in-process kind %q is not registered in this program", svc.Spec.Kind)
			}
			if err := bringBack(ctx, t, svc, events); err != nil {
				return nil, what, err
			}
			events, what = nil, "restarted"
		}
	}
	emit(state.DriftFixed{Kind: f.Kind, PID: f.PID, Action: what})
	return events, what, nil
}

// bringBack starts the next attempt of svc, records prior (facts not yet
// recorded) and the start, then hands the instance to its loop.
func bringBack(ctx context.Context, t Target, svc *state.Service, prior []eventstore.Event) error {
	attempt := NextAttempt(svc)
	if len(svc.Spec.Deps()) > 0 {
		// Its loop starts it once the services it is after are ready.
		if err := t.Append(ctx, prior); err != nil {
			return err
		}
		return t.Supervise(svc, nil, attempt, time.Time{})
	}
	inst, facts, startErr := startAttempt(ctx, t, svc, attempt)
	events := prior
	for _, p := range facts {
		ev, err := state.NewEvent(svc.Tenant, svc.Name, p)
		if err != nil {
			return err
		}
		ev.Actor = "local"
		events = append(events, ev)
	}
	if err := t.Append(ctx, events); err != nil {
		if inst != nil {
			inst.Stop(context.Background(), svc.Spec.Signal(), svc.Spec.StopTimeout.Std())
		}
		return err
	}
	if startErr != nil {
		return startErr
	}
	return t.Supervise(svc, inst, attempt, time.Now())
}
