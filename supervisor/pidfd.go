package supervisor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended.
type Exit struct {
	// Code is the exit status (0-255) when the process exited normally,
	// and -1 when it was killed by a signal or the status is unknown.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// CoreDumped is true when the killing signal also dumped core.
	CoreDumped bool
	// Unknown is true when the process was not our child (re-adopted after
	// a daemon restart), so its status went to its real parent: only the
	// fact that it exited is known.
	Unknown bool
	// OOM is true when the kernel's OOM killer ended a process of the
	// service's cgroup during its run: the memory limit was reached.
	OOM bool
}

// Success reports whether the process is known to have exited with status 0.
func (e Exit) Success() bool { return !e.Unknown && e.Signal == 0 && e.Code == 0 }

// String returns "exit status 3", "signal: killed", "signal: aborted (core
// dumped)" or "exit status unknown".
func (e Exit) String() string {
	switch {
	case e.Unknown:
		return "exit status unknown"
	case e.Signal != 0 && e.CoreDumped:
		return "signal: " + e.Signal.String() + " (core dumped)"
	case e.Signal != 0:
		return "signal: " + e.Signal.String()
	default:
		return fmt.Sprintf("exit status %d", e.Code)
	}
}

// si_code values for SIGCHLD (not all exported by x/sys/unix).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// siginfoChild decodes the SIGCHLD fields of a siginfo_t filled by waitid:
// si_pid, and si_status at 8 bytes after it. The union starts after three
// ints, padded to 8 bytes on 64-bit platforms.
func siginfoChild(info *unix.Siginfo) (pid int, code int32, status int32) {
	raw := (*[unsafe.Sizeof(unix.Siginfo{})]byte)(unsafe.Pointer(info))
	off := 12
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	pid = int(int32(binary.NativeEndian.Uint32(raw[off:])))
	status = int32(binary.NativeEndian.Uint32(raw[off+8:]))
	return pid, info.Code, status
}

func exitFromSiginfo(code, status int32) Exit {
	switch code {
	case cldExited:
		return Exit{Code: int(status)}
	case cldKilled, cldDumped:
		return Exit{Code: -1, Signal: syscall.Signal(status), CoreDumped: code == cldDumped}
	default:
		return Exit{Code: -1, Unknown: true}
	}
}

// Watch learns when one process exits, through a pidfd registered in the Go
// runtime's poller: a waiting [Watch.Wait] parks its goroutine, not an OS
// thread (unlike [os.Process.Wait], which blocks a thread per child).
//
// For our own child, the end is handled in three steps, in this order:
//
//  1. [Watch.Wait] learns the exit status WITHOUT reaping (waitid with
//     WNOWAIT). The leader stays a zombie, so its pid, and with it the
//     process group id, stay reserved.
//  2. The caller may now SIGKILL the rest of the process group (see
//     [Process.Finish]): grandchildren do not survive the service, and the
//     group id cannot have been recycled by then.
//  3. [Watch.Reap] reaps the zombie and returns the final [Exit].
//
// Skipping Reap leaves a zombie until the daemon exits. For a process that is
// not our child (re-adopted), waitid fails with ECHILD; then the pidfd
// becoming readable is the exit, the status is [Exit.Unknown], and Reap has
// nothing to reap.
//
// Wait, Reap and [Watch.Exited] are safe for concurrent use; they run one at
// a time. Close may be called at any time.
type Watch struct {
	pid    int
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
	woken  atomic.Bool // a wake set the read deadline in the past

	// sem is a mutex that a waiter can give up on: it guards the fields
	// below and the read deadline of f.
	sem    chan struct{}
	exited bool
	reaped bool
	exit   Exit
	peek   peekResult // what the poller's read callback learned
	peekFn func(fd uintptr) bool
	info   unix.Siginfo // peekFn's
}

// peekResult is one non-blocking look at a process's exit.
type peekResult struct {
	exit Exit
	done bool
	err  error
}

// WatchPID opens a [Watch] on the process pid. It returns an error wrapping
// [ErrNoProcess] if there is no such process. It does not check identity:
// use [Adopt] for a recorded process, [Start] for a new one.
func WatchPID(pid int) (*Watch, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil, &ProcessError{Op: "watch", PID: pid, Err: ErrNoProcess}
	}
	if err != nil {
		return nil, &ProcessError{Op: "watch", PID: pid, Err: fmt.Errorf("pidfd_open: %w", filesError(err))}
	}
	return newWatch(pid, fd)
}

