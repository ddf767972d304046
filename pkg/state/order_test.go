package state

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
)

func depSpec(name string, after, requires []string) Spec {
	s := testSpec(name)
	s.Tenant, s.After, s.Requires = DefaultTenant, after, requires
	return s
}

func TestSpec_Validate_deps(t *testing.T) {
	for _, tc := range []struct {
		name, field, problem string
		after, requires      []string
	}{
		{"self", "after", "names the service itself", []string{"a"}, nil},
		{"self-requires", "requires", "names the service itself", nil, []string{"a"}},
		{"bad name", "after", `name "DB"`, []string{"DB"}, nil},
		{"twice", "requires", "names db twice", nil, []string{"db", "db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := depSpec("a", tc.after, tc.requires).Validate()
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tc.field, fe.Field)
			require.Contains(t, fe.Problem, tc.problem)
		})
	}
	require.NoError(t, depSpec("a", []string{"b"}, []string{"b", "c"}).Validate())
	require.Equal(t, []string{"b", "c"}, depSpec("a", []string{"b"}, []string{"b", "c"}).Deps())
}

func TestCheckOrder(t *testing.T) {
	specs := map[string]Spec{
		"a": depSpec("a", []string{"b"}, nil),
		"b": depSpec("b", nil, []string{"c"}),
		"c": depSpec("c", nil, nil),
	}
	require.NoError(t, CheckOrder(specs, []string{"a", "b", "c"}))

	missing := map[string]Spec{"a": depSpec("a", nil, []string{"nope"})}
	err := CheckOrder(missing, []string{"a"})
	var fe *FieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	require.Equal(t, "requires", fe.Field)
	require.Contains(t, fe.Problem, "names nope, which is not a service of tenant")

	specs["c"] = depSpec("c", []string{"a"}, nil)
	err = CheckOrder(specs, []string{"c"})
	require.True(t, errors.As(err, &fe), "%v", err)
	require.Equal(t, "after", fe.Field)
	require.Contains(t, fe.Problem, "c -> a -> b -> c")
	require.ErrorIs(t, err, ErrInvalidSpec)

	// An unchanged service's dependencies are not checked again: only a
	// write's own can be wrong.
	require.NoError(t, CheckOrder(missing, nil))
}

func TestWorld_Blockers(t *testing.T) {
	l := newTestLog(t)
	l.deploySpec(depSpec("db", nil, nil), 1)
	l.deploySpec(depSpec("cache", nil, nil), 1)
	l.deploySpec(depSpec("job", nil, nil), 1)
	l.deploySpec(depSpec("web", []string{"cache", "job"}, []string{"db"}), 1)
	w := mustFold(t, l)
	web := mustService(t, w, "web")
	require.Equal(t, []Blocker{{"cache", StateStarting}, {"job", StateStarting}, {"db", StateStarting}}, w.Blockers(web))

	l.start("db", 1, 1, 10)
	l.start("cache", 1, 1, 11)
	l.add(DefaultTenant, "job", Killed{Reason: "requested"})
	w = mustFold(t, l)
	require.Empty(t, w.Blockers(mustService(t, w, "web")), "a stopped service it is only after does not hold it back")
	_, down := w.RequiredDown(mustService(t, w, "web"))
	require.False(t, down)

	l.exit("db", 1, 1, 10, 1)
	w = mustFold(t, l)
	require.Equal(t, []Blocker{{"db", StateBackoff}}, w.Blockers(mustService(t, w, "web")))
	b, down := w.RequiredDown(mustService(t, w, "web"))
	require.True(t, down)
	require.Equal(t, "db", b.Name)
	require.Equal(t, []string{"web"}, w.Dependents(DefaultTenant, "db"))
	require.Empty(t, w.Dependents(DefaultTenant, "web"))
}

func TestWorld_Waiting(t *testing.T) {
	l := newTestLog(t)
	l.deploySpec(depSpec("db", nil, nil), 1)
	l.deploySpec(depSpec("web", nil, []string{"db"}), 1)
	l.add(DefaultTenant, "web", Waiting{Generation: 1, For: []Blocker{{"db", StateStarting}}})
	w := mustFold(t, l)
	web := mustService(t, w, "web")
	require.Equal(t, StateStarting, web.State())
	require.Equal(t, "db (starting)", web.Status(t0).Waiting)

	l.start("web", 1, 1, 20)
	w = mustFold(t, l)
	require.Nil(t, mustService(t, w, "web").Waiting)

	l.add(DefaultTenant, "web", Waiting{Generation: 1, For: []Blocker{{"db", StateBackoff}}, Reason: "required service db stopped"})
	l.exit("web", 1, 1, 20, 0)
	w = mustFold(t, l)
	web = mustService(t, w, "web")
	require.Equal(t, StateStarting, web.State(), "a service stopped for its dependency waits; it is not in backoff")
	require.True(t, web.ShouldRun())
	require.Equal(t, "db (backoff); required service db stopped", web.Status(t0).Waiting)
	var webEnvs []eventstore.Envelope
	for _, e := range l.envs {
		if e.Subject == "web" {
			webEnvs = append(webEnvs, e)
		}
	}
	lines := Story(webEnvs, t0)
	require.Contains(t, lines[len(lines)-2].Text, "stopped at")
	require.Contains(t, lines[len(lines)-2].Text, "required service db stopped; waiting for db (backoff)")
	require.Contains(t, lines[len(lines)-1].Text, "for a service it requires")

	// Stale (another generation) changes nothing; a kill clears it.
	l.add(DefaultTenant, "web", Waiting{Generation: 9, For: []Blocker{{"db", StateBackoff}}})
	l.kill("web")
	w = mustFold(t, l)
	require.Nil(t, mustService(t, w, "web").Waiting)
}

func TestWorld_StopWaves(t *testing.T) {
	l := newTestLog(t)
	l.deploySpec(depSpec("db", nil, nil), 1)
	l.deploySpec(depSpec("api", []string{"db"}, nil), 1)
	l.deploySpec(depSpec("web", nil, []string{"api", "db"}), 1)
	l.deploySpec(depSpec("lone", nil, nil), 1)
	w := mustFold(t, l)
	k := func(n string) Key { return Key{DefaultTenant, n} }
	waves := w.StopWaves([]Key{k("db"), k("lone"), k("api"), k("web")})
	require.Equal(t, [][]Key{{k("lone"), k("web")}, {k("api")}, {k("db")}}, waves)
	// Without web running, api is first.
	require.Equal(t, [][]Key{{k("api")}, {k("db")}}, w.StopWaves([]Key{k("db"), k("api")}))

	l2 := newTestLog(t)
	l2.deploy("x", 1)
	l2.deploy("y", 1)
	w2 := mustFold(t, l2)
	require.Equal(t, [][]Key{{k("x"), k("y")}}, w2.StopWaves([]Key{k("x"), k("y")}))
}
