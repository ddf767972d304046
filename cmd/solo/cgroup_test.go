package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
)

// cleanCgroups kills what is left in the named services' cgroups of the
// installation at dir and removes its cgroups, so that no test leaks one.
func cleanCgroups(t *testing.T, dir string, names ...string) {
	t.Cleanup(func() {
		m := cgroup.Open(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range names {
			if err := m.Remove(ctx, "default", n); err != nil {
				t.Errorf("clean cgroup of %s: %v", n, err)
			}
		}
		m.Prune()
	})
}

// markedPIDs lists the live processes marked as the service name of the
// installation at dir, with their command lines.
func markedPIDs(dir, name string) map[int]string {
	home, _ := filepath.Abs(dir)
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || isZombie(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("SOLO_SERVICE=")); ok && bytes.HasPrefix(v, []byte(home+"|default|"+name+"|")) {
				cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				out[pid] = strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
			}
		}
	}
	return out
}

// waitEscaped waits until the service runs both its sleep and the one
// that escaped with setsid, and returns their pids.
func waitEscaped(t *testing.T, dir, name string) []int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		pids = pids[:0]
		for pid, cmd := range markedPIDs(dir, name) {
			if cmd == "sleep 3001" || cmd == "sleep 3002" {
				pids = append(pids, pid)
			}
		}
		return len(pids) == 2
	}, 30*time.Second, 10*time.Millisecond, "the service and its escapee never both ran")
	return slices.Clone(pids)
}

func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		assert.True(t, isZombie(pid), "pid %d outlived its service", pid)
	}
}

// TestCLI_SetsidEscape: a child that leaves its service's process group
// with setsid dies with the service at `solo kill`, also after a daemon
// SIGKILL, once the service is re-adopted.
func TestCLI_SetsidEscape(t *testing.T) {
	const escape = "setsid sleep 3001 & exec sleep 3002"
	t.Run("kill", func(t *testing.T) {
		dir := dataDir(t)
		cleanCgroups(t, dir, "esc")
		startDaemon(t, dir)
		mustCLI(t, dir, "deploy", "esc", "--", "sh", "-c", escape)
		pids := waitEscaped(t, dir, "esc")
		// The escapee carries the instance's marker and is in its cgroup:
		// it is part of the service, not a stranger for verify to stop.
		mustCLI(t, dir, "verify")
		mustCLI(t, dir, "kill", "esc")
		assertGone(t, pids)
	})
	t.Run("kill after a daemon SIGKILL", func(t *testing.T) {
		// This escapee also drops the marker, so only its cgroup ties it
		// to the service.
		dir := dataDir(t)
		cleanCgroups(t, dir, "esc")
		pidFile := filepath.Join(dir, "escapee")
		d := startDaemon(t, dir)
		mustCLI(t, dir, "deploy", "esc", "--", "sh", "-c",
			`setsid env -u SOLO_SERVICE sh -c 'echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 3001' & exec sleep 3002`)
		var escapee int
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(pidFile)
			return err == nil && len(b) > 0 && func() bool { _, err := fmt.Sscan(string(b), &escapee); return err == nil }()
		}, 30*time.Second, 10*time.Millisecond, "the escapee never ran")
		var leader int
		require.Eventually(t, func() bool {
			for pid, cmd := range markedPIDs(dir, "esc") {
				if cmd == "sleep 3002" {
					leader = pid
				}
			}
			return leader != 0
		}, 30*time.Second, 10*time.Millisecond)
		d.kill()
		startDaemon(t, dir)
		st := mustCLI(t, dir, "status", "esc")
		require.Regexp(t, fmt.Sprintf(`pid:\s+%d\n`, leader), st, "recovery did not re-adopt the service")
		require.False(t, isZombie(escapee), "the escapee died before the kill")
		// Re-adopted, the service's unmarked escapee is its own, not a
		// stranger.
		mustCLI(t, dir, "verify")
		mustCLI(t, dir, "kill", "esc")
		assertGone(t, []int{leader, escapee})
	})
	t.Run("the instance dies while the daemon is down", func(t *testing.T) {
		// The escapee dropped the marker and outlives its instance while
		// no daemon runs: only the cgroup says it is a leftover. Recovery
		// stops it before it starts the new instance in that cgroup.
		dir := dataDir(t)
		cleanCgroups(t, dir, "esc")
		pidFile := filepath.Join(dir, "escapee")
		d := startDaemon(t, dir)
		mustCLI(t, dir, "deploy", "esc", "--restart", "always", "--", "sh", "-c",
			`setsid env -u SOLO_SERVICE sh -c 'echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 3001' & exec sleep 3002`)
		var escapee int
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(pidFile)
			return err == nil && len(b) > 0 && func() bool { _, err := fmt.Sscan(string(b), &escapee); return err == nil }()
		}, 30*time.Second, 10*time.Millisecond, "the escapee never ran")
		leader := statusOf(t, dir, "esc").PID
		require.NotZero(t, leader)
		require.NoError(t, os.Remove(pidFile))
		d.kill()
		require.NoError(t, syscall.Kill(leader, syscall.SIGKILL))
		require.Eventually(t, func() bool { return isZombie(leader) }, 30*time.Second, 10*time.Millisecond, "the instance did not die")
		startDaemon(t, dir)
		assert.True(t, isZombie(escapee), "the escapee of an instance that died while the daemon was down outlived recovery")
		// The new instance's own escapee is a member, not a stranger.
		require.Eventually(t, func() bool { _, err := os.Stat(pidFile); return err == nil }, 30*time.Second, 10*time.Millisecond, "the new instance's escapee never ran")
		v := statusOf(t, dir, "esc")
		assert.NotEqual(t, leader, v.PID)
		assert.Contains(t, mustCLI(t, dir, "events", "--service", "esc"), "drift_found")
		mustCLI(t, dir, "verify")
	})
}

// TestCLI_Limits: memory_max and its OOM kill, recorded and restarted.
func TestCLI_Limits(t *testing.T) {
	dir := dataDir(t)
	cleanCgroups(t, dir, "hog")
	startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "hog", "--memory-max", "64M", "--restart", "always", "--", "python3", "-c", "b = bytearray(200 << 20)")
	require.Eventually(t, func() bool {
		st := mustCLI(t, dir, "status", "hog", "--json")
		return strings.Count(st, `"reason": "oom"`) >= 2
	}, 60*time.Second, 20*time.Millisecond, "two OOM kills were never recorded")
	st := mustCLI(t, dir, "status", "hog")
	assert.Contains(t, st, "limits")
	assert.Contains(t, st, "memory 62500KiB") // 64M: 64,000,000 bytes
	assert.Contains(t, st, "killed by the OOM killer")
	why := mustCLI(t, dir, "why", "hog")
	assert.Contains(t, why, "killed by the OOM killer (SIGKILL): its memory_max was reached")
	assert.Contains(t, why, "after an OOM kill")
	mustCLI(t, dir, "kill", "hog")
}
