package probe_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/probe"
)

// TestNotify_Watchdog: a WATCHDOG=1 sent before the watchdog is armed (the
// service not yet ready) counts, as systemd counts it: arming reports
// healthy at once; WATCHDOG=trigger fails it; a silent service fails it
// when its time passes; stop ends it with nothing reported after.
func TestNotify_Watchdog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	n, err := probe.Listen(path, nil, nil)
	require.NoError(t, err)
	defer n.Close()
	c, err := net.Dial("unixgram", path)
	require.NoError(t, err)
	defer c.Close()

	// One datagram, read in order: once READY=1 is seen, so was WATCHDOG=1.
	_, err = c.Write([]byte("WATCHDOG=1\nREADY=1"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n.Ready(ctx))

	changes := make(chan change, 4)
	report := func(healthy bool, reason error) {
		ch := change{healthy: healthy}
		if reason != nil {
			ch.reason = reason.Error()
		}
		changes <- ch
	}
	stop := n.Watchdog(time.Hour, report)
	assert.Equal(t, change{healthy: true}, <-changes, "the WATCHDOG=1 before arming counts")
	_, err = c.Write([]byte("WATCHDOG=1"))
	require.NoError(t, err)
	_, err = c.Write([]byte("WATCHDOG=trigger"))
	require.NoError(t, err)
	got := <-changes
	assert.False(t, got.healthy, "no second healthy: one report per change")
	assert.Contains(t, got.reason, "WATCHDOG=trigger")
	stop()
	stop()

	// A silent service: its time passes.
	stop = n.Watchdog(20*time.Millisecond, report)
	defer stop()
	got = <-changes
	assert.False(t, got.healthy)
	assert.Contains(t, got.reason, "no WATCHDOG=1 within 20ms")
	assert.Equal(t, "WATCHDOG_USEC=1500000", probe.WatchdogEnv(1500*time.Millisecond))
}
