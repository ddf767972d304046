// Package parallel spreads independent calls over a few goroutines: the
// reads of /proc and of cgroup files that a cold start makes for each of
// thousands of services, which wait on the kernel more than on a core.
package parallel

import (
	"sync"
	"sync/atomic"
)

// Each calls f(i) for every i in [0, n), on up to workers goroutines at
// once, and returns when every call has returned. Calls may run in any
// order; f must be safe for concurrent use (writing its own index of a
// slice is).
func Each(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(workers, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}
