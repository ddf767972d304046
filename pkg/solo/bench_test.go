package solo_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// procStatus reads a "Name: value kB" field of /proc/self/status.
func procStatus(tb testing.TB, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(tb, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			require.NoError(tb, err)
			return n
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRuntime_1000Services deploys 1,000 `sleep` services from 16
// concurrent callers and waits until every one has started, then measures
// the supervising process: marginal memory per service, OS threads, and
// CPU used while the 1,000 services idle for 10 s.
//
// Goals (issue 3): all running within 5 s; at most 50 KiB per service;
// under 1% of one core idle.
func BenchmarkRuntime_1000Services(b *testing.B) {
	const n, callers = 1000, 16
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		pruneCgroups(b, dir)
		rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
		require.NoError(b, err)
		sub := rt.Events(ctx, rt.Store().Head()+1)

		runtime.GC()
		rssBefore := procStatus(b, "VmRSS")
		threadsBefore := procStatus(b, "Threads")
		var msBefore runtime.MemStats
		runtime.ReadMemStats(&msBefore)

		start := time.Now()
		var wg sync.WaitGroup
		for c := 0; c < callers; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := c; j < n; j += callers {
					if _, err := rt.Deploy(ctx, solo.Spec{Name: fmt.Sprintf("svc-%d", j), Command: []string{"sleep", "3600"}}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		started := 0
		for env := range sub.C() {
			if env.Type == string(state.TypeServiceStarted) {
				if started++; started == n {
					break
				}
			}
		}
		elapsed := time.Since(start)
		wg.Wait()

		runtime.GC()
		var msAfter runtime.MemStats
		runtime.ReadMemStats(&msAfter)
		rssAfter := procStatus(b, "VmRSS")
		threadsAfter := procStatus(b, "Threads")

		cpu0, wall0 := cpuTime(), time.Now()
		time.Sleep(10 * time.Second) // the measurement window itself
		idle := float64(cpuTime()-cpu0) / float64(time.Since(wall0))

		b.ReportMetric(elapsed.Seconds(), "s-to-all-running")
		b.ReportMetric(float64(rssAfter-rssBefore)/n, "KiB-rss/service")
		b.ReportMetric(float64(msAfter.HeapInuse-msBefore.HeapInuse)/1024/n, "KiB-heap/service")
		b.ReportMetric(float64(threadsAfter), "threads")
		b.ReportMetric(float64(threadsAfter-threadsBefore), "threads-added")
		b.ReportMetric(idle*100, "idle-%core")

		stop := time.Now()
		res, err := rt.Shutdown(ctx, "benchmark", 10*time.Second)
		require.NoError(b, err)
		require.Equal(b, n, res.Stopped)
		b.ReportMetric(time.Since(stop).Seconds(), "s-to-stop-all")
	}
}
