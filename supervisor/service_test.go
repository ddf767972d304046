package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRunner is a [Runner] whose Start is StartFunc.
type fakeRunner struct {
	StartFunc func(ctx context.Context, attempt int) (Instance, error)
}

var _ Runner = fakeRunner{}

func (r fakeRunner) Start(ctx context.Context, attempt int) (Instance, error) {
	return r.StartFunc(ctx, attempt)
}

// fakeInstance is an [Instance] that ends with Exit (or WaitErr) at once,
// or, with Block, only when the loop's context ends; Stop records how it
// was asked to stop and returns StopExit, StopErr.
type fakeInstance struct {
	ID       Identity
	Exit     Exit
	WaitErr  error
	Block    bool
	StopExit Exit
	StopErr  error

	mu      sync.Mutex
	stopped []stopCall
}

type stopCall struct {
	sig     syscall.Signal
	timeout time.Duration
}

var _ Instance = (*fakeInstance)(nil)

func (i *fakeInstance) Identity() Identity { return i.ID }

func (i *fakeInstance) Wait(ctx context.Context) (Exit, error) {
	if i.Block {
		<-ctx.Done()
		return Exit{}, ctx.Err()
	}
	return i.Exit, i.WaitErr
}

func (i *fakeInstance) Stop(_ context.Context, sig syscall.Signal, timeout time.Duration) (StopResult, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stopped = append(i.stopped, stopCall{sig, timeout})
	return StopResult{Exit: i.StopExit}, i.StopErr
}

func (i *fakeInstance) stops() []stopCall {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]stopCall(nil), i.stopped...)
}

// factLog is a [Recorder] that keeps every fact; RecordFunc, if set,
// decides what Record returns.
type factLog struct {
	RecordFunc func(f Fact) error

	mu    sync.Mutex
	keys  []Key
	facts []Fact
	added chan struct{} // gets a value per fact
}

var _ Recorder = (*factLog)(nil)

func newFactLog() *factLog { return &factLog{added: make(chan struct{}, 100)} }

func (l *factLog) Record(_ context.Context, key Key, f Fact) error {
	l.mu.Lock()
	l.keys = append(l.keys, key)
	l.facts = append(l.facts, f)
	l.mu.Unlock()
	l.added <- struct{}{}
	if l.RecordFunc != nil {
		return l.RecordFunc(f)
	}
	return nil
}

func (l *factLog) all() []Fact {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Fact(nil), l.facts...)
}

// stepClock returns a clock that moves on by step at every reading, from
// the zero time.
func stepClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	var now time.Time
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

var web = Key{Tenant: "default", Name: "web"}

// newTestService returns a loop of web, generation 7, with a clock that
// moves on 10s at every reading and restarts a nanosecond apart.
func newTestService(p Policy, r Runner, rec Recorder) *Service {
	return NewService(ServiceConfig{
		Key: web, Generation: 7, Policy: p, Runner: r, Recorder: rec,
		Backoff: Backoff{Base: time.Nanosecond, Max: time.Nanosecond},
		Now:     stepClock(10 * time.Second),
		Rand:    func() float64 { return 0.5 },
	})
}

// serveCtx serves s and fails the test if Serve does not return by itself.
func serveCtx(t *testing.T, ctx context.Context, s *Service) {
	t.Helper()
	if err := s.Serve(ctx); err == nil {
		t.Fatal("Serve returned nil; a loop must never be restarted by suture")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Serve returned but Done is open")
	}
}

