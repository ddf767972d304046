package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// mustBeRoot fails, never skips, a test that needs root: tenants run as
// users of their own only under a root daemon. The suite runs as root.
func mustBeRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("tenant isolation needs a root daemon: run the tests as root (CI does)")
	}
}

// uidOf reads the real uid of a live process.
func uidOf(t *testing.T, pid int) uint32 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			n, err := strconv.ParseUint(strings.Fields(rest)[0], 10, 32)
			require.NoError(t, err)
			return uint32(n)
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return 0
}

// tenantView reads a tenant's policy and dynamic user as the local admin.
func tenantView(t *testing.T, dir, tenant string) wire.TenantView {
	t.Helper()
	var v wire.TenantView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "tenant", "show", tenant, "--json")), &v))
	return v
}

// TestIsolation_TenantAttack is the attack of issue 16: a deploy token of
// tenant beta deploys a service that reads tenant alpha's log, alpha's
// password from solo.db, alpha's log dir, the environ of alpha's process,
// the vault key, connects to the daemon's socket and signals alpha's
// process. The operating system refuses every step (beta runs as its own
// dynamic user); `solo logs thief --tenant beta` shows the refusals and
// nothing of alpha's; alpha's service lives on; and the thief wrote
// nothing through the API: the log holds no event but those of the two
// deploys and their starts.
func TestIsolation_TenantAttack(t *testing.T) {
	mustBeRoot(t)
	dir := dataDir(t)
	startDaemon(t, dir)
	alpha := grantToken(t, dir, "alpha", "read,deploy,logs")
	beta := grantToken(t, dir, "beta", "read,deploy,logs")

	r := cli(t, dir, "--token", alpha, "deploy", "sec", "--tenant", "alpha", "--dir", "/", "--env", "PW=alpha-pass",
		"--", "sh", "-c", "echo alpha-secret-line; exec sleep 1000")
	require.Equal(t, 0, r.code, r.stderr)
	require.Eventually(t, func() bool {
		return strings.Contains(mustCLI(t, dir, "--token", alpha, "logs", "sec", "--tenant", "alpha"), "alpha-secret-line")
	}, 30*time.Second, 10*time.Millisecond)
	victim := waitRunning(t, dir, "alpha/sec")["alpha/sec"].PID
	// The vault key exists (0600) once a secret was set.
	cliIn(t, dir, strings.NewReader("v"), "secret", "set", "k")
	require.FileExists(t, filepath.Join(dir, "vault.key"))

	script := strings.Join([]string{
		"cat DATA/logs/alpha/sec.log | head -2",
		"strings DATA/solo.db | grep -o alpha-pass",
		"ls DATA/logs/alpha && echo LISTED-ALPHA",
		"cat /proc/VICTIM/environ && echo READ-ENVIRON",
		"cat DATA/solo.db > /dev/null && echo READ-DB",
		"cat DATA/vault.key > /dev/null && echo READ-KEY",
		"/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"DATA/solo.sock\"); print(\"CONNECTED\")'",
		"kill -TERM VICTIM && echo SIGNALLED",
		"echo THIEF-DONE; exec sleep 1000",
	}, "; ")
	script = strings.NewReplacer("DATA", dir, "VICTIM", strconv.Itoa(victim)).Replace(script)
	r = cli(t, dir, "--token", beta, "deploy", "thief", "--tenant", "beta", "--dir", "/", "--", "bash", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)
	var out string
	require.Eventually(t, func() bool {
		out = mustCLI(t, dir, "--token", beta, "logs", "thief", "--tenant", "beta")
		return strings.Contains(out, "THIEF-DONE")
	}, 30*time.Second, 10*time.Millisecond)

	t.Logf("the thief's log:\n%s", out)
	assert.NotContains(t, out, "alpha-secret-line", "beta read alpha's log")
	assert.NotContains(t, out, "alpha-pass", "beta read alpha's password")
	for _, step := range []string{"LISTED-ALPHA", "READ-ENVIRON", "READ-DB", "READ-KEY", "CONNECTED", "SIGNALLED"} {
		assert.NotContains(t, out, step, "the OS let beta do it")
	}
	assert.Contains(t, out, "logs/alpha/sec.log: Permission denied")
	assert.Contains(t, out, "solo.db: Permission denied")
	assert.Contains(t, out, "logs/alpha': Permission denied")
	assert.Contains(t, out, fmt.Sprintf("/proc/%d/environ: Permission denied", victim))
	assert.Contains(t, out, "vault.key: Permission denied")
	assert.Contains(t, out, "PermissionError", "connect to the daemon's socket")
	assert.Contains(t, out, "Operation not permitted", "kill -TERM alpha's process")

	// Beta runs as its dynamic user, alpha as another; neither is root nor
	// in the passwd file.
	views := waitRunning(t, dir, "alpha/sec", "beta/thief")
	require.Equal(t, victim, views["alpha/sec"].PID, "alpha's service was not disturbed")
	a, b := tenantView(t, dir, "alpha"), tenantView(t, dir, "beta")
	assert.Equal(t, a.DynamicUID, uidOf(t, victim))
	assert.Equal(t, b.DynamicUID, uidOf(t, views["beta/thief"].PID))
	assert.NotEqual(t, a.DynamicUID, b.DynamicUID)

	// Nothing written through the API by the thief: every event after the
	// grants is one of the two deploys, the secret, the dynamic users or
	// the services' starts.
	for line := range strings.Lines(mustCLI(t, dir, "events", "--json")) {
		var env struct {
			Type, Tenant, Subject string
		}
		require.NoError(t, json.Unmarshal([]byte(line), &env))
		switch state.EventType(env.Type) {
		case state.TypeServiceDeployed, state.TypeServiceStarted:
			assert.Contains(t, []string{"alpha/sec", "beta/thief"}, env.Tenant+"/"+env.Subject)
		case state.TypeSystemStarted, state.TypeTokenGranted, state.TypeSecretSet, state.TypeTenantUserAllocated:
		default:
			t.Errorf("unexpected event %s %s/%s", env.Type, env.Tenant, env.Subject)
		}
	}

	// The modes behind it.
	for path, want := range map[string]os.FileMode{
		dir: 0o711, filepath.Join(dir, "solo.db"): 0o600, filepath.Join(dir, "vault.key"): 0o600,
		filepath.Join(dir, "solo.sock"): 0o600, filepath.Join(dir, "logs"): 0o700,
		filepath.Join(dir, "logs", "alpha"): 0o700, filepath.Join(dir, "logs", "alpha", "sec.log"): 0o600,
	} {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, want, fi.Mode().Perm(), path)
	}
}

