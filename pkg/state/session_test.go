package state

import (
	"errors"
	"testing"
	"time"

	"github.com/solo-rt/solo/eventstore"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustFoldSessions folds the whole log with the world's one fold, checks
// that folding it twice, and folding it in two overlapping halves, give the
// same sessions (I6), and that they survive a snapshot.
func mustFoldSessions(tb testing.TB, l *testLog) *Sessions {
	tb.Helper()
	w, err := Fold(nil, l.seq(0))
	require.NoError(tb, err)
	again, err := Fold(nil, l.seq(0))
	require.NoError(tb, err)
	require.Equal(tb, w.Sessions(), again.Sessions(), "folding twice differs")
	half := len(l.envs) / 2
	a, err := Fold(nil, l.seqRange(0, half))
	require.NoError(tb, err)
	b, err := Fold(a, l.seq(0)) // overlapping tail: skipped, then the rest
	require.NoError(tb, err)
	require.Equal(tb, w.Sessions(), b.Sessions(), "folding in halves differs")
	snap, err := w.MarshalSnapshot()
	require.NoError(tb, err)
	back, err := UnmarshalSnapshot(snap)
	require.NoError(tb, err)
	require.Equal(tb, w.Sessions(), back.Sessions(), "sessions do not survive a snapshot")
	return w.Sessions()
}

func newSessionLog(t *testing.T) *testLog {
	l := newTestLog(t)
	l.add(DefaultTenant, "nb", SessionCreated{Kernel: "python3", Service: "session.nb"})
	return l
}

func TestSessions_Apply(t *testing.T) {
	t.Run("tasks run in submission order", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "x = 1"})
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "b", Code: "x + 1"})
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "c", Code: "1/0"})
		ss := mustFoldSessions(t, l)
		s, ok := ss.Session(DefaultTenant, "nb")
		require.True(t, ok)
		assert.Equal(t, []string{"a", "b", "c"}, s.Queue)

		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1, PID: 7})
		l.add(DefaultTenant, "nb", TaskCompleted{ID: "a", Outputs: []TaskOutput{{Kind: "stream", Name: "stdout", Text: "hi\n"}}})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "b", Attempt: 1, PID: 7})
		ss = mustFoldSessions(t, l)
		s, _ = ss.Session(DefaultTenant, "nb")
		assert.Equal(t, []string{"c"}, s.Queue)
		assert.Equal(t, "b", s.Running)
		a, _ := ss.Task("a")
		assert.Equal(t, TaskStateCompleted, a.State)
		assert.Equal(t, "hi\n", a.Outputs[0].Text)
		b, _ := ss.Task("b")
		assert.Equal(t, TaskStateRunning, b.State)
		assert.Equal(t, 7, b.KernelPID)

		l.add(DefaultTenant, "nb", TaskFailed{ID: "b", Reason: FailError, EName: "NameError", EValue: "x", Traceback: []string{"tb"}})
		ss = mustFoldSessions(t, l)
		b, _ = ss.Task("b")
		assert.Equal(t, TaskStateFailed, b.State)
		assert.Equal(t, FailError, b.Reason)
		assert.Equal(t, "NameError", b.EName)
		s, _ = ss.Session(DefaultTenant, "nb")
		assert.Empty(t, s.Running)
		assert.Equal(t, 2, s.Done)
	})
	t.Run("a final task never changes again", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "1"})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1})
		l.add(DefaultTenant, "nb", TaskCompleted{ID: "a"})
		l.add(DefaultTenant, "nb", TaskFailed{ID: "a", Reason: FailInterrupted})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 2})
		ss := mustFoldSessions(t, l)
		a, _ := ss.Task("a")
		assert.Equal(t, TaskStateCompleted, a.State)
		assert.Equal(t, 1, a.Attempts)
	})
	t.Run("a retryable task may start again", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "1", Retryable: true})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 2})
		ss := mustFoldSessions(t, l)
		a, _ := ss.Task("a")
		assert.Equal(t, TaskStateRunning, a.State)
		assert.Equal(t, 2, a.Attempts)
	})
	t.Run("cancel", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "1"})
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "b", Code: "2"})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1})
		l.add(DefaultTenant, "nb", TaskCancelled{ID: "b"})
		l.add(DefaultTenant, "nb", TaskCancelled{ID: "a"})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "b", Attempt: 1}) // too late: cancelled first
		ss := mustFoldSessions(t, l)
		a, _ := ss.Task("a")
		b, _ := ss.Task("b")
		assert.Equal(t, TaskStateRunning, a.State, "a running task ends when the kernel's interrupt lands")
		assert.True(t, a.CancelRequested)
		assert.Equal(t, TaskStateCancelled, b.State)
		s, _ := ss.Session(DefaultTenant, "nb")
		assert.Empty(t, s.Queue)
		assert.Equal(t, "a", s.Running)
	})
	t.Run("remove fails what is left, and a new session starts empty", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "1"})
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "b", Code: "2"})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1})
		l.add(DefaultTenant, "nb", SessionRemoved{})
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "c", Code: "3"}) // after the remove: ignored
		ss := mustFoldSessions(t, l)
		for _, id := range []string{"a", "b"} {
			tk, _ := ss.Task(id)
			assert.Equal(t, TaskStateFailed, tk.State, id)
			assert.Equal(t, FailSessionRemoved, tk.Reason, id)
		}
		_, ok := ss.Task("c")
		assert.False(t, ok)
		s, _ := ss.Session(DefaultTenant, "nb")
		assert.False(t, s.Live())

		l.add(DefaultTenant, "nb", SessionCreated{Kernel: "python3", Service: "session.nb"})
		ss = mustFoldSessions(t, l)
		s, _ = ss.Session(DefaultTenant, "nb")
		assert.True(t, s.Live())
		assert.Empty(t, s.Queue)
	})
	t.Run("kernel instances and lost state", func(t *testing.T) {
		l := newSessionLog(t)
		l.deploySpec(Spec{Name: "session.nb", Command: []string{"/usr/bin/python3"}}, 1)
		l.start("session.nb", 1, 1, 100)
		l.start("other", 1, 1, 300) // not a kernel: ignored
		ss := mustFoldSessions(t, l)
		s, _ := ss.Session(DefaultTenant, "nb")
		require.NotNil(t, s.Instance)
		assert.Equal(t, 100, s.Instance.PID)
		assert.False(t, s.Exited)
		k, ok := ss.SessionOfService(Key{DefaultTenant, "session.nb"})
		assert.True(t, ok)
		assert.Equal(t, Key{DefaultTenant, "nb"}, k)

		l.add(DefaultTenant, "nb", SessionKernelReady{PID: 100, StartTicks: 4242})
		l.exit("session.nb", 1, 1, 100, 1)
		ss = mustFoldSessions(t, l)
		s, _ = ss.Session(DefaultTenant, "nb")
		assert.True(t, s.Exited)
		assert.Equal(t, 0, s.Lost)

		l.start("session.nb", 1, 2, 200)
		l.add(DefaultTenant, "nb", SessionKernelReady{PID: 200, StateLost: true, Reason: "kernel restarted"})
		ss = mustFoldSessions(t, l)
		s, _ = ss.Session(DefaultTenant, "nb")
		assert.Equal(t, 200, s.Bound.PID)
		assert.Equal(t, 1, s.Lost)
		assert.False(t, s.Exited)
	})
	t.Run("checkpoints", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", SessionCheckpointed{Label: "one", Task: "t", Saved: []string{"x"}, Skipped: []string{"f"}, Bytes: 10})
		ss := mustFoldSessions(t, l)
		s, _ := ss.Session(DefaultTenant, "nb")
		assert.Equal(t, []string{"x"}, s.Checkpoints["one"].Saved)
		assert.Equal(t, []string{"f"}, s.Checkpoints["one"].Skipped)
	})
	t.Run("assets: an output is held while its task runs, then leased, then collected", func(t *testing.T) {
		l := newSessionLog(t)
		lease := t0.Add(24 * time.Hour)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "print(1)"})
		l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1})
		l.add(DefaultTenant, "nb", AssetAdded{ID: "a", Kind: AssetOutput, Path: "tasks/a.out"})
		ss := mustFoldSessions(t, l)
		a, ok := ss.Asset(AssetKey{DefaultTenant, "nb", "a"})
		require.True(t, ok)
		assert.True(t, a.Held(), "held while its task runs")

		l.add(DefaultTenant, "nb", TaskCompleted{ID: "a", OutputBytes: 2})
		l.add(DefaultTenant, "nb", AssetRenewed{ID: "a", Size: 2, ExpiresAt: lease})
		ss = mustFoldSessions(t, l)
		a, _ = ss.Asset(AssetKey{DefaultTenant, "nb", "a"})
		assert.False(t, a.Held())
		assert.Equal(t, lease, a.ExpiresAt)
		assert.Equal(t, int64(2), a.Size)
		tk, _ := ss.Task("a")
		assert.Equal(t, int64(2), tk.OutputBytes)
		assert.True(t, tk.OutputCollectedAt.IsZero())

		env := l.add(DefaultTenant, "nb", AssetCollected{ID: "a", Kind: AssetOutput, Path: "tasks/a.out", Size: 2, Reason: CollectLeaseExpired})
		ss = mustFoldSessions(t, l)
		_, ok = ss.Asset(AssetKey{DefaultTenant, "nb", "a"})
		assert.False(t, ok, "a collected asset leaves the projection")
		assert.Empty(t, ss.Assets(DefaultTenant, "nb"))
		tk, _ = ss.Task("a")
		assert.Equal(t, env.Time, tk.OutputCollectedAt)
	})
	t.Run("assets: files, and assets outlive their session", func(t *testing.T) {
		l := newSessionLog(t)
		lease := t0.Add(time.Hour)
		l.add(DefaultTenant, "nb", AssetAdded{ID: "f", Kind: AssetFile, Path: "data/out.csv", Size: 10, ExpiresAt: lease})
		l.add(DefaultTenant, "nb", AssetAdded{ID: "f", Kind: AssetFile, Path: "other", Size: 1})         // same id: changes nothing
		l.add(DefaultTenant, "other", AssetAdded{ID: "g", Kind: AssetFile, Path: "x", ExpiresAt: lease}) // no such session
		l.add(DefaultTenant, "nb", AssetRenewed{ID: "ghost", ExpiresAt: lease})                          // no such asset
		ss := mustFoldSessions(t, l)
		as := ss.Assets(DefaultTenant, "nb")
		require.Len(t, as, 1)
		assert.Equal(t, "data/out.csv", as[0].Path)
		assert.Equal(t, int64(10), as[0].Size)
		assert.Equal(t, lease, as[0].ExpiresAt)
		assert.Len(t, ss.Assets("", ""), 1)

		l.add(DefaultTenant, "nb", SessionRemoved{})
		l.add(DefaultTenant, "nb", AssetAdded{ID: "h", Kind: AssetFile, Path: "late", ExpiresAt: lease}) // removed: ignored
		l.add(DefaultTenant, "nb", AssetRenewed{ID: "f", Size: 12, ExpiresAt: lease.Add(time.Hour)})
		ss = mustFoldSessions(t, l)
		as = ss.Assets(DefaultTenant, "nb")
		require.Len(t, as, 1, "an asset outlives its session until it is collected")
		assert.Equal(t, lease.Add(time.Hour), as[0].ExpiresAt, "renewed after the removal")
		assert.Equal(t, int64(12), as[0].Size)

		c := ss.Clone()
		a, _ := c.Asset(AssetKey{DefaultTenant, "nb", "f"})
		a.Size = 99
		orig, _ := ss.Asset(AssetKey{DefaultTenant, "nb", "f"})
		assert.Equal(t, int64(12), orig.Size, "a clone shares no asset")
	})
	t.Run("clone shares nothing", func(t *testing.T) {
		l := newSessionLog(t)
		l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "1"})
		ss := mustFoldSessions(t, l)
		c := ss.Clone()
		s, _ := c.Session(DefaultTenant, "nb")
		s.Queue[0] = "zzz"
		orig, _ := ss.Session(DefaultTenant, "nb")
		assert.Equal(t, "a", orig.Queue[0])
	})
}

