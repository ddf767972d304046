package solo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/session"
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
	rt := MustOpen(t, solo.Options{Store: &eventstore.Options{MaxBatch: 2, MaxAppend: 4}})
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
		{"a name twice, once with the default tenant spelt out", []solo.Spec{sleeper("a"), inTenant("default", "a")}, "services[1].name", state.ErrInvalidSpec},
		{"a name differing only in case", []solo.Spec{sleeper("web"), sleeper("Web")}, "services[1].name", state.ErrInvalidSpec},
		{"a tenant differing only in case", []solo.Spec{sleeper("a"), inTenant("Default", "keep")}, "services[1].tenant", state.ErrInvalidSpec},
		{"a session's service", []solo.Spec{sleeper("a"), sleeper("session.nb")}, "services[1].name", solo.ErrReservedName},
		{"a tenant typo that would move a pruned service", []solo.Spec{sleeper("a"), inTenant("defualt", "keep")}, "services[1].tenant", solo.ErrApplyAmbiguous},
		{"prune with no services", nil, "", solo.ErrApplyEmpty},
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
    log: {max_size: 10MiB, files: 5, timestamps: true}
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
	assert.Equal(t, &state.LogSpec{MaxSize: 10 << 20, Files: 5, Timestamps: true}, web.Log)
	assert.JSONEq(t, `{"every":"5s","tags":["a","b"]}`, string(req.Services[1].Config))

	t.Run("every document is read, as one list", func(t *testing.T) {
		req, err := solo.DecodeApplyFile(strings.NewReader(`---
services:
  - {name: web, command: [sleep, "1"]}
  - {name: api, tenant: b, command: [sleep, "1"]}
---
# an empty document (a trailing separator, say) adds nothing
---
services:
  - {name: worker, command: [sleep, "1"]}
---
`))
		require.NoError(t, err)
		var got []string
		for _, s := range req.Services {
			got = append(got, s.Tenant+"/"+s.Name)
		}
		assert.Equal(t, []string{"/web", "b/api", "/worker"}, got)
	})

	bad := []struct {
		name, yaml, want string
	}{
		{"empty", "", "no services"},
		{"only a separator", "---\n", "no services"},
		{"only comments", "# services:\n#   - name: web\n", "no services"},
		{"an empty document", "---\n---\n", "no services"},
		{"an empty list", "services: []\n", "no services"},
		{"an empty mapping", "{}\n", "no services"},
		{"a null list", "services:\n", "no services"},
		{"services twice", "services:\n  - {name: a, command: [x]}\nservices:\n  - {name: b, command: [x]}\n", "services"},
		{"a field twice in an entry", "services:\n  - name: a\n    command: [x]\n    name: b\n", "services[0].name: is set twice"},
		{"a bad second document", "services:\n  - {name: a, command: [x]}\n---\nservices:\n  - {name: b, comand: [x]}\n", "document 2: services[1].comand: unknown field"},
		{"a second document that is not a mapping", "services:\n  - {name: a, command: [x]}\n---\n- {name: b, command: [x]}\n", "document 2"},
		{"a syntax error in a later document", "services:\n  - {name: a, command: [x]}\n---\nservices: [\n", "document 2"},
		{"unknown top-level key", "servces: []\n", "servces"},
		{"unknown field names the entry", "services:\n  - name: a\n    comand: [x]\n", "services[0].comand: unknown field"},
		{"wrong type names the field", "services:\n  - name: a\n    command: [x]\n  - name: b\n    command: {x: 1}\n", "services[1].command:"},
		{"bad duration", "services:\n  - name: a\n    command: [x]\n    stop_timeout: soon\n", "services[0].stop_timeout:"},
		{"entry not a mapping", "services:\n  - web\n", "services[0]:"},
		{"bad log size", "services:\n  - name: a\n    command: [x]\n    log: {max_size: 10XB}\n", "log.max_size: size \"10XB\""},
		{"unknown log field", "services:\n  - name: a\n    command: [x]\n    log: {rotate: yes}\n", "log.rotate: unknown field"},
		{"log not a mapping", "services:\n  - name: a\n    command: [x]\n    log: big\n", "services[0].log: line 4: want a mapping"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := solo.DecodeApplyFile(strings.NewReader(c.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			var ee *solo.ApplyEntryError
			if strings.Contains(c.want, "services[") {
				assert.True(t, errors.As(err, &ee))
			}
			if c.want == "no services" {
				assert.ErrorIs(t, err, solo.ErrApplyEmpty)
			}
		})
	}
}

