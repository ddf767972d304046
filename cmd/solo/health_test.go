package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// TestCLI_Health: --health-http on deploy and health in an apply file make
// ready services healthy, shown by ls (READY, healthy), status and why;
// malformed checks are refused naming the flag or field, through the CLI,
// apply files and raw HTTP, with nothing written.
func TestCLI_Health(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	mustCLI(t, dir, "deploy", "web", "--ready-http", url, "--health-http", url, "--health-interval", "500ms",
		"--health-timeout", "500ms", "--health-retries", "3", "--", "python3", "-m", "http.server", "--bind", "127.0.0.1", fmt.Sprint(port))
	file := filepath.Join(t.TempDir(), "svc.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`services:
  - name: probed
    command: [sleep, "1000"]
    health: {exec: ["true"], interval: 1s, timeout: 1s, retries: 3}
`), 0o644))
	mustCLI(t, dir, "apply", "-f", file)
	// Wait on the log's facts: both services' first service_health.
	require.Eventually(t, func() bool {
		return strings.Count(mustCLI(t, dir, "events", "--json"), `"service_health"`) == 2
	}, 30*time.Second, 20*time.Millisecond)

	var views []struct {
		Name    string `json:"name"`
		Ready   bool   `json:"ready"`
		Healthy *bool  `json:"healthy"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "ls", "--json")), &views))
	require.Len(t, views, 2)
	for _, v := range views {
		assert.True(t, v.Ready, v.Name)
		require.NotNil(t, v.Healthy, v.Name)
		assert.True(t, *v.Healthy, v.Name)
	}
	status := mustCLI(t, dir, "status", "web")
	assert.Contains(t, status, "health:")
	assert.Contains(t, status, "healthy since")
	assert.Contains(t, mustCLI(t, dir, "why", "probed"), "healthy at")

	before := mustCLI(t, dir, "events", "--json")
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--health-http", "ftp://h/"}, "--health-http"},
		{[]string{"--health-http", "not a url"}, "--health-http"},
		{[]string{"--health-tcp", "127.0.0.1:0"}, "--health-tcp: \"127.0.0.1:0\": port must be 1 to 65535"},
		{[]string{"--health-exec", ""}, "--health-exec"},
		{[]string{"--health-tcp", "h:1", "--health-interval", "0s"}, "--health-interval 0s: must be > 0"},
		{[]string{"--health-tcp", "h:1", "--health-interval", "1s", "--health-timeout", "2s"}, "--health-timeout: is 2s, above the interval 1s"},
		{[]string{"--health-tcp", "h:1", "--health-retries", "0"}, "--health-retries 0: must be at least 1"},
		{[]string{"--health-tcp", "h:1", "--health-http", "http://h/"}, "more than one probe"},
		{[]string{"--health-interval", "5s"}, "sets no probe"},
		{[]string{"--watchdog", "10s"}, "--watchdog: needs a notify service"},
		{[]string{"--notify", "--watchdog", "0s"}, "--watchdog 0s: must be > 0"},
	} {
		args := append(append([]string{"deploy", "x"}, c.args...), "--", "true")
		r := cli(t, dir, args...)
		assert.Equal(t, exitcode.Usage, r.code, "solo %v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, c.says, "solo %v", args)
	}
	for _, c := range []struct{ health, says string }{
		{`{tcp: "h:0"}`, "health.tcp"},
		{`{http: "ftp://h/"}`, "health.http"},
		{`{tcp: "h:1", interval: 0s}`, "health.interval: is 0s, must be > 0"},
		{`{tcp: "h:1", interval: 1s, timeout: 5s}`, "health.timeout"},
		{`{tcp: "h:1", retries: 0}`, "health.retries: is 0, must be at least 1"},
		{`{watchdog: 5s}`, "health.watchdog"},
		{`{tcp: "h:1", every: 5s}`, "health.every: unknown field"},
	} {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		require.NoError(t, os.WriteFile(bad, []byte("services:\n  - name: y\n    command: [\"true\"]\n    health: "+c.health+"\n"), 0o644))
		r := cli(t, dir, "apply", "-f", bad)
		assert.Equal(t, exitcode.Error, r.code, "%s: %s", c.health, r.stderr) // apply's contract for a refused file
		assert.Contains(t, r.stderr, c.says, c.health)
	}

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	for _, c := range []struct{ body, says string }{
		{`{"name": "x", "command": ["true"], "health": {"http": "not a url"}}`, "health.http"},
		{`{"name": "x", "command": ["true"], "health": {"tcp": "h:0"}}`, "health.tcp"},
		{`{"name": "x", "command": ["true"], "health": {"tcp": "h:1", "interval": "-1s"}}`, "health.interval"},
		{`{"name": "x", "command": ["true"], "health": {"tcp": "h:1", "interval": "1s", "timeout": "3s"}}`, "health.timeout"},
		{`{"name": "x", "command": ["true"], "health": {"tcp": "h:1", "retries": -1}}`, "health.retries"},
		{`{"name": "x", "command": ["true"], "health": {"watchdog": "5s"}}`, "health.watchdog"},
		{`{"name": "x", "command": ["true"], "health": {}}`, "health"},
		{`{"name": "x", "command": ["true"], "health": {"tcp": "h:1", "bogus": 1}}`, "bogus"},
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
