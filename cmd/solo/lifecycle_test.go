package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
)

// startedPID reads the pid a deploy, start or restart printed once its
// attempt started ("..., pid N").
func startedPID(t *testing.T, out string) int {
	t.Helper()
	m := regexp.MustCompile(`, pid (\d+)\n$`).FindStringSubmatch(out)
	require.NotNil(t, m, "no pid in %q", out)
	pid, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return pid
}

// waitFile waits for a file a service writes: there is no event for it.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(b), want)
	}, 30*time.Second, 5*time.Millisecond, "%s never held %q", path, want)
}

// TestCLI_Lifecycle drives stop, start, restart, signal and rm as a user
// would, across a daemon SIGKILL and a clean drain.
func TestCLI_Lifecycle(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)

	out := mustCLI(t, dir, "deploy", "web", "--", "sleep", "1000")
	assert.Contains(t, out, "deployed default/web generation 1, pid ")
	pid := startedPID(t, out)
	assert.Equal(t, pid, statusOf(t, dir, "web").PID, "deploy returned the started pid")

	// stop = kill: down, no start time shown, and it stays down across a
	// daemon SIGKILL.
	assert.Equal(t, "stopped default/web\n", mustCLI(t, dir, "stop", "web"))
	assert.False(t, alive(pid))
	v := statusOf(t, dir, "web")
	assert.Equal(t, state.StateKilled, v.State)
	assert.True(t, v.StartedAt.IsZero(), "a stopped service shows a start time")
	assert.Regexp(t, `(?m)^default\s+web\s+1\s+killed\s+no\s+-\s+0\s+-\s+sleep 1000$`, mustCLI(t, dir, "ls"))
	d.kill()
	d = startDaemon(t, dir)
	assert.Equal(t, state.StateKilled, statusOf(t, dir, "web").State, "a stopped service came back after a daemon SIGKILL")

	// start brings it back, same generation, not a restart.
	out = mustCLI(t, dir, "start", "web")
	assert.Contains(t, out, "started default/web generation 1, pid ")
	pid = startedPID(t, out)
	v = statusOf(t, dir, "web")
	assert.Equal(t, state.StateRunning, v.State)
	assert.Equal(t, pid, v.PID)
	assert.Zero(t, v.Restarts)
	assert.Contains(t, mustCLI(t, dir, "start", "web"), "unchanged", "start of a running service")

	// restart: a new pid, not counted.
	out = mustCLI(t, dir, "restart", "web")
	assert.Contains(t, out, "restarted default/web generation 1, pid ")
	newPID := startedPID(t, out)
	assert.NotEqual(t, pid, newPID)
	assert.False(t, alive(pid), "the old instance still runs")
	v = statusOf(t, dir, "web")
	assert.Equal(t, newPID, v.PID)
	assert.Zero(t, v.Restarts, "a requested restart counted as a restart")

	// A clean drain and start is not a restart either.
	d.signal(syscall.SIGTERM)
	require.Equal(t, 0, d.wait(30*time.Second))
	d = startDaemon(t, dir)
	v = statusOf(t, dir, "web")
	assert.Equal(t, state.StateRunning, v.State)
	assert.Zero(t, v.Restarts, "a clean daemon stop and start counted as a restart")

	// signal reaches the process group.
	sig := t.TempDir()
	got, ready := filepath.Join(sig, "got"), filepath.Join(sig, "ready")
	mustCLI(t, dir, "deploy", "trapper", "--", "sh", "-c", `trap 'echo hup >>"$0"' HUP; echo >"$1"; while :; do sleep 1000 & wait; done`, got, ready)
	waitFile(t, ready, "\n")
	tp := statusOf(t, dir, "trapper").PID
	assert.Equal(t, "sent SIGHUP to default/trapper (pid "+strconv.Itoa(tp)+" and its group)\n", mustCLI(t, dir, "signal", "trapper", "HUP"))
	waitFile(t, got, "hup")
	assert.Equal(t, tp, statusOf(t, dir, "trapper").PID)
	var sigEvent bool
	for _, line := range strings.Split(mustCLI(t, dir, "events", "--json"), "\n") {
		if strings.Contains(line, `"type":"service_signalled"`) {
			sigEvent = true
			assert.Contains(t, line, `"actor":"local"`)
			assert.Contains(t, line, `"signal":"SIGHUP"`)
		}
	}
	assert.True(t, sigEvent, "no service_signalled event")

	// rm: refused while running, then frees the name.
	r := cli(t, dir, "rm", "web")
	assert.Equal(t, exitcode.Error, r.code)
	assert.Contains(t, r.stderr, "stop it first")
	mustCLI(t, dir, "stop", "web")
	assert.Equal(t, "removed default/web\n", mustCLI(t, dir, "rm", "web"))
	assert.Equal(t, exitcode.NotFound, cli(t, dir, "status", "web").code)
	assert.NotContains(t, mustCLI(t, dir, "ls"), " web ")
	r = cli(t, dir, "start", "web")
	assert.Equal(t, exitcode.NotFound, r.code, "start of a removed service: %s", r.stderr)
	assert.Contains(t, r.stderr, "removed")
	assert.Contains(t, mustCLI(t, dir, "deploy", "web", "--", "sleep", "1000"), "deployed default/web generation 1")

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}

