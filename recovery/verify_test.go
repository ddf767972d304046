package recovery

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// TestCompare is the Verifier's keep-or-report decision as a table: the
// world folded from the log, the marked processes alive now, what each
// recorded pid is now, and which services a loop supervises.
func TestCompare(t *testing.T) {
	killed := step{"web", state.Killed{Reason: "requested"}}
	exitedFail := step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1, ExitCode: 1}}
	// member is a child of the instance led by leader: same marker, its own
	// pid, the leader's process group.
	member := func(leader Observation, pid int) Observation {
		return Observation{Identity: supervisor.Identity{PID: pid, StartTicks: uint64(pid) * 10, BootID: "boot"}, PGID: leader.Identity.PID, Marker: leader.Marker}
	}
	recycled := obs("web", 1, 1, 100)
	recycled.Identity.StartTicks = 999 // pid 100 again, another (marked) process
	all := func(state.Key) bool { return true }
	none := func(state.Key) bool { return false }
	inCgroup := func(o Observation) Observation { o.InCgroup = true; return o }
	unmarked := func(name string, pid int) Observation {
		return Observation{Identity: supervisor.Identity{PID: pid, StartTicks: uint64(pid) * 10, BootID: "boot"}, PGID: pid,
			InCgroup: true, Unmarked: true, Marker: supervisor.Marker{Home: home, Tenant: "default", Name: name}}
	}

	type finding struct {
		Kind state.DriftKind
		Name string
		PID  int
	}
	cases := []struct {
		name       string
		world      *state.World
		live       []Observation
		current    map[int]supervisor.Identity
		supervised func(state.Key) bool
		want       []finding
	}{
		{
			name:       "clean world: the recorded instance runs, supervised",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), deployed("api", 1), started("api", 1, 1, 200)),
			live:       []Observation{obs("web", 1, 1, 100), obs("api", 1, 1, 200)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity, 200: obs("api", 1, 1, 200).Identity},
			supervised: all,
		},
		{
			name:       "cgroups: the running instance's escapees, marked as it or unmarked, are its own",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{inCgroup(obs("web", 1, 1, 100)), inCgroup(obs("web", 1, 1, 150)), unmarked("web", 160)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
		},
		{
			name:       "no cgroups: an escapee that leads its own group beside the instance is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 1, 100), obs("web", 1, 1, 150)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 150}},
		},
		{
			name:       "cgroups: an older attempt in the running service's cgroup is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 2, 100)),
			live:       []Observation{inCgroup(obs("web", 1, 2, 100)), inCgroup(obs("web", 1, 1, 150))},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 2, 100).Identity},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 150}},
		},
		{
			name:       "cgroups: unmarked processes of a killed service and of an unknown one are strangers",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail, killed),
			live:       []Observation{unmarked("web", 160), unmarked("ghost", 170)},
			supervised: none,
			want:       []finding{{state.DriftStranger, "ghost", 170}, {state.DriftStranger, "web", 160}},
		},
		{
			name:       "cgroups: an unmarked process of a supervised service between instances is its loop's",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{unmarked("web", 160)},
			supervised: all,
		},
		{
			name:       "cgroups: an unmarked process of a service nothing supervises is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{unmarked("web", 160)},
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 0}, {state.DriftStranger, "web", 160}},
		},
		{
			name:       "empty world, nothing alive",
			world:      fold(t),
			supervised: none,
		},
		{
			name:       "not_running: the recorded pid is gone, and no loop will record its exit",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 100}},
		},
		{
			// Found by the torture test: a crashing service caught between
			// its death and the fsync of its exit.
			name:       "gone while its loop records the exit: not drift",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			supervised: all,
		},
		{
			name:       "not_running: should run, no instance yet, and no loop",
			world:      fold(t, deployed("web", 1)),
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 0}},
		},
		{
			name:       "starting under a loop is not drift",
			world:      fold(t, deployed("web", 1)),
			supervised: all,
		},
		{
			name:       "backoff under a loop is not drift",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			supervised: all,
		},
		{
			name:       "not_running: backoff and the loop is gone",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 0}},
		},
		{
			name:       "failed is not expected to run",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail, step{"web", state.Failed{Generation: 1, Restarts: 3}}),
			supervised: none,
		},
		{
			name:       "identity_mismatch: the recorded pid is now an unrelated process",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			current:    map[int]supervisor.Identity{100: {PID: 100, StartTicks: 12345, BootID: "boot"}},
			supervised: none,
			want:       []finding{{state.DriftIdentityMismatch, "web", 100}},
		},
		{
			name:       "identity_mismatch, and the marked process on the recycled pid is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{recycled},
			current:    map[int]supervisor.Identity{100: recycled.Identity},
			supervised: none,
			want:       []finding{{state.DriftIdentityMismatch, "web", 100}, {state.DriftStranger, "web", 100}},
		},
		{
			name:       "running_killed: killed after its deploy and still alive",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), killed),
			live:       []Observation{obs("web", 1, 1, 100)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: none,
			want:       []finding{{state.DriftRunningKilled, "web", 100}},
		},
		{
			name:       "killed and gone: its unrecorded exit is not drift of a killed service",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), killed, step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1, Signal: "SIGTERM"}}),
			supervised: none,
		},
		{
			name:       "stranger: a marked process of a service the log never knew",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 1, 100), obs("ghost", 1, 1, 500)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
			want:       []finding{{state.DriftStranger, "ghost", 500}},
		},
		{
			name:       "a loop's next attempt, forked and not yet recorded, is not a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{obs("web", 1, 2, 300)},
			supervised: all,
		},
		{
			name:       "the same fork with no loop behind it is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{obs("web", 1, 2, 300)},
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 0}, {state.DriftStranger, "web", 300}},
		},
		{
			name:       "a new deploy's first start in flight is not a stranger",
			world:      fold(t, deployed("web", 1)),
			live:       []Observation{obs("web", 1, 1, 300)},
			supervised: all,
		},
		{
			// Found by the torture test: `sh -c "sleep 0.05; exit 1"` forks
			// its sleep at once, and the sleep is no leader.
			name:       "a child of a loop's start in flight is not a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{obs("web", 1, 2, 300), member(obs("web", 1, 2, 300), 301)},
			supervised: all,
		},
		{
			name:       "a child of a start in flight whose leader has exited, before the loop sweeps the group",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{member(obs("web", 1, 2, 300), 301)},
			supervised: all,
		},
		{
			name:       "a child of a new deploy's first start in flight is not a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail, deployed("web", 2)),
			live:       []Observation{obs("web", 2, 1, 300), member(obs("web", 2, 1, 300), 301)},
			supervised: all,
		},
		{
			// The fold is read before the scan: between the two, the
			// recorded attempt exited and the loop forked the next one.
			name:       "a start in flight while the fold still shows the last attempt running",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 2, 300), member(obs("web", 1, 2, 300), 301)},
			supervised: all,
		},
		{
			name:       "a start in flight two attempts past a lagging fold",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 3, 300), member(obs("web", 1, 3, 300), 301)},
			supervised: all,
		},
		{
			name:       "the recorded instance's children while its loop sweeps the group",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{member(obs("web", 1, 1, 100), 101)},
			supervised: all,
		},
		{
			name: "a child left after its exit was recorded is a stranger, though a loop runs",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail,
				started("web", 1, 2, 200)),
			live:       []Observation{obs("web", 1, 2, 200), member(obs("web", 1, 1, 100), 101)},
			current:    map[int]supervisor.Identity{200: obs("web", 1, 2, 200).Identity},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 101}},
		},
		{
			name:       "a start in flight for a killed service is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail, killed),
			live:       []Observation{obs("web", 1, 2, 300), member(obs("web", 1, 2, 300), 301)},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 300}, {state.DriftStranger, "web", 301}},
		},
		{
			name: "an attempt the log has passed is a stranger, with its children, though a loop runs",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail,
				started("web", 1, 2, 200), step{"web", state.Exited{Generation: 1, PID: 200, Attempt: 2, ExitCode: 1}}),
			live:       []Observation{obs("web", 1, 2, 300), member(obs("web", 1, 2, 300), 301)},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 300}, {state.DriftStranger, "web", 301}},
		},
		{
			// I3: a dead daemon's leftover is found however busy the loop.
			name: "an older generation's process and its children are strangers beside a start in flight",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), deployed("web", 2),
				step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1, Signal: "SIGTERM"}}),
			live: []Observation{obs("web", 2, 1, 300), member(obs("web", 2, 1, 300), 301),
				obs("web", 1, 4, 400), member(obs("web", 1, 4, 400), 401)},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 400}, {state.DriftStranger, "web", 401}},
		},
		{
			name:       "the next attempt beside a live recorded instance is a stranger, with its children",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 1, 100), obs("web", 1, 2, 300), member(obs("web", 1, 2, 300), 301)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 300}, {state.DriftStranger, "web", 301}},
		},
		{
			name:       "a child of a start in flight with no loop behind it is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), exitedFail),
			live:       []Observation{obs("web", 1, 2, 300), member(obs("web", 1, 2, 300), 301)},
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 0}, {state.DriftStranger, "web", 300}, {state.DriftStranger, "web", 301}},
		},
		{
			name:       "stranger: a second instance of a running service",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 1, 100), obs("web", 1, 2, 300)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
			want:       []finding{{state.DriftStranger, "web", 300}},
		},
		{
			name:       "members of a live leader are not strangers",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{obs("web", 1, 1, 100), member(obs("web", 1, 1, 100), 101), member(obs("web", 1, 1, 100), 102)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
		},
		{
			name:       "members of a killed service's live leader go with it",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), killed),
			live:       []Observation{obs("web", 1, 1, 100), member(obs("web", 1, 1, 100), 101)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: none,
			want:       []finding{{state.DriftRunningKilled, "web", 100}},
		},
		{
			name:       "a member whose leader is gone is a stranger",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:       []Observation{member(obs("web", 1, 1, 100), 101)},
			supervised: none,
			want:       []finding{{state.DriftNotRunning, "web", 100}, {state.DriftStranger, "web", 101}},
		},
		{
			name:       "an unrecorded leader's members are strangers too",
			world:      fold(t),
			live:       []Observation{obs("ghost", 1, 1, 500), member(obs("ghost", 1, 1, 500), 501)},
			supervised: none,
			want:       []finding{{state.DriftStranger, "ghost", 500}, {state.DriftStranger, "ghost", 501}},
		},
		{
			name:       "an old generation still running during a redeploy is accounted for",
			world:      fold(t, deployed("web", 1), started("web", 1, 1, 100), deployed("web", 2)),
			live:       []Observation{obs("web", 1, 1, 100)},
			current:    map[int]supervisor.Identity{100: obs("web", 1, 1, 100).Identity},
			supervised: all,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Compare(c.world, c.live, c.current, c.supervised)
			var kinds []finding
			for _, f := range got {
				kinds = append(kinds, finding{f.Kind, f.Name, f.PID})
				assert.Equal(t, "default", f.Tenant)
				assert.NotEmpty(t, f.Detail)
				assert.Empty(t, f.Fixed, "Compare fixes nothing")
				switch f.Kind {
				case state.DriftStranger, state.DriftRunningKilled:
					// Only these are ever signalled, and only through the
					// marked observation they carry.
					if assert.NotNil(t, f.obs, "a finding to stop must carry its observation") {
						assert.Equal(t, f.PID, f.obs.Identity.PID)
					}
				default:
					assert.Nil(t, f.obs, "%s must never lead to a signal", f.Kind)
				}
			}
			assert.Equal(t, c.want, kinds)
		})
	}

	t.Run("pure: the same inputs give the same findings", func(t *testing.T) {
		w := fold(t, deployed("a", 1), started("a", 1, 1, 10), deployed("b", 1))
		live := []Observation{obs("z", 1, 1, 9), obs("a", 1, 2, 8)}
		assert.Equal(t, Compare(w, live, nil, none), Compare(w, live, nil, none))
	})
}
