package solo_test

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// healthEvents returns the service_health events of key in the log, in
// order, up to pos.
func healthEvents(t *testing.T, rt *solo.Runtime, key state.Key, upTo uint64) []state.Health {
	t.Helper()
	var out []state.Health
	for env, err := range rt.Store().ReadSubject(key.Tenant, key.Name, 1) {
		require.NoError(t, err)
		if env.Pos > upTo {
			break
		}
		if env.Type != string(state.TypeServiceHealth) || env.Tenant != key.Tenant || env.Subject != key.Name {
			continue
		}
		p, err := state.Decode(env)
		require.NoError(t, err)
		out = append(out, p.(state.Health))
	}
	return out
}

// TestHealth_Watchdog: a notify service written for systemd gets
// WATCHDOG_USEC, becomes ready, is healthy at its first WATCHDOG=1, and
// once it stops sending them is stopped as unhealthy and restarted: a new
// instance with a new pid. WATCHDOG=trigger restarts it at once.
func TestHealth_Watchdog(t *testing.T) {
	for _, tc := range []struct {
		name, after, reason string
	}{
		{"silent", "time.sleep(1000)", "no WATCHDOG=1 within 500ms"},
		{"trigger", `s.send(b"WATCHDOG=trigger"); time.sleep(1000)`, "WATCHDOG=trigger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := MustOpen(t, solo.Options{})
			ev := follow(t, rt, 0)
			key := state.Key{Tenant: "default", Name: "dog"}
			dir := t.TempDir()
			script := `import os, socket, time
open("usec", "w").write(os.environ.get("WATCHDOG_USEC", "unset"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
for i in range(3):
    s.send(b"WATCHDOG=1")
    time.sleep(0.05)
` + tc.after
			spec := solo.Spec{
				Name: "dog", Command: []string{"python3", "-c", script}, Dir: dir,
				Ready:  &state.ReadySpec{Notify: true},
				Health: &state.HealthSpec{Watchdog: state.Duration(500 * time.Millisecond)},
			}
			_, err := rt.Deploy(context.Background(), spec)
			require.NoError(t, err)

			_, p := ev.next(key, state.TypeServiceStarted)
			pid := p.(state.Started).PID
			ev.next(key, state.TypeServiceReady)
			_, p = ev.next(key, state.TypeServiceHealth)
			assert.Equal(t, state.Health{Generation: 1, Attempt: 1, PID: pid, Healthy: true}, p.(state.Health))
			_, p = ev.next(key, state.TypeServiceHealth)
			h := p.(state.Health)
			assert.False(t, h.Healthy)
			assert.Equal(t, pid, h.PID)
			assert.Contains(t, h.Reason, tc.reason)
			_, p = ev.next(key, state.TypeServiceExited)
			ex := p.(state.Exited)
			assert.Equal(t, pid, ex.PID)
			assert.Equal(t, state.ExitUnhealthy, ex.Reason)
			assert.Contains(t, ex.Error, tc.reason)
			assert.Equal(t, 1, ex.Restart, "the restart policy applies")
			assert.False(t, alive(pid))
			_, p = ev.next(key, state.TypeServiceStarted)
			st := p.(state.Started)
			assert.Equal(t, 2, st.Attempt)
			assert.NotEqual(t, pid, st.PID, "a new instance")

			usec, err := os.ReadFile(filepath.Join(dir, "usec"))
			require.NoError(t, err)
			assert.Equal(t, "500000", string(usec), "systemd's contract: WATCHDOG_USEC, the watchdog in microseconds")

			status, err := rt.Status("default", "dog")
			require.NoError(t, err)
			assert.Contains(t, status.UnhealthyReason, tc.reason)
			assert.False(t, status.LastUnhealthy.IsZero())
		})
	}
}

// TestHealth_HTTPUnhealthy: an HTTP service whose health endpoint starts
// failing (500 once a file exists) is restarted as unhealthy after its
// retries; its health changes are recorded once each, never per probe,
// and told by status, ls and why.
func TestHealth_HTTPUnhealthy(t *testing.T) {
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "web"}
	port := freePort(t)
	dir := t.TempDir()
	sick := filepath.Join(dir, "sick")
	script := fmt.Sprintf(`import os, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists(%q) else 200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", %d), H).serve_forever()`, sick, port)
	spec := solo.Spec{
		Name: "web", Command: []string{"python3", "-c", script}, Dir: dir,
		Ready: &state.ReadySpec{TCP: fmt.Sprintf("127.0.0.1:%d", port)},
		Health: &state.HealthSpec{
			HTTP:     fmt.Sprintf("http://127.0.0.1:%d/healthz", port),
			Interval: state.Duration(300 * time.Millisecond), Timeout: state.Duration(300 * time.Millisecond), Retries: 3,
		},
	}
	_, err := rt.Deploy(context.Background(), spec)
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	pid := p.(state.Started).PID
	ev.next(key, state.TypeServiceReady)
	_, p = ev.next(key, state.TypeServiceHealth)
	assert.True(t, p.(state.Health).Healthy)
	v := rt.List("default")
	require.Len(t, v, 1)
	require.NotNil(t, v[0].Healthy)
	assert.True(t, *v[0].Healthy)
	status, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Contains(t, status.Health, "healthy since")

	failures := rt.ProbeFailures()
	require.NoError(t, os.WriteFile(sick, nil, 0o644))
	_, p = ev.next(key, state.TypeServiceHealth)
	h := p.(state.Health)
	assert.False(t, h.Healthy)
	assert.Equal(t, pid, h.PID)
	assert.Contains(t, h.Reason, "500 Internal Server Error")
	_, p = ev.next(key, state.TypeServiceExited)
	ex := p.(state.Exited)
	assert.Equal(t, state.ExitUnhealthy, ex.Reason)
	assert.Equal(t, pid, ex.PID)
	assert.GreaterOrEqual(t, rt.ProbeFailures()-failures, uint64(3), "three failures in a row")
	start, p := ev.next(key, state.TypeServiceStarted)
	assert.NotEqual(t, pid, p.(state.Started).PID)

	// Many probes ran; two changes were recorded.
	hs := healthEvents(t, rt, key, start.Pos)
	require.Len(t, hs, 2, "one event per change, none per probe")
	assert.True(t, hs[0].Healthy)
	assert.False(t, hs[1].Healthy)

	lines, err := rt.Why("default", "web", 0)
	require.NoError(t, err)
	var said []string
	for _, l := range lines {
		said = append(said, l.Text)
	}
	story := strings.Join(said, "\n")
	assert.Contains(t, story, "healthy at")
	assert.Contains(t, story, "unhealthy at")
	assert.Contains(t, story, "stopped as unhealthy")
}

