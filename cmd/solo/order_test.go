package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
)

// logEvents returns the whole log through `solo events --json`.
func logEvents(t *testing.T, dir string) []eventstore.Envelope {
	t.Helper()
	var out []eventstore.Envelope
	for _, line := range strings.Split(strings.TrimSpace(mustCLI(t, dir, "events", "--json")), "\n") {
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		out = append(out, env)
	}
	return out
}

// followUntil follows the whole log (`solo events -f --json`) until ok
// says so of an event.
func followUntil(t *testing.T, dir string, ok func(env eventstore.Envelope) bool) {
	t.Helper()
	streamUntil(t, dir, func(line string) bool {
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		return ok(env)
	}, "events", "-f", "--json", "--from", "1")
}

// chainYAML is an apply file of n services c00..c(n-1), each after the one
// before, written last first; each becomes ready ready after its start
// (its exec probe waits for the file it writes then).
func chainYAML(n int, ready time.Duration, work string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := n - 1; i >= 0; i-- {
		name := fmt.Sprintf("c%02d", i)
		fmt.Fprintf(&b, "  - name: %s\n    dir: %s\n", name, work)
		fmt.Fprintf(&b, "    command: [sh, -c, 'sleep %g; touch ready-%s; exec sleep 1000']\n", ready.Seconds(), name)
		fmt.Fprintf(&b, "    ready: {exec: [test, -e, ready-%s]}\n", name)
		if i > 0 {
			fmt.Fprintf(&b, "    after: [c%02d]\n", i-1)
		}
	}
	return b.String()
}

// TestCLI_OrderCrash: the daemon is SIGKILLed while a chain of 20 services
// with slow readiness comes up; the next daemon completes it in order,
// with one live process per service and no orphan.
func TestCLI_OrderCrash(t *testing.T) {
	dir := dataDir(t)
	home, err := filepath.Abs(dir)
	require.NoError(t, err)
	work := t.TempDir()
	const n = 20
	d := startDaemon(t, dir)
	file := writeFile(t, dir, "chain.yaml", chainYAML(n, 300*time.Millisecond, work))
	mustCLI(t, dir, "apply", "-f", file)
	followUntil(t, dir, func(env eventstore.Envelope) bool {
		return env.Subject == "c05" && env.Type == string(state.TypeServiceReady)
	})
	d.kill()

	// At the kill: at most one instance of each, and none started before
	// the one it is after was ready.
	live, err := recovery.Scan(home)
	require.NoError(t, err)
	seen := map[string]int{}
	for _, o := range live {
		if pid, dup := seen[o.Marker.Name]; dup && o.Leader() {
			t.Errorf("at the kill %s ran twice: pids %d and %d", o.Marker.Name, pid, o.Identity.PID)
		}
		if o.Leader() {
			seen[o.Marker.Name] = o.Identity.PID
		}
	}
	assert.Less(t, len(seen), n, "the chain was still coming up at the kill")

	startDaemon(t, dir)
	followUntil(t, dir, func(env eventstore.Envelope) bool {
		return env.Subject == fmt.Sprintf("c%02d", n-1) && env.Type == string(state.TypeServiceReady)
	})

	envs := logEvents(t, dir)
	readyAt := map[string]uint64{} // first service_ready of each
	for _, e := range envs {
		if e.Type == string(state.TypeServiceReady) && readyAt[e.Subject] == 0 {
			readyAt[e.Subject] = e.Pos
		}
	}
	starts := map[string]int{}
	for _, e := range envs {
		if e.Type != string(state.TypeServiceStarted) {
			continue
		}
		starts[e.Subject]++
		var i int
		_, err := fmt.Sscanf(e.Subject, "c%02d", &i)
		require.NoError(t, err)
		if i == 0 {
			continue
		}
		prev := fmt.Sprintf("c%02d", i-1)
		require.NotZero(t, readyAt[prev], "%s started (pos %d) but %s was never ready", e.Subject, e.Pos, prev)
		assert.Greater(t, e.Pos, readyAt[prev], "%s started before %s was ready", e.Subject, prev)
	}
	for i := range n {
		name := fmt.Sprintf("c%02d", i)
		assert.Equal(t, 1, starts[name], "%s: one start, re-adopted or started once across the crash", name)
	}

	// One live process per service, the one status names; no orphans.
	live, err = recovery.Scan(home)
	require.NoError(t, err)
	leaders := map[string]int{}
	for _, o := range live {
		require.True(t, o.Leader(), "an orphan: pid %d of %s is no instance", o.Identity.PID, o.Marker.Name)
		_, dup := leaders[o.Marker.Name]
		require.False(t, dup, "%s runs twice", o.Marker.Name)
		leaders[o.Marker.Name] = o.Identity.PID
	}
	require.Len(t, leaders, n)
	var views []state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "ls", "--json")), &views))
	for _, v := range views {
		assert.Equal(t, leaders[v.Name], v.PID, v.Name)
		assert.True(t, v.Ready, v.Name)
	}
}

