package solo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

func inTenant(tenant, name string) solo.Spec {
	s := sleeper(name)
	s.Tenant = tenant
	return s
}

// startedPIDs waits for the service_started of each key and returns their
// pids.
func startedPIDs(t *testing.T, ev *events, keys ...state.Key) map[state.Key]int {
	t.Helper()
	want := map[state.Key]bool{}
	for _, k := range keys {
		want[k] = true
	}
	out := map[state.Key]int{}
	for len(out) < len(keys) {
		env, p := ev.next(state.Key{}, state.TypeServiceStarted)
		k := state.Key{Tenant: env.Tenant, Name: env.Subject}
		if want[k] {
			out[k] = p.(state.Started).PID
		}
	}
	return out
}

func TestRuntime_Apply(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	web, worker, api := state.Key{Tenant: "default", Name: "web"}, state.Key{Tenant: "default", Name: "worker"}, state.Key{Tenant: "b", Name: "api"}
	file := solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), sleeper("worker"), inTenant("b", "api")}}

	res, err := rt.Apply(ctx, file)
	require.NoError(t, err)
	require.Len(t, res.Items, 3)
	for _, it := range res.Items {
		assert.Equal(t, solo.ApplyCreate, it.Action, "%s/%s", it.Tenant, it.Name)
		assert.Equal(t, uint64(1), it.Generation)
	}
	pids := startedPIDs(t, ev, web, worker, api)

	t.Run("every deploy is in one append", func(t *testing.T) {
		require.Equal(t, res.FirstPos+2, res.LastPos, "the three deploys are not contiguous")
		var got []string
		for env, err := range rt.Store().Read(res.FirstPos, int(res.LastPos-res.FirstPos+1)) {
			require.NoError(t, err)
			require.Equal(t, string(state.TypeServiceDeployed), env.Type)
			got = append(got, env.Tenant+"/"+env.Subject)
		}
		assert.Equal(t, []string{"default/web", "default/worker", "b/api"}, got)
		for i, it := range res.Items {
			assert.Equal(t, res.FirstPos+uint64(i), it.Pos)
		}
	})

	t.Run("the same file again writes nothing and touches nothing", func(t *testing.T) {
		head := rt.Store().Head()
		again, err := rt.Apply(ctx, file)
		require.NoError(t, err)
		assert.Equal(t, 3, again.Count(solo.ApplyUnchanged))
		assert.Zero(t, again.LastPos)
		assert.Equal(t, head, rt.Store().Head())
		for k, pid := range pids {
			st, err := rt.Status(k.Tenant, k.Name)
			require.NoError(t, err)
			assert.Equal(t, pid, st.PID, "%s was restarted", k)
		}
	})

	t.Run("a changed spec is a new generation", func(t *testing.T) {
		changed := file
		changed.Services = append([]solo.Spec(nil), file.Services...)
		changed.Services[1].Env = map[string]string{"MODE": "fast"}
		res, err := rt.Apply(ctx, changed)
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyUpdate, solo.ApplyUnchanged}, actions(res))
		assert.Equal(t, uint64(2), res.Items[1].Generation)
		assert.Equal(t, res.FirstPos, res.LastPos)
		_, p := ev.next(worker, state.TypeServiceStarted)
		assert.Equal(t, uint64(2), p.(state.Started).Generation)
		assert.False(t, alive(pids[worker]), "generation 1 still runs")
		assert.True(t, alive(pids[web]))
		file = changed
	})

	t.Run("dry run plans and writes nothing", func(t *testing.T) {
		head := rt.Store().Head()
		plan, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), sleeper("new")}, Prune: true, DryRun: true})
		require.NoError(t, err)
		assert.True(t, plan.DryRun)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyCreate, solo.ApplyPrune}, actions(plan))
		assert.Equal(t, "worker", plan.Items[2].Name)
		assert.Equal(t, head, rt.Store().Head())
		_, err = rt.Status("default", "new")
		assert.ErrorIs(t, err, solo.ErrNotFound)
		assert.True(t, alive(pids[web]))
	})

	t.Run("without prune, services the file leaves out stay", func(t *testing.T) {
		res, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web")}})
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged}, actions(res))
		st, err := rt.Status("default", "worker")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State)
	})

	t.Run("prune kills what the file's tenants no longer name", func(t *testing.T) {
		st, err := rt.Status("default", "worker")
		require.NoError(t, err)
		res, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web")}, Prune: true})
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyPrune}, actions(res))
		_, p := ev.next(worker, state.TypeServiceKilled)
		assert.Equal(t, "pruned by apply", p.(state.Killed).Reason)
		assert.False(t, alive(st.PID), "a pruned service still runs")
		st, err = rt.Status("default", "worker")
		require.NoError(t, err)
		assert.Equal(t, state.StateKilled, st.State)
		// Tenant b is not in the file: untouched.
		st, err = rt.Status("b", "api")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State)
		assert.True(t, alive(pids[web]))
	})

	t.Run("a pruned service named again is created again", func(t *testing.T) {
		res, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), sleeper("worker")}})
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyCreate}, actions(res))
		assert.Equal(t, uint64(3), res.Items[1].Generation)
		_, p := ev.next(worker, state.TypeServiceStarted)
		assert.Equal(t, uint64(3), p.(state.Started).Generation)
	})
}

