package shutdown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/supervisor"
)

// IsInit reports whether this process is PID 1, the init of its pid
// namespace (as the entrypoint of a container is). Orphans of the namespace
// are reparented to it, and it must reap them.
func IsInit() bool { return os.Getpid() == 1 }

// BecomeSubreaper marks this process as a child subreaper
// (prctl(PR_SET_CHILD_SUBREAPER)): orphaned descendants are reparented to
// it instead of to init, so it must reap them (see [StartReaper]). The mark
// is process-wide, survives execve, and is not inherited by children.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	return nil
}

// isSubreaper reports whether this process is a child subreaper.
func isSubreaper() (bool, error) {
	var v int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0); err != nil {
		return false, fmt.Errorf("get subreaper: %w", err)
	}
	return v != 0, nil
}

// Reaper reaps the zombie children of this process that are not ours to
// collect: orphans reparented to Solo because it is PID 1 ([IsInit]) or a
// child subreaper ([BecomeSubreaper]).
//
// On every SIGCHLD it scans /proc for processes whose parent is this
// process and whose state is 'Z'. It skips each pid for which
// [supervisor.OwnChild] is true: those are services whose status their own
// [supervisor.Watch] collects. It reaps each other one by pid with
// wait4(pid, WNOHANG), never with wait(-1).
//
// SIGCHLD coalesces (one pending signal may stand for many exits), so each
// wake-up scans everything rather than reaping one child per signal.
type Reaper struct {
	log  hclog.Logger
	proc string // "/proc"
	self int

	sigs     chan os.Signal
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	reaped  uint64
	changed chan struct{} // closed and replaced whenever reaped grows
}

// StartReaper starts a [Reaper]: it subscribes to SIGCHLD, reaps once at
// once (zombies may be waiting from before), and then reaps on every
// SIGCHLD until [Reaper.Stop]. A nil logger means no logging.
//
// It returns an error wrapping [ErrNotReaper] if this process is neither
// PID 1 nor a subreaper, and an error if /proc cannot be scanned; no
// goroutine runs then.
func StartReaper(logger hclog.Logger) (*Reaper, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if !IsInit() {
		sub, err := isSubreaper()
		if err != nil {
			return nil, fmt.Errorf("start reaper: %w", err)
		}
		if !sub {
			return nil, fmt.Errorf("start reaper: %w", ErrNotReaper)
		}
	}
	r := &Reaper{
		log:     logger,
		proc:    "/proc",
		self:    os.Getpid(),
		sigs:    make(chan os.Signal, 1), // one pending wake-up is enough: each scans all
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	// Subscribe before the first scan, so that an exit between the two
	// still wakes the loop.
	signal.Notify(r.sigs, unix.SIGCHLD)
	if err := r.reapAll(); err != nil {
		signal.Stop(r.sigs)
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	go r.loop()
	return r, nil
}

func (r *Reaper) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.sigs:
			if err := r.reapAll(); err != nil {
				r.log.Warn("reaping orphans", "error", err)
			}
		case <-r.quit:
			return
		}
	}
}

// Stop stops the reaper and waits for its goroutine to end. Zombies that
// appear afterwards are not reaped. It is idempotent.
func (r *Reaper) Stop() {
	r.stopOnce.Do(func() {
		signal.Stop(r.sigs)
		close(r.quit)
	})
	<-r.done
}

// Reaped returns how many orphans the reaper has reaped so far.
func (r *Reaper) Reaped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

// WaitReaped blocks until [Reaper.Reaped] is at least n, or ctx is done
// (then it returns ctx.Err()).
func (r *Reaper) WaitReaped(ctx context.Context, n uint64) error {
	for {
		r.mu.Lock()
		got, changed := r.reaped, r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reapAll reaps every zombie child that is not [supervisor.OwnChild].
func (r *Reaper) reapAll() error {
	zombies, err := zombieChildren(r.proc, r.self)
	if err != nil {
		return err
	}
	if len(zombies) == 0 {
		return nil
	}
	type reaped struct {
		pid    int
		status unix.WaitStatus
	}
	var done []reaped
	var errs []error
	// Under HoldStarts no supervisor.Start is between its fork and its
	// registration, so OwnChild is exact: a service's zombie seen by the
	// scan cannot pass for an orphan.
	release := supervisor.HoldStarts()
	for _, pid := range zombies {
		if supervisor.OwnChild(pid) {
			continue
		}
		status, ok, err := reapPID(pid)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			done = append(done, reaped{pid, status})
		}
	}
	release()

	for _, z := range done {
		r.log.Debug("reaped orphan", "pid", z.pid, "status", waitStatusString(z.status))
	}
	if len(done) > 0 {
		r.mu.Lock()
		r.reaped += uint64(len(done))
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// reapPID reaps the zombie pid without blocking. ok is false when there
// was nothing to reap: pid is gone already (ECHILD) or not a zombie.
func reapPID(pid int) (status unix.WaitStatus, ok bool, err error) {
	for {
		got, err := unix.Wait4(pid, &status, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return 0, false, nil
		case err != nil:
			return 0, false, fmt.Errorf("wait4 %d: %w", pid, err)
		}
		return status, got == pid, nil
	}
}

func waitStatusString(s unix.WaitStatus) string {
	if s.Signaled() {
		return "signal: " + unix.SignalName(s.Signal())
	}
	return "exit status " + strconv.Itoa(s.ExitStatus())
}

// zombieChildren lists the pids in procDir (a /proc) whose parent is self
// and whose state is 'Z'. Processes that vanish during the scan are
// skipped.
func zombieChildren(procDir string, self int) ([]int, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", procDir, err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue // not a process
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // gone since ReadDir, or not readable: not ours to reap
		}
		state, ppid, err := parseStat(b)
		if err != nil {
			continue
		}
		if ppid == self && state == 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// parseStat returns the state (field 3) and the parent pid (field 4) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and
// may itself hold spaces and parentheses, so the fields are read after the
// LAST ')'.
func parseStat(b []byte) (state byte, ppid int, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse stat: no ')' in %q", b)
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("parse stat: short line %q", b)
	}
	ppid, err = strconv.Atoi(string(fields[1]))
	if err != nil {
		return 0, 0, fmt.Errorf("parse stat: ppid: %w", err)
	}
	return fields[0][0], ppid, nil
}
