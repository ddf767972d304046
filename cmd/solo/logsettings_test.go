package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/supervisor"
)

// stampedAfter reads a log and returns the first line stamped after t.
func stampedAfter(text string, t time.Time) (string, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if ts, ok := supervisor.LineTime([]byte(line)); ok && ts.After(t) {
			return line, true
		}
	}
	return "", false
}

// followFor runs `solo logs NAME -f ARGS...` and returns the first line
// for which ok is true.
func followFor(t *testing.T, dir, name string, ok func(string) bool, args ...string) string {
	t.Helper()
	return streamUntil(t, dir, ok, append([]string{"logs", name, "-f"}, args...)...)
}

func TestCLI_LogSettings(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "plain", "--", "sleep", "1000")
	waitEvent(t, dir, "plain", 1, "service_started")
	before := mustCLI(t, dir, "events", "--json")

	// Bad values: the flag named, a usage error, nothing written.
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--log-max-size", "10XB"}, "--log-max-size"},
		{[]string{"--log-max-size", "100"}, "--log-max-size"},
		{[]string{"--log-max-size", "2GiB"}, "--log-max-size"},
		{[]string{"--log-files", "0"}, "--log-files"},
		{[]string{"--log-files", "101"}, "--log-files"},
		{[]string{"--log-timestamps=maybe"}, "log-timestamps"},
	} {
		r := cli(t, dir, append(append([]string{"deploy", "bad"}, c.args...), "--", "true")...)
		assert.Equal(t, exitcode.Usage, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.says, "%v", c.args)
	}
	file := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(file, []byte("services:\n  - name: bad\n    command: [\"true\"]\n    log: {max_size: lots}\n"), 0o600))
	r := cli(t, dir, "apply", "-f", file)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "log.max_size")
	r = cli(t, dir, "logs", "plain", "--since", "1m")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "--log-timestamps", "since on a log without timestamps says how to get them")
	r = cli(t, dir, "logs", "plain", "--since", "-1m")
	assert.Equal(t, exitcode.Usage, r.code, r.stderr)
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")

	// A stamped service: its lines carry the time they were written.
	mustCLI(t, dir, "deploy", "tick", "--log-timestamps", "--log-max-size", "64KiB", "--log-files", "2", "--",
		"sh", "-c", `i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done`)
	first := followFor(t, dir, "tick", func(l string) bool { return strings.Contains(l, "tick 1") }, "--tail", "10")
	ts, ok := supervisor.LineTime([]byte(first))
	require.True(t, ok, "not stamped: %q", first)
	assert.True(t, strings.HasSuffix(first, "Z tick 1"), "%q", first)
	assert.WithinDuration(t, time.Now(), ts, time.Minute)
	// A fast writer with a small log, to see it rotated after a re-adoption.
	mustCLI(t, dir, "deploy", "spin", "--log-max-size", "4KiB", "--log-files", "1", "--",
		"sh", "-c", `while :; do echo "spin 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; sleep 0.02; done`)
	status := mustCLI(t, dir, "status", "tick")
	assert.Contains(t, status, "rotated at 64KiB, 2 files kept, lines timestamped")

	// The daemon dies; the service and its stamper go on: lines written
	// while no daemon runs are in the log, stamped.
	killed := time.Now()
	d.kill()
	logFile := filepath.Join(dir, "logs", "default", "tick.log")
	var gap string
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logFile)
		gap, ok = stampedAfter(string(b), killed)
		return ok
	}, 30*time.Second, 10*time.Millisecond, "no stamped line after the daemon died")
	assert.Contains(t, gap, " tick ")

	startDaemon(t, dir)
	assert.True(t, has(why(t, dir, "tick"), "re-adopted pid "), "the service did not survive the daemon")
	restarted := time.Now()
	// The re-adopted writer's log is rotated at its own size, and only one
	// rotated file is kept.
	spin := filepath.Join(dir, "logs", "default", "spin.log")
	require.Eventually(t, func() bool {
		fi, err := os.Stat(spin + ".1")
		return err == nil && fi.ModTime().After(restarted)
	}, 30*time.Second, 10*time.Millisecond, "a re-adopted service's log is not rotated")
	_, err := os.Stat(spin + ".2")
	assert.ErrorIs(t, err, os.ErrNotExist)
	// --since with -f: the lines from a moment ago on, then new ones.
	line := followFor(t, dir, "tick", func(l string) bool {
		ts, ok := supervisor.LineTime([]byte(l))
		return ok && ts.After(restarted)
	}, "--since", "1h")
	assert.Contains(t, line, " tick ")
	// Without -f: only lines within the window.
	out := mustCLI(t, dir, "logs", "tick", "--since", "1h")
	assert.Contains(t, out, gap, "a line written while no daemon ran")
	for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		_, ok := supervisor.LineTime([]byte(l))
		assert.True(t, ok, "an unstamped line: %q", l)
	}
	assert.Equal(t, 2, strings.Count(mustCLI(t, dir, "logs", "tick", "--since", "1h", "--tail", "2"), "\n"))
}