func actions(r solo.ApplyResult) []solo.ApplyAction {
	var out []solo.ApplyAction
	for _, it := range r.Items {
		out = append(out, it.Action)
	}
	return out
}

func TestRuntime_Apply_refusals(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{Store: &eventstore.Options{MaxBatch: 4}})
	ev := follow(t, rt, 0)
	_, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("keep")}})
	require.NoError(t, err)
	ev.next(state.Key{Tenant: "default", Name: "keep"}, state.TypeServiceStarted)

	cases := []struct {
		name     string
		services []solo.Spec
		field    string // "" when the error is not about one entry
		is       error
	}{
		{"empty command", []solo.Spec{sleeper("a"), sleeper("b"), sleeper("c"), {Name: "d"}}, "services[3].command", state.ErrInvalidSpec},
		{"bad name", []solo.Spec{sleeper("a"), sleeper("B")}, "services[1].name", state.ErrInvalidSpec},
		{"bad stop signal", []solo.Spec{{Name: "a", Command: []string{"true"}, StopSignal: "SIGNOPE"}}, "services[0].stop_signal", state.ErrInvalidSpec},
		{"a name twice", []solo.Spec{sleeper("a"), inTenant("x", "a"), sleeper("a")}, "services[2].name", state.ErrInvalidSpec},
		{"unknown kind", []solo.Spec{sleeper("a"), {Name: "g", Kind: "nope"}}, "services[1].kind", solo.ErrUnknownKind},
		{"over the batch limit", []solo.Spec{sleeper("a"), sleeper("b"), sleeper("c"), sleeper("d"), sleeper("e")}, "", solo.ErrApplyTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			head := rt.Store().Head()
			_, err := rt.Apply(ctx, solo.ApplyRequest{Services: c.services, Prune: true})
			require.Error(t, err)
			assert.ErrorIs(t, err, c.is)
			if c.field != "" {
				var ee *solo.ApplyEntryError
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, c.field, ee.Field())
				assert.Contains(t, err.Error(), c.field+":")
			}
			assert.Equal(t, head, rt.Store().Head(), "a refused apply wrote events")
			assert.Len(t, rt.List(""), 1, "a refused apply deployed something")
			st, err := rt.Status("default", "keep")
			require.NoError(t, err)
			assert.Equal(t, state.StateRunning, st.State, "a refused prune touched a service")
		})
	}
}

func TestDecodeApplyFile(t *testing.T) {
	good := `
services:
  - name: web
    tenant: shop
    command: ["sleep", "3600"]
    restart: on-failure
    env: {PORT: 8080, MODE: fast}
    dir: /tmp
    stop_signal: INT
    stop_timeout: 3s
    max_restarts: 0
    restart_window: 2m
  - name: clock
    kind: clock
    config: {every: 5s, tags: [a, b]}
`
	req, err := solo.DecodeApplyFile(strings.NewReader(good))
	require.NoError(t, err)
	require.Len(t, req.Services, 2)
	web := req.Services[0]
	assert.Equal(t, "shop", web.Tenant)
	assert.Equal(t, []string{"sleep", "3600"}, web.Command)
	assert.Equal(t, state.RestartOnFailure, web.Restart)
	assert.Equal(t, map[string]string{"PORT": "8080", "MODE": "fast"}, web.Env)
	assert.Equal(t, "INT", web.StopSignal)
	assert.Equal(t, "3s", web.StopTimeout.String())
	assert.Equal(t, "2m0s", web.RestartWindow.String())
	require.NotNil(t, web.MaxRestarts)
	assert.Equal(t, 0, *web.MaxRestarts)
	require.NoError(t, web.Validate())
	assert.JSONEq(t, `{"every":"5s","tags":["a","b"]}`, string(req.Services[1].Config))

	bad := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"unknown top-level key", "servces: []\n", "servces"},
		{"unknown field names the entry", "services:\n  - name: a\n    comand: [x]\n", "services[0].comand: unknown field"},
		{"wrong type names the field", "services:\n  - name: a\n    command: [x]\n  - name: b\n    command: {x: 1}\n", "services[1].command:"},
		{"bad duration", "services:\n  - name: a\n    command: [x]\n    stop_timeout: soon\n", "services[0].stop_timeout:"},
		{"entry not a mapping", "services:\n  - web\n", "services[0]:"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := solo.DecodeApplyFile(strings.NewReader(c.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			var ee *solo.ApplyEntryError
			if strings.HasPrefix(c.want, "services[") {
				assert.True(t, errors.As(err, &ee))
			}
		})
	}
}
