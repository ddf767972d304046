package recovery

import (
	"context"
	"fmt"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// RecoverItem is one service `solo recover` brings back, or would.
type RecoverItem struct {
	Tenant string      `json:"tenant"`
	Name   string      `json:"name"`
	State  state.State `json:"state"`
	Action string      `json:"action"`
	Error  string      `json:"error,omitempty"`
}

// Recover brings back the services that are desired but not supervised:
// those that hit their restart limit (failed), ended under their policy
// (exited), or lost their loop. With name set, only that service (of
// tenant) is considered; with dryRun, nothing is done and the plan is
// returned. Each service is started as its next attempt, recorded as
// service_started and service_recovered (restarted), and handed to its loop;
// one that fails to start does not stop the others.
//
// Each service is brought back under its lock (see [VerifyTarget]), after
// checking again that it is desired and unsupervised: a redeploy caught
// between stopping its old loop and starting its new one is not brought
// back beside it (its Action is then "none").
func Recover(ctx context.Context, t VerifyTarget, tenant, name string, dryRun bool) ([]RecoverItem, error) {
	w := t.World()
	items := []RecoverItem{}
	found := false
	for _, svc := range w.Desired() {
		if name != "" && (svc.Tenant != tenant || svc.Name != name) {
			continue
		}
		found = true
		key := state.Key{Tenant: svc.Tenant, Name: svc.Name}
		if t.Supervised(key) {
			continue
		}
		it := RecoverItem{Tenant: svc.Tenant, Name: svc.Name, State: svc.State(), Action: "restart"}
		if svc.Spec.Kind != "" && !t.HasKind(svc.Spec.Kind) {
			it.Action, it.Error = "none", fmt.Sprintf("in-process kind %q is not registered in this program", svc.Spec.Kind)
			items = append(items, it)
			continue
		}
		if !dryRun {
			acted, err := recoverLocked(ctx, t, key)
			if err != nil {
				it.Error = err.Error()
			} else if !acted {
				it.Action = "none"
			}
		}
		items = append(items, it)
	}
	if name != "" && !found {
		return nil, fmt.Errorf("recover %s/%s: %w", tenant, name, ErrNotDesired)
	}
	return items, nil
}

// recoverLocked is recoverOne under key's lock, released even if it panics.
func recoverLocked(ctx context.Context, t VerifyTarget, key state.Key) (bool, error) {
	unlock := t.LockKeys([]state.Key{key})
	defer unlock()
	return recoverOne(ctx, t, key)
}

// recoverOne brings key back if, read again now, it is desired and no loop
// supervises it. The caller holds key's lock.
func recoverOne(ctx context.Context, t VerifyTarget, key state.Key) (bool, error) {
	svc, ok := t.World().Service(key.Tenant, key.Name)
	if !ok || !svc.Desired || t.Supervised(key) {
		return false, nil
	}
	if ok, err := readoptRecorded(ctx, t, svc); ok || err != nil {
		return ok, err
	}
	var prior []eventstore.Event
	if ex, ok := closeRecorded(svc, "gone, found by recover"); ok {
		ev, err := state.NewEvent(svc.Tenant, svc.Name, ex)
		if err != nil {
			return false, err
		}
		ev.Actor = "local"
		prior = append(prior, ev)
	}
	return true, bringBack(ctx, t, svc, prior)
}

// readoptRecorded carries on with the recorded instance of svc when its loop
// is gone but the process still runs under its recorded identity: it is
// re-adopted (service_recovered, readopted) rather than declared gone and
// started a second time (I3).
func readoptRecorded(ctx context.Context, t Target, svc *state.Service) (bool, error) {
	in := svc.Instance
	if in == nil || in.Exited || in.PID <= 0 || in.Generation != svc.Generation {
		return false, nil
	}
	p, err := supervisor.Adopt(RecordedIdentity(in))
	if err != nil {
		return false, nil // gone, or the pid is another process's now
	}
	ev, err := state.NewEvent(svc.Tenant, svc.Name, state.Recovered{How: state.RecoveryReadopted, PID: in.PID, DeployPos: svc.DeployPos, Generation: svc.Generation})
	if err != nil {
		return false, err
	}
	ev.Actor = "local"
	if err := t.Append(ctx, []eventstore.Event{ev}); err != nil {
		return false, err
	}
	return true, t.Supervise(svc, supervisor.AdoptedInstance(p), in.Attempt, in.StartedAt)
}
