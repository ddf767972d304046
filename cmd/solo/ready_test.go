package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
)

// notifyScript is a service written for systemd: it says READY=1 (and a
// STATUS=) on $NOTIFY_SOCKET, then runs.
const notifyScript = `import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"STATUS=warm\nREADY=1")
time.sleep(1000)`

// TestCLI_Readiness: --notify and a ready probe in an apply file make a
// service ready, shown by ls (READY, ready) and status; bad probes are
// refused naming the flag or field, through the CLI and raw HTTP, with
// nothing written.
func TestCLI_Readiness(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "sd", "--notify", "--ready-timeout", "30s", "--", "python3", "-c", notifyScript)
	file := filepath.Join(t.TempDir(), "svc.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`services:
  - name: probed
    command: [sleep, "1000"]
    ready: {exec: ["true"], timeout: 20s}
`), 0o644))
	mustCLI(t, dir, "apply", "-f", file)
	// Wait on the log's facts: both services' service_ready.
	require.Eventually(t, func() bool {
		return strings.Count(mustCLI(t, dir, "events", "--json"), `"service_ready"`) == 2
	}, 30*time.Second, 20*time.Millisecond)

	var views []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Ready bool   `json:"ready"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "ls", "--json")), &views))
	require.Len(t, views, 2)
	for _, v := range views {
		assert.True(t, v.Ready, v.Name)
		assert.Equal(t, "running", v.State, v.Name)
	}
	table := mustCLI(t, dir, "ls")
	assert.Contains(t, strings.SplitN(table, "\n", 2)[0], "READY")
	status := mustCLI(t, dir, "status", "sd")
	assert.Contains(t, status, "readiness:")
	assert.Contains(t, status, "ready after")
	assert.Contains(t, status, "notify status:")
	assert.Contains(t, status, "warm")
	assert.Contains(t, mustCLI(t, dir, "why", "sd"), "ready after")

	before := mustCLI(t, dir, "events", "--json")
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"deploy", "x", "--ready-http", "ftp://h/", "--", "true"}, exitcode.Usage, "--ready-http"},
		{[]string{"deploy", "x", "--ready-http", "http://:8080/", "--", "true"}, exitcode.Usage, "--ready-http"},
		{[]string{"deploy", "x", "--ready-tcp", "127.0.0.1:0", "--", "true"}, exitcode.Usage, "--ready-tcp"},
		{[]string{"deploy", "x", "--ready-tcp", "nohostport", "--", "true"}, exitcode.Usage, "--ready-tcp"},
		{[]string{"deploy", "x", "--notify", "--ready-timeout", "0s", "--", "true"}, exitcode.Usage, "--ready-timeout"},
		{[]string{"deploy", "x", "--notify", "--ready-timeout", "2h", "--", "true"}, exitcode.Usage, "--ready-timeout"},
		{[]string{"deploy", "x", "--notify", "--ready-tcp", "h:1", "--", "true"}, exitcode.Usage, "more than one probe"},
		{[]string{"deploy", "x", "--ready-timeout", "5s", "--", "true"}, exitcode.Usage, "sets no probe"},
	} {
		r := cli(t, dir, c.args...)
		assert.Equal(t, c.code, r.code, "solo %v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.says, "solo %v", c.args)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("services:\n  - name: y\n    command: [\"true\"]\n    ready: {tcp: \"h:0\"}\n"), 0o644))
	r := cli(t, dir, "apply", "-f", bad)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "ready.tcp")

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	for _, c := range []struct{ body, says string }{
		{`{"name": "x", "command": ["true"], "ready": {"http": "not a url"}}`, "ready.http"},
		{`{"name": "x", "command": ["true"], "ready": {"tcp": "h:70000"}}`, "ready.tcp"},
		{`{"name": "x", "command": ["true"], "ready": {"notify": true, "timeout": "-1s"}}`, "ready.timeout"},
		{`{"name": "x", "command": ["true"], "ready": {"exec": []}}`, "ready.exec"},
		{`{"name": "x", "command": ["true"], "ready": {"notify": true, "bogus": 1}}`, "bogus"},
	} {
		resp, err := hc.Post("http://solo/v1/services", "application/json", strings.NewReader(c.body))
		require.NoError(t, err)
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body.String())
		assert.Contains(t, body.String(), c.says, c.body)
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")
}