func TestService_Facts(t *testing.T) {
	id := func(attempt int) Identity {
		return Identity{PID: 100 + attempt, StartTicks: uint64(attempt), BootID: "boot"}
	}
	// An instance per attempt, exiting with codes[attempt-1].
	exiting := func(codes ...int) fakeRunner {
		return fakeRunner{StartFunc: func(_ context.Context, attempt int) (Instance, error) {
			return &fakeInstance{ID: id(attempt), Exit: Exit{Code: codes[attempt-1]}}, nil
		}}
	}
	onFailure := func(e Exit) bool { return !e.Success() }
	started := func(attempt int) Fact { return Started{Generation: 7, Attempt: attempt, Identity: id(attempt)} }
	exited := func(attempt, code int) Fact {
		return Exited{Generation: 7, Attempt: attempt, PID: id(attempt).PID, Exit: Exit{Code: code}, RanFor: 10 * time.Second}
	}
	// restart is f, an Exited, saying that restart n follows it, after
	// the test backoff's one nanosecond.
	restart := func(f Fact, n int) Fact {
		e := f.(Exited)
		e.Restart, e.Backoff = n, time.Nanosecond
		return e
	}
	cases := []struct {
		name   string
		policy Policy
		runner Runner
		want   []Fact
	}{
		{
			name:   "the policy says no restart: one start, one exit",
			policy: Policy{Restart: onFailure, MaxRestarts: 5, Window: time.Hour},
			runner: exiting(0),
			want:   []Fact{started(1), exited(1, 0)},
		},
		{
			name:   "restarts until the limit within the window, then gives up",
			policy: Policy{Restart: onFailure, MaxRestarts: 2, Window: time.Hour},
			runner: exiting(1, 1, 1),
			want: []Fact{
				started(1), restart(exited(1, 1), 1), started(2), restart(exited(2, 1), 2), started(3), exited(3, 1),
				GaveUp{Generation: 7, Restarts: 2, Window: time.Hour},
			},
		},
		{
			// Each attempt takes two readings of the clock (start, and
			// its end, which is also when its restart counts): restarts
			// come 20s apart and a 15s window never holds two.
			name:   "restarts older than the window do not count",
			policy: Policy{Restart: onFailure, MaxRestarts: 1, Window: 15 * time.Second},
			runner: exiting(1, 1, 1, 0),
			want: []Fact{
				started(1), restart(exited(1, 1), 1), started(2), restart(exited(2, 1), 1), started(3), restart(exited(3, 1), 1), started(4), exited(4, 0),
			},
		},
		{
			name:   "a nil Restart restarts after a clean exit too; zero MaxRestarts gives up at once",
			policy: Policy{Window: time.Hour},
			runner: exiting(0),
			want:   []Fact{started(1), exited(1, 0), GaveUp{Generation: 7, Restarts: 0, Window: time.Hour}},
		},
		{
			name:   "a start that fails is an exit without a start",
			policy: Policy{Restart: onFailure, MaxRestarts: 1, Window: time.Hour},
			runner: fakeRunner{StartFunc: func(context.Context, int) (Instance, error) { return nil, errBoom }},
			want: []Fact{
				Exited{Generation: 7, Attempt: 1, Exit: Exit{Code: -1}, RanFor: 10 * time.Second, Err: errBoom, Restart: 1, Backoff: time.Nanosecond},
				Exited{Generation: 7, Attempt: 2, Exit: Exit{Code: -1}, RanFor: 10 * time.Second, Err: errBoom},
				GaveUp{Generation: 7, Restarts: 1, Window: time.Hour},
			},
		},
		{
			name:   "a wait that fails is an unknown exit",
			policy: Policy{Restart: onFailure, Window: time.Hour},
			runner: fakeRunner{StartFunc: func(context.Context, int) (Instance, error) {
				return &fakeInstance{ID: id(1), WaitErr: errBoom}, nil
			}},
			want: []Fact{
				started(1),
				Exited{Generation: 7, Attempt: 1, PID: 101, Exit: Exit{Unknown: true}, RanFor: 10 * time.Second, Err: errBoom},
				GaveUp{Generation: 7, Window: time.Hour},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := newFactLog()
			serveCtx(t, context.Background(), newTestService(c.policy, c.runner, log))
			assert.Equal(t, c.want, log.all())
			for _, k := range log.keys {
				assert.Equal(t, web, k)
			}
		})
	}
}

var errBoom = errors.New("boom")

// goServiceFunc adapts a function to [GoService].
type goServiceFunc func(ctx context.Context) error

func (f goServiceFunc) Serve(ctx context.Context) error { return f(ctx) }

// An in-process service that fails is reported with its exit code and its
// *GoError, and has no pid.
func TestService_Facts_goService(t *testing.T) {
	log := newFactLog()
	r := &FuncRunner{New: func(io.Writer) (GoService, error) {
		return goServiceFunc(func(context.Context) error { return errBoom }), nil
	}}
	serveCtx(t, context.Background(), newTestService(Policy{Restart: func(Exit) bool { return false }}, r, log))
	facts := log.all()
	require.Len(t, facts, 2)
	assert.Equal(t, Started{Generation: 7, Attempt: 1}, facts[0])
	ex, ok := facts[1].(Exited)
	require.True(t, ok, "%T", facts[1])
	assert.Equal(t, 0, ex.PID)
	assert.Equal(t, Exit{Code: GoExitError}, ex.Exit)
	var ge *GoError
	require.ErrorAs(t, ex.Err, &ge)
	assert.ErrorIs(t, ge, errBoom)
}

