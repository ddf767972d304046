package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// TestCLI_TenantPolicy: the local admin sets, shows and lists policies; a
// set changes only the fields given; an unknown or root user or group is
// refused naming it, through the CLI and raw HTTP, with nothing written;
// every token, even of scope admin, gets 403 (exit 4).
func TestCLI_TenantPolicy(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)

	var v wire.TenantView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "--json", "tenant", "set", "alpha", "--users", "nobody", "--groups", "nogroup")), &v))
	assert.Equal(t, wire.TenantView{Name: "alpha", Policy: true, Users: []string{"nobody"}, Groups: []string{"nogroup"}, PolicySetAt: v.PolicySetAt,
		Limits: state.Limits{Services: defaultMaxServices, Sessions: defaultMaxSessions, Tasks: defaultMaxTasks}}, v, "the daemon's quotas in force")
	mustCLI(t, dir, "tenant", "set", "alpha", "--groups", "")
	out := mustCLI(t, dir, "tenant", "show", "alpha")
	assert.Contains(t, out, "users:   nobody\n", "a set of --groups keeps the users")
	assert.Contains(t, out, "groups:  -\n")
	assert.Contains(t, mustCLI(t, dir, "tenant", "show", "gamma"), "policy:  none")
	var list []wire.TenantView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "tenant", "ls", "--json")), &list))
	require.Len(t, list, 1)
	assert.Equal(t, "alpha", list[0].Name)

	before := mustCLI(t, dir, "events", "--json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--users", "nobody,no-such-user-x1"}, `"no-such-user-x1"`},
		{[]string{"--users", "root"}, `"root" is root`},
		{[]string{"--users", "0"}, `"0" is root`},
		{[]string{"--groups", "no-such-group-x1"}, `"no-such-group-x1"`},
		{[]string{"--groups", "root"}, `"root" is root's`},
		{[]string{"--users", "nobody,nobody"}, "listed twice"},
	} {
		r := cli(t, dir, append([]string{"tenant", "set", "alpha"}, tc.args...)...)
		assert.Equal(t, exitcode.Error, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
	r := cli(t, dir, "tenant", "set", "alpha")
	assert.Equal(t, exitcode.Usage, r.code, "no flag: %s", r.stderr)
	r = cli(t, dir, "tenant", "set", "Alpha!", "--users", "nobody")
	assert.Equal(t, exitcode.Usage, r.code, r.stderr)

	code, body := sockDo(t, dir, http.MethodPut, "/v1/tenants/alpha", `{"users":["no-such-user-x2"]}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "no-such-user-x2")
	code, body = sockDo(t, dir, http.MethodPut, "/v1/tenants/alpha", `{"users":"nobody"}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, body = sockDo(t, dir, http.MethodPut, "/v1/tenants/alpha", `{"user":["nobody"]}`)
	assert.Equal(t, http.StatusBadRequest, code, "an unknown field: %s", body)

	for _, tenant := range []string{"alpha", "beta", "default"} {
		var g wire.TokenGrant
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "token", "grant", "--tenant", tenant, "--scope", "admin", "--json")), &g))
		before = mustCLI(t, dir, "events", "--json")
		for _, args := range [][]string{
			{"tenant", "set", tenant, "--users", "nobody"},
			{"tenant", "set", "alpha", "--users", "nobody"},
			{"tenant", "show", tenant},
			{"tenant", "ls"},
		} {
			r := cli(t, dir, append([]string{"--token", g.Token}, args...)...)
			assert.Equal(t, exitcode.Denied, r.code, "token of %s: %v: %s", tenant, args, r.stderr)
			assert.Contains(t, r.stderr, "only the local admin")
		}
		assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "a token's tenant set wrote events")
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "bad input wrote events")
}