// TestCLI_LifecycleBadInput: each verb's mistakes get the contract's exit
// code and a message naming the problem, through the CLI and raw HTTP, and
// write nothing.
func TestCLI_LifecycleBadInput(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "web", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "down", "--", "sleep", "1000")
	mustCLI(t, dir, "stop", "down")
	before := mustCLI(t, dir, "events", "--json")

	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"start", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"restart", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"stop", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"rm", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"signal", "ghost", "HUP"}, exitcode.NotFound, "not found"},
		{[]string{"signal", "web", "BOGUS"}, exitcode.Usage, `"BOGUS"`},
		{[]string{"signal", "web"}, exitcode.Usage, "SIG"},
		{[]string{"signal", "down", "HUP"}, exitcode.Error, "no running process"},
		{[]string{"rm", "web"}, exitcode.Error, "stop it first"},
		{[]string{"start"}, exitcode.Usage, "NAME"},
		{[]string{"restart", "web", "--wait-timeout", "-1s"}, exitcode.Usage, "--wait-timeout"},
		{[]string{"start", "Bad/Name"}, exitcode.Error, "name"},
	} {
		r := cli(t, dir, c.args...)
		assert.Equal(t, c.code, r.code, "solo %v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.says, "solo %v", c.args)
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	for _, c := range []struct {
		path, body string
		status     int
		says       string
	}{
		{"/v1/services/default/web/signal", `{"signal":"NOPE"}`, http.StatusBadRequest, `"field":"signal"`},
		{"/v1/services/default/web/signal", `{"sig":"HUP"}`, http.StatusBadRequest, "unknown field"},
		{"/v1/services/default/down/signal", `{"signal":"HUP"}`, http.StatusConflict, "no running process"},
		{"/v1/services/default/web/remove", ``, http.StatusConflict, "stop it first"},
		{"/v1/services/default/ghost/start", ``, http.StatusNotFound, "not found"},
		{"/v1/services/default/ghost/restart", ``, http.StatusNotFound, "not found"},
		{"/v1/services/default/ghost/remove", ``, http.StatusNotFound, "not found"},
		{"/v1/services/default/web/restart?wait=forever", ``, http.StatusBadRequest, `"field":"wait"`},
		{"/v1/services?wait=-1s", `{"name":"x","command":["true"]}`, http.StatusBadRequest, `"field":"wait"`},
	} {
		resp, err := hc.Post("http://solo"+c.path, "application/json", strings.NewReader(c.body))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, c.status, resp.StatusCode, "%s: %s", c.path, body)
		assert.Contains(t, string(body), c.says, c.path)
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input over HTTP wrote events")

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}

// TestCLI_StartFailsAtOnce: a command that cannot start is reported by the
// command that asked for it, with the reason, which status and logs show.
func TestCLI_StartFailsAtOnce(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	scripts := t.TempDir()
	bad := filepath.Join(scripts, "bad.sh")
	require.NoError(t, os.WriteFile(bad, []byte("#!/nonexistent/sh\necho hi\n"), 0o755))

	// A bad interpreter: no validation can see it, the exec fails.
	r := cli(t, dir, "deploy", "bad", "--restart", "never", "--", bad)
	assert.Equal(t, exitcode.Error, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "no such file or directory")
	assert.Contains(t, r.stderr, "did not start")
	v := statusOf(t, dir, "bad")
	assert.Equal(t, state.StateFailed, v.State)
	assert.Contains(t, v.StartError, "no such file or directory")
	assert.Contains(t, mustCLI(t, dir, "status", "bad"), "could not start: ")
	assert.Contains(t, mustCLI(t, dir, "logs", "bad"), "could not start")

	// A program that does not exist: refused at once, whether by
	// validation or by the exec.
	r = cli(t, dir, "deploy", "typo", "--", "/nonexistent/bin")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "/nonexistent/bin")

	// A program removed after its deploy: restart says so.
	gone := filepath.Join(scripts, "gone")
	require.NoError(t, os.WriteFile(gone, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755))
	mustCLI(t, dir, "deploy", "gone", "--", gone)
	require.NoError(t, os.Remove(gone))
	r = cli(t, dir, "restart", "gone")
	assert.Equal(t, exitcode.Error, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "no such file or directory")

	// apply waits for each service it creates, and says which did not
	// start.
	file := filepath.Join(scripts, "services.yaml")
	require.NoError(t, os.WriteFile(file, []byte("services:\n  - name: fine\n    command: [sleep, \"1000\"]\n  - name: broken\n    restart: never\n    command: [\""+bad+"\"]\n"), 0o644))
	r = cli(t, dir, "apply", "-f", file)
	assert.Equal(t, exitcode.Error, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "1 of the services did not start")
	assert.Contains(t, r.stderr, "default/broken")
	assert.Equal(t, state.StateRunning, statusOf(t, dir, "fine").State, "apply returned before fine started")

	// --no-wait returns once the deploy is written.
	r = cli(t, dir, "deploy", "bad2", "--no-wait", "--restart", "never", "--", bad)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "deployed default/bad2 generation 1\n", r.stdout)

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}

