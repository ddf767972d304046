package recovery

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

const home = "/var/lib/solo"

// world folds payloads about service "web" (tenant default) into a world.
type step struct {
	key string // service name; "" for system events
	p   state.Payload
}

func fold(t *testing.T, steps ...step) *state.World {
	t.Helper()
	w := state.NewWorld()
	for i, s := range steps {
		ev, err := state.NewEvent("default", s.key, s.p)
		if s.key == "" {
			ev, err = state.NewEvent("", "", s.p)
		}
		require.NoError(t, err)
		require.NoError(t, w.Apply(eventstore.Envelope{
			Pos: uint64(i + 1), ID: ulid.Make(), Time: time.Unix(int64(i), 0).UTC(),
			Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: json.RawMessage(ev.Data),
		}))
	}
	return w
}

func deployed(name string, gen uint64) step {
	return step{name, state.Deployed{Spec: state.Spec{Name: name, Command: []string{"sleep", "1"}}, Generation: gen}}
}

func started(name string, gen uint64, attempt, pid int) step {
	return step{name, state.Started{Generation: gen, Attempt: attempt, PID: pid, StartTicks: uint64(pid) * 10, BootID: "boot"}}
}

func obs(name string, gen uint64, attempt, pid int) Observation {
	return Observation{
		Identity: supervisor.Identity{PID: pid, StartTicks: uint64(pid) * 10, BootID: "boot"}, PGID: pid,
		Marker: supervisor.Marker{Home: home, Tenant: "default", Name: name, Generation: gen, Attempt: attempt},
	}
}

func noKinds(string) bool { return false }

// expect is a Decision as the table states it: processes by pid.
type expect struct {
	Action        Action
	Attempt       int
	Unrecorded    bool
	CloseRecorded bool
	adopt         int   // pid to re-adopt
	strays        []int // pids to stop
}

