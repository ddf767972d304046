package solo_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// freePort returns a loopback port nothing listens on (for now).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// slowHTTP is a service that listens on port only after 1.5s.
func slowHTTP(name string, port int, dir string) solo.Spec {
	script := fmt.Sprintf(`import time, http.server
time.sleep(1.5)
http.server.HTTPServer(("127.0.0.1", %d), http.server.SimpleHTTPRequestHandler).serve_forever()`, port)
	return solo.Spec{Name: name, Command: []string{"python3", "-c", script}, Dir: dir}
}

func TestReady_HTTPProbe(t *testing.T) {
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "web"}
	port := freePort(t)
	spec := slowHTTP("web", port, t.TempDir())
	spec.Ready = &state.ReadySpec{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	_, err := rt.Deploy(context.Background(), spec)
	require.NoError(t, err)

	started, p := ev.next(key, state.TypeServiceStarted)
	pid := p.(state.Started).PID
	st, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, state.StateStarting, st.State, "running but not listening yet")
	assert.False(t, st.Ready)
	assert.Contains(t, st.Readiness, "waiting for GET")

	ready, p := ev.next(key, state.TypeServiceReady)
	r := p.(state.Ready)
	assert.Equal(t, pid, r.PID)
	assert.Equal(t, 1, r.Attempt)
	assert.GreaterOrEqual(t, r.After.Std(), 1500*time.Millisecond, "ready no sooner than it listens")
	assert.GreaterOrEqual(t, ready.Time.Sub(started.Time), 1500*time.Millisecond)

	st, err = rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	assert.True(t, st.Ready)
	after := "ready after " + r.After.Std().Round(100*time.Millisecond).String()
	assert.Equal(t, after, st.Readiness)
	lines, err := rt.Why("default", "web", 0)
	require.NoError(t, err)
	var said []string
	for _, l := range lines {
		said = append(said, l.Text)
	}
	assert.Contains(t, fmt.Sprint(said), after)
}

func TestReady_Notify(t *testing.T) {
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "sd"}
	script := `import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"STATUS=serving requests\nREADY=1")
time.sleep(1000)`
	spec := solo.Spec{Name: "sd", Command: []string{"python3", "-c", script}, Ready: &state.ReadySpec{Notify: true}}
	_, err := rt.Deploy(context.Background(), spec)
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	pid := p.(state.Started).PID
	_, p = ev.next(key, state.TypeServiceReady)
	assert.Equal(t, pid, p.(state.Ready).PID)
	st, err := rt.Status("default", "sd")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	assert.Equal(t, "serving requests", st.NotifyStatus)
	v := rt.List("default")
	require.Len(t, v, 1)
	assert.True(t, v[0].Ready)
}

func TestReady_TimeoutIsAFailedStart(t *testing.T) {
	rt := MustOpen(t, solo.Options{})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "mute"}
	spec := sleeper("mute")
	spec.Restart = state.RestartOnFailure
	one := 1
	spec.MaxRestarts = &one
	spec.Ready = &state.ReadySpec{TCP: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Timeout: state.Duration(300 * time.Millisecond)}
	_, err := rt.Deploy(context.Background(), spec)
	require.NoError(t, err)

	for attempt := 1; attempt <= 2; attempt++ {
		_, p := ev.next(key, state.TypeServiceStarted)
		pid := p.(state.Started).PID
		_, p = ev.next(key, state.TypeServiceExited)
		ex := p.(state.Exited)
		assert.Equal(t, pid, ex.PID)
		assert.Equal(t, attempt, ex.Attempt)
		assert.Contains(t, ex.Error, "not ready within 300ms")
		assert.False(t, alive(pid), "the instance is stopped")
	}
	ev.next(key, state.TypeServiceFailed)
	st, err := rt.Status("default", "mute")
	require.NoError(t, err)
	assert.Equal(t, state.StateFailed, st.State)
	assert.False(t, st.Ready)
}
