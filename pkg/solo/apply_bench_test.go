package solo_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// BenchmarkRuntime_Apply1000 applies 1,000 `sleep` services in one
// [solo.Runtime.Apply] and waits until every one has started, then measures
// the supervising process as BenchmarkRuntime_1000Services does.
//
// Goals (issue 8): all running within 1 s; at most 15 KiB RSS per service
// with a thread count that does not grow with N; under 0.05% of one core
// idle; all stopped within 0.5 s. SOLO_BENCH_PROFILE=DIR writes heap,
// goroutine and threadcreate profiles there; SOLO_BENCH_IDLE sets the idle
// window (default 10s).
func BenchmarkRuntime_Apply1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	idleFor := 10 * time.Second
	if v := os.Getenv("SOLO_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err)
		idleFor = d
	}
	req := solo.ApplyRequest{Services: make([]solo.Spec, n)}
	for i := range req.Services {
		req.Services[i] = solo.Spec{Name: fmt.Sprintf("svc-%d", i), Command: []string{"sleep", "3600"}}
	}
	for i := 0; i < b.N; i++ {
		// As the daemon runs it (ReleaseMemoryAfterApply); SOLO_BENCH_KEEP=1
		// measures a library host that leaves its memory alone.
		dir := b.TempDir()
		pruneCgroups(b, dir)
		rt, err := solo.Open(ctx, solo.Options{DataDir: dir, ReleaseMemoryAfterApply: os.Getenv("SOLO_BENCH_KEEP") == ""})
		require.NoError(b, err)
		sub := rt.Events(ctx, rt.Store().Head()+1)

		runtime.GC()
		rssBefore := procStatus(b, "VmRSS")
		anonBefore := procStatus(b, "RssAnon")
		threadsBefore := procStatus(b, "Threads")
		var msBefore runtime.MemStats
		runtime.ReadMemStats(&msBefore)

		cpuStart := cpuTime()
		start := time.Now()
		res, err := rt.Apply(ctx, req)
		require.NoError(b, err)
		require.Equal(b, n, res.Count(solo.ApplyCreate))
		handed := time.Since(start)
		started := 0
		for env := range sub.C() {
			if env.Type == string(state.TypeServiceStarted) {
				if started++; started == n {
					break
				}
			}
		}
		elapsed := time.Since(start)
		cpuStartAll := cpuTime() - cpuStart

		runtime.GC()
		var msAfter runtime.MemStats
		runtime.ReadMemStats(&msAfter)
		rssAfter := procStatus(b, "VmRSS")
		anonAfter := procStatus(b, "RssAnon")
		threadsAfter := procStatus(b, "Threads")

		cpu0, wall0 := cpuTime(), time.Now()
		time.Sleep(idleFor) // the measurement window itself
		idle := float64(cpuTime()-cpu0) / float64(time.Since(wall0))
		rssIdle := procStatus(b, "VmRSS")

		if dir := os.Getenv("SOLO_BENCH_PROFILE"); dir != "" {
			for _, p := range []string{"heap", "goroutine", "threadcreate"} {
				f, err := os.Create(dir + "/" + p + ".prof")
				require.NoError(b, err)
				require.NoError(b, pprof.Lookup(p).WriteTo(f, 0))
				f.Close()
			}
		}

		b.ReportMetric(handed.Seconds(), "s-apply-returned")
		b.ReportMetric(elapsed.Seconds(), "s-to-all-running")
		b.ReportMetric(cpuStartAll.Seconds(), "cpu-s-to-all-running")
		b.ReportMetric(float64(rssAfter-rssBefore)/n, "KiB-rss/service")
		b.ReportMetric(float64(rssIdle-rssBefore)/n, "KiB-rss-idle/service")
		b.ReportMetric(float64(anonAfter-anonBefore)/n, "KiB-anon/service")
		b.ReportMetric(float64(msAfter.HeapInuse-msBefore.HeapInuse)/1024/n, "KiB-heap/service")
		b.ReportMetric(float64(msAfter.StackInuse-msBefore.StackInuse)/1024/n, "KiB-stack/service")
		b.ReportMetric(float64(threadsAfter), "threads")
		b.ReportMetric(float64(threadsAfter-threadsBefore), "threads-added")
		b.ReportMetric(idle*100, "idle-%core")

		stop := time.Now()
		sres, err := rt.Shutdown(ctx, "benchmark", 10*time.Second)
		require.NoError(b, err)
		require.Equal(b, n, sres.Stopped)
		b.ReportMetric(time.Since(stop).Seconds(), "s-to-stop-all")
	}
}
