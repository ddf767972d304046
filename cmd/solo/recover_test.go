package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
	"github.com/solo-rt/solo/recovery"
)

func TestCLI_RecoverAndVerify(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	mustCLI(t, dir, "deploy", "flaky", "--max-restarts", "0", "--", "sh", "-c", "exit 1")
	require.Eventually(t, func() bool {
		var v state.ServiceView
		json.Unmarshal([]byte(mustCLI(t, dir, "status", "flaky", "--json")), &v)
		return v.State == state.StateFailed
	}, 30*time.Second, 20*time.Millisecond)

	var plan wire.RecoverResult
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "recover", "--dry-run", "--json")), &plan))
	require.Len(t, plan.Items, 1)
	assert.Equal(t, "flaky", plan.Items[0].Name)
	assert.Equal(t, state.StateFailed, plan.Items[0].State)
	assert.Contains(t, mustCLI(t, dir, "status", "flaky"), "failed", "a dry run changed something")

	assert.Contains(t, mustCLI(t, dir, "recover", "flaky"), "recovered")
	require.Eventually(t, func() bool {
		var v state.ServiceView
		json.Unmarshal([]byte(mustCLI(t, dir, "status", "flaky", "--json")), &v)
		return v.Restarts >= 1
	}, 30*time.Second, 20*time.Millisecond, "recover did not start it again")

	r := cli(t, dir, "recover", "ghost")
	assert.Equal(t, exitcode.NotFound, r.code, r.stderr)

	mustCLI(t, dir, "deploy", "steady", "--", "sleep", "1000")
	require.Eventually(t, func() bool {
		var v state.ServiceView
		json.Unmarshal([]byte(mustCLI(t, dir, "status", "steady", "--json")), &v)
		return v.State == state.StateRunning
	}, 30*time.Second, 20*time.Millisecond)
	var rep recovery.VerifyReport
	out := cli(t, dir, "verify", "--json")
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &rep), out.stderr)
	// flaky may be failing again; steady must never show as drift.
	for _, f := range rep.Findings {
		assert.NotEqual(t, "steady", f.Name, "%+v", f)
	}
}
