// Package kerneltest gives tests a real ipykernel: [Python] finds an
// interpreter that has it (failing the test, never skipping, when none
// does), [Start] runs one kernel for the length of a test.
package kerneltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solo-rt/solo/pkg/kernel"
)

// DefaultPython is the interpreter tests use unless SOLO_TEST_PYTHON names
// another: Debian's, which python3-ipykernel installs into.
const DefaultPython = "/usr/bin/python3"

var (
	checkOnce sync.Once
	checkErr  error
)

// Python returns the interpreter to run kernels with. If it cannot import
// ipykernel the test fails with a message saying what to install: CI
// installs python3-ipykernel, and a test that silently skipped would hide
// that it did not.
func Python(tb testing.TB) string {
	tb.Helper()
	py := os.Getenv("SOLO_TEST_PYTHON")
	if py == "" {
		py = DefaultPython
	}
	checkOnce.Do(func() {
		out, err := exec.Command(py, "-c", "import ipykernel_launcher, ipykernel; print(ipykernel.__version__)").CombinedOutput()
		if err != nil {
			checkErr = fmt.Errorf("%s cannot import ipykernel (%v): %s", py, err, out)
		}
	})
	if checkErr != nil {
		tb.Fatalf("kernel tests need a real ipykernel: install Debian's python3-ipykernel (apt-get install python3-ipykernel) or point SOLO_TEST_PYTHON at a python3 that has it: %v", checkErr)
	}
	return py
}

// Kernel is a kernel process started by [Start].
type Kernel struct {
	Cmd  *exec.Cmd
	Path string // its connection file
}

// Start runs `python -m ipykernel_launcher -f FILE` with a fresh
// connection file in a temp dir, its ports 0: the kernel binds ports of
// its own and writes them into FILE ([Kernel.Dial] waits for that). The
// kernel is killed at cleanup.
func Start(tb testing.TB) *Kernel {
	tb.Helper()
	py := Python(tb)
	dir := tb.TempDir()
	info, err := kernel.NewConnectionInfo("", "python3")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "kernel.json")
	if err := kernel.WriteConnectionFile(path, info); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "ipykernel_launcher", "-f", path)
	cmd.Env = append(os.Environ(), "IPYTHONDIR="+filepath.Join(dir, "ipython"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return &Kernel{Cmd: cmd, Path: path}
}

// Dial waits for k to write its ports, connects to it and waits until it
// is ready, within 60s.
func (k *Kernel) Dial(tb testing.TB) *kernel.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := kernel.WaitConnectionFile(ctx, k.Path)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := kernel.Dial(ctx, info, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}