// TestIsolation_DynamicUser: two tenants without a policy get different
// dynamic uids of 61184-65519, not in the passwd file, never root; each is
// recorded once and the same after a daemon restart.
func TestIsolation_DynamicUser(t *testing.T) {
	mustBeRoot(t)
	dir := dataDir(t)
	d := startDaemon(t, dir)
	for _, tenant := range []string{"one", "two"} {
		mustCLI(t, dir, "deploy", "s", "--tenant", tenant, "--dir", "/", "--", "sleep", "1000")
	}
	views := waitRunning(t, dir, "one/s", "two/s")
	one, two := tenantView(t, dir, "one"), tenantView(t, dir, "two")
	for _, v := range []wire.TenantView{one, two} {
		assert.GreaterOrEqual(t, v.DynamicUID, uint32(state.DynamicUIDMin))
		assert.LessOrEqual(t, v.DynamicUID, uint32(state.DynamicUIDMax))
		assert.Equal(t, v.DynamicUID, v.DynamicGID)
		_, err := user.LookupId(strconv.FormatUint(uint64(v.DynamicUID), 10))
		assert.Error(t, err, "uid %d is in the passwd file", v.DynamicUID)
	}
	assert.NotEqual(t, one.DynamicUID, two.DynamicUID)
	assert.Equal(t, one.DynamicUID, uidOf(t, views["one/s"].PID))
	assert.Equal(t, two.DynamicUID, uidOf(t, views["two/s"].PID))

	d.signal(syscall.SIGTERM)
	require.Equal(t, 0, d.wait(30*time.Second))
	startDaemon(t, dir)
	views = waitRunning(t, dir, "one/s", "two/s")
	assert.Equal(t, one, tenantView(t, dir, "one"))
	assert.Equal(t, two, tenantView(t, dir, "two"))
	assert.Equal(t, one.DynamicUID, uidOf(t, views["one/s"].PID), "after a restart")
	n := strings.Count(mustCLI(t, dir, "events", "--json"), `"type":"tenant_user_allocated"`)
	assert.Equal(t, 2, n, "each tenant's dynamic user is recorded once")

	// The local admin's default tenant keeps running as the daemon's user.
	mustCLI(t, dir, "deploy", "admin", "--", "sleep", "1000")
	assert.Equal(t, uint32(0), uidOf(t, waitRunning(t, dir, "default/admin")["default/admin"].PID))
}

