package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/wire"
)

// TestCLI_QuotaExitCode: a token's deploy over its tenant's quota exits 6
// with the limit named and when to retry, nothing written; removing a
// service lets the next one in.
func TestCLI_QuotaExitCode(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir, "--max-services-per-tenant", "1")
	var g wire.TokenGrant
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "token", "grant", "--tenant", "beta", "--scope", "read,deploy,kill", "--json")), &g))
	as := func(args ...string) result { return cli(t, dir, append([]string{"--token", g.Token}, args...)...) }

	r := as("deploy", "one", "--tenant", "beta", "--", "sleep", "1000")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	before := eventCount(t, dir)
	r = as("deploy", "two", "--tenant", "beta", "--", "sleep", "1000")
	assert.Equal(t, exitcode.Limited, r.code, r.stderr)
	assert.Contains(t, r.stderr, "tenant beta is at its quota of 1 services (max_services)")
	assert.Contains(t, r.stderr, "retry in 1m0s")
	assert.Equal(t, before, eventCount(t, dir), "a refused deploy wrote nothing")

	// The local admin is not bound by it.
	mustCLI(t, dir, "deploy", "admins", "--tenant", "beta", "--", "sleep", "1000")
	for _, name := range []string{"one", "admins"} {
		require.Equal(t, exitcode.OK, as("stop", name, "--tenant", "beta").code)
		require.Equal(t, exitcode.OK, as("rm", name, "--tenant", "beta").code)
	}
	r = as("deploy", "two", "--tenant", "beta", "--", "sleep", "1000")
	assert.Equal(t, exitcode.OK, r.code, "a removed service makes room: %s", r.stderr)

	// The tenant's policy: bad values refused naming them, nothing
	// written; its own quota replaces the daemon's.
	before = eventCount(t, dir)
	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--max-services", "-1"}, "max_services"},
		{[]string{"--max-tasks", "-2"}, "max_tasks"},
		{[]string{"--rate", "5"}, "burst"},
		{[]string{"--rate", "-1", "--burst", "3"}, "rate"},
	} {
		r := cli(t, dir, append([]string{"tenant", "set", "beta"}, tc.args...)...)
		assert.NotEqual(t, exitcode.OK, r.code, "%v", tc.args)
		assert.Contains(t, r.stderr, tc.field, "%v", tc.args)
	}
	assert.Equal(t, before, eventCount(t, dir), "a refused policy wrote nothing")
	r = as("deploy", "three", "--tenant", "beta", "--", "sleep", "1000")
	assert.Equal(t, exitcode.Limited, r.code, r.stderr)
	out := mustCLI(t, dir, "tenant", "set", "beta", "--max-services", "2")
	assert.Contains(t, out, "services 2 (its own), sessions 16 (the daemon's)")
	r = as("deploy", "three", "--tenant", "beta", "--", "sleep", "1000")
	assert.Equal(t, exitcode.OK, r.code, "its own quota of 2: %s", r.stderr)
}

// TestCLI_DaemonLimitFlags: negative quotas and rates, and a rate without
// a burst, are usage errors naming the flag; the daemon opens nothing.
func TestCLI_DaemonLimitFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--max-services-per-tenant", "-1"}, "--max-services-per-tenant"},
		{[]string{"--max-sessions-per-tenant", "-2"}, "--max-sessions-per-tenant"},
		{[]string{"--max-tasks-per-tenant", "-3"}, "--max-tasks-per-tenant"},
		{[]string{"--rate-per-tenant", "-1"}, "--rate-per-tenant"},
		{[]string{"--rate-per-token", "-0.5"}, "--rate-per-token"},
		{[]string{"--burst-per-token", "-1"}, "--burst-per-token"},
		{[]string{"--rate-per-token", "5", "--burst-per-token", "0"}, "--burst-per-token"},
		{[]string{"--rate-per-tenant", "5", "--burst-per-tenant", "0"}, "--burst-per-tenant"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := dataDir(t)
			r := cli(t, dir, append([]string{"daemon"}, tc.args...)...)
			assert.Equal(t, exitcode.Usage, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.flag)
			_, err := os.Stat(filepath.Join(dir, "solo.db"))
			assert.ErrorIs(t, err, os.ErrNotExist, "nothing opened or written")
		})
	}
}