func TestPlan(t *testing.T) {
	recycled := obs("web", 1, 1, 100)
	recycled.Identity.StartTicks = 999 // same pid, another process
	child := obs("web", 1, 1, 101)
	child.PGID = 100 // a child of pid 100, which is gone
	inCgroup := func(o Observation) Observation { o.InCgroup = true; return o }
	unmarked := func(name string, pid int) Observation {
		return Observation{Identity: supervisor.Identity{PID: pid, StartTicks: uint64(pid) * 10, BootID: "boot"}, PGID: pid,
			InCgroup: true, Unmarked: true, Marker: supervisor.Marker{Home: home, Tenant: "default", Name: name}}
	}

	cases := []struct {
		name  string
		world *state.World
		live  []Observation
		want  []expect
	}{
		{
			name:  "recorded instance alive: re-adopted, keeps its pid",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{obs("web", 1, 1, 100)},
			want:  []expect{{Action: ActionReadopt, Attempt: 1, adopt: 100}},
		},
		{
			name:  "recorded instance dead: restarted as the next attempt, its exit closed",
			world: fold(t, deployed("web", 1), started("web", 1, 3, 100)),
			want:  []expect{{Action: ActionRestart, Attempt: 4, CloseRecorded: true}},
		},
		{
			name:  "a marked process claiming the recorded attempt with another identity is a stray",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{recycled},
			want:  []expect{{Action: ActionRestart, Attempt: 2, CloseRecorded: true, strays: []int{100}}},
		},
		{
			name:  "forked but start never recorded: adopted and its start recorded",
			world: fold(t, deployed("web", 1)),
			live:  []Observation{obs("web", 1, 1, 200)},
			want:  []expect{{Action: ActionReadopt, Attempt: 1, Unrecorded: true, adopt: 200}},
		},
		{
			name:  "cgroups: an escapee with the kept instance's marker, or with none, is the instance's",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{inCgroup(obs("web", 1, 1, 100)), inCgroup(obs("web", 1, 1, 150)), unmarked("web", 160)},
			want:  []expect{{Action: ActionReadopt, Attempt: 1, adopt: 100}},
		},
		{
			name:  "cgroups: outside the cgroup, an escapee is a second instance, a stray",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{inCgroup(obs("web", 1, 1, 100)), obs("web", 1, 1, 150)},
			want:  []expect{{Action: ActionReadopt, Attempt: 1, adopt: 100, strays: []int{150}}},
		},
		{
			name:  "cgroups: an older attempt in the cgroup is a stray",
			world: fold(t, deployed("web", 1), started("web", 1, 2, 100)),
			live:  []Observation{inCgroup(obs("web", 1, 2, 100)), inCgroup(obs("web", 1, 1, 150))},
			want:  []expect{{Action: ActionReadopt, Attempt: 2, adopt: 100, strays: []int{150}}},
		},
		{
			name:  "cgroups: an unmarked leftover of a dead instance is a stray, then the restart",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{unmarked("web", 160)},
			want:  []expect{{Action: ActionRestart, Attempt: 2, CloseRecorded: true, strays: []int{160}}},
		},
		{
			name:  "cgroups: an unmarked process of a killed service is stopped",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1}}, step{"web", state.Killed{Reason: "requested"}}),
			live:  []Observation{unmarked("web", 160)},
			want:  []expect{{Action: ActionStop, strays: []int{160}}},
		},
		{
			name:  "cgroups: an unmarked process in the cgroup of a service the log does not know is stopped",
			world: fold(t),
			live:  []Observation{unmarked("web", 170)},
			want:  []expect{{Action: ActionStop, strays: []int{170}}},
		},
		{
			name:  "two instances of one service: keep the recorded one, stop the other",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{obs("web", 1, 1, 100), obs("web", 1, 2, 300)},
			want:  []expect{{Action: ActionReadopt, Attempt: 1, adopt: 100, strays: []int{300}}},
		},
		{
			name:  "an old generation still runs after a redeploy: stopped, new one started",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), deployed("web", 2)),
			live:  []Observation{obs("web", 1, 1, 100)},
			want:  []expect{{Action: ActionRestart, Attempt: 1, CloseRecorded: true, strays: []int{100}}},
		},
		{
			name:  "deploy, kill, crash: stays dead, its process stopped",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), step{"web", state.Killed{}}),
			live:  []Observation{obs("web", 1, 1, 100)},
			want:  []expect{{Action: ActionStop, CloseRecorded: true, strays: []int{100}}},
		},
		{
			name: "deploy, kill, deploy, crash: recovered",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), step{"web", state.Killed{}},
				step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1, Signal: "SIGTERM"}}, deployed("web", 2)),
			want: []expect{{Action: ActionRestart, Attempt: 1}},
		},
		{
			name:  "killed and nothing alive: nothing to do",
			world: fold(t, deployed("web", 1), step{"web", state.Killed{}}),
			want:  nil,
		},
		{
			name: "a clean shutdown is not a kill: restarted",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100),
				step{"", state.ShutdownStarted{Reason: "SIGTERM"}},
				step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1, Signal: "SIGTERM"}},
				step{"", state.ShutdownComplete{}}),
			want: []expect{{Action: ActionRestart, Attempt: 2}},
		},
		{
			name:  "failed stays down",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100), step{"web", state.Exited{Generation: 1, PID: 100, Attempt: 1, ExitCode: 1}}, step{"web", state.Failed{Generation: 1, Restarts: 5}}),
			want:  nil,
		},
		{
			name:  "a child whose leader is gone is a stray",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{child},
			want:  []expect{{Action: ActionRestart, Attempt: 2, CloseRecorded: true, strays: []int{101}}},
		},
		{
			name:  "a child of a live instance belongs to it",
			world: fold(t, deployed("web", 1), started("web", 1, 1, 100)),
			live:  []Observation{obs("web", 1, 1, 100), {Identity: supervisor.Identity{PID: 101}, PGID: 100, Marker: obs("web", 1, 1, 100).Marker}},
			want:  []expect{{Action: ActionReadopt, Attempt: 1, adopt: 100}},
		},
		{
			name: "an in-process kind this program lacks: recovery fails with a reason",
			world: fold(t, step{"web", state.Deployed{Spec: state.Spec{Name: "web", Kind: "ticker"}, Generation: 1}},
				step{"web", state.Started{Generation: 1, Attempt: 1}}),
			want: []expect{{Action: ActionFail, CloseRecorded: true}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Plan(c.world, c.live, noKinds)
			require.Len(t, got, len(c.want), "%+v", got)
			for i, w := range c.want {
				g := got[i]
				assert.Equal(t, "web", g.Name)
				assert.Equal(t, w.Action, g.Action)
				assert.Equal(t, w.Attempt, g.Attempt, "attempt")
				assert.Equal(t, w.Unrecorded, g.Unrecorded, "unrecorded")
				assert.Equal(t, w.CloseRecorded, g.CloseRecorded, "close recorded")
				if w.adopt != 0 {
					require.NotNil(t, g.Adopt)
					assert.Equal(t, w.adopt, g.Adopt.Identity.PID)
				} else {
					assert.Nil(t, g.Adopt)
				}
				var strays []int
				for _, s := range g.Strays {
					strays = append(strays, s.Identity.PID)
				}
				assert.Equal(t, w.strays, strays, "strays")
				if w.Action == ActionFail {
					assert.Contains(t, g.Reason, "not registered")
				}
			}
		})
	}

	t.Run("a marked process of a service the log never knew is stopped", func(t *testing.T) {
		got := Plan(fold(t), []Observation{obs("ghost", 1, 1, 500)}, noKinds)
		require.Len(t, got, 1)
		assert.Equal(t, ActionStop, got[0].Action)
		assert.Equal(t, "ghost", got[0].Name)
		assert.Len(t, got[0].Strays, 1)
	})

	t.Run("deterministic: the same inputs give the same plan", func(t *testing.T) {
		w := fold(t, deployed("a", 1), deployed("b", 1), deployed("c", 1))
		live := []Observation{obs("z", 1, 1, 9), obs("y", 1, 1, 8)}
		assert.Equal(t, Plan(w, live, noKinds), Plan(w, live, noKinds))
	})
}
