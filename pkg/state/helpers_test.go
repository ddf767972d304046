package state

import (
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/stretchr/testify/require"
)

// testLog builds envelopes with increasing positions and times, as the store
// would return them.
type testLog struct {
	tb   testing.TB
	pos  uint64
	envs []eventstore.Envelope
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestLog(tb testing.TB) *testLog { return &testLog{tb: tb} }

// add encodes p with NewEvent and stores it at the next position.
func (l *testLog) add(tenant, subject string, p Payload) eventstore.Envelope {
	l.tb.Helper()
	ev, err := NewEvent(tenant, subject, p)
	require.NoError(l.tb, err)
	l.pos++
	env := eventstore.Envelope{
		Pos:     l.pos,
		Time:    t0.Add(time.Duration(l.pos) * time.Second),
		Type:    ev.Type,
		Tenant:  ev.Tenant,
		Subject: ev.Subject,
		Data:    ev.Data,
	}
	l.envs = append(l.envs, env)
	return env
}

func testSpec(name string) Spec {
	return Spec{Name: name, Command: []string{"/bin/sleep", "1000"}}
}

func (l *testLog) deploy(name string, gen uint64) { l.deploySpec(testSpec(name), gen) }

func (l *testLog) deploySpec(s Spec, gen uint64) {
	l.tb.Helper()
	l.add("", "", Deployed{Spec: s, Generation: gen})
}

func (l *testLog) start(name string, gen uint64, attempt, pid int) {
	l.tb.Helper()
	l.add(DefaultTenant, name, Started{Generation: gen, Attempt: attempt, PID: pid, StartTicks: 4242, BootID: "boot-1"})
}

func (l *testLog) exit(name string, gen uint64, attempt, pid, code int) {
	l.tb.Helper()
	l.add(DefaultTenant, name, Exited{Generation: gen, Attempt: attempt, PID: pid, ExitCode: code, RanFor: Duration(time.Second)})
}

func (l *testLog) kill(name string) {
	l.tb.Helper()
	l.add(DefaultTenant, name, Killed{Reason: "asked"})
}

// seq yields envs[from:] as a store reader would.
func (l *testLog) seq(from int) iter.Seq2[eventstore.Envelope, error] {
	return l.seqRange(from, len(l.envs))
}

// seqRange yields envs[from:to].
func (l *testLog) seqRange(from, to int) iter.Seq2[eventstore.Envelope, error] {
	return func(yield func(eventstore.Envelope, error) bool) {
		for _, env := range l.envs[from:to] {
			if !yield(env, nil) {
				return
			}
		}
	}
}

// mustFold folds the whole log and checks, as a cleanup-style invariant,
// that folding it again and folding it through a snapshot give the same
// World (I6).
func mustFold(tb testing.TB, l *testLog) *World {
	tb.Helper()
	w, err := Fold(nil, l.seq(0))
	require.NoError(tb, err)
	again, err := Fold(nil, l.seq(0))
	require.NoError(tb, err)
	require.Equal(tb, w, again, "folding twice differs")
	b, err := w.MarshalSnapshot()
	require.NoError(tb, err)
	back, err := UnmarshalSnapshot(b)
	require.NoError(tb, err)
	require.Equal(tb, w, back, "snapshot round trip differs")
	return w
}

func mustService(tb testing.TB, w *World, name string) *Service {
	tb.Helper()
	s, ok := w.Service(DefaultTenant, name)
	require.True(tb, ok, "service %s not in world", name)
	return s
}

func names(svcs []*Service) []string {
	out := make([]string, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, s.Tenant+"/"+s.Name)
	}
	return slices.Clip(out)
}

// mustFoldMore folds what more adds to a log after w's position into a
// copy of w, checks that the copy survives a snapshot, and calls check with
// the service of the last event more adds.
func mustFoldMore(tb testing.TB, w *World, more func(l *testLog), check func(s *Service)) {
	tb.Helper()
	l := &testLog{tb: tb, pos: w.Pos()}
	more(l)
	w2, err := Fold(w, l.seq(0))
	require.NoError(tb, err)
	b, err := w2.MarshalSnapshot()
	require.NoError(tb, err)
	back, err := UnmarshalSnapshot(b)
	require.NoError(tb, err)
	require.Equal(tb, w2, back, "snapshot round trip differs")
	var last eventstore.Envelope
	for _, env := range l.envs {
		last = env
	}
	s, ok := w2.Service(last.Tenant, last.Subject)
	require.True(tb, ok, "service %s/%s not in world", last.Tenant, last.Subject)
	check(s)
}
