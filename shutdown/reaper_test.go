package shutdown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/supervisor"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		state     byte
		ppid      int
		wantError bool
	}{
		{name: "plain", line: "42 (sleep) S 1 42 42 0 -1 4194304", state: 'S', ppid: 1},
		{name: "zombie", line: "43 (sh) Z 7 43 43 0 -1", state: 'Z', ppid: 7},
		{name: "spaces and parens in comm", line: "44 (a) Z 9 (b) R 3 44 44", state: 'R', ppid: 3},
		{name: "comm ends with paren", line: "45 (x)) Z 11 45", state: 'Z', ppid: 11},
		{name: "no paren", line: "46 sleep S 1", wantError: true},
		{name: "truncated", line: "47 (sleep) S", wantError: true},
		{name: "bad ppid", line: "48 (sleep) S x", wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, ppid, err := parseStat([]byte(tt.line))
			if tt.wantError {
				if err == nil {
					t.Fatalf("parseStat = %c, %d; want an error", state, ppid)
				}
				return
			}
			if err != nil || state != tt.state || ppid != tt.ppid {
				t.Fatalf("parseStat = %c, %d, %v; want %c, %d", state, ppid, err, tt.state, tt.ppid)
			}
		})
	}
}

func TestZombieChildren(t *testing.T) {
	proc := t.TempDir()
	const self = 100
	for pid, stat := range map[string]string{
		"200":  "200 (orphan) Z 100 200 200",    // ours, zombie
		"201":  "201 (busy) S 100 201 201",      // ours, running
		"202":  "202 (other) Z 55 202 202",      // someone else's zombie
		"203":  "203 (odd ) Z 1) Z 100 203 203", // ours, odd name
		"204":  "garbage",                       // unparsable: skipped
		"self": "100 (solo) S 1 100 100",        // not a pid
	} {
		dir := filepath.Join(proc, pid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(proc, "205"), 0o755); err != nil { // vanished: no stat
		t.Fatal(err)
	}
	got, err := zombieChildren(proc, self)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[200 203]" {
		t.Fatalf("zombieChildren = %v, want [200 203]", got)
	}
	if _, err := zombieChildren(filepath.Join(proc, "missing"), self); err == nil {
		t.Fatal("no error for a missing /proc")
	}
}

func TestStartReaper(t *testing.T) {
	t.Run("refused unless PID 1 or subreaper", func(t *testing.T) {
		sub, err := isSubreaper()
		if err != nil {
			t.Fatal(err)
		}
		if IsInit() || sub {
			// Here the reaper is allowed: check that it starts instead.
			r, err := StartReaper(nil)
			if err != nil {
				t.Fatalf("StartReaper as PID 1 or subreaper: %v", err)
			}
			r.Stop()
			return
		}
		r, err := StartReaper(nil)
		if !errors.Is(err, ErrNotReaper) {
			t.Fatalf("StartReaper = %v, %v; want ErrNotReaper", r, err)
		}
	})
	t.Run("orphans reaped, services left to their Watch", func(t *testing.T) {
		// The reaper runs for real in a child process, which becomes a
		// subreaper so that orphans are reparented to it (see reaperChild).
		for round := 1; round <= 3; round++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=reaper")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			cancel()
			out := stdout.String()
			if err != nil || !strings.Contains(out, "CHILD OK") {
				t.Fatalf("round %d: child: %v\nstdout:\n%s\nstderr:\n%s", round, err, out, stderr.String())
			}
			for _, want := range []string{"startup: orphan reaped", "service 1: exit status 7, orphan reaped", "service 2: exit status 7, orphan reaped"} {
				if !strings.Contains(out, want) {
					t.Fatalf("round %d: no %q in child output:\n%s", round, want, out)
				}
			}
			t.Logf("round %d:\n%s", round, out)
		}
	})
}

// childServices is how many double-forking services reaperChild runs under
// a live reaper.
const childServices = 2