// newWatch takes ownership of fd, a non-blocking pidfd.
func newWatch(pid, fd int) (*Watch, error) {
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))
	// A deadline can only be set on a file in the poller; without it, the
	// RawConn.Read below would spin instead of parking.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, &ProcessError{Op: "watch", PID: pid, Err: fmt.Errorf("pidfd not pollable: %w", err)}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &ProcessError{Op: "watch", PID: pid, Err: err}
	}
	w := &Watch{pid: pid, f: f, rc: rc, sem: make(chan struct{}, 1)}
	w.peekFn = w.peekOnce
	return w, nil
}

// PID returns the pid being watched.
func (w *Watch) PID() int { return w.pid }

func (w *Watch) lock(ctx context.Context) error {
	select {
	case w.sem <- struct{}{}:
		return nil // not asking for ctx.Done, which may make a channel
	default:
	}
	select {
	case w.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Watch) unlock() { <-w.sem }

func (w *Watch) fail(op string, err error) error {
	if w.closed.Load() {
		err = ErrWatchClosed
	}
	return &ProcessError{Op: op, PID: w.pid, Err: err}
}

// Wait blocks until the process has exited and returns how, without reaping
// it. It returns at once if the exit is already known. When ctx is done
// first it returns ctx.Err(); the Watch stays usable. After [Watch.Close] it
// returns an error wrapping [ErrWatchClosed].
func (w *Watch) Wait(ctx context.Context) (Exit, error) {
	if err := w.lock(ctx); err != nil {
		return Exit{}, err
	}
	defer w.unlock()
	if err := w.beforeWait(ctx); err != nil || w.exited {
		return w.exit, err
	}
	return w.afterWait(ctx, w.park(ctx))
}

// The steps of Wait are functions of their own, never inlined: a service
// loop parks in Wait for its instance's whole life, and what stays on its
// stack meanwhile is only the frames of Wait and park (see
// [Service.loop]).

// beforeWait returns an error if Wait cannot wait, and readies the pidfd's
// read deadline.
//
//go:noinline
func (w *Watch) beforeWait(ctx context.Context) error {
	if w.exited {
		return nil
	}
	if w.closed.Load() {
		return w.fail("wait", ErrWatchClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Only after a wake: setting a deadline is deep (the poller's timers),
	// and this runs at the bottom of a parked loop's stack.
	if w.woken.Swap(false) {
		if err := w.f.SetReadDeadline(time.Time{}); err != nil {
			return w.fail("wait", err)
		}
	}
	return nil
}

// park blocks until the pidfd says the process exited (its status in
// w.peek) or ctx ends (the read deadline, set in the past, wakes it).
//
//go:noinline
func (w *Watch) park(ctx context.Context) error {
	lc, ok := ctx.(*loopContext)
	if !ok || !lc.parkWatch(w) {
		return w.parkAfterFunc(ctx)
	}
	err := w.read()
	lc.unparkWatch(w)
	return err
}

// parkAfterFunc is park on any context.
//
//go:noinline
func (w *Watch) parkAfterFunc(ctx context.Context) error {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		w.wake()
		close(fired)
	})
	err := w.read()
	if !stop() {
		<-fired // so the deadline is not set behind the next Wait's back
	}
	return err
}

// read waits in the poller until the process has exited, or the read
// deadline passes.
func (w *Watch) read() error { return w.rc.Read(w.peekFn) }

// peekOnce is the poller's callback of read: made once per Watch, so
// that a wait allocates nothing.
func (w *Watch) peekOnce(fd uintptr) bool {
	w.peek.exit, w.peek.done, w.peek.err = waitExitInto(int(fd), unix.WNOWAIT, &w.info)
	return w.peek.done || w.peek.err != nil
}

// wake makes a read in progress return: its deadline is in the past.
func (w *Watch) wake() {
	w.woken.Store(true)
	_ = w.f.SetReadDeadline(time.Unix(1, 0))
}

// afterWait turns what park learned into Wait's result.
//
//go:noinline
func (w *Watch) afterWait(ctx context.Context, err error) (Exit, error) {
	peek := w.peek
	w.peek = peekResult{}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return Exit{}, ctx.Err()
	case err != nil:
		return Exit{}, w.fail("wait", err)
	case peek.err != nil:
		return Exit{}, w.fail("wait", peek.err)
	}
	w.exited, w.exit = true, peek.exit
	return peek.exit, nil
}

// Exited reports, without blocking and without reaping, whether the process
// has exited, and how.
func (w *Watch) Exited() (Exit, bool, error) {
	if err := w.lock(context.Background()); err != nil {
		return Exit{}, false, err
	}
	defer w.unlock()
	if w.exited {
		return w.exit, true, nil
	}
	var (
		exit Exit
		done bool
		perr error
	)
	err := w.rc.Control(func(fd uintptr) { exit, done, perr = peekExit(int(fd)) })
	if err == nil {
		err = perr
	}
	if err != nil {
		return Exit{}, false, w.fail("wait", err)
	}
	if done {
		w.exited, w.exit = true, exit
	}
	return exit, done, nil
}

// Reap reaps the exited process and returns its final [Exit]. It does not
// block: if the process has not exited it returns an error wrapping
// [ErrNotExited]. It is idempotent: later calls return the same Exit. For a
// process that is not our child there is nothing to reap, and the Exit is
// [Exit.Unknown].
func (w *Watch) Reap() (Exit, error) {
	if err := w.lock(context.Background()); err != nil {
		return Exit{}, err
	}
	defer w.unlock()
	if w.reaped {
		return w.exit, nil
	}
	if w.closed.Load() {
		return Exit{}, w.fail("reap", ErrWatchClosed)
	}
	var (
		exit Exit
		done bool
		rerr error
	)
	err := w.rc.Control(func(fd uintptr) { exit, done, rerr = waitExit(int(fd), 0) })
	if err == nil {
		err = rerr
	}
	if err != nil {
		return Exit{}, w.fail("reap", err)
	}
	if !done {
		return Exit{}, w.fail("reap", ErrNotExited)
	}
	w.exited, w.reaped, w.exit = true, true, exit
	forgetChild(w)
	return exit, nil
}

// Close releases the pidfd and wakes a blocked [Watch.Wait]. It does not
// reap: call [Watch.Reap] first for our own child, or it stays a zombie.
// Close is idempotent.
func (w *Watch) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	return w.f.Close()
}

