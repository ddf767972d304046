package parallel

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestEach: every index is called exactly once, never more at once than
// the workers asked for, and a zero or negative count calls nothing.
func TestEach(t *testing.T) {
	for _, c := range []struct{ n, workers int }{{0, 4}, {1, 4}, {1000, 3}, {5, 0}, {7, 100}} {
		calls := make([]atomic.Int32, c.n)
		var running, most atomic.Int32
		Each(c.n, c.workers, func(i int) {
			now := running.Add(1)
			for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
			}
			calls[i].Add(1)
			running.Add(-1)
		})
		for i := range calls {
			assert.Equal(t, int32(1), calls[i].Load(), "n=%d index %d", c.n, i)
		}
		assert.LessOrEqual(t, int(most.Load()), max(c.workers, 1), "n=%d", c.n)
	}
	Each(-1, 2, func(int) { t.Fatal("called for a negative count") })
}