// TestIsolation_Policy: with a policy allowing nobody, a tenant's token
// deploys as nobody (its default, and by name); a user outside the policy
// (root, daemon) is refused 403 naming it, exit 4, nothing written, for
// the local admin deploying into that tenant too; a group outside it
// likewise.
func TestIsolation_Policy(t *testing.T) {
	mustBeRoot(t)
	dir := dataDir(t)
	startDaemon(t, dir)
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	mustCLI(t, dir, "tenant", "set", "gamma", "--users", "nobody")
	tok := grantToken(t, dir, "gamma", "read,deploy")

	mustCLI(t, dir, "--token", tok, "deploy", "dflt", "--tenant", "gamma", "--dir", "/", "--", "sleep", "1000")
	mustCLI(t, dir, "--token", tok, "deploy", "named", "--tenant", "gamma", "--dir", "/", "--user", "nobody", "--", "sleep", "1000")
	views := waitRunning(t, dir, "gamma/dflt", "gamma/named")
	for _, k := range []string{"gamma/dflt", "gamma/named"} {
		assert.Equal(t, nobody.Uid, strconv.FormatUint(uint64(uidOf(t, views[k].PID)), 10), k)
	}
	assert.Zero(t, tenantView(t, dir, "gamma").DynamicUID, "a policy with users needs no dynamic user")

	before := mustCLI(t, dir, "events", "--json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", tok, "deploy", "x", "--tenant", "gamma", "--dir", "/", "--user", "root", "--", "sleep", "1"}, `user "root" is not in tenant gamma's policy`},
		{[]string{"--token", tok, "deploy", "x", "--tenant", "gamma", "--dir", "/", "--user", "daemon", "--", "sleep", "1"}, `user "daemon" is not in tenant gamma's policy`},
		{[]string{"deploy", "x", "--tenant", "gamma", "--dir", "/", "--user", "root", "--", "sleep", "1"}, `user "root" is not in tenant gamma's policy`},
		{[]string{"--token", tok, "deploy", "x", "--tenant", "gamma", "--dir", "/", "--group", "root", "--", "sleep", "1"}, `group "root" is not in tenant gamma's policy`},
		// A tenant without a policy: not even its dynamic user is recorded.
		{[]string{"deploy", "x", "--tenant", "delta", "--dir", "/", "--user", "root", "--", "sleep", "1"}, `user "root" is not in tenant delta's policy (users: none)`},
	} {
		r := cli(t, dir, tc.args...)
		assert.Equal(t, exitcode.Denied, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want)
	}
	// An apply file likewise, naming the entry.
	file := filepath.Join(t.TempDir(), "svc.yaml")
	require.NoError(t, os.WriteFile(file, []byte("services:\n  - tenant: gamma\n    name: y\n    dir: /\n    user: daemon\n    command: [sleep, \"1\"]\n"), 0o600))
	r := cli(t, dir, "apply", "-f", file)
	assert.Equal(t, exitcode.Denied, r.code, r.stderr)
	assert.Contains(t, r.stderr, `user "daemon" is not in tenant gamma's policy`)
	// The same through raw HTTP: 403 naming the user.
	code, body := sockDo(t, dir, "POST", "/v1/services", `{"tenant":"gamma","name":"x","command":["sleep","1"],"dir":"/","user":"root"}`)
	assert.Equal(t, 403, code, body)
	assert.Contains(t, body, `user \"root\"`)
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "a refused deploy wrote events")
}

