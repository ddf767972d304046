package recovery

import (
	"fmt"
	"slices"

	"github.com/solo-rt/solo/internal/parallel"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// ours reports whether a process marked with m was started by the
// installation at home for one of its services: the supervisor owns the
// marker's form ([supervisor.ParseMarker]), the domain what a service name
// is.
func ours(m supervisor.Marker, home string) bool {
	return m.Home == home && state.ValidName(m.Tenant) == nil && state.ValidName(m.Name) == nil
}

// RecordedIdentity is the process identity the log records for in (its
// service_started): what a live process must match to be that instance,
// and what every signal to it is checked against (I4).
func RecordedIdentity(in *state.Instance) supervisor.Identity {
	return supervisor.Identity{PID: in.PID, StartTicks: in.StartTicks, BootID: in.BootID}
}

// Observation is a live process that carries our marker: provably started by
// this Solo installation.
//
// A service's own children inherit its marker, so only a process that leads
// its process group (PGID == PID) is an instance; the others are members of
// some instance's group.
//
// Where services run in cgroups ([Container]), a process is also ours by
// being in a service's cgroup: InCgroup says so. A process found only that
// way carries no marker we could read (it cleared its environment or wrote
// over it); it is Unmarked, and its Marker names only the service.
type Observation struct {
	Identity supervisor.Identity
	PGID     int
	Marker   supervisor.Marker
	InCgroup bool
	Unmarked bool
}

// Key returns the marked service.
func (o Observation) Key() state.Key { return state.Key{Tenant: o.Marker.Tenant, Name: o.Marker.Name} }

// Leader reports whether the process leads its process group: an instance,
// not one of its children.
func (o Observation) Leader() bool { return o.PGID == o.Identity.PID }

// MemberOf reports whether o belongs, by cgroup membership, to the
// instance of its service that is (generation, attempt) and runs: o is
// in the service's cgroup and carries that instance's marker (a process
// that escaped the instance's group by setsid or a double fork), or no
// marker at all (one that cleared or overwrote it cannot say which
// instance it came from; while an instance runs, its cgroup holds only
// that instance's processes, for every end of an instance empties it).
func (o Observation) MemberOf(generation uint64, attempt int) bool {
	return o.InCgroup && (o.Unmarked || (o.Marker.Generation == generation && o.Marker.Attempt == attempt))
}

// Scan lists the live processes marked as started by the installation at
// home. A process that vanishes while it is read, or whose environment
// cannot be read, is passed over: only what is provably ours is returned.
func Scan(home string) ([]Observation, error) { return scan(home, nil) }

// scan is [Scan] over every process but those in skip. Reading a
// process's environment is the costly part of a scan (the kernel walks
// that process's memory), so the reads are spread over a few goroutines.
func scan(home string, skip map[int]bool) ([]Observation, error) {
	pids, err := supervisor.ListPIDs()
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	pids = slices.DeleteFunc(pids, func(pid int) bool { return skip[pid] })
	found := make([]Observation, len(pids))
	ok := make([]bool, len(pids))
	parallel.Each(len(pids), readers, func(i int) {
		pid := pids[i]
		v, marked, err := supervisor.ReadEnvVar(pid, supervisor.MarkerEnv)
		if err != nil || !marked {
			return
		}
		m, err := supervisor.ParseMarker(v)
		if err != nil || !ours(m, home) {
			return
		}
		id, pgid, err := supervisor.ReadIdentityGroup(pid)
		if err != nil {
			return
		}
		found[i], ok[i] = Observation{Identity: id, PGID: pgid, Marker: m}, true
	})
	var out []Observation
	for i := range found {
		if ok[i] {
			out = append(out, found[i])
		}
	}
	return out, nil
}

// readers is how many /proc reads recovery makes at once: a read waits on
// the kernel (and on the other process's memory) more than on a core.
const readers = 16

// Observe lists the processes recovery must account for: each instance
// the world records as running that still runs under its recorded
// identity, and every other process marked as ours ([Scan]).
//
// The record, checked by pid, start time and boot id (one read of
// /proc/PID/stat), proves a recorded instance is ours, so its marker is
// not read: at 10,000 services that spares 10,000 reads of another
// process's environment, the cost of a cold start. It also finds an
// instance whose marker cannot be read (a program that cleared its
// environment, or wrote its title over it, or one whose environ is not
// readable); without it, such a service would be taken for dead and
// started a second time (I3). Every other process is still scanned for
// the marker, so a marked process the log does not account for (a
// stray, or a start the log never recorded) is found wherever it runs.
func Observe(home string, w *state.World) ([]Observation, error) {
	var recorded []Observation
	for _, svc := range w.Services() {
		in := svc.Instance
		if in == nil || in.Exited || in.PID <= 0 {
			continue
		}
		recorded = append(recorded, Observation{Identity: RecordedIdentity(in), Marker: supervisor.Marker{
			Home: home, Tenant: svc.Tenant, Name: svc.Name, Generation: in.Generation, Attempt: in.Attempt,
		}})
	}
	alive := make([]bool, len(recorded))
	parallel.Each(len(recorded), readers, func(i int) {
		recorded[i].PGID, alive[i] = supervisor.RunningGroup(recorded[i].Identity)
	})
	live := make([]Observation, 0, len(recorded))
	known := make(map[int]bool, len(recorded))
	for i, o := range recorded {
		if alive[i] {
			live = append(live, o)
			known[o.Identity.PID] = true
		}
	}
	marked, err := scan(home, known)
	if err != nil {
		return nil, err
	}
	return append(live, marked...), nil
}

// observeAll is [Observe], plus what the services' cgroups hold when t has
// cgroups: each observation in its own service's cgroup is flagged
// InCgroup, and each process in a service's cgroup that Observe did not
// find is added, Unmarked. A process in the cgroup of another service
// than its marker's is left as it is: the marker, written at its start,
// says whose it is.
//
// members, if not nil, is a reading of the cgroups made earlier (see
// [Replayer.Verify]), used instead of reading them again; the reading
// used is returned (nil without cgroups).
func observeAll(t Target, w *state.World, members map[state.Key][]int) ([]Observation, map[state.Key][]int, error) {
	live, err := Observe(t.Home(), w)
	if err != nil {
		return nil, nil, err
	}
	c, ok := t.(Container)
	if !ok {
		return live, nil, nil
	}
	if members == nil {
		if members, err = c.Members(); err != nil {
			return nil, nil, fmt.Errorf("list the services' cgroups: %w", err)
		}
	}
	byPID := make(map[int]int, len(live))
	for i, o := range live {
		byPID[o.Identity.PID] = i
	}
	for key, pids := range members {
		for _, pid := range pids {
			if i, ok := byPID[pid]; ok {
				live[i].InCgroup = live[i].Key() == key
				continue
			}
			id, pgid, err := supervisor.ReadIdentityGroup(pid)
			if err != nil {
				continue // gone meanwhile
			}
			live = append(live, Observation{Identity: id, PGID: pgid, InCgroup: true, Unmarked: true,
				Marker: supervisor.Marker{Home: t.Home(), Tenant: key.Tenant, Name: key.Name}})
		}
	}
	return live, members, nil
}
