package solo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// BenchmarkApply_Chain100 applies a file of 100 `sleep` services, each
// after the one before and ready by an exec probe, and measures the time
// until the last is ready: each start waits for the one before to be
// ready, so this is the chain's latency, start and probe after start and
// probe.
func BenchmarkApply_Chain100(b *testing.B) {
	const n = 100
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		pruneCgroups(b, dir)
		rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
		require.NoError(b, err)
		sub := rt.Events(ctx, rt.Store().Head()+1)
		last := fmt.Sprintf("s%03d", n-1)

		start := time.Now()
		_, err = rt.Apply(ctx, chainFile(n, true))
		require.NoError(b, err)
		for env := range sub.C() {
			if env.Type == string(state.TypeServiceReady) && env.Subject == last {
				break
			}
		}
		elapsed := time.Since(start)
		b.ReportMetric(elapsed.Seconds(), "s-to-all-ready")
		b.ReportMetric(float64(elapsed.Milliseconds())/n, "ms/link")

		_, err = rt.Shutdown(ctx, "benchmark", 10*time.Second)
		require.NoError(b, err)
	}
}
