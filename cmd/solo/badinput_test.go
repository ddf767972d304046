package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
)

// TestCLI_BadInput: every mistake gets a clear message naming the problem,
// the contract's exit code, and writes nothing.
func TestCLI_BadInput(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "web", "--", "sleep", "1000")
	// service_started follows the deploy; wait for it so that the log is
	// quiet before it is compared.
	require.Eventually(t, func() bool {
		return strings.Contains(mustCLI(t, dir, "status", "web"), "running")
	}, 30*time.Second, 10*time.Millisecond)
	before := mustCLI(t, dir, "events", "--json")
	nodesFile := filepath.Join(t.TempDir(), "nodes.yaml")
	require.NoError(t, os.WriteFile(nodesFile, []byte("services:\n  - name: web3\n    command: [sleep, \"1000\"]\n    nodes: [n1]\n"), 0o644))
	badNodesFile := filepath.Join(t.TempDir(), "bad-nodes.yaml")
	require.NoError(t, os.WriteFile(badNodesFile, []byte("services:\n  - name: web3\n    command: [sleep, \"1000\"]\n    nodes: [n1, Bad_Node]\n"), 0o644))

	cases := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"deploy", "../etc", "--", "true"}, exitcode.Error, "name"},
		{[]string{"deploy", "Web", "--", "true"}, exitcode.Error, "name"},
		{[]string{"deploy", "web2"}, exitcode.Usage, "usage: solo deploy"},
		{[]string{"deploy", "web2", "--restart", "sometimes", "--", "true"}, exitcode.Error, "restart"},
		{[]string{"deploy", "web2", "--env", "NOEQUALS", "--", "true"}, exitcode.Usage, "KEY=VALUE"},
		{[]string{"deploy", "web2", "--env", "1X=y", "--", "true"}, exitcode.Error, "env"},
		{[]string{"deploy", "web2", "--dir", "relative", "--", "true"}, exitcode.Error, "dir"},
		{[]string{"deploy", "ok2", "--", "/nonexistent/cmd"}, exitcode.Error, "command: stat /nonexistent/cmd: no such file"},
		{[]string{"deploy", "ok4", "--dir", "/nonexistent/dir", "--", "sleep", "1"}, exitcode.Error, "dir: stat /nonexistent/dir: no such file"},
		{[]string{"deploy", "web2", "--dir", "", "--", "true"}, exitcode.Usage, "--dir"},
		{[]string{"deploy", "web2", "--", "./not-here"}, exitcode.Error, "not-here"},
		{[]string{"deploy", "web2", "--user", "no-such-user-x", "--", "true"}, exitcode.Error, `user: unknown user "no-such-user-x"`},
		{[]string{"deploy", "web2", "--user", "", "--", "true"}, exitcode.Usage, "--user"},
		{[]string{"deploy", "web2", "--group", "no-such-group-x", "--", "true"}, exitcode.Error, `group: unknown group "no-such-group-x"`},
		{[]string{"deploy", "web2", "--groups", "adm,no-such-group-y", "--", "true"}, exitcode.Error, `groups: unknown group "no-such-group-y"`},
		{[]string{"deploy", "web2", "--groups", "adm,", "--", "true"}, exitcode.Usage, "--groups"},
		{[]string{"deploy", "web2", "--umask", "0999", "--", "true"}, exitcode.Error, "umask"},
		{[]string{"deploy", "web2", "--umask", "", "--", "true"}, exitcode.Usage, "--umask"},
		{[]string{"deploy", "web2", "--env-file", "/nonexistent/app.env", "--", "true"}, exitcode.Error, "env_file: env file /nonexistent/app.env: open: no such file"},
		{[]string{"deploy", "web2", "--env-file", "", "--", "true"}, exitcode.Usage, "--env-file"},
		{[]string{"deploy", "web2", "--stop-signal", "SIGNOPE", "--", "true"}, exitcode.Error, "stop_signal"},
		{[]string{"deploy", "web2", "--memory-max", "12 potatoes", "--", "true"}, exitcode.Usage, "--memory-max"},
		{[]string{"deploy", "web2", "--memory-max", "512KiB", "--", "true"}, exitcode.Usage, "--memory-max: is 512KiB, at least 1MiB"},
		{[]string{"deploy", "web2", "--cpu", "-1", "--", "true"}, exitcode.Usage, "--cpu"},
		{[]string{"deploy", "web2", "--cpu", "NaN", "--", "true"}, exitcode.Usage, "--cpu"},
		{[]string{"deploy", "web2", "--cpu", "half", "--", "true"}, exitcode.Usage, "--cpu"},
		{[]string{"deploy", "web2", "--pids-max", "-3", "--", "true"}, exitcode.Usage, "--pids-max"},
		{[]string{"deploy", "web2", "--node", "n1,Bad_Node", "--", "true"}, exitcode.Usage, `nodes: node name "Bad_Node"`},
		{[]string{"deploy", "web2", "--node", "n1", "--node", "n1", "--", "true"}, exitcode.Usage, "nodes: names n1 twice"},
		{[]string{"deploy", "web2", "--node", "n1", "--", "true"}, exitcode.Usage, "nodes: is for a cluster"},
		{[]string{"apply", "-f", badNodesFile}, exitcode.Usage, `nodes: node name "Bad_Node"`},
		{[]string{"apply", "-f", nodesFile}, exitcode.Usage, "nodes: is for a cluster"},
		{[]string{"status", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"kill", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"logs", "ghost"}, exitcode.NotFound, "not found"},
		{[]string{"status", "a/b"}, exitcode.Error, "name"},
		{[]string{"ls", "--bogus"}, exitcode.Usage, "unknown flag"},
		{[]string{"frobnicate"}, exitcode.Usage, "unknown command"},
		{[]string{"status"}, exitcode.Usage, "NAME"},
		{[]string{"ls", "extra"}, exitcode.Usage, "no arguments"},
	}
	for _, c := range cases {
		r := cli(t, dir, c.args...)
		assert.Equal(t, c.code, r.code, "solo %v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.says, "solo %v", c.args)
		assert.True(t, strings.HasPrefix(r.stderr, "solo: "), "solo %v: %q", c.args, r.stderr)
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")

	// Raw HTTP: malformed JSON and an oversized body are refused with a
	// JSON error and the right status; nothing is written.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	for _, c := range []struct {
		body   []byte
		status int
	}{
		{[]byte(`{"name": "x", "command": [`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "surprise": 1}`), http.StatusBadRequest},
		{append(append([]byte(`{"name": "`), bytes.Repeat([]byte("x"), 2<<20)...), `"}`...), http.StatusRequestEntityTooLarge},
		{[]byte(`{"name": "x", "command": ["true"], "memory_max": "12 potatoes"}`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "memory_max": 1000}`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "cpu": -0.5}`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "cpu": "half"}`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "pids_max": -1}`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "nodes": ["n1", "Bad_Node"]}`), http.StatusBadRequest},
		{[]byte(`{"name": "x", "command": ["true"], "nodes": ["n1"]}`), http.StatusBadRequest},
	} {
		resp, err := hc.Post("http://solo/v1/services", "application/json", bytes.NewReader(c.body))
		require.NoError(t, err)
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		assert.Equal(t, c.status, resp.StatusCode, body.String())
		assert.Contains(t, body.String(), `"code"`)
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")

	d.signal(syscall.SIGTERM)
	assert.Equal(t, 0, d.wait(30*time.Second))
}