// reaperChild runs in a child test process (TestMain, childEnv=reaper). It
// becomes a subreaper and checks, reporting on out:
//
//   - startup: an orphan that is already a zombie when the reaper starts is
//     reaped by the first scan;
//   - service N: a service (sh) that leaves a grandchild behind and exits 7
//     is seen to exit 7 through its own Watch, although the reaper ran, and
//     scanned its zombie, while the grandchild (an orphan, reparented to us)
//     exited and was reaped by the reaper.
//
// No sleeps: the grandchild exits when we close a FIFO it reads, and the
// reaper's progress is waited for with [Reaper.WaitReaped].
func reaperChild(out io.Writer) error {
	if err := BecomeSubreaper(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "solo-reaper-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Debug})

	// Startup: a zombie orphan before the reaper exists.
	orphan, err := zombieOrphan(ctx, dir)
	if err != nil {
		return fmt.Errorf("startup: %w", err)
	}
	r, err := StartReaper(logger)
	if err != nil {
		return err
	}
	defer r.Stop()
	if n := r.Reaped(); n != 1 {
		return fmt.Errorf("startup: Reaped() = %d right after StartReaper, want 1", n)
	}
	if err := assertGone(orphan); err != nil {
		return fmt.Errorf("startup: %w", err)
	}
	fmt.Fprintf(out, "startup: orphan reaped (pid %d)\n", orphan)

	for i := 1; i <= childServices; i++ {
		if err := serviceWithOrphan(ctx, r, dir, i, out); err != nil {
			return fmt.Errorf("service %d: %w", i, err)
		}
	}
	r.Stop()
	r.Stop() // idempotent; the deferred one is a third call
	return nil
}

// serviceWithOrphan runs service i with the reaper live; see reaperChild.
func serviceWithOrphan(ctx context.Context, r *Reaper, dir string, i int, out io.Writer) error {
	fifo := filepath.Join(dir, fmt.Sprintf("release-%d", i))
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("service-%d.log", i))
	p, err := startShell(logPath, `(read _ < "$1"; exit 0) & echo "orphan $!"; exit 7`, fifo)
	if err != nil {
		return err
	}
	defer p.Close()
	exit, err := p.Wait(ctx) // exited, not reaped: a zombie the reaper sees
	if err != nil {
		return err
	}
	if exit.Code != 7 {
		return fmt.Errorf("Wait = %v, want exit status 7", exit)
	}
	orphan, err := orphanPID(logPath)
	if err != nil {
		return err
	}
	want := r.Reaped() + 1
	// Let the grandchild go: opening the FIFO waits for its reader, closing
	// it ends the read, and the orphan exits 0, reparented to us.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	f.Close()
	if err := r.WaitReaped(ctx, want); err != nil {
		return fmt.Errorf("orphan %d not reaped: Reaped() = %d: %w", orphan, r.Reaped(), err)
	}
	if err := assertGone(orphan); err != nil {
		return err
	}
	// The reaper has scanned the service's zombie at least once by now;
	// its status must still be there for the Watch.
	if !supervisor.OwnChild(p.PID()) {
		return fmt.Errorf("service pid %d no longer registered before Finish", p.PID())
	}
	exit, err = p.Finish()
	if err != nil {
		return err
	}
	if exit.Unknown || exit.Code != 7 {
		return fmt.Errorf("Finish = %v, want exit status 7: the status was stolen", exit)
	}
	if supervisor.OwnChild(p.PID()) {
		return fmt.Errorf("service pid %d still registered after Finish", p.PID())
	}
	fmt.Fprintf(out, "service %d: exit status %d, orphan reaped (pid %d)\n", i, exit.Code, orphan)
	return nil
}

// zombieOrphan makes a zombie child of this process that no Watch owns: a
// service leaves a sleeping grandchild behind, and the service's Finish
// kills it (it is in the service's group) after it was reparented to us.
func zombieOrphan(ctx context.Context, dir string) (int, error) {
	logPath := filepath.Join(dir, "startup.log")
	p, err := startShell(logPath, `sleep 3600 & echo "orphan $!"; exit 7`)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	if _, err := p.Wait(ctx); err != nil {
		return 0, err
	}
	orphan, err := orphanPID(logPath)
	if err != nil {
		return 0, err
	}
	pidfd, err := unix.PidfdOpen(orphan, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open orphan %d: %w", orphan, err)
	}
	defer unix.Close(pidfd)
	if exit, err := p.Finish(); err != nil || exit.Code != 7 {
		return 0, fmt.Errorf("Finish = %v, %v; want exit status 7", exit, err)
	}
	// Wait for the orphan to die: its pidfd becomes readable.
	deadline, _ := ctx.Deadline()
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("orphan %d did not die", orphan)
		}
		break
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", orphan))
	if err != nil {
		return 0, err
	}
	if state, ppid, err := parseStat(b); err != nil || state != 'Z' || ppid != os.Getpid() {
		return 0, fmt.Errorf("orphan %d: state %c, parent %d, %v; want a zombie child of %d", orphan, state, ppid, err, os.Getpid())
	}
	return orphan, nil
}

// startShell starts /bin/sh -c script with args through supervisor.Start,
// with its output in logPath.
func startShell(logPath, script string, args ...string) (*supervisor.Process, error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return supervisor.Start(supervisor.StartOptions{
		Argv:   append([]string{"/bin/sh", "-c", script, "sh"}, args...),
		Output: f,
	})
}

// orphanPID reads the "orphan PID" line the shell wrote before exiting.
func orphanPID(logPath string) (int, error) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "orphan "); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no orphan pid in %s: %q", logPath, b)
}

// assertGone checks that /proc/PID is gone: reaped, not left a zombie.
func assertGone(pid int) error {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("/proc/%d still there (%v): not reaped", pid, err)
	}
	return nil
}

func TestReaper_WaitReaped(t *testing.T) {
	r := &Reaper{changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitReaped(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReaped with nothing reaped = %v, want context.Canceled", err)
	}
	if err := r.WaitReaped(ctx, 0); err != nil {
		t.Fatalf("WaitReaped(0) = %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- r.WaitReaped(context.Background(), 2) }()
	for range 2 { // what reapAll does for each orphan reaped
		r.mu.Lock()
		r.reaped++
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
	if err := <-waited; err != nil || r.Reaped() != 2 {
		t.Fatalf("WaitReaped(2) = %v with Reaped() = %d", err, r.Reaped())
	}
}
