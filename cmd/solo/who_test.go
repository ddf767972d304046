package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/exitcode"
)

// TestCLI_CallersDirectory: deploy runs a relative command in the
// directory it is called from, which status shows, and a relative --dir
// and --env-file are taken from there too. The env file's value reaches the
// service but never `solo events --json`.
func TestCLI_CallersDirectory(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	wd := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(wd, "prog"), []byte("#!/bin/sh\necho \"in $(pwd) token=$TOKEN\"\nexec sleep 1000\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(wd, "app.env"), []byte("TOKEN='env-file-secret-42'\n"), 0o600))

	r := cliAt(t, dir, wd, nil, "deploy", "rel", "--env-file", "app.env", "--", "./prog")
	require.Equal(t, 0, r.code, "deploy: %s", r.stderr)
	require.Eventually(t, func() bool {
		return strings.Contains(mustCLI(t, dir, "logs", "rel"), "token=env-file-secret-42")
	}, 30*time.Second, 10*time.Millisecond, "the relative command never ran")
	assert.Contains(t, mustCLI(t, dir, "logs", "rel"), "in "+wd+" ")

	var v struct {
		Spec struct {
			Dir     string   `json:"dir"`
			EnvFile []string `json:"env_file"`
		} `json:"spec"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "rel", "--json")), &v))
	assert.Equal(t, wd, v.Spec.Dir)
	assert.Equal(t, []string{filepath.Join(wd, "app.env")}, v.Spec.EnvFile)
	assert.Regexp(t, `dir:\s+`+wd, mustCLI(t, dir, "status", "rel"))

	events := mustCLI(t, dir, "events", "--json")
	assert.Contains(t, events, filepath.Join(wd, "app.env"), "the env file's path is part of the spec")
	assert.NotContains(t, events, "env-file-secret-42", "an env file's value reached the log")

	// A relative --dir is the caller's too.
	require.NoError(t, os.Mkdir(filepath.Join(wd, "sub"), 0o755))
	r = cliAt(t, dir, wd, nil, "deploy", "sub", "--dir", "sub", "--", "../prog")
	require.Equal(t, 0, r.code, "deploy: %s", r.stderr)
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, dir, "status", "sub", "--json")), &v))
	assert.Equal(t, filepath.Join(wd, "sub"), v.Spec.Dir)

	// Where ./prog is not, the deploy is refused and writes nothing.
	waitRunning(t, dir, "default/rel", "default/sub") // their starts are written: the log is quiet
	other := t.TempDir()
	before := mustCLI(t, dir, "events", "--json")
	r = cliAt(t, dir, other, nil, "deploy", "rel2", "--", "./prog")
	assert.Equal(t, exitcode.Error, r.code)
	assert.Contains(t, r.stderr, "command: stat "+filepath.Join(other, "prog")+": no such file")
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "a refused deploy wrote to the log")
}

// TestApply_WhoAndWhere: an apply file's user, group, groups, umask and
// env_file (one or a list; relative paths from the file's directory) reach
// the spec; a bad one is refused naming the entry and the field, with
// nothing written.
func TestApply_WhoAndWhere(t *testing.T) {
	dir := dataDir(t)
	startDaemon(t, dir)
	conf := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(conf, "a.env"), []byte("A=1\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(conf, "b.env"), []byte("B=2\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(conf, "work"), 0o755))
	file := filepath.Join(conf, "services.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`services:
  - name: one
    command: ["sh", "-c", "echo A=$A B=$B; exec sleep 1000"]
    dir: work
    user: root
    group: root
    groups: [adm]
    umask: 0027
    env_file: [a.env, b.env]
  - name: two
    command: ["sleep", "1000"]
    env_file: a.env
`), 0o600))
	// Applied from elsewhere: the paths are the file's.
	r := cliAt(t, dir, t.TempDir(), nil, "apply", "-f", file)
	require.Equal(t, 0, r.code, "apply: %s", r.stderr)
	require.Eventually(t, func() bool {
		return strings.Contains(mustCLI(t, dir, "logs", "one"), "A=1 B=2")
	}, 30*time.Second, 10*time.Millisecond)
	events := mustCLI(t, dir, "events", "--json")
	for _, want := range []string{`"dir":"` + filepath.Join(conf, "work") + `"`, `"umask":"0027"`, `"groups":["adm"]`,
		`"env_file":["` + filepath.Join(conf, "a.env") + `","` + filepath.Join(conf, "b.env") + `"]`} {
		assert.Contains(t, events, want)
	}

	waitRunning(t, dir, "default/one", "default/two")
	status := mustCLI(t, dir, "status", "one")
	assert.Regexp(t, `user:\s+root, group root, groups adm\n`, status)
	assert.Regexp(t, `umask:\s+0027\n`, status)
	assert.Regexp(t, `env files:\s+`+filepath.Join(conf, "a.env")+" "+filepath.Join(conf, "b.env"), status)
	before := mustCLI(t, dir, "events", "--json")
	for _, c := range []struct{ entry, says string }{
		{"user: no-such-user-x", `services[0].user: unknown user "no-such-user-x"`},
		{"group: no-such-group-x", `services[0].group: unknown group "no-such-group-x"`},
		{"groups: [no-such-group-y]", `services[0].groups: unknown group "no-such-group-y"`},
		{"groups: {a: b}", "groups"},
		{"umask: 0999", "services[0].umask"},
		{"umask: [1]", "umask"},
		{"env_file: missing.env", "services[0].env_file: env file " + filepath.Join(conf, "missing.env") + ": open: no such file"},
		{"dir: nowhere", "services[0].dir: stat " + filepath.Join(conf, "nowhere") + ": no such file"},
	} {
		bad := filepath.Join(conf, "bad.yaml")
		require.NoError(t, os.WriteFile(bad, []byte("services:\n  - name: bad\n    command: [sleep, \"1\"]\n    "+c.entry+"\n"), 0o600))
		r := cli(t, dir, "apply", "-f", bad)
		assert.Equal(t, exitcode.Error, r.code, "%s: %s", c.entry, r.stderr)
		assert.Contains(t, r.stderr, c.says, c.entry)
	}
	assert.Equal(t, before, mustCLI(t, dir, "events", "--json"), "a refused apply wrote to the log")
}
