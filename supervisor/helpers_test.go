package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperDir holds the helper programs built for this test binary.
var helperDir string

func TestMain(m *testing.M) {
	if os.Getenv(sigIgnChildEnv) != "" {
		sigIgnChild() // a daemon's part in TestStart_IgnoredSignalsNotInherited
		return
	}
	if os.Getenv(fdLimitChildEnv) != "" {
		fdLimitChild() // a daemon's part in TestStart_FileLimit
		return
	}
	dir, err := os.MkdirTemp("", "supervisor-helpers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helperDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var helpers sync.Map // name -> func() (string, error)

// buildHelper builds testdata/proc/NAME once per test binary and returns
// the path of the executable.
func buildHelper(t testing.TB, name string) string {
	t.Helper()
	once, _ := helpers.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		out := filepath.Join(helperDir, name)
		cmd := exec.Command("go", "build", "-o", out, "../testdata/proc/"+name)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build helper %s: %v\n%s", name, err, b)
		}
		return out, nil
	}))
	path, err := once.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// mustStart starts argv with its output in a temp file, and makes sure the
// process (and its group) is killed and reaped at cleanup. It returns the
// process and the path of its output file.
func mustStart(t testing.TB, opts StartOptions) (*Process, string) {
	t.Helper()
	outPath := filepath.Join(t.TempDir(), "out")
	if opts.Output == nil {
		f, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opts.Output = f
	}
	p, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { mustKill(t, p) })
	return p, outPath
}

// mustKill force-stops p, whatever state it is in, and closes it.
func mustKill(t testing.TB, p *Process) {
	t.Helper()
	if p.watch.closed.Load() {
		return // the test closed it itself
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // force now
	if _, err := Stop(ctx, p, syscall.SIGKILL, time.Second); err != nil {
		t.Errorf("cleanup: Stop %v: %v", p.Identity(), err)
	}
	p.Close()
}

// waitCtx is a context for waits that must end quickly in a passing test.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitForOutput waits until the file at path contains want, and returns
// the contents. There is no event for "a child wrote this", so this is a
// bounded wait on the file's contents.
func waitForOutput(t testing.TB, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(want)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; it has %q", path, want, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fieldAfter returns the integer after "prefix " in output.
func fieldAfter(t testing.TB, output, prefix string) int {
	t.Helper()
	for line := range strings.Lines(output) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad %q line %q", prefix, line)
			}
			return n
		}
	}
	t.Fatalf("no %q line in %q", prefix, output)
	return 0
}

// assertDead fails unless pid is gone or a zombie (killed, waiting for a
// parent that is not us to reap it).
func assertDead(t testing.TB, pid int) {
	t.Helper()
	st, err := readStat(pid)
	if errors.Is(err, ErrNoProcess) {
		return
	}
	if err != nil {
		t.Fatalf("read stat of %d: %v", pid, err)
	}
	if st.State != 'Z' && st.State != 'X' {
		t.Fatalf("pid %d (%s) is still alive, state %c", pid, st.Comm, st.State)
	}
}

// threads returns the number of OS threads of this process.
func threads(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: in /proc/self/status")
	return 0
}
