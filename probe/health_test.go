package probe_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/probe"
)

type change struct {
	healthy bool
	reason  string
}

type recorder struct {
	mu      sync.Mutex
	changes []change
}

func (r *recorder) report(healthy bool, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := change{healthy: healthy}
	if reason != nil {
		c.reason = reason.Error()
	}
	r.changes = append(r.changes, c)
}

func (r *recorder) got() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.changes...)
}

// TestChecker_Watch: tries every interval; only changes are reported:
// healthy once, failures below Retries reported not at all, and the
// Retries-th failure in a row once, after which no try runs.
func TestChecker_Watch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// pass, pass, fail, pass, fail, fail, fail, (no more tries)
		script := []bool{true, true, false, true, false, false, false}
		var tries atomic.Int32
		p := func(ctx context.Context) error {
			i := int(tries.Add(1)) - 1
			if i >= len(script) || script[i] {
				return nil
			}
			return errors.New("boom")
		}
		var rec recorder
		k := probe.NewChecker(0)
		stop := k.Watch(p, probe.Check{Interval: time.Second, Timeout: time.Second, Retries: 3}, rec.report)
		defer stop()
		time.Sleep(time.Second / 2)
		synctest.Wait()
		assert.Zero(t, tries.Load(), "the first try comes after one interval")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		assert.Equal(t, int32(len(script)), tries.Load(), "no try after the failure")
		assert.Equal(t, []change{{healthy: true}, {healthy: false, reason: "boom"}}, rec.got())
		assert.Equal(t, uint64(4), k.Failures())
	})
}

// TestChecker_StopCutsATryShort: stop cancels the try in flight and returns
// once it ended; nothing is reported after it.
func TestChecker_StopCutsATryShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inTry := make(chan struct{})
		p := func(ctx context.Context) error {
			close(inTry)
			<-ctx.Done()
			return ctx.Err()
		}
		var rec recorder
		stop := probe.NewChecker(0).Watch(p, probe.Check{Interval: time.Second, Timeout: time.Hour, Retries: 1}, rec.report)
		<-inTry
		stop()
		stop() // idempotent
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Empty(t, rec.got())
	})
}

// TestChecker_Concurrency: at most the checker's concurrency tries run at
// once, however many watches are due together.
func TestChecker_Concurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const watches, limit = 50, 4
		var running, most atomic.Int32
		p := func(ctx context.Context) error {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(10 * time.Millisecond)
			running.Add(-1)
			return nil
		}
		k := probe.NewChecker(limit)
		var recs [watches]recorder
		for i := range watches {
			defer k.Watch(p, probe.Check{Interval: time.Second, Timeout: time.Second, Retries: 1}, recs[i].report)()
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, int32(limit), most.Load())
		for i := range recs {
			assert.Equal(t, []change{{healthy: true}}, recs[i].got())
		}
	})
}
