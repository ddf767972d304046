package solo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// needRoot fails, never skips, a test that runs a service as another
// user when not run as root (only root may): like the kernel tests
// without ipykernel, a missing precondition is a failure, not a pass.
// The suite runs as root in CI and on the development machines.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("running a service as another user needs root: run the tests as root (CI does)")
	}
}

// openTree makes a temp dir that every user may enter (t.TempDir is 0700,
// and so is its parent) and returns it.
func openTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

// procStatusField returns the fields of a line of /proc/PID/status.
func procStatusField(t *testing.T, pid int, name string) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.Fields(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, name)
	return nil
}

// assertNotInLog fails if any event, or any file of dir (the database
// included), holds s.
func assertNotInLog(t *testing.T, dir string, rt *solo.Runtime, s string) {
	t.Helper()
	for env, err := range rt.Store().Read(1, 0) {
		require.NoError(t, err)
		assert.NotContains(t, string(env.Data), s, "event %d (%s) holds an env file's value", env.Pos, env.Type)
	}
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		assert.False(t, bytes.Contains(b, []byte(s)), "%s holds an env file's value", path)
		return nil
	}))
	require.NotZero(t, n)
}

// TestRuntime_RunAsUser: a service deployed with user nobody, an extra
// group, an umask and an env file runs as runuser would run it: its uid,
// gid and groups, HOME/USER/LOGNAME/SHELL from the passwd entry (the
// spec's env wins), the umask on the files it makes, the env file's
// variables, and its output still in its log. The env file's values never
// reach the log or the data dir.
func TestRuntime_RunAsUser(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	data := t.TempDir()
	rt := MustOpen(t, solo.Options{DataDir: data})
	tree := openTree(t)
	work := filepath.Join(tree, "work")
	require.NoError(t, os.Mkdir(work, 0o755))
	require.NoError(t, os.Chmod(work, 0o777))
	envFile := filepath.Join(tree, "app.env")
	require.NoError(t, os.WriteFile(envFile, []byte("# app settings\nexport GREETING=\"hello world\"\nSECRET='s3cr3t-value-xyz'\n"), 0o600))

	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	users, err := user.LookupGroup("users")
	require.NoError(t, err)
	key := state.Key{Tenant: "default", Name: "who"}
	ev := follow(t, rt, rt.Store().Head()+1)
	_, err = rt.Deploy(ctx, solo.Spec{
		Name: "who",
		Command: []string{"sh", "-c", `touch made; [ -n "$SECRET" ] && echo "secret set";
echo "HOME=$HOME USER=$USER LOGNAME=$LOGNAME SHELL=$SHELL GREETING=$GREETING"; exec sleep 1000`},
		Dir: work, User: "nobody", Groups: []string{"users"}, Umask: "0027",
		EnvFile: []string{envFile}, Env: map[string]string{"LOGNAME": "override"},
	})
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	pid := p.(state.Started).PID

	waitLog(t, rt, "who", "GREETING=")
	logs, err := rt.Logs("default", "who", 10)
	require.NoError(t, err)
	assert.Contains(t, string(logs), "secret set")
	assert.Contains(t, string(logs), "HOME="+nobody.HomeDir+" USER=nobody LOGNAME=override SHELL=/usr/sbin/nologin GREETING=hello world")

	assert.Equal(t, []string{nobody.Uid, nobody.Uid, nobody.Uid, nobody.Uid}, procStatusField(t, pid, "Uid"))
	assert.Equal(t, []string{nobody.Gid, nobody.Gid, nobody.Gid, nobody.Gid}, procStatusField(t, pid, "Gid"))
	assert.ElementsMatch(t, []string{nobody.Gid, users.Gid}, procStatusField(t, pid, "Groups"))
	assert.Equal(t, []string{"0027"}, procStatusField(t, pid, "Umask"))

	fi, err := os.Stat(filepath.Join(work, "made"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm(), "the umask was not applied")
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, nobody.Uid, strconv.Itoa(int(st.Uid)), "the file is not the user's")

	assertNotInLog(t, data, rt, "s3cr3t-value-xyz")
	require.NoError(t, rt.Kill(ctx, "default", "who"))
}

