package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

var tcpAddrRE = regexp.MustCompile(`serving API on TCP: addr=(\S+)`)

// tcpAddr is the TCP address a daemon started with --listen 127.0.0.1:0
// logged before it was ready.
func (d *daemon) tcpAddr(t testing.TB) string {
	t.Helper()
	m := tcpAddrRE.FindStringSubmatch(d.logs.String())
	require.NotNil(t, m, "no TCP address in the daemon's logs:\n%s", d.logs)
	return m[1]
}

// cliEnv runs the real binary with extra environment variables.
func cliEnv(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(soloBin, append([]string{"--data-dir", dir}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("solo %v did not finish in 60s", args)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// TestToken_EndToEnd walks tokens through the real binary: grant on the
// socket, use over TCP, tenant isolation, bad tokens, revoke, restart, and
// a scan of the database and the event log for the plaintext.
func TestToken_EndToEnd(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir, "--listen", "127.0.0.1:0")
	addr := d.tcpAddr(t)

	var g wire.TokenGrant
	out := mustCLI(t, dir, "token", "grant", "--tenant", "acme", "--scope", "read,deploy,kill", "--ttl", "1h", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &g))
	require.NoError(t, capability.Validate(g.Token))
	assert.Equal(t, []string{"read", "deploy", "kill"}, g.Scopes)
	assert.Equal(t, time.Hour, g.ExpiresAt.Sub(g.CreatedAt))

	// The text form prints the token alone on its first line.
	r := cli(t, dir, "token", "grant", "--tenant", "acme", "--scope", "read", "--services", "web-*")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(r.stdout, "\n")
	require.NoError(t, capability.Validate(lines[0]))
	assert.Contains(t, r.stdout, "services:")
	assert.Contains(t, r.stderr, "shown once")
	patterned := lines[0]

	mustCLI(t, dir, "deploy", "secret", "--", "sleep", "1000") // tenant default, over the socket

	t.Run("TCP needs a token", func(t *testing.T) {
		r := cli(t, dir, "--addr", addr, "ls")
		assert.Equal(t, exitcode.Denied, r.code, r.stderr)
		assert.Contains(t, r.stderr, "no token")
	})

	t.Run("a token acts in its tenant only", func(t *testing.T) {
		out := mustCLI(t, dir, "--addr", addr, "--token", g.Token, "deploy", "web", "--tenant", "acme", "--", "sleep", "1000")
		assert.Contains(t, out, "acme/web")
		// SOLO_TOKEN is read too.
		r := cliEnv(t, dir, []string{"SOLO_TOKEN=" + g.Token}, "--addr", addr, "ls", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var views []state.ServiceView
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &views))
		require.Len(t, views, 1)
		assert.Equal(t, "acme", views[0].Tenant)

		r = cli(t, dir, "--addr", addr, "--token", g.Token, "status", "secret", "--tenant", "default")
		assert.Equal(t, exitcode.NotFound, r.code, "another tenant's service does not exist: %s", r.stderr)
		r = cli(t, dir, "--addr", addr, "--token", g.Token, "kill", "secret", "--tenant", "default")
		assert.Equal(t, exitcode.NotFound, r.code, r.stderr)
		r = cli(t, dir, "--addr", addr, "--token", g.Token, "logs", "web", "--tenant", "acme")
		assert.Equal(t, exitcode.Denied, r.code, r.stderr)
		assert.Contains(t, r.stderr, `lacks scope "logs"`)
		r = cli(t, dir, "--addr", addr, "--token", patterned, "ls")
		assert.Equal(t, exitcode.Denied, r.code, "a pattern-bound token cannot list the tenant: %s", r.stderr)
	})

	t.Run("bad tokens", func(t *testing.T) {
		for _, tok := range []string{"solo_abc", g.Token[:len(g.Token)-4], g.Token[:len(g.Token)-1] + flipChar(g.Token[len(g.Token)-1])} {
			r := cli(t, dir, "--addr", addr, "--token", tok, "ls")
			assert.Equal(t, exitcode.Denied, r.code, r.stderr)
			assert.NotContains(t, r.stderr+r.stdout, tok, "the token is not echoed")
		}
	})

	t.Run("token ls never shows a plaintext", func(t *testing.T) {
		out := mustCLI(t, dir, "token", "ls")
		assert.Contains(t, out, g.ID)
		assert.NotContains(t, out, capability.Prefix)
	})

	t.Run("usage", func(t *testing.T) {
		r := cli(t, dir, "token", "grant", "--tenant", "acme")
		assert.Equal(t, exitcode.Usage, r.code, r.stderr)
		r = cli(t, dir, "token", "revoke", g.Token)
		assert.Equal(t, exitcode.Usage, r.code, r.stderr)
		assert.NotContains(t, r.stderr, g.Token)
	})

	out = mustCLI(t, dir, "token", "revoke", g.ID)
	assert.Contains(t, out, "revoked "+g.ID)
	r = cli(t, dir, "--addr", addr, "--token", g.Token, "ls")
	assert.Equal(t, exitcode.Denied, r.code)
	assert.Contains(t, r.stderr, "revoked")

	// Restart: the revocation holds.
	d.signal(syscall.SIGTERM)
	require.Equal(t, 0, d.wait(30*time.Second), d.logs.String())
	d = startDaemon(t, dir, "--listen", "127.0.0.1:0")
	addr = d.tcpAddr(t)
	r = cli(t, dir, "--addr", addr, "--token", g.Token, "ls")
	assert.Equal(t, exitcode.Denied, r.code, r.stderr)
	assert.Contains(t, r.stderr, "revoked")

	events := mustCLI(t, dir, "events", "--json")
	assert.Contains(t, events, `"token_granted"`)
	assert.Contains(t, events, `"token_revoked"`)
	for _, pt := range []string{g.Token, patterned} {
		assert.NotContains(t, events, pt, "the event log holds a plaintext")
		assert.NotContains(t, d.logs.String(), pt, "the daemon's log holds a plaintext")
	}

	d.signal(syscall.SIGTERM)
	require.Equal(t, 0, d.wait(30*time.Second))
	db, err := os.ReadFile(filepath.Join(dir, "solo.db"))
	require.NoError(t, err)
	for _, pt := range []string{g.Token, patterned} {
		assert.False(t, bytes.Contains(db, []byte(pt)), "the database file holds a plaintext")
		assert.False(t, bytes.Contains(db, []byte(pt[len(capability.Prefix):])), "the database file holds a plaintext's body")
	}
}

// TestToken_RequireToken: with --require-token the socket's caller needs a
// token too.
func TestToken_RequireToken(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	var g wire.TokenGrant
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "token", "grant", "--scope", "admin", "--json")), &g))
	assert.Equal(t, state.DefaultTenant, g.Tenant)
	d.signal(syscall.SIGTERM)
	require.Equal(t, 0, d.wait(30*time.Second))

	startDaemon(t, dir, "--require-token", "--max-token-ttl", "2h")
	r := cli(t, dir, "ls")
	assert.Equal(t, exitcode.Denied, r.code, r.stderr)
	mustCLI(t, dir, "--token", g.Token, "ls")
	r = cli(t, dir, "--token", g.Token, "token", "grant", "--scope", "read", "--ttl", "3h")
	assert.Equal(t, exitcode.Error, r.code, "over --max-token-ttl: %s", r.stderr)
	assert.Contains(t, r.stderr, "exceeds maximum")

	r = cli(t, dir, "daemon", "--max-token-ttl", "-1h")
	assert.Equal(t, exitcode.Usage, r.code, r.stderr)
}

func flipChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