func TestSessions_BadPayload(t *testing.T) {
	l := newSessionLog(t)
	env := l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "1"})
	env.Data = []byte(`{"id": 5}`)
	ss := NewSessions()
	err := ss.Apply(env)
	assert.True(t, errors.Is(err, ErrBadPayload), "%v", err)
	assert.Equal(t, uint64(0), ss.Pos(), "a bad envelope changes nothing")
}

func TestNewEvent_SessionChecks(t *testing.T) {
	_, err := NewEvent(DefaultTenant, "nb", TaskSubmitted{})
	assert.True(t, errors.Is(err, ErrInvalidEvent), "%v", err)
	_, err = NewEvent(DefaultTenant, "nb", TaskSubmitted{ID: "a", Kind: TaskCheckpoint, Label: "../x"})
	assert.True(t, errors.Is(err, ErrInvalidEvent), "%v", err)
	_, err = NewEvent(DefaultTenant, "nb", TaskFailed{ID: "a", Reason: "because"})
	assert.True(t, errors.Is(err, ErrInvalidEvent), "%v", err)
	for _, p := range []Payload{
		AssetAdded{Kind: AssetFile, Path: "x"},
		AssetAdded{ID: "a", Kind: "dir", Path: "x"},
		AssetAdded{ID: "a", Kind: AssetFile, Path: "../x"},
		AssetAdded{ID: "a", Kind: AssetFile, Path: "/etc/passwd"},
		AssetAdded{ID: "a", Kind: AssetFile, Path: ""},
		AssetAdded{ID: "a", Kind: AssetFile, Path: "a/../b"},
		AssetRenewed{},
		AssetCollected{ID: "a", Kind: AssetFile, Path: "x", Reason: "bored"},
		AssetCollected{ID: "a", Kind: AssetFile, Path: "x/../../y", Reason: CollectLeaseExpired},
	} {
		_, err = NewEvent(DefaultTenant, "nb", p)
		assert.True(t, errors.Is(err, ErrInvalidEvent), "%#v: %v", p, err)
	}
	ev, err := NewEvent(DefaultTenant, "nb", TaskFailed{ID: "a", Reason: FailInterrupted})
	require.NoError(t, err)
	p, err := Decode(envOf(ev))
	require.NoError(t, err)
	assert.Equal(t, TaskFailed{ID: "a", Reason: FailInterrupted}, p, "decode gives a value, not a pointer")
}