// TestDaemon_ForcedDrainExitsNonZero: a service that ignores SIGTERM past
// the grace is SIGKILLed, and the daemon says so with its exit code.
func TestDaemon_ForcedDrainExitsNonZero(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir, "--grace", "300ms")
	mustCLI(t, dir, "deploy", "stubborn", "--stop-timeout", "1m", "--", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
	require.Eventually(t, func() bool {
		return strings.Contains(cli(t, dir, "logs", "stubborn").stdout, "ready")
	}, 30*time.Second, 20*time.Millisecond)
	start := time.Now()
	d.signal(syscall.SIGTERM)
	assert.Equal(t, 1, d.wait(30*time.Second), "a forced drain must not exit 0:\n%s", d.logs)
	assert.Less(t, time.Since(start), 10*time.Second, "the grace did not bound the drain")
	assert.Contains(t, d.logs.String(), "forced=1")
}

// TestDaemon_SecondSignalForces: while a drain waits on a slow service, a
// second SIGTERM kills at once.
func TestDaemon_SecondSignalForces(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir, "--grace", "1m")
	mustCLI(t, dir, "deploy", "stubborn", "--stop-timeout", "1m", "--", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
	require.Eventually(t, func() bool {
		return strings.Contains(cli(t, dir, "logs", "stubborn").stdout, "ready")
	}, 30*time.Second, 20*time.Millisecond)
	d.signal(syscall.SIGTERM)
	require.Eventually(t, func() bool { return strings.Contains(d.logs.String(), "shutdown started") }, 30*time.Second, 5*time.Millisecond)
	start := time.Now()
	d.signal(syscall.SIGTERM)
	assert.Equal(t, 1, d.wait(30*time.Second))
	assert.Less(t, time.Since(start), 10*time.Second, "a second signal did not force")
}
