package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// hashCmd prints the sha256 of $PW, then sleeps: the service sees the
// value, its log holds only the hash.
var hashCmd = []string{"sh", "-c", `printf %s "$PW" | sha256sum; exec sleep 1000`}

func waitLogOf(t *testing.T, dir, name, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return strings.Contains(mustCLI(t, dir, "logs", name), want)
	}, 30*time.Second, 10*time.Millisecond, "log of %s never showed %s", name, want)
}

// sockDo sends one raw request on dir's socket.
func sockDo(t *testing.T, dir, method, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", filepath.Join(dir, "solo.sock"))
	}}}
	req, err := http.NewRequest(method, "http://solo"+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestCLI_SecretNeverLeaks: a secret set from stdin reaches a service
// (its hash in the log); a rotation with --restart-users reaches it at
// once (the new hash), and an apply file's {secret: NAME} too. Neither
// value is anywhere else: solo.db's raw bytes, the daemon's log, events,
// status, why, /metrics, a backup, any process's argv.
func TestCLI_SecretNeverLeaks(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	v1, v2 := "first-vault-value-8f3a1c", "second-vault-value-77d2e9"

	r := cliIn(t, dir, strings.NewReader(v1+"\n"), "secret", "set", "db-password")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "version 1")
	args := append([]string{"deploy", "hashy", "--env-secret", "PW=db-password", "--"}, hashCmd...)
	mustCLI(t, dir, args...)
	waitLogOf(t, dir, "hashy", sha256Hex(v1))

	file := filepath.Join(t.TempDir(), "app.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`services:
  - name: applied
    command: ["sh", "-c", "printf %s \"$PW\" | sha256sum; exec sleep 1000"]
    env: {PW: {secret: db-password}, OTHER: plain}
`), 0o600))
	mustCLI(t, dir, "apply", "-f", file)
	waitLogOf(t, dir, "applied", sha256Hex(v1))

	r = cliIn(t, dir, strings.NewReader(v2), "secret", "set", "db-password", "--restart-users")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "version 2")
	assert.Contains(t, r.stdout, "restarted: applied, hashy")
	waitLogOf(t, dir, "hashy", sha256Hex(v2))
	waitLogOf(t, dir, "applied", sha256Hex(v2))

	r = cliIn(t, dir, strings.NewReader(v2), "secret", "set", "db-password")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "used by: applied, hashy", "a set says who uses the secret")

	ls := mustCLI(t, dir, "secret", "ls")
	assert.Regexp(t, `default\s+db-password\s+3\s`, ls)
	waitRunning(t, dir, "default/hashy", "default/applied")

	backup := filepath.Join(t.TempDir(), "backup.db")
	mustCLI(t, dir, "db", "backup", backup)
	_, metrics := sockGet(t, dir, "/metrics")
	places := map[string]string{
		"events --json":        mustCLI(t, dir, "events", "--json"),
		"status --json":        mustCLI(t, dir, "status", "hashy", "--json"),
		"status":               mustCLI(t, dir, "status", "applied"),
		"why":                  mustCLI(t, dir, "why", "hashy"),
		"secret ls --json":     mustCLI(t, dir, "--json", "secret", "ls"),
		"/metrics":             metrics,
		"the daemon's log":     d.logs.String(),
		"solo.db":              string(mustRead(t, filepath.Join(dir, "solo.db"))),
		"the backup":           string(mustRead(t, backup)),
		"every process's argv": allCmdlines(),
	}
	assert.Contains(t, places["events --json"], `"type":"secret_set"`)
	assert.Contains(t, places["status --json"], `"PW": "db-password"`)
	assert.Regexp(t, `env secrets:\s+PW=db-password`, places["status"])
	for where, text := range places {
		for _, v := range []string{v1, v2} {
			assert.NotContains(t, text, v, "a secret's value in %s", where)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// allCmdlines is the argv of every process this test can see.
func allCmdlines() string {
	var b strings.Builder
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if c, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
			b.Write(c)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestCLI_SecretBadInput: an empty or oversized value, a missing file, a
// bad name, a reference to a missing secret at deploy: a clear error, a
// non-zero exit, nothing written; the same through raw HTTP.
func TestCLI_SecretBadInput(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	before := mustCLI(t, dir, "events", "--json")
	big := strings.Repeat("x", 64<<10+1)
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"secret", "set", "db"}, exitcode.Usage, "the value from stdin is empty"},
		{"\n", []string{"secret", "set", "db"}, exitcode.Usage, "the value from stdin is empty"},
		{big, []string{"secret", "set", "db"}, exitcode.Usage, "over 65536 bytes"},
		{"", []string{"secret", "set", "db", "--from-file", "/nonexistent/v"}, exitcode.Usage, "--from-file"},
		{"v", []string{"secret", "set", "Bad Name"}, exitcode.Usage, "NAME"},
		{"v", []string{"secret", "set"}, exitcode.Usage, "NAME"},
		{"", []string{"secret", "rm", "nothing"}, exitcode.NotFound, "secret nothing not found"},
		{"", []string{"deploy", "x", "--env-secret", "PW=nothing", "--", "true"}, exitcode.Error, "secret nothing not found"},
		{"", []string{"deploy", "x", "--env-secret", "PW", "--", "true"}, exitcode.Usage, "--env-secret PW: want KEY=NAME"},
		{"", []string{"deploy", "x", "--env-secret", "PW=a", "--env", "PW=b", "--", "true"}, exitcode.Error, "also in env"},
	} {
		r := cliIn(t, dir, strings.NewReader(c.stdin), c.args...)
		assert.Equal(t, c.code, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/v1/secrets/default/db", `{"value":""}`},
		{"PUT", "/v1/secrets/default/db", `{}`},
		{"PUT", "/v1/secrets/default/Bad%20Name", `{"value":"eA=="}`},
		{"PUT", "/v1/secrets/default/db", `{"value":"not base64!"}`},
		{"PUT", "/v1/secrets/default/db", `{"value":"eA==","extra":1}`},
	} {
		code, body := sockDo(t, dir, c.method, c.path, c.body)
		assert.Equal(t, http.StatusBadRequest, code, "%s %s %s: %s", c.method, c.path, c.body, body)
	}
	code, body := sockDo(t, dir, "DELETE", "/v1/secrets/default/nothing", "")
	assert.Equal(t, http.StatusNotFound, code, body)
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "nothing was written")
	_, err := os.Stat(filepath.Join(dir, "vault.key"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no key made for a refused set")
}

// TestCLI_VaultKeyLost: with its key file gone, the daemon starts, a
// service without secrets runs, one with secrets fails with "vault key
// missing", and the secrets are still listed. A key file others may read
// is refused at start.
func TestCLI_VaultKeyLost(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	cliIn(t, dir, strings.NewReader("lost-key-value"), "secret", "set", "db-password")
	mustCLI(t, dir, append([]string{"deploy", "hashy", "--env-secret", "PW=db-password", "--"}, hashCmd...)...)
	mustCLI(t, dir, "deploy", "plain", "--", "sleep", "1000")
	d.signal(syscall.SIGTERM)
	require.Equal(t, 0, d.wait(60*time.Second))
	require.NoError(t, os.Remove(filepath.Join(dir, "vault.key")))

	startDaemon(t, dir)
	waitRunning(t, dir, "default/plain")
	assert.Contains(t, mustCLI(t, dir, "why", "hashy"), "vault key missing")
	assert.Contains(t, mustCLI(t, dir, "secret", "ls"), "db-password")
	r := cliIn(t, dir, strings.NewReader("x"), "secret", "set", "other")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "vault key missing")
}

func TestCLI_VaultKeyFileRefused(t *testing.T) {
	dir := dataDir(t)
	key := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(key, make([]byte, 32), 0o644))
	d, err := spawnDaemon(dir, "--vault-key-file", key)
	require.NoError(t, err)
	d.t = t
	t.Cleanup(d.kill)
	assert.NotEqual(t, 0, d.wait(60*time.Second))
	assert.Contains(t, d.logs.String(), "chmod 600 "+key)
}