// withPidfd runs fn with the watched pidfd (for sending signals through
// it), or fails after Close.
func (w *Watch) withPidfd(fn func(fd int) error) error {
	var ferr error
	err := w.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) })
	if err != nil {
		return w.fail("signal", err)
	}
	return ferr
}

// peekExit learns whether the process of pidfd fd has exited, without
// reaping it.
func peekExit(fd int) (Exit, bool, error) { return waitExit(fd, unix.WNOWAIT) }

// waitExit is one non-blocking waitid on pidfd fd; extra is 0 (reap) or
// WNOWAIT (peek). done is false while the process runs.
func waitExit(fd int, extra int) (exit Exit, done bool, err error) {
	var info unix.Siginfo
	return waitExitInto(fd, extra, &info)
}

// waitExitInto is waitExit with the siginfo given, so that a Watch's
// poller callback, which runs at the bottom of a parked loop's stack,
// keeps its 128 bytes off the stack.
func waitExitInto(fd int, extra int, info *unix.Siginfo) (exit Exit, done bool, err error) {
	for {
		*info = unix.Siginfo{}
		// WNOHANG: it never blocks, so the raw call (no scheduler hooks,
		// nothing on the stack) is the right one.
		_, _, errno := unix.RawSyscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(fd), uintptr(unsafe.Pointer(info)), uintptr(unix.WEXITED|unix.WNOHANG|extra), 0, 0)
		if errno != 0 {
			switch errno {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return Exit{}, false, nil // still running (non-blocking pidfd)
			case unix.ECHILD:
				// Not our child: the pidfd is readable once it has exited.
				exited, err := pidfdReadable(fd)
				return Exit{Code: -1, Unknown: true}, exited, err
			}
			return Exit{}, false, fmt.Errorf("waitid: %w", errno)
		}
		pid, code, status := siginfoChild(info)
		if pid == 0 {
			return Exit{}, false, nil
		}
		return exitFromSiginfo(code, status), true, nil
	}
}

// pidfdReadable polls fd once without blocking.
func pidfdReadable(fd int) (bool, error) {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		return n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0, nil
	}
}
