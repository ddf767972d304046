package recovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Marker is what a process's SOLO_SERVICE variable says about it (see
// supervisor.Marker): which Solo installation started it, for which
// service, generation and attempt.
type Marker struct {
	Home       string
	Tenant     string
	Name       string
	Generation uint64
	Attempt    int
}

// Key returns the marked service.
func (m Marker) Key() state.Key { return state.Key{Tenant: m.Tenant, Name: m.Name} }

// ParseMarker parses "home|tenant|name|generation|attempt". The home may
// itself hold '|', so the fields are taken from the right.
func ParseMarker(s string) (Marker, error) {
	parts := strings.Split(s, "|")
	if len(parts) < 5 {
		return Marker{}, errors.New("marker has fewer than 5 fields")
	}
	n := len(parts)
	gen, err := strconv.ParseUint(parts[n-2], 10, 64)
	if err != nil {
		return Marker{}, fmt.Errorf("marker generation: %w", err)
	}
	attempt, err := strconv.Atoi(parts[n-1])
	if err != nil {
		return Marker{}, fmt.Errorf("marker attempt: %w", err)
	}
	m := Marker{Home: strings.Join(parts[:n-4], "|"), Tenant: parts[n-4], Name: parts[n-3], Generation: gen, Attempt: attempt}
	if m.Home == "" || state.ValidName(m.Tenant) != nil || state.ValidName(m.Name) != nil || gen == 0 || attempt < 1 {
		return Marker{}, fmt.Errorf("marker %q is not one of Solo's", s)
	}
	return m, nil
}

// Observation is a live process that carries our marker: provably started by
// this Solo installation.
//
// A service's own children inherit its marker, so only a process that leads
// its process group (PGID == PID) is an instance; the others are members of
// some instance's group.
type Observation struct {
	Identity supervisor.Identity
	PGID     int
	Marker   Marker
}

// Leader reports whether the process leads its process group: an instance,
// not one of its children.
func (o Observation) Leader() bool { return o.PGID == o.Identity.PID }

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
		m, err := ParseMarker(v)
		if err != nil || m.Home != home {
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
		id := supervisor.Identity{PID: in.PID, StartTicks: in.StartTicks, BootID: in.BootID}
		if seen[id] || !supervisor.Running(id) {
			continue
		}
		pgid, err := syscall.Getpgid(in.PID)
		if err != nil {
			continue
		}
		live = append(live, Observation{Identity: id, PGID: pgid, Marker: Marker{
			Home: home, Tenant: svc.Tenant, Name: svc.Name, Generation: in.Generation, Attempt: in.Attempt,
		}})
	}
	return live, nil
}
