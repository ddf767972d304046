package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
)

// TestDaemon_Lifecycle walks the contract end to end through the real
// binary: deploy, ls, status, logs, kill, events; SIGTERM drains with exit
// 0, records the shutdown and leaves no child; a new daemon brings the
// services back.
func TestDaemon_Lifecycle(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)

	out := mustCLI(t, dir, "deploy", "web", "--env", "WORD=hello", "--", "sh", "-c", "echo $WORD; exec sleep 1000")
	assert.Contains(t, out, "deployed default/web generation 1")
	mustCLI(t, dir, "deploy", "gone", "--", "sleep", "1000")

	var views []state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "ls", "--json")), &views))
	require.Len(t, views, 2)

	var web state.ServiceView
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "web", "--json")), &web))
		return web.State == state.StateRunning && web.PID > 0
	}, 30*time.Second, 20*time.Millisecond)
	assert.Contains(t, mustCLI(t, dir, "ls"), "web")

	require.Eventually(t, func() bool {
		return strings.Contains(cli(t, dir, "logs", "web").stdout, "hello")
	}, 30*time.Second, 20*time.Millisecond)

	mustCLI(t, dir, "kill", "gone")
	events := mustCLI(t, dir, "events", "--json")
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(events), "\n") {
		var env struct{ Type, Subject string }
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		types = append(types, env.Type+":"+env.Subject)
	}
	assert.Contains(t, types, "service_deployed:web")
	assert.Contains(t, types, "service_killed:gone")

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second), "a clean drain exits 0:\n%s", d.logs)
	assert.False(t, alive(web.PID), "a service outlived the drain")

	// The shutdown is in the log, and it is not a kill.
	d2 := startDaemon(t, dir)
	events = mustCLI(t, dir, "events", "--json")
	assert.Contains(t, events, `"system_shutdown_started"`)
	assert.Contains(t, events, `"system_shutdown_complete"`)
	require.Eventually(t, func() bool {
		var v state.ServiceView
		json.Unmarshal([]byte(mustCLI(t, dir, "status", "web", "--json")), &v)
		return v.State == state.StateRunning && v.PID != web.PID
	}, 30*time.Second, 20*time.Millisecond, "web did not come back")
	var gone state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "gone", "--json")), &gone))
	assert.Equal(t, state.StateKilled, gone.State)
	d2.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d2.wait(30*time.Second))
}

func TestDaemon_SecondDaemonFailsAtOnce(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	start := time.Now()
	r := cli(t, dir, "daemon")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "locked by process")
	assert.Contains(t, r.stderr, "solo", "the holder is named")
	assert.Less(t, time.Since(start), 10*time.Second)
	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}

func TestCLI_Unreachable(t *testing.T) {
	dir := dataDir(t)
	r := cli(t, dir, "ls")
	assert.Equal(t, exitcode.Unreachable, r.code)
	assert.Contains(t, r.stderr, "solo daemon")
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !isZombie(pid)
}