// A file of several YAML documents is one set of services: a prune from it
// keeps the services of every document, not only the first's.
func TestRuntime_Apply_MultiDocumentFile(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	web, worker := state.Key{Tenant: "default", Name: "web"}, state.Key{Tenant: "default", Name: "worker"}
	_, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), sleeper("worker")}})
	require.NoError(t, err)
	pids := startedPIDs(t, ev, web, worker)

	req, err := solo.DecodeApplyFile(strings.NewReader(`services:
  - name: web
    command: ["sleep", "1000"]
---
services:
  - name: worker
    command: ["sleep", "1000"]
`))
	require.NoError(t, err)
	req.Prune = true
	head := rt.Store().Head()
	res, err := rt.Apply(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyUnchanged}, actions(res))
	assert.Equal(t, head, rt.Store().Head(), "the apply wrote events")
	for k, pid := range pids {
		st, err := rt.Status(k.Tenant, k.Name)
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, st.State, "%s", k)
		assert.Equal(t, pid, st.PID, "%s was restarted", k)
	}
}

// A tenant the log has never seen is refused only where it looks like a
// typo: when the same apply prunes the name it creates there. Without that
// prune, or once the tenant exists, the same file applies.
func TestRuntime_Apply_NewTenant(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	_, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), sleeper("worker")}})
	require.NoError(t, err)
	startedPIDs(t, ev, state.Key{Tenant: "default", Name: "web"}, state.Key{Tenant: "default", Name: "worker"})

	t.Run("a new tenant with other names prunes as asked", func(t *testing.T) {
		plan, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), inTenant("shop", "cart")}, Prune: true, DryRun: true})
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyCreate, solo.ApplyPrune}, actions(plan))
	})

	moved := solo.ApplyRequest{Services: []solo.Spec{sleeper("web"), inTenant("shop", "worker")}, Prune: true}
	t.Run("a new tenant that takes a pruned name is refused", func(t *testing.T) {
		head := rt.Store().Head()
		_, err := rt.Apply(ctx, moved)
		require.ErrorIs(t, err, solo.ErrApplyAmbiguous)
		var ee *solo.ApplyEntryError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "services[1].tenant", ee.Field())
		assert.Contains(t, err.Error(), `apply: services[1].tenant: "shop" has no services yet`)
		assert.Contains(t, err.Error(), "default/worker")
		assert.Equal(t, head, rt.Store().Head())
	})

	t.Run("created without prune first, the move then applies", func(t *testing.T) {
		res, err := rt.Apply(ctx, solo.ApplyRequest{Services: moved.Services})
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyCreate}, actions(res))
		res, err = rt.Apply(ctx, moved)
		require.NoError(t, err)
		assert.Equal(t, []solo.ApplyAction{solo.ApplyUnchanged, solo.ApplyUnchanged, solo.ApplyPrune}, actions(res))
		assert.Equal(t, "worker", res.Items[2].Name)
		assert.Equal(t, "default", res.Items[2].Tenant)
	})
}

// A kernel session's service ("session.NAME") is the session's: a prune of
// its tenant leaves it alone, and the session keeps running tasks.
func TestRuntime_Apply_KeepsSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt := MustOpen(t, solo.Options{Python: kerneltest.Python(t)})
	ev := follow(t, rt, 0)
	kernelKey := state.Key{Tenant: "default", Name: "session.nb"}
	_, err := rt.Sessions().Create(ctx, "default", "nb", "", "")
	require.NoError(t, err)
	tk, err := rt.Sessions().Submit(ctx, "default", "nb", "x = 41", session.SubmitOptions{})
	require.NoError(t, err)
	tk, err = rt.Sessions().Wait(ctx, tk.ID)
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, tk.State)
	before, err := rt.Status("default", "session.nb")
	require.NoError(t, err)
	require.Equal(t, state.StateRunning, before.State)

	res, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("web")}, Prune: true})
	require.NoError(t, err)
	require.Equal(t, []solo.ApplyAction{solo.ApplyCreate}, actions(res), "the kernel's service was pruned")
	res, err = rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("worker")}, Prune: true})
	require.NoError(t, err)
	// web is pruned; the kernel is not.
	assert.Equal(t, []solo.ApplyAction{solo.ApplyCreate, solo.ApplyPrune}, actions(res))
	assert.Equal(t, "web", res.Items[1].Name)
	ev.next(state.Key{Tenant: "default", Name: "web"}, state.TypeServiceKilled)

	after, err := rt.Status("default", "session.nb")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, after.State)
	assert.Equal(t, before.PID, after.PID, "the kernel was restarted")
	tk, err = rt.Sessions().Submit(ctx, "default", "nb", "print(x + 1)", session.SubmitOptions{})
	require.NoError(t, err)
	tk, err = rt.Sessions().Wait(ctx, tk.ID)
	require.NoError(t, err, "the session's task never ended")
	require.Equal(t, state.TaskStateCompleted, tk.State)
	var out strings.Builder
	require.NoError(t, rt.Sessions().Output(ctx, tk.ID, false, func(b []byte) error { out.Write(b); return nil }))
	assert.Equal(t, "42\n", out.String(), "the kernel lost its variables")
	for env, err := range rt.Store().Read(1, int(rt.Store().Head())) {
		require.NoError(t, err)
		assert.False(t, env.Type == string(state.TypeServiceKilled) && env.Subject == kernelKey.Name, "the kernel's service was killed at %d", env.Pos)
	}
}