// TestRuntime_EnvFileReadAtEveryStart: an edit of an env file applies at
// the next start; a file gone at a later start fails that start with a
// reason that names the file, never a value, and the restart policy goes
// on.
func TestRuntime_EnvFileReadAtEveryStart(t *testing.T) {
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	envFile := filepath.Join(t.TempDir(), "app.env")
	require.NoError(t, os.WriteFile(envFile, []byte("V=first-value\n"), 0o600))
	key := state.Key{Tenant: "default", Name: "envy"}
	ev := follow(t, rt, rt.Store().Head()+1)
	_, err := rt.Deploy(ctx, solo.Spec{Name: "envy", EnvFile: []string{envFile},
		Command: []string{"sh", "-c", `echo "V=$V"; exec sleep 1000`}})
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	waitLog(t, rt, "envy", "V=first-value")

	require.NoError(t, os.WriteFile(envFile, []byte("V=second-value\n"), 0o600))
	require.NoError(t, syscall.Kill(p.(state.Started).PID, syscall.SIGKILL))
	_, p = ev.next(key, state.TypeServiceStarted)
	waitLog(t, rt, "envy", "V=second-value")

	require.NoError(t, os.Remove(envFile))
	require.NoError(t, syscall.Kill(p.(state.Started).PID, syscall.SIGKILL))
	ev.next(key, state.TypeServiceExited) // the kill
	_, p = ev.next(key, state.TypeServiceExited)
	reason := p.(state.Exited).Error
	assert.Contains(t, reason, "env file "+envFile+": open: no such file or directory")
	assert.NotContains(t, reason, "second-value")
	// The policy goes on: once the file is back, a start succeeds.
	require.NoError(t, os.WriteFile(envFile, []byte("V=third-value\n"), 0o600))
	ev.next(key, state.TypeServiceStarted)
	waitLog(t, rt, "envy", "V=third-value")
	require.NoError(t, rt.Kill(ctx, "default", "envy"))
}