// TestCLI_SmallTruths: quoting, version, and a command right after
// `solo daemon &` waits for it instead of failing.
func TestCLI_SmallTruths(t *testing.T) {
	dir := dataDir(t)
	// The daemon is started and a deploy sent at once, as `solo daemon &`
	// followed by a command does.
	d, err := spawnDaemon(dir)
	require.NoError(t, err)
	d.t = t
	t.Cleanup(func() { d.kill(); killMarked(dir) })
	out := mustCLI(t, dir, "deploy", "q", "--", "sh", "-c", "sleep 1000", "--save", "", "it's")
	assert.Contains(t, out, "deployed default/q generation 1, pid ")
	<-d.ready()

	want := `sh -c 'sleep 1000' --save '' 'it'\''s'`
	assert.Contains(t, mustCLI(t, dir, "ls"), want)
	assert.Regexp(t, `(?m)^command:\s+`+regexp.QuoteMeta(want)+`$`, mustCLI(t, dir, "status", "q"))

	v1, v2 := mustCLI(t, dir, "version"), mustCLI(t, dir, "--version")
	assert.Equal(t, v1, v2)
	assert.True(t, strings.HasPrefix(v1, "solo "), v1)
	assert.Contains(t, mustCLI(t, dir, "events", "--json"), `"version":"`+strings.TrimSpace(strings.TrimPrefix(v1, "solo "))+`"`, "the daemon records the same version")

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}