// TestHealth_ExecProbeAsTheService: exec probes, of readiness and of
// health, run as the service runs: its user, its env file, in its cgroup.
func TestHealth_ExecProbeAsTheService(t *testing.T) {
	needRoot(t)
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "probed"}
	tree := openTree(t)
	work := filepath.Join(tree, "work")
	require.NoError(t, os.Mkdir(work, 0o777))
	require.NoError(t, os.Chmod(work, 0o777))
	envFile := filepath.Join(tree, "app.env")
	require.NoError(t, os.WriteFile(envFile, []byte("PROBE_TAG=from-env-file\n"), 0o600))
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)

	probe := func(prefix string) []string {
		return []string{"sh", "-c", fmt.Sprintf(`id -u > %[1]s.uid; echo "$PROBE_TAG" > %[1]s.env; cat /proc/self/cgroup > %[1]s.cgroup`, prefix)}
	}
	_, err = rt.Deploy(context.Background(), solo.Spec{
		Name: "probed", Command: []string{"sleep", "1000"}, Dir: work, User: "nobody", EnvFile: []string{envFile},
		Ready: &state.ReadySpec{Exec: probe("ready")},
		// A timeout a loaded machine meets: a slow try would make it
		// unhealthy, which is not what this test is about.
		Health: &state.HealthSpec{Exec: probe("health"), Interval: state.Duration(time.Second), Timeout: state.Duration(time.Second)},
	})
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	pid := p.(state.Started).PID
	ev.next(key, state.TypeServiceReady)
	_, p = ev.next(key, state.TypeServiceHealth)
	require.True(t, p.(state.Health).Healthy)

	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	require.Contains(t, string(own), "/solo-", "the service runs in a cgroup of its own (this test needs cgroups)")
	for _, prefix := range []string{"ready", "health"} {
		read := func(ext string) string {
			b, err := os.ReadFile(filepath.Join(work, prefix+ext))
			require.NoError(t, err)
			return strings.TrimSpace(string(b))
		}
		assert.Equal(t, nobody.Uid, read(".uid"), "%s probe runs as the service's user", prefix)
		assert.Equal(t, "from-env-file", read(".env"), "%s probe has the service's env file", prefix)
		assert.Equal(t, strings.TrimSpace(string(own)), read(".cgroup"), "%s probe runs in the service's cgroup", prefix)
	}
}

// TestHealth_ExecProbeTimeoutLeavesNothing: an exec health probe that
// outlives its timeout is killed with its whole process group, a child
// it forked included; the failures make the service unhealthy.
func TestHealth_ExecProbeTimeoutLeavesNothing(t *testing.T) {
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "slowprobe"}
	dir := t.TempDir()
	_, err := rt.Deploy(context.Background(), solo.Spec{
		Name: "slowprobe", Command: []string{"sleep", "1000"}, Dir: dir,
		Health: &state.HealthSpec{
			Exec: []string{"sh", "-c", `sleep 1000 & echo $! >> ` + filepath.Join(dir, "pids") + `; echo $$ >> ` + filepath.Join(dir, "pids") + `; wait`},
			// The timeout must outlast the shell's start and its two
			// writes on a loaded machine, or a try is killed before it
			// writes a pid and there is nothing to check: one try of 2 s.
			Interval: state.Duration(2 * time.Second), Timeout: state.Duration(2 * time.Second), Retries: 1,
		},
	})
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceHealth)
	h := p.(state.Health)
	require.False(t, h.Healthy)
	assert.Contains(t, h.Reason, "timed out")
	ev.next(key, state.TypeServiceExited)
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	require.NoError(t, err)
	pids := strings.Fields(string(b))
	require.GreaterOrEqual(t, len(pids), 2, "a try's shell and its child")
	for _, s := range pids {
		var pid int
		fmt.Sscan(s, &pid)
		assert.False(t, alive(pid), "probe process %d is left behind", pid)
	}
}
