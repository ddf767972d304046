package session_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
)

// readySession creates session nb and waits until its kernel runs a task.
func readySession(b *testing.B) *session.Manager {
	rt := mustOpenRuntime(b)
	m := rt.Sessions()
	_, err := m.Create(context.Background(), "", "nb", "", "")
	require.NoError(b, err)
	require.Equal(b, state.TaskStateCompleted, run(b, m, "nb", "1").State)
	return m
}

// BenchmarkTaskRoundTrip measures submit-to-end of `1+1`, one at a time:
// task_submitted fsynced, task_started fsynced, the kernel's execution,
// task_completed fsynced. It reports the p50 and p99.
func BenchmarkTaskRoundTrip(b *testing.B) {
	m := readySession(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		t, err := m.Submit(ctx, "", "nb", "1+1", session.SubmitOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if t, err = m.Wait(ctx, t.ID); err != nil || t.State != state.TaskStateCompleted {
			b.Fatal(err, t.State)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkQueued1000 queues 1,000 small tasks at once, then waits for the
// last: the queue's throughput.
func BenchmarkQueued1000(b *testing.B) {
	m := readySession(b)
	ctx := context.Background()
	const n = 1000
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var last string
		for i := range n {
			t, err := m.Submit(ctx, "", "nb", "y = 1", session.SubmitOptions{})
			if err != nil {
				b.Fatal(err, i)
			}
			last = t.ID
		}
		queued := time.Since(start)
		t, err := m.Wait(ctx, last)
		if err != nil || t.State != state.TaskStateCompleted {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.ReportMetric(float64(n)/took.Seconds(), "tasks/s")
		b.ReportMetric(float64(queued.Milliseconds()), "queue-ms")
	}
}
