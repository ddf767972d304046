package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
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

// The tests of this file run the real daemons operators move onto Solo:
// nginx, redis and postgres, from Debian's packages (make test-deps
// installs them). They fail, never skip, when one is missing.

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// need returns the path of a program the test cannot run without.
func need(t *testing.T, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	require.NoError(t, err, "%s is missing: run make test-deps", path)
	return p
}

// redisPing sends PING to a redis on port and reports whether it answered
// PONG.
func redisPing(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.TrimSpace(line) == "+PONG"
}

// httpGet fetches http://127.0.0.1:port/ and returns its body, "" on any
// error.
// childrenOf lists the children of pid, from the kernel's list of each
// of its threads' children.
func childrenOf(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func httpGet(port int) string {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: solo\r\n\r\n")
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestReal_Redis: restart gives a new pid that serves; stop survives a
// daemon SIGKILL; start brings it back; rm frees the name.
func TestReal_Redis(t *testing.T) {
	redis := need(t, "redis-server")
	dir := dataDir(t)
	d := startDaemon(t, dir)
	port := freePort(t)
	work := filepath.Join(dir, "redis")
	require.NoError(t, os.Mkdir(work, 0o700))
	mustCLI(t, dir, "deploy", "redis", "--dir", work, "--", redis,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
	first := runningPID(t, dir, "redis", 0)
	require.Eventually(t, func() bool { return redisPing(port) }, 60*time.Second, 20*time.Millisecond, "redis never served")
	// The empty argument is shown as a shell would need it.
	assert.Contains(t, mustCLI(t, dir, "status", "redis"), "--save '' --appendonly")

	mustCLI(t, dir, "restart", "redis")
	second := runningPID(t, dir, "redis", first)
	assert.False(t, alive(first), "the old redis %d still runs after restart", first)
	require.Eventually(t, func() bool { return redisPing(port) }, 60*time.Second, 20*time.Millisecond, "redis did not serve after restart")

	mustCLI(t, dir, "stop", "redis")
	assert.False(t, alive(second), "redis %d runs after stop", second)
	assert.Equal(t, state.StateKilled, statusOf(t, dir, "redis").State)

	d.kill()
	startDaemon(t, dir)
	v := statusOf(t, dir, "redis")
	assert.Equal(t, state.StateKilled, v.State, "a stopped service came back after a daemon crash")
	assert.Zero(t, v.PID)
	assert.False(t, redisPing(port), "redis serves after a stop and a daemon crash")

	mustCLI(t, dir, "start", "redis")
	runningPID(t, dir, "redis", second)
	require.Eventually(t, func() bool { return redisPing(port) }, 60*time.Second, 20*time.Millisecond, "redis did not serve after start")

	r := cli(t, dir, "rm", "redis")
	assert.NotEqual(t, 0, r.code, "rm of a running service succeeded")
	assert.Contains(t, r.stderr, "stop")
	mustCLI(t, dir, "stop", "redis")
	mustCLI(t, dir, "rm", "redis")
	assert.Equal(t, exitcode.NotFound, cli(t, dir, "status", "redis").code, "the removed service is still known")
	assert.NotContains(t, mustCLI(t, dir, "ls"), "redis")
	// The name is free: a new service of that name is a first deploy.
	mustCLI(t, dir, "deploy", "redis", "--", "sleep", "1000")
	runningPID(t, dir, "redis", 0)
}

// TestReal_NginxReload: solo signal nginx HUP makes nginx reload its
// configuration (its error log says so) with the master pid unchanged.
func TestReal_NginxReload(t *testing.T) {
	nginx := need(t, "nginx")
	dir := dataDir(t)
	d := startDaemon(t, dir)
	port := freePort(t)
	work := filepath.Join(dir, "nginx")
	require.NoError(t, os.Mkdir(work, 0o755))
	errorLog := filepath.Join(work, "error.log")
	conf := func(body string) {
		require.NoError(t, os.WriteFile(filepath.Join(work, "nginx.conf"), []byte(fmt.Sprintf(`
daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[2]s notice;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[3]d;
		location / { return 200 "%[4]s\n"; }
	}
}
`, work, errorLog, port, body)), 0o644))
	}
	conf("before")
	mustCLI(t, dir, "deploy", "nginx", "--", nginx, "-p", work, "-c", filepath.Join(work, "nginx.conf"))
	master := runningPID(t, dir, "nginx", 0)
	// nginx writes its process title over its environment, marker
	// included, so the harness's marker sweep cannot find it: kill its
	// group (Solo made the master its leader) when the test ends.
	t.Cleanup(func() { syscall.Kill(-master, syscall.SIGKILL) })
	require.Eventually(t, func() bool { return strings.Contains(httpGet(port), "before") }, 60*time.Second, 20*time.Millisecond, "nginx never served")

	// A reload starts new workers and lets the old ones finish: until
	// they have exited, a request may still reach one and be answered
	// from the old configuration. The reload is done when they are gone.
	oldWorkers := childrenOf(master)
	require.NotEmpty(t, oldWorkers, "nginx's master has no workers")
	conf("after")
	mustCLI(t, dir, "signal", "nginx", "HUP")
	require.Eventually(t, func() bool {
		for _, w := range oldWorkers {
			if slices.Contains(childrenOf(master), w) {
				return false
			}
		}
		return strings.Contains(httpGet(port), "after")
	}, 60*time.Second, 20*time.Millisecond, "nginx did not reload its configuration")
	b, err := os.ReadFile(errorLog)
	require.NoError(t, err)
	assert.Contains(t, string(b), "reconfiguring", "nginx's log does not say it reloaded")
	v := statusOf(t, dir, "nginx")
	assert.Equal(t, master, v.PID, "the master pid changed: nginx was restarted, not reloaded")
	assert.Equal(t, state.StateRunning, v.State)
	assert.Zero(t, v.Restarts)
	assert.Contains(t, mustCLI(t, dir, "events", "--service", "nginx"), "service_signalled")

	r := cli(t, dir, "signal", "nginx", "NOSUCH")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "NOSUCH")

	// nginx overwrites its environment (its process title), so only the
	// recorded identity can tell it is ours: a daemon crash re-adopts the
	// same master, never starts a second nginx beside it.
	d.kill()
	startDaemon(t, dir)
	v = statusOf(t, dir, "nginx")
	assert.Equal(t, state.StateRunning, v.State)
	assert.Equal(t, master, v.PID, "nginx was not re-adopted after a daemon crash")
	assert.Contains(t, httpGet(port), "after")
	mustCLI(t, dir, "stop", "nginx")
	assert.False(t, alive(master), "nginx runs after stop")
	assert.Empty(t, httpGet(port), "something still serves nginx's port after stop")
}

// TestReal_PostgresAsUser: postgres runs as user postgres, on a data dir
// owned by it, and serves.
func TestReal_PostgresAsUser(t *testing.T) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	require.NotEmpty(t, found, "postgres is missing: run make test-deps")
	bin := filepath.Dir(found[len(found)-1])
	postgres := need(t, filepath.Join(bin, "postgres"))
	initdb := need(t, filepath.Join(bin, "initdb"))
	pgIsReady := need(t, "pg_isready")
	u, err := user.Lookup("postgres")
	require.NoError(t, err, "no user postgres: run make test-deps")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	dir := dataDir(t)
	startDaemon(t, dir)
	pg, err := os.MkdirTemp("", "solo-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(pg) })
	require.NoError(t, os.Chown(pg, uid, gid))
	data := filepath.Join(pg, "data")
	init := exec.Command(initdb, "-D", data, "--auth=trust", "-U", "postgres")
	init.Dir = pg
	init.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := init.CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)

	port := freePort(t)
	mustCLI(t, dir, "deploy", "postgres", "--user", "postgres", "--dir", pg, "--stop-signal", "INT", "--",
		postgres, "-D", data, "-k", pg, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1")
	pid := runningPID(t, dir, "postgres", 0)
	require.Eventually(t, func() bool {
		return exec.Command(pgIsReady, "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run() == nil
	}, 60*time.Second, 50*time.Millisecond, "postgres never accepted connections:\n%s", mustCLI(t, dir, "logs", "postgres"))
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	assert.Regexp(t, fmt.Sprintf(`(?m)^Uid:\s+%d\s+%d\s`, uid, uid), string(st), "postgres does not run as user postgres")
	assert.Contains(t, mustCLI(t, dir, "status", "postgres"), "postgres")

	mustCLI(t, dir, "stop", "postgres")
	assert.False(t, alive(pid))
	assert.Contains(t, mustCLI(t, dir, "logs", "postgres"), "database system is shut down", "postgres was not stopped cleanly by its stop signal")
}
