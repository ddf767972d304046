package api_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
)

// BenchmarkAPI_Status measures one status round trip over the unix socket:
// HTTP, routing, authorisation, the runtime's read and JSON both ways.
func BenchmarkAPI_Status(b *testing.B) {
	ctx := context.Background()
	f := apitest.MustServe(b, apitest.Options{})
	c := f.Client(b, client.Options{})
	if _, err := c.Deploy(ctx, sleeper("", "web")); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Status(ctx, "default", "web"); err != nil { // warm the connection
		b.Fatal(err)
	}
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := c.Status(ctx, "default", "web"); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, took)
	if err := c.Kill(ctx, "default", "web"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAPI_DeployConcurrent measures deploys of distinct services by 8
// concurrent clients: each is an fsynced append (group-committed with the
// others') plus a process start.
func BenchmarkAPI_DeployConcurrent(b *testing.B) {
	ctx := context.Background()
	f := apitest.MustServe(b, apitest.Options{})
	const workers = 8
	clients := make([]*client.Client, workers)
	for i := range clients {
		clients[i] = f.Client(b, client.Options{})
	}
	var next atomic.Int64
	names := make([][]string, workers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				name := fmt.Sprintf("bench-%d", i)
				if _, err := clients[w].Deploy(ctx, sleeper("", name)); err != nil {
					b.Error(err)
					return
				}
				names[w] = append(names[w], name)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deploys/s")

	for w := range workers {
		wg.Go(func() {
			for _, name := range names[w] {
				if err := clients[w].Kill(ctx, "default", name); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[int(q*float64(len(took)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