// TestCLI_OrderBadInput: unknown names, a self-reference and a cycle of
// three are refused through the CLI, an apply file and raw HTTP, with the
// field and the cycle named, exit 2 / 400, and nothing written.
func TestCLI_OrderBadInput(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "a", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "b", "--after", "a", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "c", "--requires", "b", "--", "sleep", "1000")
	before := mustCLI(t, dir, "events", "--json")

	cycle := writeFile(t, dir, "cycle.yaml", `
services:
  - name: x
    command: [sleep, "1000"]
    after: [z]
  - name: y
    command: [sleep, "1000"]
    requires: [x]
  - name: z
    command: [sleep, "1000"]
    after: y
`)
	unknown := writeFile(t, dir, "unknown.yaml", `
services:
  - name: x
    command: [sleep, "1000"]
    requires: [nope]
`)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"deploy", "d", "--after", "nope", "--", "sleep", "1"}, "after: names nope, which is not a service of tenant"},
		{[]string{"deploy", "d", "--requires", "d", "--", "sleep", "1"}, "requires: names the service itself"},
		{[]string{"deploy", "a", "--after", "c", "--", "sleep", "1000"}, "a -> c -> b -> a"},
		{[]string{"apply", "-f", cycle}, "x -> z -> y -> x"},
		{[]string{"apply", "-f", unknown}, "requires: names nope"},
	} {
		r := cli(t, dir, c.args...)
		assert.Equal(t, exitcode.Usage, r.code, "solo %v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.says, "solo %v", c.args)
	}
	// rm of a service others depend on is refused, naming them.
	mustCLI(t, dir, "stop", "b")
	waitEvent(t, dir, "c", 1, state.TypeServiceExited) // c requires b: it stops too
	before = mustCLI(t, dir, "events", "--json")
	r := cli(t, dir, "rm", "b")
	assert.Equal(t, exitcode.Error, r.code, r.stderr)
	assert.Contains(t, r.stderr, "[c] are after or require it")
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	for _, c := range []struct {
		path, body string
		says       string
	}{
		{"/v1/services", `{"name":"d","command":["sleep","1"],"after":["nope"]}`, "field:after"},
		{"/v1/services", `{"name":"d","command":["sleep","1"],"requires":["d"]}`, "names the service itself"},
		{"/v1/services", `{"name":"a","command":["sleep","1000"],"after":["c"]}`, "a -> c -> b -> a"},
		{"/v1/apply", `{"services":[{"name":"x","command":["sleep","1"],"after":["y"]},{"name":"y","command":["sleep","1"],"after":["x"]}]}`, "x -> y -> x"},
	} {
		resp, err := hc.Post("http://solo"+c.path, "application/json", strings.NewReader(c.body))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", c.path, body)
		var decoded map[string]any
		require.NoError(t, json.Unmarshal(body, &decoded), "%s", body)
		assert.Contains(t, fmt.Sprint(decoded), c.says, "%s: %s", c.path, body)
	}
	resp, err := hc.Post("http://solo/v1/services/default/b/remove", "application/json", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input over HTTP wrote events")

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}

// TestCLI_OrderWaits: a deploy whose start waits for a service it is after
// says so, and does not count as started; status and why tell what it waits
// for; it starts once that service is ready.
func TestCLI_OrderWaits(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	work := t.TempDir()
	mustCLI(t, dir, "deploy", "db", "--dir", work, "--ready-exec", "test -e ready", "--", "sleep", "1000")
	out := mustCLI(t, dir, "deploy", "web", "--after", "db", "--", "sleep", "1000")
	assert.Contains(t, out, "deployed default/web generation 1; its start waits for db (starting)")
	var res struct {
		Started bool              `json:"started"`
		Service state.ServiceView `json:"service"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "deploy", "api", "--requires", "db", "--json", "--", "sleep", "1000")), &res))
	assert.False(t, res.Started, "a start that waits is not started")
	assert.Equal(t, []state.Blocker{{Name: "db", State: state.StateStarting}}, res.Service.WaitingFor)
	assert.Regexp(t, `waiting for:\s+db \(starting\)`, mustCLI(t, dir, "status", "web"))
	assert.True(t, has(why(t, dir, "web"), "waiting at ", "for db (starting) before it starts"), "%q", why(t, dir, "web"))

	writeFile(t, work, "ready", "")
	started := waitEvent(t, dir, "web", 1, state.TypeServiceStarted)
	ready := waitEvent(t, dir, "db", 1, state.TypeServiceReady)
	assert.Greater(t, started.Pos, ready.Pos)
	waitEvent(t, dir, "api", 1, state.TypeServiceStarted)
}