func envOf(ev eventstore.Event) eventstore.Envelope {
	return eventstore.Envelope{Pos: 1, Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: ev.Data}
}

func TestNewEvent_DecodeSession(t *testing.T) {
	samples := []Payload{
		SessionCreated{Kernel: "python3", Service: "session.nb", Node: "n1"},
		SessionRemoved{Reason: "asked"},
		SessionLost{Node: "n1", Lease: 7, Reason: "node n1 lost its lease 7"},
		SessionMoved{Node: "n2"},
		SessionKernelReady{PID: 1, StartTicks: 2, BootID: "b", StateLost: true, Reason: "restarted"},
		SessionCheckpointed{Label: "l", Task: "t", Saved: []string{"x"}, Skipped: []string{"m"}, Bytes: 3},
		SessionRestored{Label: "l", Task: "t", Restored: []string{"x"}},
		TaskSubmitted{ID: "t", Kind: TaskRestore, Label: "l", Retryable: true},
		TaskStarted{ID: "t", Attempt: 1, PID: 3},
		TaskCompleted{ID: "t", ExecutionCount: 4, Outputs: []TaskOutput{{Kind: "stream", Name: "stdout", Text: "x"}}, Truncated: true},
		TaskFailed{ID: "t", Reason: FailError, EName: "E", EValue: "v", Traceback: []string{"a"}},
		TaskCancelled{ID: "t"},
		AssetAdded{ID: "t", Kind: AssetOutput, Path: "tasks/t.out", Size: 3, ExpiresAt: t0},
		AssetRenewed{ID: "t", Size: 4, ExpiresAt: t0},
		AssetCollected{ID: "t", Kind: AssetFile, Path: "a/b", Size: 5, Reason: CollectLeaseExpired},
	}
	seen := map[EventType]bool{}
	for i, p := range samples {
		seen[p.EventType()] = true
		ev, err := NewEvent(DefaultTenant, "nb", p)
		require.NoError(t, err)
		got, err := Decode(eventstore.Envelope{Pos: uint64(i + 1), Type: ev.Type, Data: ev.Data})
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
	for typ := range sessionPayloads {
		require.True(t, seen[typ], "no sample for %s", typ)
		require.True(t, typ.Known())
	}
}

// TestSessions_LostAndMoved: in a cluster, session_lost of the session's
// own node fails its running and pending tasks with reason node_lost and
// says how it was lost; a lost session takes session_moved to another
// node, empty (no kernel bound, no instance), and runs there. A loss
// naming another node than the session's changes nothing.
func TestSessions_LostAndMoved(t *testing.T) {
	l := newTestLog(t)
	l.add(DefaultTenant, "nb", SessionCreated{Kernel: "python3", Service: "session.nb", Node: "n2"})
	l.add(DefaultTenant, "session.nb", Started{Generation: 1, Attempt: 1, PID: 70})
	l.add(DefaultTenant, "nb", SessionKernelReady{PID: 70})
	l.add(DefaultTenant, "nb", TaskSubmitted{ID: "a", Code: "x = 1"})
	l.add(DefaultTenant, "nb", TaskSubmitted{ID: "b", Code: "x"})
	l.add(DefaultTenant, "nb", TaskStarted{ID: "a", Attempt: 1, PID: 70})
	l.add(DefaultTenant, "nb", SessionLost{Node: "n3", Lease: 3, Reason: "not its node"})
	ss := mustFoldSessions(t, l)
	s, _ := ss.Session(DefaultTenant, "nb")
	require.Equal(t, "n2", s.Node)
	require.Empty(t, s.LostNode, "a loss of another node is not this session's")
	assert.True(t, s.Runs("n2"))
	assert.False(t, s.Runs("n1"), "only its node runs its tasks")

	l.add(DefaultTenant, "nb", SessionLost{Node: "n2", Lease: 2, Reason: "node n2 lost its lease 2"}) // 8
	ss = mustFoldSessions(t, l)
	s, _ = ss.Session(DefaultTenant, "nb")
	require.Equal(t, "n2", s.LostNode)
	assert.Equal(t, uint64(8), s.LostPos)
	assert.True(t, s.Live(), "a lost session is still there, to restart or remove")
	assert.False(t, s.Runs("n2"), "nothing runs its tasks")
	assert.Empty(t, s.Queue)
	assert.Empty(t, s.Running)
	assert.Equal(t, 2, s.Done)
	for _, id := range []string{"a", "b"} {
		tk, _ := ss.Task(id)
		assert.Equal(t, TaskStateFailed, tk.State, id)
		assert.Equal(t, FailNodeLost, tk.Reason, id)
		assert.Equal(t, "node n2 died", tk.Detail, id)
	}
	assert.Regexp(t, `^lost: node n2 died at \d{4}-\d\d-\d\dT[0-9:]+Z; restart it elsewhere, empty, with `+"`solo session restart nb`$", s.LostText())

	l.add(DefaultTenant, "nb", TaskSubmitted{ID: "c", Code: "x"}) // refused by the manager; folded all the same
	l.add(DefaultTenant, "nb", SessionMoved{Node: "n1"})
	ss = mustFoldSessions(t, l)
	s, _ = ss.Session(DefaultTenant, "nb")
	assert.Equal(t, "n1", s.Node)
	assert.Empty(t, s.LostNode)
	assert.Empty(t, s.LostText())
	assert.True(t, s.Runs("n1"))
	assert.Nil(t, s.Bound, "empty: no kernel of the old node")
	assert.Nil(t, s.Instance)

	l.add(DefaultTenant, "nb", SessionMoved{Node: "n3"})
	ss = mustFoldSessions(t, l)
	s, _ = ss.Session(DefaultTenant, "nb")
	assert.Equal(t, "n1", s.Node, "a session that is not lost does not move")
}