// TestIsolation_Session: a kernel session of tenant beta, created with
// beta's token, runs as beta's dynamic user: its code cannot read solo.db,
// alpha's session or alpha's log, nor signal alpha's kernel; its
// checkpoint and restore still work (the daemon hands each pickle file to
// the kernel).
func TestIsolation_Session(t *testing.T) {
	mustBeRoot(t)
	py := kerneltest.Python(t)
	dir := dataDir(t)
	startDaemon(t, dir)
	alpha := grantToken(t, dir, "alpha", "read,deploy")
	beta := grantToken(t, dir, "beta", "read,deploy,logs")
	mustCLI(t, dir, "--token", alpha, "session", "create", "nb", "--tenant", "alpha", "--python", py)
	mustCLI(t, dir, "--token", beta, "session", "create", "nb", "--tenant", "beta", "--python", py)
	victim := waitRunning(t, dir, "alpha/session.nb")["alpha/session.nb"].PID

	b := tenantView(t, dir, "beta")
	require.NotZero(t, b.DynamicUID)
	exec := func(code string) string {
		return mustCLI(t, dir, "--token", beta, "exec", "nb", "--tenant", "beta", "--wait", "--", code)
	}
	assert.Equal(t, fmt.Sprintf("%d %d\n", b.DynamicUID, b.DynamicUID), exec("import os\nprint(os.getuid(), os.getgid())"))
	probe := `import os, signal
for p in [%q, %q, %q, %q]:
    try:
        open(p).read() if not os.path.isdir(p) else os.listdir(p)
        print("READ", p)
    except PermissionError:
        print("denied", p)
try:
    os.kill(%d, signal.SIGTERM)
    print("SIGNALLED")
except PermissionError:
    print("denied kill")`
	out := exec(fmt.Sprintf(probe, filepath.Join(dir, "solo.db"), filepath.Join(dir, "sessions", "alpha", "nb", "kernel.json"),
		filepath.Join(dir, "sessions", "alpha", "nb", "kernels"), filepath.Join(dir, "logs"), victim))
	assert.Equal(t, 5, strings.Count(out, "denied"), out)
	assert.NotContains(t, out, "READ")
	assert.NotContains(t, out, "SIGNALLED")

	exec("x = 41")
	assert.Contains(t, mustCLI(t, dir, "--token", beta, "session", "checkpoint", "nb", "one", "--tenant", "beta"), "saved 2 names (p, x)")
	exec("x = 0")
	mustCLI(t, dir, "--token", beta, "session", "restore", "nb", "one", "--tenant", "beta")
	assert.Equal(t, "42\n", exec("x + 1"))
}

// TestIsolation_NotifyStamperProbe: what a service needs of the daemon
// still works when it runs as its tenant's dynamic user: the notify socket
// under the data dir (READY=1 reaches it), the log stamper (it runs as the
// daemon's user; the service writes into its pipe), and an exec probe,
// which runs as the service (this one is ready only when not root).
func TestIsolation_NotifyStamperProbe(t *testing.T) {
	mustBeRoot(t)
	dir := dataDir(t)
	startDaemon(t, dir)
	bin, err := os.MkdirTemp("", "solo-probe-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(bin) })
	require.NoError(t, os.Chmod(bin, 0o755))
	notRoot := filepath.Join(bin, "not-root")
	require.NoError(t, os.WriteFile(notRoot, []byte("#!/bin/sh\n[ \"$(id -u)\" -ne 0 ]\n"), 0o755))
	tok := grantToken(t, dir, "beta", "read,deploy,logs")

	mustCLI(t, dir, "--token", tok, "deploy", "sd", "--tenant", "beta", "--dir", "/", "--notify", "--ready-timeout", "30s",
		"--log-timestamps", "--", "/usr/bin/python3", "-c", "print('stamped', flush=True)\n"+notifyScript)
	mustCLI(t, dir, "--token", tok, "deploy", "probed", "--tenant", "beta", "--dir", "/", "--ready-exec", notRoot,
		"--ready-timeout", "30s", "--", "sleep", "1000")
	require.Eventually(t, func() bool {
		return strings.Count(mustCLI(t, dir, "events", "--json"), `"service_ready"`) == 2
	}, 30*time.Second, 20*time.Millisecond, "both services become ready")
	uid := tenantView(t, dir, "beta").DynamicUID
	views := waitRunning(t, dir, "beta/sd", "beta/probed")
	assert.Equal(t, uid, uidOf(t, views["beta/sd"].PID))
	assert.Equal(t, uid, uidOf(t, views["beta/probed"].PID))
	assert.Regexp(t, `(?m)^\d{4}-\d\d-\d\dT\S+ stamped$`, mustCLI(t, dir, "--token", tok, "logs", "sd", "--tenant", "beta"))
}
