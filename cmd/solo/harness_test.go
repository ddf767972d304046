package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/eventstore"
)

// soloBin is the real binary, built once for the whole test binary: the
// end-to-end tests run it as a user would.
var soloBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "solo-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	soloBin = filepath.Join(dir, "solo")
	build := exec.Command("go", "build", "-o", soloBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build solo:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dataDir returns a short temp dir (a unix socket path must stay under 108
// bytes, which t.TempDir's names can exceed).
func dataDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "solo-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	// After the daemons' cleanups: a drain keeps the services' empty
	// cgroups for their next start.
	t.Cleanup(func() { cgroup.Open(dir).Prune() })
	return dir
}

// daemon is a `solo daemon` child process.
type daemon struct {
	t    testing.TB
	dir  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	code int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon starts `solo daemon` on dir and returns once it logs that it
// is ready. At cleanup a daemon still running is SIGKILLed, and the
// services of dir are stopped.
func startDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	d, err := spawnDaemon(dir, args...)
	require.NoError(t, err)
	d.t = t
	t.Cleanup(func() { d.kill(); killMarked(dir) })
	select {
	case <-d.ready():
	case <-d.done:
		t.Fatalf("daemon exited with %d before it was ready:\n%s", d.code, d.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon not ready after 60s:\n%s", d.logs)
	}
	return d
}

var readyCh sync.Map // *daemon -> chan struct{}

// daemons maps a data dir to the daemon last started on it, so that a CLI
// call that hangs can show what the daemon was doing.
var daemons sync.Map // dir -> *daemon

// dumpDaemon makes dir's daemon, if one runs, print every goroutine's stack
// (Go's SIGQUIT) and returns its log, for a test that is about to fail
// because the daemon did not answer.
func dumpDaemon(dir string) string {
	v, ok := daemons.Load(dir)
	if !ok {
		return "(no daemon of this dir)"
	}
	d := v.(*daemon)
	select {
	case <-d.done:
		return d.logs.String()
	default:
	}
	d.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
	return d.logs.String()
}

func spawnDaemon(dir string, args ...string) (*daemon, error) {
	d := &daemon{dir: dir, logs: &syncBuffer{}, done: make(chan struct{})}
	daemons.Store(dir, d)
	d.cmd = exec.Command(soloBin, append([]string{"daemon", "--data-dir", dir, "--log-level", "debug"}, args...)...)
	d.cmd.Env = cleanEnv()
	pr, pw := io.Pipe()
	d.cmd.Stderr = pw
	ready := make(chan struct{})
	readyCh.Store(d, ready)
	// The daemon's log is whole by the time done closes: Wait returns
	// once the last bytes are handed to the pipe, and the scanner may
	// still hold them; done waits for the scanner to reach the end.
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer io.Copy(io.Discard, pr) // a line too long for the scanner: keep the daemon writing
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			d.logs.Write([]byte(line + "\n"))
			if strings.Contains(line, "solo: ready:") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		err := d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		if err != nil && d.code == 0 {
			d.code = -1
		}
		pw.Close()
		<-scanned
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) ready() <-chan struct{} {
	ch, _ := readyCh.Load(d)
	return ch.(chan struct{})
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) signal(sig syscall.Signal) { d.cmd.Process.Signal(sig) }

// wait returns the daemon's exit code once it exits.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(timeout):
		d.t.Fatalf("daemon still running after %v:\n%s", timeout, d.logs)
		return -1
	}
}

func (d *daemon) kill() {
	select {
	case <-d.done:
	default:
		d.cmd.Process.Kill()
		<-d.done
	}
}

// cleanEnv is the test's environment without Solo's variables, so that a
// developer's SOLO_* settings never reach the binary under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOLO_") {
			env = append(env, kv)
		}
	}
	return env
}

// result of one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the real binary against dir's daemon.
func cli(t testing.TB, dir string, args ...string) result {
	t.Helper()
	return cliIn(t, dir, nil, args...)
}

func cliIn(t testing.TB, dir string, stdin io.Reader, args ...string) result {
	t.Helper()
	return cliAt(t, dir, "", stdin, args...)
}

// cliAt runs the real binary in working directory wd ("" for the test's).
func cliAt(t testing.TB, dir, wd string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(soloBin, append([]string{"--data-dir", dir}, args...)...)
	cmd.Env = cleanEnv()
	cmd.Dir = wd
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("solo %v did not finish in 60s; the daemon's log and stacks:\n%s", args, dumpDaemon(dir))
	}
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// mustCLI runs a command that must succeed.
func mustCLI(t testing.TB, dir string, args ...string) string {
	t.Helper()
	r := cli(t, dir, args...)
	require.Equal(t, 0, r.code, "solo %v: %s%s", args, r.stdout, r.stderr)
	return r.stdout
}

// killMarked SIGKILLs every process marked as started by the installation
// at dir, so no test leaves services behind.
func killMarked(dir string) {
	home, _ := filepath.Abs(dir)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("SOLO_SERVICE=")); ok && bytes.HasPrefix(v, []byte(home+"|")) {
				var pid int
				fmt.Sscan(e.Name(), &pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// headOf reads the event log head with the daemon stopped.
func headOf(t testing.TB, dir string) uint64 {
	t.Helper()
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	return s.Head()
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || strings.HasPrefix(s[i:], ") Z")
}
