package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
)

// sessionVia reads session nb through node i.
func (c *testCluster) sessionVia(i int) session.View {
	c.t.Helper()
	var v session.View
	out := mustCLI(c.t, c.dirs[i], "session", "status", "nb", "--json")
	require.NoError(c.t, json.Unmarshal([]byte(out), &v), out)
	return v
}

// waitSession waits, asking node i, until ok holds of session nb.
func (c *testCluster) waitSession(i int, what string, ok func(session.View) bool) session.View {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := c.sessionVia(i)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("session nb not %s after 60s: %+v\n%s", what, v, c.logs())
		}
		time.Sleep(50 * time.Millisecond) // polls the cluster's own report
	}
}

// waitTask waits, asking node i, until task id has ended, and returns it.
func (c *testCluster) waitTask(t *testing.T, i int, id string) state.Task {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tk := taskJSON(t, c.dirs[i], id)
		if tk.State.Final() {
			return tk
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not ended after 60s: %+v\n%s", id, tk, c.logs())
		}
		time.Sleep(50 * time.Millisecond) // polls the cluster's own report
	}
}

// TestCluster_SessionLostAndRestarted: a kernel session runs on the node
// that created it, and every node answers for it, naming that node; a
// task submitted through another node runs there. When that node is
// SIGKILLed whole, the placement leader records the session lost (its
// running task fails with reason node_lost) and kills its kernel service
// rather than move it: nothing restarts it. Submitting to it is refused,
// saying so. `solo session restart` runs it again on another node, empty,
// and a task runs there.
func TestCluster_SessionLostAndRestarted(t *testing.T) {
	py := kerneltest.Python(t)
	c := startCluster(t)
	owner := -1
	for i, nd := range c.nodes(0) {
		if !nd.Leader {
			owner = i // a follower: the leader, and etcd's quorum, survive its death
			break
		}
	}
	require.NotEqual(t, -1, owner)
	other, third := (owner+1)%3, (owner+2)%3
	node := c.names[owner]

	mustCLI(t, c.dirs[owner], "session", "create", "nb", "--python", py)
	assert.Empty(t, mustCLI(t, c.dirs[owner], "exec", "nb", "--wait", "--", "x = 41"))
	v := c.sessionVia(other)
	assert.Equal(t, node, v.Node, "another node answers for the session, naming its node")
	assert.Equal(t, "ready", v.State)
	assert.Regexp(t, `(?m)^TENANT\s+NAME\s+KERNEL\s+STATE\s+NODE\s+PID`, mustCLI(t, c.dirs[third], "session", "ls"))
	assert.Regexp(t, fmt.Sprintf(`(?m)^default\s+nb\s+python3\s+ready\s+%s\s+\d+`, node), mustCLI(t, c.dirs[third], "session", "ls"))
	assert.Contains(t, mustCLI(t, c.dirs[third], "session", "status", "nb"), "node:     "+node)

	// A task submitted through another node runs on the session's node,
	// with its variables; its output stays on that node's disk.
	id := strings.TrimSpace(mustCLI(t, c.dirs[other], "exec", "nb", "--", "x + 1"))
	tk := c.waitTask(t, other, id)
	require.Equal(t, state.TaskStateCompleted, tk.State, "%+v", tk)
	assert.Equal(t, "42\n", mustCLI(t, c.dirs[owner], "task", "output", id))
	r := cli(t, c.dirs[other], "task", "output", id)
	assert.Equal(t, exitcode.Error, r.code, r.stderr)
	assert.Contains(t, r.stderr, "runs on node "+node)

	running := strings.TrimSpace(mustCLI(t, c.dirs[owner], "exec", "nb", "--", "import time\nwhile True: time.sleep(1)"))
	c.waitViews(other, "the long task running", func(map[string]state.ServiceView) bool {
		return taskJSON(t, c.dirs[other], running).State == state.TaskStateRunning
	})

	killed := time.Now() // the daemon dies first; the keeper, which holds the lease, just after
	c.killNode(owner)
	lost := c.waitSession(other, "lost", func(v session.View) bool { return v.State == "lost" })
	t.Logf("session recorded lost %s after its node's SIGKILL (lease TTL %s)", time.Since(killed).Round(time.Millisecond), "2s")
	assert.Equal(t, node, lost.Node)
	assert.Regexp(t, `^lost: node `+node+` died at \d{4}-\d\d-\d\dT[0-9:]+Z; restart it elsewhere, empty, with `+"`solo session restart nb`$", lost.Lost)
	assert.Contains(t, mustCLI(t, c.dirs[third], "session", "status", "nb"), "lost: node "+node+" died at ")
	tk = taskJSON(t, c.dirs[third], running)
	assert.Equal(t, state.TaskStateFailed, tk.State)
	assert.Equal(t, state.FailNodeLost, tk.Reason)

	// Never silently restarted: its kernel service is killed, not moved.
	views := c.waitViews(third, "the kernel service killed", func(vs map[string]state.ServiceView) bool {
		return vs["session.nb"].State == state.StateKilled
	})
	assert.Zero(t, views["session.nb"].PID)
	r = cli(t, c.dirs[other], "exec", "nb", "--", "1")
	assert.Equal(t, exitcode.Error, r.code, r.stderr)
	assert.Contains(t, r.stderr, "session lost: lost: node "+node+" died")
	r = cli(t, c.dirs[other], "session", "restart", "nope")
	assert.Equal(t, exitcode.NotFound, r.code, r.stderr)

	// Restarted elsewhere, empty, when the user asks.
	out := mustCLI(t, c.dirs[other], "session", "restart", "nb", "--python", py)
	assert.Contains(t, out, "restarted session default/nb on node "+c.names[other]+", empty")
	assert.Equal(t, "False\n", mustCLI(t, c.dirs[other], "exec", "nb", "--wait", "--", "'x' in globals()"), "nothing of the old kernel is carried over")
	v = c.waitSession(third, "ready on "+c.names[other], func(v session.View) bool { return v.State == "ready" })
	assert.Equal(t, c.names[other], v.Node)
	assert.Empty(t, v.Lost)
	r = cli(t, c.dirs[third], "session", "restart", "nb")
	assert.Equal(t, exitcode.Error, r.code, "a session that runs is not restarted")
	assert.Contains(t, r.stderr, "session not lost: it runs on node "+c.names[other])
}
