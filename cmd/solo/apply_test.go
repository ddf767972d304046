package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// waitRunning polls `solo ls --json` until every named service runs.
func waitRunning(t *testing.T, dir string, names ...string) map[string]state.ServiceView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var views []state.ServiceView
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "ls", "--json")), &views))
		got := map[string]state.ServiceView{}
		for _, v := range views {
			if v.State == state.StateRunning {
				got[v.Tenant+"/"+v.Name] = v
			}
		}
		all := true
		for _, n := range names {
			if _, ok := got[n]; !ok {
				all = false
			}
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all of %v running after 30s: %+v", names, views)
		}
		time.Sleep(50 * time.Millisecond) // polling the CLI as a user would
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestApply(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir)
	three := writeFile(t, dir, "three.yaml", `
services:
  - name: web
    command: ["sleep", "1000"]
    env: {PORT: "8080"}
  - name: worker
    command: ["sleep", "1000"]
    restart: on-failure
  - name: api
    tenant: b
    command: ["sleep", "1000"]
`)

	out := mustCLI(t, dir, "apply", "-f", three)
	assert.Contains(t, out, "create    default/web generation 1")
	assert.Contains(t, out, "applied: 3 created, 0 updated, 0 unchanged, 0 pruned")
	before := waitRunning(t, dir, "default/web", "default/worker", "b/api")

	t.Run("again from stdin: unchanged", func(t *testing.T) {
		body, err := os.ReadFile(three)
		require.NoError(t, err)
		r := cliIn(t, dir, strings.NewReader(string(body)), "apply", "-f", "-", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var res solo.ApplyResult
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
		assert.Equal(t, 3, res.Count(solo.ApplyUnchanged))
		assert.Zero(t, res.LastPos)
		after := waitRunning(t, dir, "default/web", "default/worker", "b/api")
		for k, v := range before {
			assert.Equal(t, v.PID, after[k].PID, "%s restarted", k)
		}
	})

	t.Run("a bad entry names index and field and writes nothing", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.yaml", `
services:
  - name: new
    command: ["sleep", "1000"]
  - name: broken
    command: []
`)
		r := cli(t, dir, "apply", "-f", bad)
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "services[1].command:")
		r = cli(t, dir, "apply", "-f", writeFile(t, dir, "typo.yaml", "services:\n  - name: x\n    comand: [sleep]\n"))
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "services[0].comand: unknown field")
		r = cli(t, dir, "apply")
		assert.Equal(t, exitUsage, r.code)
		r = cli(t, dir, "status", "new")
		assert.Equal(t, exitNotFound, r.code)
	})

	two := writeFile(t, dir, "two.yaml", `
services:
  - name: web
    command: ["sleep", "1000"]
    env: {PORT: "9090"}
`)
	t.Run("dry run prints the plan and writes nothing", func(t *testing.T) {
		out := mustCLI(t, dir, "apply", "-f", two, "--prune", "--dry-run")
		assert.Contains(t, out, "update    default/web generation 2")
		assert.Contains(t, out, "prune     default/worker generation 1")
		assert.NotContains(t, out, "b/api")
		assert.Contains(t, out, "plan (dry run, nothing written): 0 created, 1 updated, 0 unchanged, 1 pruned")
		now := waitRunning(t, dir, "default/web", "default/worker")
		assert.Equal(t, before["default/web"].PID, now["default/web"].PID)
	})

	var res solo.ApplyResult
	t.Run("update and prune", func(t *testing.T) {
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "--json", "apply", "-f", two, "--prune")), &res))
		require.Len(t, res.Items, 2)
		assert.Equal(t, solo.ApplyUpdate, res.Items[0].Action)
		assert.Equal(t, solo.ApplyPrune, res.Items[1].Action)
		now := waitRunning(t, dir, "default/web", "b/api")
		assert.Equal(t, uint64(2), now["default/web"].Generation)
		assert.NotEqual(t, before["default/web"].PID, now["default/web"].PID)
		var st state.ServiceView
		require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "worker", "--json")), &st))
		assert.Equal(t, state.StateKilled, st.State)
		assert.Equal(t, before["b/api"].PID, now["b/api"].PID, "another tenant was touched")
	})

	// Atomic toward the log: the update and the prune went in one append,
	// so they are adjacent, nothing between them.
	d.signal(15)
	require.Equal(t, 0, d.wait(30*time.Second))
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	var types []string
	for env, err := range s.Read(res.FirstPos, int(res.LastPos-res.FirstPos+1)) {
		require.NoError(t, err)
		types = append(types, fmt.Sprintf("%s %s/%s", env.Type, env.Tenant, env.Subject))
	}
	assert.Equal(t, []string{"service_deployed default/web", "service_killed default/worker"}, types)
}
