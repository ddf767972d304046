package solo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// logOf returns every event of the log, in order.
func logOf(t testing.TB, store eventstore.Log) []eventstore.Envelope {
	t.Helper()
	var out []eventstore.Envelope
	for env, err := range store.Read(1, 0) {
		require.NoError(t, err)
		out = append(out, env)
	}
	return out
}

// firstPos is the position of the first event of type typ about name at or
// after from; 0 if none.
func firstPos(envs []eventstore.Envelope, name string, typ state.EventType, from uint64) uint64 {
	for _, e := range envs {
		if e.Pos >= from && e.Subject == name && e.Type == string(typ) {
			return e.Pos
		}
	}
	return 0
}

// all waits until an event of type typ has come for each of names (in
// tenant default), in any order.
func (e *events) all(typ state.EventType, names ...string) {
	e.t.Helper()
	left := map[string]bool{}
	for _, n := range names {
		left[n] = true
	}
	for len(left) > 0 {
		env, _ := e.next(state.Key{}, typ)
		delete(left, env.Subject)
	}
}

func after(s solo.Spec, names ...string) solo.Spec    { s.After = names; return s }
func requires(s solo.Spec, names ...string) solo.Spec { s.Requires = names; return s }

func TestOrder_AfterWaitsForReady(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	port := freePort(t)
	db := slowHTTP("db", port, t.TempDir())
	db.Ready = &state.ReadySpec{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	_, err := rt.Deploy(ctx, db)
	require.NoError(t, err)
	res, err := rt.Deploy(ctx, after(sleeper("web"), "db"))
	require.NoError(t, err)

	// deploy does not wait for the dependency: the start is in hand, and
	// waits.
	v, err := rt.WaitStarted(ctx, "default", "web", res.Pos)
	require.NoError(t, err)
	web := state.Key{Tenant: "default", Name: "web"}
	_, p := ev.next(web, state.TypeServiceWaiting)
	assert.Equal(t, []state.Blocker{{Name: "db", State: state.StateStarting}}, p.(state.Waiting).For)
	if v.PID == 0 { // not started yet: the status says what it waits for
		st, err := rt.Status("default", "web")
		require.NoError(t, err)
		if st.PID == 0 {
			assert.Equal(t, state.StateStarting, st.State)
		}
	}

	started, _ := ev.next(web, state.TypeServiceStarted)
	envs := logOf(t, rt.Store())
	ready := firstPos(envs, "db", state.TypeServiceReady, 1)
	require.NotZero(t, ready, "db was ready before web started")
	assert.Greater(t, started.Pos, ready, "web started after db was ready")

	lines, err := rt.Why("default", "web", 0)
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(lines), "waiting at")
	assert.Contains(t, fmt.Sprint(lines), "for db (starting) before it starts")
}

// chainFile is n services, each after the one before, written last first
// so that the file's order is not the start order.
func chainFile(n int, ready bool) solo.ApplyRequest {
	var req solo.ApplyRequest
	for i := n - 1; i >= 0; i-- {
		s := sleeper(fmt.Sprintf("s%03d", i))
		if ready {
			s.Ready = &state.ReadySpec{Exec: []string{"true"}}
		}
		if i > 0 {
			s.After = []string{fmt.Sprintf("s%03d", i-1)}
		}
		req.Services = append(req.Services, s)
	}
	return req
}

func TestOrder_ApplyChain(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	const n = 100
	res, err := rt.Apply(ctx, chainFile(n, false))
	require.NoError(t, err)
	require.Len(t, res.Items, n)
	ev.next(state.Key{Tenant: "default", Name: fmt.Sprintf("s%03d", n-1)}, state.TypeServiceStarted)

	var order []string
	for _, e := range logOf(t, rt.Store()) {
		if e.Type == string(state.TypeServiceStarted) {
			order = append(order, e.Subject)
		}
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("s%03d", i)
	}
	assert.Equal(t, want, order, "started in chain order, each once")

	// Applying the same file again changes nothing.
	again, err := rt.Apply(ctx, chainFile(n, false))
	require.NoError(t, err)
	for _, it := range again.Items {
		assert.Equal(t, solo.ApplyUnchanged, it.Action, it.Name)
	}
}