// A factory that panics on a restart fails that attempt as a start that
// could not be made; the loop goes on by its policy. Before, the panic ended
// the loop silently: nothing was recorded and nothing supervised the
// service again.
func TestService_Facts_factoryPanics(t *testing.T) {
	log := newFactLog()
	calls := 0
	r := &FuncRunner{New: func(io.Writer) (GoService, error) {
		calls++
		if calls == 2 {
			panic("factory exploded")
		}
		return goServiceFunc(func(context.Context) error { return errBoom }), nil
	}}
	serveCtx(t, context.Background(), newTestService(Policy{MaxRestarts: 2, Window: time.Hour}, r, log))
	facts := log.all()
	var kinds []string
	for _, f := range facts {
		kinds = append(kinds, fmt.Sprintf("%T", f))
	}
	// attempt 1 starts and fails; attempt 2 cannot start (the panic);
	// attempt 3 starts and fails; then the loop gives up.
	require.Equal(t, []string{"supervisor.Started", "supervisor.Exited", "supervisor.Exited", "supervisor.Started", "supervisor.Exited", "supervisor.GaveUp"}, kinds)
	ex := facts[2].(Exited)
	assert.Equal(t, 2, ex.Attempt)
	var ge *GoError
	require.ErrorAs(t, ex.Err, &ge)
	assert.True(t, ge.Panic)
	assert.Contains(t, ge.Error(), "factory exploded")
}

// When its context ends, the loop stops its instance with the policy's
// signal and timeout and reports how the stop ended it; a stop that fails
// is an unknown exit, never a clean one.
func TestService_Serve_stop(t *testing.T) {
	policy := Policy{StopSignal: syscall.SIGINT, StopTimeout: 3 * time.Second, MaxRestarts: 5, Window: time.Hour}
	for _, c := range []struct {
		name     string
		inst     *fakeInstance
		wantExit Exit
		wantErr  bool
	}{
		{
			name:     "stopped",
			inst:     &fakeInstance{ID: Identity{PID: 101}, Block: true, StopExit: Exit{Code: -1, Signal: syscall.SIGINT}},
			wantExit: Exit{Code: -1, Signal: syscall.SIGINT},
		},
		{
			name:     "the stop failed",
			inst:     &fakeInstance{ID: Identity{PID: 101}, Block: true, StopErr: ErrKillTimeout},
			wantExit: Exit{Unknown: true},
			wantErr:  true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := newFactLog()
			s := newTestService(policy, fakeRunner{StartFunc: func(context.Context, int) (Instance, error) { return c.inst, nil }}, log)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-log.added // the start is recorded: the loop waits
				cancel()
			}()
			serveCtx(t, ctx, s)
			assert.Equal(t, []stopCall{{syscall.SIGINT, 3 * time.Second}}, c.inst.stops())
			facts := log.all()
			require.Len(t, facts, 2)
			assert.Equal(t, FactStarted, facts[0].Type())
			ex, ok := facts[1].(Exited)
			require.True(t, ok, "%T", facts[1])
			assert.Equal(t, c.wantExit, ex.Exit)
			assert.Equal(t, 101, ex.PID)
			if c.wantErr {
				assert.ErrorIs(t, ex.Err, ErrKillTimeout)
			} else {
				assert.NoError(t, ex.Err)
			}
			last, ok := s.LastStop()
			require.True(t, ok)
			assert.Equal(t, c.wantErr, last.Forced)
		})
	}
}

// A start that cannot be recorded is stopped at once, and the loop ends:
// no instance outlives its loop unrecorded.
func TestService_Serve_startNotRecorded(t *testing.T) {
	log := newFactLog()
	log.RecordFunc = func(Fact) error { return errBoom }
	inst := &fakeInstance{ID: Identity{PID: 101}, Block: true}
	policy := Policy{StopSignal: syscall.SIGQUIT, StopTimeout: time.Second, MaxRestarts: 5, Window: time.Hour}
	serveCtx(t, context.Background(), newTestService(policy, fakeRunner{StartFunc: func(context.Context, int) (Instance, error) { return inst, nil }}, log))
	assert.Equal(t, []stopCall{{syscall.SIGQUIT, time.Second}}, inst.stops())
	facts := log.all()
	require.Len(t, facts, 1)
	assert.Equal(t, FactStarted, facts[0].Type())
}
