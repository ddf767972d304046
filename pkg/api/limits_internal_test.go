package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// TestLimiters_EvictIdle: the limiters kept stay bounded by those recently
// active: a full bucket (idle long enough to refill) is dropped, one still
// drawn down is kept, whatever the number of keys seen.
func TestLimiters_EvictIdle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ls := limiters{max: 4}
	for i := range 1000 {
		now = now.Add(time.Second) // every earlier bucket (1/s, burst 1) is full again
		l := ls.get(fmt.Sprintf("tok-%d", i), 1, 1, now)
		require.True(t, l.AllowN(now, 1))
		require.LessOrEqual(t, ls.len(), 4, "after %d keys", i+1)
	}

	// Drawn-down buckets are kept, even over max: dropping one would hand
	// its key a fresh burst.
	for i := range 6 {
		require.True(t, ls.get(fmt.Sprintf("busy-%d", i), 1, 1, now).AllowN(now, 1))
	}
	require.Equal(t, 7, ls.len(), "the six busy ones and the last tok, all drawn down now, stay")
	for i := range 6 {
		require.False(t, ls.get(fmt.Sprintf("busy-%d", i), 1, 1, now).AllowN(now, 1), "busy-%d kept its state", i)
	}

	// A changed rate or burst applies to a kept limiter.
	l := ls.get("busy-0", 10, 5, now)
	require.Equal(t, rate.Limit(10), l.Limit())
	require.Equal(t, 5, l.Burst())
}