func TestOrder_Requires(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	db, web := state.Key{Tenant: "default", Name: "db"}, state.Key{Tenant: "default", Name: "web"}
	_, err := rt.Deploy(ctx, sleeper("db"))
	require.NoError(t, err)
	_, err = rt.Deploy(ctx, requires(sleeper("web"), "db"))
	require.NoError(t, err)
	_, p := ev.next(web, state.TypeServiceStarted)
	first := p.(state.Started).PID

	require.NoError(t, rt.Kill(ctx, "default", "db"))
	_, p = ev.next(web, state.TypeServiceWaiting)
	assert.Equal(t, "required service db stopped", p.(state.Waiting).Reason)
	_, p = ev.next(web, state.TypeServiceExited)
	assert.Equal(t, first, p.(state.Exited).PID)
	assert.False(t, alive(first))
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, state.StateStarting, st.State)
	assert.Equal(t, "db (killed); required service db stopped", st.Waiting)

	// rm of a required service is refused, naming the dependent.
	err = rt.Remove(ctx, "default", "db")
	require.ErrorIs(t, err, solo.ErrHasDependents)
	assert.Contains(t, err.Error(), "web")

	startPos := rt.Store().Head()
	_, err = rt.Start(ctx, "default", "db")
	require.NoError(t, err)
	ev.next(db, state.TypeServiceStarted)
	back, p := ev.next(web, state.TypeServiceStarted)
	assert.NotEqual(t, first, p.(state.Started).PID)
	assert.Greater(t, back.Pos, startPos)

	// Stopped once: one reason recorded, one exit, whatever followed.
	envs := logOf(t, rt.Store())
	waits, exits := 0, 0
	for _, e := range envs {
		if e.Subject == "web" && e.Type == string(state.TypeServiceWaiting) {
			if p, err := state.Decode(e); assert.NoError(t, err) && p.(state.Waiting).Reason != "" {
				waits++
			}
		}
		if e.Subject == "web" && e.Type == string(state.TypeServiceExited) {
			exits++
		}
	}
	assert.Equal(t, 1, waits)
	assert.Equal(t, 1, exits)
	lines, err := rt.Why("default", "web", 0)
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(lines), "required service db stopped")
}

func TestOrder_ShutdownStopsDependentsFirst(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Backoff: fastBackoff})
	require.NoError(t, err)
	ev := follow(t, rt, 0)
	_, err = rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{
		requires(sleeper("web"), "api"), after(sleeper("api"), "db"), sleeper("db"), sleeper("lone"),
	}})
	require.NoError(t, err)
	ev.all(state.TypeServiceStarted, "web", "api", "db", "lone")
	res, err := rt.Shutdown(ctx, "test", solo.DefaultGrace)
	require.NoError(t, err)
	assert.Equal(t, 4, res.Stopped)

	store, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	defer store.Close()
	envs := logOf(t, store)
	down := firstPos(envs, "", state.TypeShutdownStarted, 1)
	web := firstPos(envs, "web", state.TypeServiceExited, down)
	api := firstPos(envs, "api", state.TypeServiceExited, down)
	db := firstPos(envs, "db", state.TypeServiceExited, down)
	require.NotZero(t, web)
	assert.Less(t, web, api, "web stopped before api, which it requires")
	assert.Less(t, api, db, "api stopped before db, which it is after")
	// No dependent was stopped "for its dependency" by the drain.
	assert.Zero(t, firstPos(envs, "web", state.TypeServiceWaiting, down))
}

func TestOrder_BadInput(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	_, err := rt.Deploy(ctx, sleeper("a"))
	require.NoError(t, err)
	_, err = rt.Deploy(ctx, after(sleeper("b"), "a"))
	require.NoError(t, err)
	_, err = rt.Deploy(ctx, requires(sleeper("c"), "b"))
	require.NoError(t, err)
	ev.all(state.TypeServiceStarted, "a", "b", "c") // the log is quiet from here
	head := rt.Store().Head()

	for _, tc := range []struct {
		name, field, msg string
		do               func() error
	}{
		{"unknown name", "after", "names nope, which is not a service of tenant", func() error {
			_, err := rt.Deploy(ctx, after(sleeper("d"), "nope"))
			return err
		}},
		{"self", "requires", "names the service itself", func() error {
			_, err := rt.Deploy(ctx, requires(sleeper("d"), "d"))
			return err
		}},
		{"cycle of 3", "after", "a -> c -> b -> a", func() error {
			_, err := rt.Deploy(ctx, after(sleeper("a"), "c"))
			return err
		}},
		{"apply cycle", "requires", "x -> y -> x", func() error {
			_, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{requires(sleeper("x"), "y"), requires(sleeper("y"), "x")}})
			return err
		}},
		{"apply unknown", "after", "names nope", func() error {
			_, err := rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("x"), after(sleeper("y"), "nope")}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.ErrorIs(t, err, state.ErrInvalidSpec)
			var fe *state.FieldError
			require.True(t, errors.As(err, &fe))
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Equal(t, head, rt.Store().Head(), "nothing written")
		})
	}
	// The apply names the file's entry at fault.
	_, err = rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("x"), after(sleeper("y"), "nope")}})
	var ae *solo.ApplyEntryError
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, 1, ae.Index)
}

