package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
)

// streamUntil runs a streaming CLI command (events -f, logs -f) against
// dir's daemon and returns the first line of its output for which ok is
// true: a test waits on the fact, not on a timer. It fails the test if the
// stream ends first.
func streamUntil(t *testing.T, dir string, ok func(line string) bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, soloBin, append([]string{"--data-dir", dir}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { cancel(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if ok(sc.Text()) {
			return sc.Text()
		}
	}
	t.Fatalf("solo %v ended without the line awaited: %v; daemon:\n%s", args, sc.Err(), dumpDaemon(dir))
	return ""
}

// waitEvent runs `solo events --service NAME -f --json` from position from
// and returns the first event of type typ; the followed, filtered stream
// is tested on the way.
func waitEvent(t *testing.T, dir, name string, from uint64, typ state.EventType) eventstore.Envelope {
	t.Helper()
	var env eventstore.Envelope
	streamUntil(t, dir, func(line string) bool {
		env = eventstore.Envelope{}
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		require.Equal(t, "default", env.Tenant)
		require.Equal(t, name, env.Subject, "events --service let another service's event through")
		return env.Type == string(typ)
	}, "events", "--service", name, "-f", "--json", "--from", strconv.FormatUint(from, 10))
	return env
}

// why returns the sentences of `solo why NAME`.
func why(t *testing.T, dir, name string) []string {
	t.Helper()
	return strings.Split(strings.TrimSuffix(mustCLI(t, dir, "why", name, "--lines", "100"), "\n"), "\n")
}

// has reports whether one of lines starts with prefix and contains every
// one of parts.
func has(lines []string, prefix string, parts ...string) bool {
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestCLI_Why(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)

	// A crash loop, a stopped service and one that runs on.
	mustCLI(t, dir, "deploy", "loop", "--max-restarts", "2", "--", "sh", "-c", "exit 3")
	mustCLI(t, dir, "deploy", "stopme", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "keep", "--env", "DB_PASSWORD=hunter2", "--", "sleep", "1000")
	waitEvent(t, dir, "loop", 1, state.TypeServiceFailed)
	waitEvent(t, dir, "stopme", 1, state.TypeServiceStarted)
	started := waitEvent(t, dir, "keep", 1, state.TypeServiceStarted)
	mustCLI(t, dir, "kill", "stopme")

	loop := why(t, dir, "loop")
	assert.True(t, has(loop, "deployed at ", "by a local caller as generation 1: sh -c 'exit 3'"), "%q", loop)
	assert.True(t, has(loop, "exited with code 3 at ", "restart 1 of 2 within 1m0s follows in"), "%q", loop)
	assert.True(t, has(loop, "restarted at ", "after exit 3 (restart 2 of 2 within 1m0s; attempt 3)"), "%q", loop)
	assert.True(t, has(loop, "gave up at ", "after 2 restarts in 1m0s"), "%q", loop)

	stopped := why(t, dir, "stopme")
	assert.True(t, has(stopped, "stopped by a local caller at "), "%q", stopped)
	assert.True(t, has(stopped, "ended at ", "as asked (killed by SIGTERM)"), "%q", stopped)

	// The status explains itself: the spec (env keys, never values), the
	// last exits, the contract's fields.
	var st state.ServiceStatus
	out := mustCLI(t, dir, "status", "loop", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	assert.Equal(t, state.StateFailed, st.State)
	assert.Len(t, st.Exits, 3)
	assert.Contains(t, st.Reason, "restart limit")
	var raw map[string]any
	out = mustCLI(t, dir, "status", "keep", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	for _, field := range []string{"tenant", "name", "generation", "state", "pid", "restarts", "started_at", "command"} {
		assert.Contains(t, raw, field, "status --json lost a field of the CLI contract")
	}
	text := mustCLI(t, dir, "status", "keep")
	assert.Contains(t, text, "DB_PASSWORD")
	assert.NotContains(t, text, "hunter2")
	assert.NotContains(t, mustCLI(t, dir, "status", "keep", "--json"), "hunter2")
	assert.Contains(t, mustCLI(t, dir, "status", "loop"), "exited with code 3")

	// The daemon dies; the next one re-adopts what ran.
	var pid struct {
		PID int `json:"pid"`
	}
	require.NoError(t, json.Unmarshal(started.Data, &pid))
	d.kill()
	startDaemon(t, dir)
	keep := why(t, dir, "keep")
	assert.True(t, has(keep, "re-adopted pid "+strconv.Itoa(pid.PID)+" at ", "after the daemon restarted without a clean shutdown"), "%q", keep)
	assert.True(t, has(keep, "the daemon started at "), "%q", keep)
	stopped = why(t, dir, "stopme")
	assert.False(t, has(stopped, "re-adopted"), "a stopped service was re-adopted: %q", stopped)

	r := cli(t, dir, "why", "ghost")
	assert.Equal(t, exitcode.NotFound, r.code, r.stderr)
	r = cli(t, dir, "events", "--service", "Bad/Name")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "service")
}
