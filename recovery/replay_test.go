package recovery

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// fakeTarget is a [Target] whose calls are its ...Func fields; it records
// what is appended and supervised.
type fakeTarget struct {
	WorldFunc     func() *state.World
	StartFunc     func(ctx context.Context, svc *state.Service, attempt int) (supervisor.Instance, error)
	SuperviseFunc func(svc *state.Service, inst supervisor.Instance, attempt int, startedAt time.Time) error
	home          string

	mu         sync.Mutex
	events     []eventstore.Event
	supervised map[string]supervisor.Instance
}

var _ Target = (*fakeTarget)(nil)

func (f *fakeTarget) World() *state.World { return f.WorldFunc() }

func (f *fakeTarget) Home() string { return f.home }

func (f *fakeTarget) HasKind(string) bool { return true }

func (f *fakeTarget) Start(ctx context.Context, svc *state.Service, attempt int) (supervisor.Instance, error) {
	return f.StartFunc(ctx, svc, attempt)
}

func (f *fakeTarget) Supervise(svc *state.Service, inst supervisor.Instance, attempt int, startedAt time.Time) error {
	if f.SuperviseFunc != nil {
		if err := f.SuperviseFunc(svc, inst, attempt, startedAt); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.supervised[svc.Name] = inst
	return nil
}

func (f *fakeTarget) Append(_ context.Context, events []eventstore.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, events...)
	return nil
}

// recorded returns the payloads appended for service name, in order.
func (f *fakeTarget) recorded(t *testing.T, name string) []state.Payload {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []state.Payload
	for i, ev := range f.events {
		if ev.Subject != name {
			continue
		}
		p, err := state.Decode(eventstore.Envelope{Pos: uint64(i + 1), Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: json.RawMessage(ev.Data)})
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

// fakeInstance is an in-process instance that runs until stopped.
type fakeInstance struct {
	stopped atomic.Bool
}

var _ supervisor.Instance = (*fakeInstance)(nil)

func (i *fakeInstance) Identity() supervisor.Identity { return supervisor.Identity{} }

func (i *fakeInstance) Wait(ctx context.Context) (supervisor.Exit, error) {
	<-ctx.Done()
	return supervisor.Exit{}, ctx.Err()
}

func (i *fakeInstance) Stop(context.Context, syscall.Signal, time.Duration) (supervisor.StopResult, error) {
	i.stopped.Store(true)
	return supervisor.StopResult{Exit: supervisor.Exit{Signal: syscall.SIGTERM}}, nil
}

func newFakeTarget(t *testing.T, w *state.World) *fakeTarget {
	return &fakeTarget{
		WorldFunc: func() *state.World { return w },
		StartFunc: func(context.Context, *state.Service, int) (supervisor.Instance, error) {
			return &fakeInstance{}, nil
		},
		home:       t.TempDir(), // no marked process can belong to it
		supervised: map[string]supervisor.Instance{},
	}
}

// runUnderTree runs the pass the way Open does, through a suture tree,
// bounded so that a hang fails instead of stalling the test binary.
func runUnderTree(t *testing.T, rp *Replayer) {
	t.Helper()
	tree := supervisor.NewTree(nil)
	t.Cleanup(func() { tree.StopAll(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, tree.RunOnce(ctx, rp), "the pass never finished")
	select {
	case <-rp.Done():
	default:
		t.Fatal("RunOnce returned before the pass was done")
	}
}

func reasons(ps []state.Payload) []string {
	var out []string
	for _, p := range ps {
		if f, ok := p.(state.RecoveryFailed); ok {
			out = append(out, f.Reason)
		}
	}
	return out
}

func types(ps []state.Payload) []state.EventType {
	var out []state.EventType
	for _, p := range ps {
		out = append(out, p.EventType())
	}
	return out
}

// TestReplayer_Run_PanicFailsAlone: a service whose recovery panics fails on
// its own and is recorded with the panic as its reason; the others are
// recovered, and the pass ends.
func TestReplayer_Run_PanicFailsAlone(t *testing.T) {
	w := fold(t, deployed("boom", 1), deployed("calm", 1), deployed("late", 1))

	t.Run("start panics", func(t *testing.T) {
		ft := newFakeTarget(t, w)
		ft.StartFunc = func(_ context.Context, svc *state.Service, _ int) (supervisor.Instance, error) {
			if svc.Name == "boom" {
				panic("factory exploded")
			}
			return &fakeInstance{}, nil
		}
		rp := NewReplayer(ft, Options{})
		runUnderTree(t, rp)
		rep, err := rp.Result()
		require.NoError(t, err)
		assert.Equal(t, 2, rep.Restarted)
		assert.Equal(t, 1, rep.Failed)
		require.Len(t, rep.Errors, 1)
		assert.Contains(t, rep.Errors[0], "boom")

		boom := ft.recorded(t, "boom")
		assert.Equal(t, []state.EventType{state.TypeServiceRecoveryFailed}, types(boom))
		if r := reasons(boom); assert.Len(t, r, 1) {
			assert.Contains(t, r[0], "panic")
			assert.Contains(t, r[0], "factory exploded")
		}
		for _, name := range []string{"calm", "late"} {
			assert.Equal(t, []state.EventType{state.TypeServiceStarted, state.TypeServiceRecovered}, types(ft.recorded(t, name)), name)
			assert.Contains(t, ft.supervised, name)
		}
		assert.NotContains(t, ft.supervised, "boom")
	})

	t.Run("supervise panics", func(t *testing.T) {
		ft := newFakeTarget(t, w)
		var handed *fakeInstance
		ft.SuperviseFunc = func(svc *state.Service, inst supervisor.Instance, _ int, _ time.Time) error {
			if svc.Name == "boom" {
				handed = inst.(*fakeInstance)
				panic("tree exploded")
			}
			return nil
		}
		rp := NewReplayer(ft, Options{})
		runUnderTree(t, rp)
		rep, err := rp.Result()
		require.NoError(t, err)
		assert.Equal(t, 2, rep.Restarted)
		assert.Equal(t, 1, rep.Failed)

		// The instance no loop took is stopped, or nothing would ever stop
		// it (I3), and the log says so.
		require.NotNil(t, handed)
		assert.True(t, handed.stopped.Load(), "an unsupervised instance was left running")
		boom := ft.recorded(t, "boom")
		assert.Equal(t, []state.EventType{state.TypeServiceStarted, state.TypeServiceRecovered,
			state.TypeServiceExited, state.TypeServiceRecoveryFailed}, types(boom))
		if r := reasons(boom); assert.Len(t, r, 1) {
			assert.Contains(t, r[0], "tree exploded")
		}
		assert.Len(t, ft.supervised, 2)
	})

	t.Run("the pass itself panics", func(t *testing.T) {
		ft := newFakeTarget(t, w)
		ft.WorldFunc = func() *state.World { panic("fold exploded") }
		rp := NewReplayer(ft, Options{})
		runUnderTree(t, rp)
		_, err := rp.Result()
		require.ErrorIs(t, err, ErrPanic)
		assert.Contains(t, err.Error(), "fold exploded")
		// A second Run returns the first result.
		_, err2 := rp.Run(context.Background())
		assert.Equal(t, err, err2)
	})
}
