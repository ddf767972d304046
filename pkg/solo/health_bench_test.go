package solo_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// probeServerEnv makes TestProbeServer a tiny HTTP server that answers 200
// to any GET, for the probes of BenchmarkRuntime_1000ServicesProbed. It
// runs in a child process so that the benchmark's CPU figure is the
// daemon's alone, not the answering side's.
const probeServerEnv = "SOLO_TEST_PROBE_SERVER"

// TestProbeServer is not a test: run with probeServerEnv set, it prints its
// address and serves until killed.
func TestProbeServer(t *testing.T) {
	if os.Getenv(probeServerEnv) == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fmt.Println(l.Addr().String())
	http.Serve(l, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}

// startProbeServer starts TestProbeServer in a child process and returns
// its address.
func startProbeServer(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProbeServer$")
	cmd.Env = append(os.Environ(), probeServerEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(b, err)
	return strings.TrimSpace(addr)
}

// BenchmarkRuntime_1000ServicesProbed deploys 1,000 `sleep` services, each
// with an HTTP readiness probe and an HTTP health probe every 10 s (the
// default) on a tiny HTTP server shared by all, in a child process (one
// path per service), and measures the daemon: the time until every one is
// ready, marginal memory per service, OS threads, and CPU while the 1,000,
// all healthy, are probed for 20 s (two rounds of health probes).
//
// Goal (issue 14): under 0.5% of one core while probing every 10 s.
func BenchmarkRuntime_1000ServicesProbed(b *testing.B) {
	const n, callers = 1000, 16
	ctx := context.Background()
	addr := startProbeServer(b)
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
					url := fmt.Sprintf("http://%s/svc-%d", addr, j)
					spec := solo.Spec{
						Name: fmt.Sprintf("svc-%d", j), Command: []string{"sleep", "3600"},
						Ready:  &state.ReadySpec{HTTP: url},
						Health: &state.HealthSpec{HTTP: url},
					}
					if _, err := rt.Deploy(ctx, spec); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		// The first round of health probes records each service healthy
		// (one service_health each, about 10 s after it became ready);
		// the window measures the probing that follows, which records
		// nothing.
		var elapsed time.Duration
		ready, healthy := 0, 0
		for env := range sub.C() {
			switch env.Type {
			case string(state.TypeServiceReady):
				if ready++; ready == n {
					elapsed = time.Since(start)
				}
			case string(state.TypeServiceHealth):
				healthy++
			}
			if ready == n && healthy == n {
				break
			}
		}
		wg.Wait()

		runtime.GC()
		var msAfter runtime.MemStats
		runtime.ReadMemStats(&msAfter)
		rssAfter := procStatus(b, "VmRSS")
		threadsAfter := procStatus(b, "Threads")

		cpu0, wall0 := cpuTime(), time.Now()
		time.Sleep(20 * time.Second) // the measurement window itself: two rounds of probes
		idle := float64(cpuTime()-cpu0) / float64(time.Since(wall0))
		require.Zero(b, rt.ProbeFailures(), "every probe passed")

		b.ReportMetric(elapsed.Seconds(), "s-to-all-ready")
		b.ReportMetric(float64(rssAfter-rssBefore)/n, "KiB-rss/service")
		b.ReportMetric(float64(msAfter.HeapInuse-msBefore.HeapInuse)/1024/n, "KiB-heap/service")
		b.ReportMetric(float64(threadsAfter), "threads")
		b.ReportMetric(float64(threadsAfter-threadsBefore), "threads-added")
		b.ReportMetric(idle*100, "probing-%core")

		res, err := rt.Shutdown(ctx, "benchmark", 10*time.Second)
		require.NoError(b, err)
		require.Equal(b, n, res.Stopped)
	}
}
