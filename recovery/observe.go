package recovery

import (
	"fmt"
	"syscall"

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
func Scan(home string) ([]Observation, error) {
	pids, err := supervisor.ListPIDs()
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	var out []Observation
	for _, pid := range pids {
		v, ok, err := supervisor.ReadEnvVar(pid, supervisor.MarkerEnv)
		if err != nil || !ok {
			continue
		}
		m, err := supervisor.ParseMarker(v)
		if err != nil || !ours(m, home) {
			continue
		}
		id, err := supervisor.ReadIdentity(pid)
		if err != nil {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err != nil {
			continue
		}
		out = append(out, Observation{Identity: id, PGID: pgid, Marker: m})
	}
	return out, nil
}

// Observe lists the processes recovery must account for: the marked ones
// ([Scan]), and each instance the world records as running that still runs
// under its recorded identity although its marker cannot be read (a program
// that cleared its environment, or wrote its title over it, or one whose
// environ is not readable). For those the record itself, checked by pid,
// start time and boot id, proves the process is ours: without this, such a
// service would be taken for dead and started a second time (I3).
func Observe(home string, w *state.World) ([]Observation, error) {
	live, err := Scan(home)
	if err != nil {
		return nil, err
	}
	seen := make(map[supervisor.Identity]bool, len(live))
	for _, o := range live {
		seen[o.Identity] = true
	}
	for _, svc := range w.Services() {
		in := svc.Instance
		if in == nil || in.Exited || in.PID <= 0 {
			continue
		}
		id := RecordedIdentity(in)
		if seen[id] || !supervisor.Running(id) {
			continue
		}
		pgid, err := syscall.Getpgid(in.PID)
		if err != nil {
			continue
		}
		live = append(live, Observation{Identity: id, PGID: pgid, Marker: supervisor.Marker{
			Home: home, Tenant: svc.Tenant, Name: svc.Name, Generation: in.Generation, Attempt: in.Attempt,
		}})
	}
	return live, nil
}

// observeAll is [Observe], plus what the services' cgroups hold when t has
// cgroups: each observation in its own service's cgroup is flagged
// InCgroup, and each process in a service's cgroup that Observe did not
// find is added, Unmarked. A process in the cgroup of another service
// than its marker's is left as it is: the marker, written at its start,
// says whose it is.
func observeAll(t Target, w *state.World) ([]Observation, error) {
	live, err := Observe(t.Home(), w)
	if err != nil {
		return nil, err
	}
	c, ok := t.(Container)
	if !ok {
		return live, nil
	}
	members, err := c.Members()
	if err != nil {
		return nil, fmt.Errorf("list the services' cgroups: %w", err)
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
			id, err := supervisor.ReadIdentity(pid)
			if err != nil {
				continue // gone meanwhile
			}
			pgid, err := syscall.Getpgid(pid)
			if err != nil {
				continue
			}
			live = append(live, Observation{Identity: id, PGID: pgid, InCgroup: true, Unmarked: true,
				Marker: supervisor.Marker{Home: t.Home(), Tenant: key.Tenant, Name: key.Name}})
		}
	}
	return live, nil
}
