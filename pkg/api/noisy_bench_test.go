package api_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/wire"
)

// BenchmarkNoisyNeighbour: tenant a floods the API from 32 clients (each
// its own token: status and list requests as fast as they come back,
// admitted or shed at 429), while tenant b asks for its service's status
// one request at a time. b's latencies are taken in windows of 2 s,
// alternately with the flood stopped (idle) and running (noisy), so that
// a change of the machine's load hits both alike. The goal (issue 16): b's p99 under
// the flood within 2x of its idle p99. Tenants are held to the daemon's
// default rate (100 requests/s, burst 200), except b, whose policy lets it
// ask as fast as its one client can (a sequential loop is no person's
// pace); the per-token rate is off, so that a's 32 tokens meet the
// tenant's bucket together.
//
//	go test -run '^$' -bench BenchmarkNoisyNeighbour -benchtime 1x ./pkg/api
func BenchmarkNoisyNeighbour(b *testing.B) {
	const (
		flooders = 32
		windows  = 4               // of each kind, alternating
		window   = 2 * time.Second // b asks in a loop for this long
	)
	ctx := context.Background()
	f := apitest.MustServe(b, apitest.Options{API: api.Options{
		Authorize: tenantTokens,
		Rates:     api.RateLimits{Tenant: 100, TenantBurst: 200, Hold: time.Second},
	}})
	admin := f.Client(b, client.Options{})
	fast, burst := 1e6, 1_000_000
	if _, err := admin.SetTenant(ctx, "b", wire.TenantSetRequest{Rate: &fast, Burst: &burst}); err != nil {
		b.Fatal(err)
	}
	for _, t := range []string{"a", "b"} {
		if _, err := admin.Deploy(ctx, sleeper(t, "web")); err != nil {
			b.Fatal(err)
		}
	}
	victim := f.Client(b, client.Options{Token: "b"})
	noisy := make([]*client.Client, flooders)
	for i := range noisy {
		noisy[i] = f.Client(b, client.Options{Token: fmt.Sprintf("a.%d", i)})
	}
	status := func() time.Duration {
		start := time.Now()
		if _, err := victim.Status(ctx, "b", "web"); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 50 { // warm the connection and the limiters
		status()
	}

	var admitted, shed atomic.Int64
	flood := func(stop <-chan struct{}, wg *sync.WaitGroup) {
		for i, c := range noisy {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					if (n+i)%4 == 0 {
						_, err = c.List(ctx, "a")
					} else {
						_, err = c.Status(ctx, "a", "web")
					}
					switch {
					case err == nil:
						admitted.Add(1)
					case client.IsLimited(err):
						shed.Add(1)
					default:
						b.Error(err)
						return
					}
				}
			}()
		}
	}

	var idle, loud []time.Duration
	b.ResetTimer()
	for range b.N {
		for range windows {
			for end := time.Now().Add(window); time.Now().Before(end); {
				idle = append(idle, status())
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			flood(stop, &wg)
			for end := time.Now().Add(window); time.Now().Before(end); {
				loud = append(loud, status())
			}
			close(stop)
			wg.Wait()
		}
	}
	b.StopTimer()
	p99 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[int(0.99*float64(len(d)-1))].Microseconds())
	}
	pi, pn := p99(idle), p99(loud)
	b.ReportMetric(pi, "idle-p99-µs")
	b.ReportMetric(pn, "noisy-p99-µs")
	b.ReportMetric(pn/pi, "p99-ratio")
	b.ReportMetric(float64(admitted.Load()), "a-admitted")
	b.ReportMetric(float64(shed.Load()), "a-shed")
}
