package witness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ms = int64(time.Millisecond)

// reports returns the reports of one instance every 100 ms over [from, to].
func reports(svc, node string, pid int, fence int64, from, to int64) []Report {
	var rs []Report
	seq := uint64(0)
	for at := from; at <= to; at += 100 * ms {
		seq++
		rs = append(rs, Report{Service: svc, Node: node, PID: pid, Fence: fence, Seq: seq, At: at})
	}
	return rs
}

func record(t *testing.T, l *Ledger, rss ...[]Report) {
	t.Helper()
	for _, rs := range rss {
		for _, r := range rs {
			require.NoError(t, l.Record(r))
		}
	}
}

func TestLedger_OverlapRule(t *testing.T) {
	for _, tc := range []struct {
		name    string
		old     []Report
		new     []Report
		maxLive int
	}{
		{"new starts after the old's last report", reports("s", "n1", 10, 1, 0, 1000*ms), reports("s", "n2", 20, 2, 1050*ms, 2000*ms), 1},
		{"new starts a full window later", reports("s", "n1", 10, 1, 0, 1000*ms), reports("s", "n2", 20, 2, 3000*ms, 4000*ms), 1},
		{"new starts 1 ns before the old's last report", reports("s", "n1", 10, 1, 0, 1000*ms), reports("s", "n2", 20, 2, 1000*ms-1, 2000*ms), 2},
		{"new starts at the old's last report", reports("s", "n1", 10, 1, 0, 1000*ms), reports("s", "n2", 20, 2, 1000*ms, 2000*ms), 1},
		{"both start at the same instant", reports("s", "n1", 10, 1, 0, 0), reports("s", "n2", 20, 1, 0, 0), 2},
		{"old goes on reporting after the new started", reports("s", "n1", 10, 1, 0, 3000*ms), reports("s", "n2", 20, 2, 1000*ms, 2000*ms), 2},
		{"a single report inside the other's life", reports("s", "n1", 10, 1, 0, 1000*ms), reports("s", "n1", 11, 1, 500*ms, 500*ms), 2},
		{"same pid on another node is another instance", reports("s", "n1", 10, 1, 0, 1000*ms), reports("s", "n2", 10, 2, 500*ms, 1500*ms), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(time.Second)
			// Arrival order must not matter: new first, then old.
			record(t, l, tc.new, tc.old)
			ss := l.State(10_000 * ms).Services["s"]
			assert.Equal(t, tc.maxLive, ss.MaxLive)
			assert.Equal(t, tc.maxLive > 1, len(ss.Overlaps) == 1, "overlaps: %+v", ss.Overlaps)
			require.Len(t, ss.Instances, 2)
		})
	}
}

func TestLedger_MaxLiveCountsAtOneInstant(t *testing.T) {
	l := NewLedger(time.Second)
	// a overlaps b, b overlaps c, a and c never meet: two at once, not three.
	record(t, l,
		reports("s", "n1", 1, 1, 0, 1000*ms),
		reports("s", "n2", 2, 1, 900*ms, 2000*ms),
		reports("s", "n3", 3, 1, 1900*ms, 3000*ms))
	ss := l.State(3000 * ms).Services["s"]
	assert.Equal(t, 2, ss.MaxLive)
	assert.Len(t, ss.Overlaps, 2)

	// A fourth inside all of b's life and a's end: three at once.
	record(t, l, reports("s", "n4", 4, 1, 950*ms, 960*ms))
	assert.Equal(t, 3, l.State(3000 * ms).Services["s"].MaxLive)
}

func TestLedger_Fences(t *testing.T) {
	t.Run("increasing, equal in place", func(t *testing.T) {
		l := NewLedger(time.Second)
		record(t, l,
			reports("s", "n1", 1, 5, 0, 1000*ms),
			reports("s", "n1", 2, 5, 1100*ms, 2000*ms), // restarted in place
			reports("s", "n2", 3, 9, 2100*ms, 3000*ms))
		assert.Empty(t, l.State(3000 * ms).Services["s"].FenceRegressions)
	})
	t.Run("a lower fence after a higher one", func(t *testing.T) {
		l := NewLedger(time.Second)
		record(t, l,
			reports("s", "n2", 3, 9, 1000*ms, 2000*ms),
			reports("s", "n1", 1, 5, 0, 1500*ms))
		ss := l.State(3000 * ms).Services["s"]
		require.Len(t, ss.FenceRegressions, 1)
		assert.Equal(t, FenceRegression{Lower: 5, Higher: 9, LowerLast: 1500 * ms, HigherFirst: 1000 * ms}, ss.FenceRegressions[0])
	})
}

