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
	"github.com/solo-rt/solo/pkg/exitcode"
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
		assert.Equal(t, exitcode.Error, r.code)
		assert.Contains(t, r.stderr, "services[1].command:")
		r = cli(t, dir, "apply", "-f", writeFile(t, dir, "typo.yaml", "services:\n  - name: x\n    comand: [sleep]\n"))
		assert.Equal(t, exitcode.Error, r.code)
		assert.Contains(t, r.stderr, "services[0].comand: unknown field")
		r = cli(t, dir, "apply")
		assert.Equal(t, exitcode.Usage, r.code)
		r = cli(t, dir, "status", "new")
		assert.Equal(t, exitcode.NotFound, r.code)
	})

	t.Run("an ambiguous or empty file is refused and writes nothing", func(t *testing.T) {
		cases := []struct{ name, body, want string }{
			{"twice.yaml", "services:\n  - {name: web, command: [sleep, \"1000\"]}\n  - {name: web, tenant: default, command: [sleep, \"1000\"]}\n", "services[1].name: default/web is also services[0]"},
			{"case.yaml", "services:\n  - {name: web, command: [sleep, \"1000\"]}\n  - {name: Worker, command: [sleep, \"1000\"]}\n", "services[1].name:"},
			{"field-twice.yaml", "services:\n  - name: web\n    command: [sleep, \"1000\"]\n    name: worker\n", "services[0].name: is set twice"},
			{"typo.yaml", "services:\n  - {name: web, command: [sleep, \"1000\"]}\n  - {name: worker, tenant: defualt, command: [sleep, \"1000\"]}\n", `services[1].tenant: "defualt" has no services yet`},
			{"session.yaml", "services:\n  - {name: session.nb, command: [sleep, \"1000\"]}\n", "services[0].name:"},
			{"empty.yaml", "", "no services to apply"},
			{"separator.yaml", "---\n", "no services to apply"},
			{"empty-list.yaml", "services: []\n", "no services to apply"},
		}
		for _, c := range cases {
			r := cli(t, dir, "apply", "-f", writeFile(t, dir, c.name, c.body), "--prune")
			assert.Equal(t, exitcode.Error, r.code, "%s: %s", c.name, r.stdout)
			assert.Contains(t, r.stderr, c.want, c.name)
			assert.Empty(t, r.stdout, c.name)
		}
		now := waitRunning(t, dir, "default/web", "default/worker", "b/api")
		for k, v := range before {
			assert.Equal(t, v.PID, now[k].PID, "%s was touched", k)
		}
		assert.Equal(t, exitcode.NotFound, cli(t, dir, "status", "worker", "--tenant", "defualt").code)
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

// A file of several YAML documents is read whole: a prune from it keeps
// the services of every document. A bad document refuses the whole file.
func TestApply_MultiDocument(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	both := writeFile(t, dir, "both.yaml", `
services:
  - name: web
    command: ["sleep", "1000"]
---
services:
  - name: worker
    command: ["sleep", "1000"]
---
`)
	out := mustCLI(t, dir, "apply", "-f", both)
	assert.Contains(t, out, "applied: 2 created, 0 updated, 0 unchanged, 0 pruned")
	before := waitRunning(t, dir, "default/web", "default/worker")

	out = mustCLI(t, dir, "apply", "-f", both, "--prune")
	assert.Contains(t, out, "applied: 0 created, 0 updated, 2 unchanged, 0 pruned; nothing to write")

	bad := writeFile(t, dir, "bad.yaml", `
services:
  - name: new
    command: ["sleep", "1000"]
---
services:
  - name: worker
    comand: ["sleep", "1000"]
`)
	r := cli(t, dir, "apply", "-f", bad, "--prune")
	assert.Equal(t, exitcode.Error, r.code)
	assert.Contains(t, r.stderr, "document 2: services[1].comand: unknown field (line 8)")
	assert.Equal(t, exitcode.NotFound, cli(t, dir, "status", "new").code)

	now := waitRunning(t, dir, "default/web", "default/worker")
	for k, v := range before {
		assert.Equal(t, v.PID, now[k].PID, "%s was touched", k)
	}
}

// A kernel session's service is the session's: apply --prune leaves it
// alone (before, it was killed and the session hung in starting, its tasks
// pending), and a file may not name one.
func TestApply_KeepsSessions(t *testing.T) {
	dir, _ := newSession(t)
	mustCLI(t, dir, "exec", "nb", "--wait", "--", "x = 41")
	var kernel state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "session.nb", "--json")), &kernel))

	out := mustCLI(t, dir, "apply", "--prune", "-f", writeFile(t, dir, "web.yaml", "services:\n  - {name: web, command: [sleep, \"1000\"]}\n"))
	assert.NotContains(t, out, "session.nb")
	assert.Contains(t, out, "applied: 1 created, 0 updated, 0 unchanged, 0 pruned")
	assert.Equal(t, "42\n", mustCLI(t, dir, "exec", "nb", "--wait", "--", "print(x + 1)"), "the session lost its kernel")

	r := cli(t, dir, "apply", "-f", writeFile(t, dir, "kernel.yaml", "services:\n  - {name: web, command: [sleep, \"1000\"]}\n  - {name: session.nb, command: [sleep, \"1000\"]}\n"))
	assert.Equal(t, exitcode.Error, r.code)
	assert.Contains(t, r.stderr, `services[1].name: "session.nb" belongs to a kernel session`)

	var after state.ServiceView
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "session.nb", "--json")), &after))
	assert.Equal(t, state.StateRunning, after.State)
	assert.Equal(t, kernel.PID, after.PID, "the kernel was restarted")
	assert.Equal(t, kernel.Generation, after.Generation, "the kernel was redeployed")
}
