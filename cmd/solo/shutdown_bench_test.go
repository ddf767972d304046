package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkDaemon_Shutdown500 measures, through the real binary, the time
// from SIGTERM to exit with 500 services that honour SIGTERM and a 5 s
// grace. Goal: under 2 s.
func BenchmarkDaemon_Shutdown500(b *testing.B) {
	const n = 500
	for i := 0; i < b.N; i++ {
		dir := dataDir(b)
		d := startDaemon(b, dir, "--grace", "5s")
		// Deploy through the API, 500 calls; then wait until all run.
		for j := 0; j < n; j++ {
			mustCLI(b, dir, "deploy", fmt.Sprintf("s%d", j), "--", "sleep", "3600")
		}
		require.Eventually(b, func() bool {
			out := mustCLI(b, dir, "ls")
			return countLines(out, " running ") == n
		}, 120*time.Second, 100*time.Millisecond)

		start := time.Now()
		d.signal(syscall.SIGTERM)
		code := d.wait(60 * time.Second)
		took := time.Since(start)
		require.Equal(b, 0, code, "%s", d.logs)
		b.ReportMetric(took.Seconds(), "s-signal-to-exit")
	}
}

func countLines(s, sub string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}