func TestLedger_Live(t *testing.T) {
	l := NewLedger(time.Second)
	record(t, l,
		reports("s", "n1", 1, 1, 0, 1000*ms),
		reports("s", "n2", 2, 2, 1100*ms, 2000*ms))
	live := func(now int64) []int {
		var pids []int
		for _, i := range l.State(now).Services["s"].Live {
			pids = append(pids, i.PID)
		}
		return pids
	}
	assert.Equal(t, []int{1, 2}, live(2000*ms), "both reported within the window")
	assert.Equal(t, []int{2}, live(2001*ms), "the first missed its window")
	assert.Empty(t, live(3001*ms))

	n, err := l.MarkDead(Dead{Node: "n2"}, 2050*ms)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Empty(t, live(2050*ms), "declared dead")

	// A report sent after the declared death: the test was wrong, and the
	// instance is live again.
	require.NoError(t, l.Record(Report{Service: "s", Node: "n2", PID: 2, Fence: 2, Seq: 11, At: 2100 * ms}))
	ss := l.State(2100 * ms).Services["s"]
	assert.Equal(t, 1, ss.AfterDeath)
	assert.Equal(t, []int{2}, live(2100*ms))

	// A datagram sent before the death but received after it is not
	// after death.
	require.NoError(t, l.Record(Report{Service: "s", Node: "n2", PID: 2, Fence: 2, Seq: 10, At: 2000 * ms}))
	assert.Equal(t, 1, l.State(2100 * ms).Services["s"].AfterDeath)
}

func TestLedger_Missing(t *testing.T) {
	l := NewLedger(time.Second)
	rs := reports("s", "n1", 1, 1, 0, 900*ms) // seq 1..10
	record(t, l, rs[:3], rs[5:])              // 4 and 5 lost
	assert.Equal(t, uint64(2), l.State(900 * ms).Services["s"].Missing)
}

func TestLedger_BadInput(t *testing.T) {
	l := NewLedger(0)
	assert.ErrorIs(t, l.Record(Report{PID: 1}), ErrBadReport)
	assert.ErrorIs(t, l.Record(Report{Service: "s"}), ErrBadReport)
	_, err := l.MarkDead(Dead{Service: "s"}, 0)
	assert.ErrorIs(t, err, ErrBadDead)
	assert.Empty(t, l.State(0).Services)
}

func TestLedger_VersionIgnoresRoutineReports(t *testing.T) {
	l := NewLedger(time.Second)
	record(t, l, reports("s", "n1", 1, 1, 0, 0))
	v, ch := l.Changed()
	record(t, l, reports("s", "n1", 1, 1, 100*ms, 500*ms))
	v2, _ := l.Changed()
	assert.Equal(t, v, v2, "a live instance's routine reports are no change")
	select {
	case <-ch:
		t.Fatal("changed without a change")
	default:
	}
	record(t, l, reports("s", "n2", 2, 2, 600*ms, 600*ms))
	<-ch // a new instance is a change
	v3, ch := l.Changed()
	record(t, l, reports("s", "n1", 1, 1, 700*ms, 700*ms))
	<-ch // the superseded instance still reporting is one too
	v4, _ := l.Changed()
	assert.Greater(t, v4, v3)
}

func TestState_Violations(t *testing.T) {
	l := NewLedger(time.Second)
	record(t, l,
		reports("default/a", "n1", 1, 5, 0, 1000*ms),
		reports("default/a", "n2", 2, 9, 2000*ms, 3000*ms), // moved, fence up: fine
		reports("default/b", "n1", 3, 7, 0, 2500*ms),
		reports("default/b", "n2", 4, 8, 1000*ms, 3000*ms)) // twice at once
	st := l.State(3000 * ms)
	assert.Equal(t, []string{
		"default/b: n1 pid 3 (fence 7) and n2 pid 4 (fence 8) both alive for 1.5s",
		"default/b: fence 7 reported 1.5s after fence 8 first was",
	}, st.Violations())
	assert.NoError(t, l.State(3000*ms).RunningOnce("default/a"))
	assert.EqualError(t, st.RunningOnce("default/a", "default/b", "default/c"),
		"not running exactly once: default/b: 2 live [n1 pid 3 n2 pid 4]; default/c: 0 live []")

	_, err := l.MarkDead(Dead{Node: "n1"}, 3000*ms)
	require.NoError(t, err)
	st = l.State(3000 * ms)
	assert.NoError(t, st.RunningOnce("default/a", "default/b"))
	assert.Len(t, st.Violations(), 2, "the past is not forgotten")

	// A report from the dead.
	require.NoError(t, l.Record(Report{Service: "default/b", Node: "n1", PID: 3, Fence: 7, Seq: 99, At: 3100 * ms}))
	assert.Equal(t, []string{
		"default/b: n1 pid 3 (fence 7) and n2 pid 4 (fence 8) both alive for 2s",
		"default/b: fence 7 reported 2.1s after fence 8 first was",
		"default/b: 1 reports from instances declared dead",
	}, l.State(3100*ms).Violations())

	assert.Empty(t, NewLedger(0).State(0).Violations())
}