// TestRuntime_DeployRefusesWhatCannotStart: Deploy and Apply refuse, with
// the field named and nothing written, a spec whose user, group, env file,
// dir or command cannot be used.
func TestRuntime_DeployRefusesWhatCannotStart(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	rt := MustOpen(t, solo.Options{})
	tree := openTree(t)
	write := func(name, body string, mode fs.FileMode) string {
		path := filepath.Join(tree, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(body), mode))
		require.NoError(t, os.Chmod(path, mode))
		return path
	}
	script := "#!/bin/sh\nexec sleep 1000\n"
	rootOnly := write("rootonly/prog", script, 0o700)
	hidden := write("hidden/prog", script, 0o755)
	require.NoError(t, os.Chmod(filepath.Dir(hidden), 0o700))
	noExec := write("noexec", script, 0o644)
	good := write("bin/myprog", script, 0o755)
	closed := filepath.Join(tree, "closed")
	require.NoError(t, os.Mkdir(closed, 0o700))
	require.NoError(t, os.Chmod(closed, 0o700))
	badEnv := write("bad.env", "A=1\nthis-line-is-a-secret-value\n", 0o600)
	reserved := write("reserved.env", "SOLO_SERVICE=x\n", 0o600)
	pathEnv := write("path.env", "PATH="+filepath.Join(tree, "bin")+"\n", 0o600)

	cmd := func(argv ...string) solo.Spec { return solo.Spec{Name: "x", Command: argv} }
	with := func(s solo.Spec, f func(*solo.Spec)) solo.Spec { f(&s); return s }
	cases := []struct {
		name    string
		spec    solo.Spec
		field   string
		mention string
	}{
		{"no such command", cmd("/nonexistent/cmd"), "command", "/nonexistent/cmd: no such file"},
		{"not in PATH", cmd("no-such-program-x"), "command", `"no-such-program-x" not found in PATH`},
		{"not in the spec's PATH", with(cmd("sleep", "1"), func(s *solo.Spec) { s.Env = map[string]string{"PATH": "/nonexistent"} }), "command", "not found"},
		{"not executable", cmd(noExec), "command", "not executable"},
		{"a directory", cmd(tree), "command", "not a regular file"},
		{"relative, not in dir", with(cmd("./prog"), func(s *solo.Spec) { s.Dir = tree }), "command", filepath.Join(tree, "prog")},
		{"not executable by the user", with(cmd(rootOnly), func(s *solo.Spec) { s.User = "nobody" }), "command", "is not executable by uid 65534"},
		{"in a directory closed to the user", with(cmd(hidden), func(s *solo.Spec) { s.User = "nobody" }), "command", "hidden may not be searched by uid 65534"},
		{"no such dir", with(cmd("sleep", "1"), func(s *solo.Spec) { s.Dir = "/nonexistent/dir" }), "dir", "/nonexistent/dir: no such file"},
		{"dir is a file", with(cmd("sleep", "1"), func(s *solo.Spec) { s.Dir = noExec }), "dir", "not a directory"},
		{"dir closed to the user", with(cmd("sleep", "1"), func(s *solo.Spec) { s.Dir, s.User = closed, "nobody" }), "dir", "may not be entered by uid 65534"},
		{"unknown user", with(cmd("true"), func(s *solo.Spec) { s.User = "no-such-user-x" }), "user", `unknown user "no-such-user-x"`},
		{"unknown group", with(cmd("true"), func(s *solo.Spec) { s.Group = "no-such-group-x" }), "group", `unknown group "no-such-group-x"`},
		{"unknown groups", with(cmd("true"), func(s *solo.Spec) { s.Groups = []string{"adm", "no-such-group-y"} }), "groups", `unknown group "no-such-group-y"`},
		{"env file missing", with(cmd("true"), func(s *solo.Spec) { s.EnvFile = []string{"/nonexistent/app.env"} }), "env_file", "env file /nonexistent/app.env: open: no such file"},
		{"env file bad line", with(cmd("true"), func(s *solo.Spec) { s.EnvFile = []string{badEnv} }), "env_file", "env file " + badEnv + ": line 2: not an assignment"},
		{"env file sets the marker", with(cmd("true"), func(s *solo.Spec) { s.EnvFile = []string{reserved} }), "env_file", "line 1: SOLO_SERVICE is reserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := rt.Store().Head()
			_, err := rt.Deploy(ctx, tc.spec)
			var fe *state.FieldError
			require.True(t, errors.As(err, &fe), "Deploy: %v", err)
			assert.Equal(t, tc.field, fe.Field, "Deploy: %v", err)
			assert.Contains(t, err.Error(), tc.mention)
			assert.NotContains(t, err.Error(), "secret-value")

			spec := tc.spec
			spec.Name = "y"
			_, err = rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("fine"), spec}})
			var ae *solo.ApplyEntryError
			require.True(t, errors.As(err, &ae), "Apply: %v", err)
			assert.Equal(t, 1, ae.Index)
			assert.Equal(t, "services[1]."+tc.field, ae.Field(), "Apply: %v", err)
			assert.Equal(t, head, rt.Store().Head(), "a refused deploy wrote to the log")
		})
	}

	// What the checks let through: a program found through an env file's
	// PATH, and a user's own program.
	for _, spec := range []solo.Spec{
		with(cmd("myprog"), func(s *solo.Spec) { s.EnvFile = []string{pathEnv} }),
		with(cmd(good), func(s *solo.Spec) { s.User = "nobody"; s.Name = "y" }),
	} {
		_, err := rt.Deploy(ctx, spec)
		require.NoError(t, err, "%s", spec.Name)
	}
}

// TestRecovery_ReadoptsAnotherUsersService: a service that runs as another
// user is re-adopted after a daemon SIGKILL, keeping its pid: its marker
// and identity are read as any other's.
func TestRecovery_ReadoptsAnotherUsersService(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	pids := crashChild(t, dir, "deploynobody:a")
	require.Len(t, pids, 1)
	require.True(t, alive(pids["a"]))

	rt := MustOpen(t, solo.Options{DataDir: dir})
	assert.Equal(t, 1, rt.RecoveryReport().Readopted)
	assert.Equal(t, 0, rt.RecoveryReport().Restarted)
	st, err := rt.Status("default", "a")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	assert.Equal(t, pids["a"], st.PID)
	assert.Equal(t, []string{"65534", "65534", "65534", "65534"}, procStatusField(t, st.PID, "Uid"))
	require.NoError(t, rt.Kill(context.Background(), "default", "a"))
	assert.False(t, alive(pids["a"]))
}