// TestOrder_RequiresNoStorm: a required service that crash-loops stops its
// dependent once, not once per crash; the dependent comes back once it is
// ready again.
func TestOrder_RequiresNoStorm(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	work := t.TempDir()
	port := freePort(t)
	// db serves on port unless the file crash exists; then it exits 1 at
	// once, before it listens, so it is never ready.
	script := fmt.Sprintf(`import os, socket, sys, time
if os.path.exists("crash"):
    sys.exit(1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d))
s.listen()
time.sleep(1000)`, port)
	db := solo.Spec{Name: "db", Dir: work, Command: []string{"python3", "-c", script},
		Ready: &state.ReadySpec{TCP: fmt.Sprintf("127.0.0.1:%d", port)}}
	_, err := rt.Deploy(ctx, db)
	require.NoError(t, err)
	_, err = rt.Deploy(ctx, requires(sleeper("web"), "db"))
	require.NoError(t, err)
	dbKey, web := state.Key{Tenant: "default", Name: "db"}, state.Key{Tenant: "default", Name: "web"}
	ev.next(web, state.TypeServiceStarted)

	require.NoError(t, os.WriteFile(filepath.Join(work, "crash"), nil, 0o600))
	_, err = rt.Signal(ctx, "default", "db", "KILL")
	require.NoError(t, err)
	ev.next(dbKey, state.TypeServiceFailed) // every restart crashed, up to the limit

	count := func(name string, typ state.EventType, reasoned bool) int {
		n := 0
		for _, e := range logOf(t, rt.Store()) {
			if e.Subject != name || e.Type != string(typ) {
				continue
			}
			if reasoned {
				p, err := state.Decode(e)
				require.NoError(t, err)
				if p.(state.Waiting).Reason == "" {
					continue
				}
			}
			n++
		}
		return n
	}
	assert.GreaterOrEqual(t, count("db", state.TypeServiceExited, false), 3, "db crashed again and again")
	assert.Equal(t, 1, count("web", state.TypeServiceWaiting, true), "web stopped once, with the reason")
	assert.Equal(t, 1, count("web", state.TypeServiceExited, false))
	assert.Equal(t, 1, count("web", state.TypeServiceStarted, false))
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, "db (failed); required service db exited", st.Waiting)

	require.NoError(t, os.Remove(filepath.Join(work, "crash")))
	_, err = rt.Start(ctx, "default", "db")
	require.NoError(t, err)
	ready, _ := ev.next(dbKey, state.TypeServiceReady)
	back, _ := ev.next(web, state.TypeServiceStarted)
	assert.Greater(t, back.Pos, ready.Pos)
}

// TestOrder_RecoveryInOrder: after a drain, the next Open brings a chain
// back in order: the Replayer leaves each service with dependencies to the
// start rule instead of starting everything at once.
func TestOrder_RecoveryInOrder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const n = 10
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Backoff: fastBackoff})
	require.NoError(t, err)
	ev := follow(t, rt, 0)
	_, err = rt.Apply(ctx, chainFile(n, true))
	require.NoError(t, err)
	last := state.Key{Tenant: "default", Name: fmt.Sprintf("s%03d", n-1)}
	ev.next(last, state.TypeServiceReady)
	head := rt.Store().Head()
	_, err = rt.Shutdown(ctx, "test", solo.DefaultGrace)
	require.NoError(t, err)

	rt = MustOpen(t, solo.Options{DataDir: dir})
	ev = follow(t, rt, head+1) // the drain, then the second run
	ev.next(last, state.TypeServiceReady)
	envs := logOf(t, rt.Store())
	var order []string
	readyAt := map[string]uint64{}
	boots := 0
	for _, e := range envs {
		if e.Type == string(state.TypeSystemStarted) {
			boots++
		}
		if boots < 2 {
			continue // the first run
		}
		switch e.Type {
		case string(state.TypeServiceStarted):
			order = append(order, e.Subject)
			var i int
			_, err := fmt.Sscanf(e.Subject, "s%03d", &i)
			require.NoError(t, err)
			if i > 0 {
				prev := fmt.Sprintf("s%03d", i-1)
				require.NotZero(t, readyAt[prev], "%s started before %s was ready", e.Subject, prev)
			}
		case string(state.TypeServiceReady):
			readyAt[e.Subject] = e.Pos
		}
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("s%03d", i)
	}
	assert.Equal(t, want, order, "brought back in chain order, each once")
}
