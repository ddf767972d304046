package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// procRoot is where /proc is mounted.
const procRoot = "/proc"

// Identity names one process for its whole life, on one boot: a pid alone is
// not enough, because pids are recycled. It is what the event log records
// (service_started: pid, start_ticks, boot_id) and what every signal is
// checked against (invariant I4).
type Identity struct {
	// PID is the process id.
	PID int `json:"pid"`
	// StartTicks is field 22 (starttime) of /proc/PID/stat: when the process
	// started, in clock ticks since boot.
	StartTicks uint64 `json:"start_ticks"`
	// BootID is /proc/sys/kernel/random/boot_id at the time of the record.
	BootID string `json:"boot_id"`
}

// String returns "pid 123 (start 4567)".
func (id Identity) String() string {
	return fmt.Sprintf("pid %d (start %d)", id.PID, id.StartTicks)
}

var bootID = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(procRoot + "/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("read boot id: empty")
	}
	return id, nil
})

// BootID returns the kernel's boot id, which changes at every boot. It is
// read once per daemon process and cached, including a failure.
func BootID() (string, error) { return bootID() }

// procStat is the part of /proc/PID/stat that this package uses.
type procStat struct {
	PID        int
	Comm       string
	State      byte   // field 3: R, S, D, Z, ...
	PPID       int    // field 4
	PGID       int    // field 5
	StartTicks uint64 // field 22
}

// parseStat parses one /proc/PID/stat line. The comm field (2) is in
// parentheses and may itself contain spaces and parentheses, so the fixed
// fields are taken after the LAST ')'.
func parseStat(line []byte) (procStat, error) {
	open := bytes.IndexByte(line, '(')
	closing := bytes.LastIndexByte(line, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("parse stat: no (comm) in %q", line)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat: pid: %w", err)
	}
	// fields[0] is field 3 of proc(5), so field N is fields[N-3].
	fields := strings.Fields(string(line[closing+1:]))
	if len(fields) < 22-3+1 {
		return procStat{}, fmt.Errorf("parse stat: %d fields after comm, want at least 20", len(fields))
	}
	st := procStat{PID: pid, Comm: string(line[open+1 : closing])}
	if len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parse stat: state %q", fields[0])
	}
	st.State = fields[0][0]
	if st.PPID, err = strconv.Atoi(fields[4-3]); err != nil {
		return procStat{}, fmt.Errorf("parse stat: ppid: %w", err)
	}
	if st.PGID, err = strconv.Atoi(fields[5-3]); err != nil {
		return procStat{}, fmt.Errorf("parse stat: pgrp: %w", err)
	}
	if st.StartTicks, err = strconv.ParseUint(fields[22-3], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("parse stat: starttime: %w", err)
	}
	return st, nil
}

// isGone reports whether err from reading /proc/PID/... means that the
// process does not exist (any more).
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if isGone(err) {
		return procStat{}, ErrNoProcess
	}
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// ReadIdentity returns the identity of the live process pid. It returns an
// error wrapping [ErrNoProcess] if there is none.
//
// The result names whatever process has that pid now; it is meaningful as a
// record only when the caller knows the pid is stable, as for its own
// unreaped child (see [Start]).
func ReadIdentity(pid int) (Identity, error) {
	id, _, err := ReadIdentityGroup(pid)
	return id, err
}

// ReadIdentityGroup is [ReadIdentity], and the process group of pid, from
// the same one read of /proc/PID/stat.
func ReadIdentityGroup(pid int) (id Identity, pgid int, err error) {
	boot, err := BootID()
	if err != nil {
		return Identity{}, 0, err
	}
	st, err := readStat(pid)
	if err != nil {
		return Identity{}, 0, &ProcessError{Op: "read identity", PID: pid, Err: err}
	}
	return Identity{PID: pid, StartTicks: st.StartTicks, BootID: boot}, st.PGID, nil
}

// Verify is THE identity check of invariant I4. It returns nil when the live
// process at id.PID has the recorded start ticks and the machine is still on
// the recorded boot; an error wrapping [ErrNoProcess] if no process has that
// pid; an error wrapping [ErrNotSameProcess] if the pid was recycled or the
// boot differs; [ErrInvalidPID] for a pid below 2.
//
// A zombie (exited, not yet reaped) still passes: its pid is still reserved.
// Verify alone is a snapshot; to act on the process use [Signal] or
// [SignalGroup], which pin it with a pidfd first.
func Verify(id Identity) error {
	_, err := verify(id)
	return err
}

// Running reports whether the recorded process is alive: it passes
// [Verify] and has not exited (a zombie has: it only awaits its reaper).
// Like Verify it is a snapshot.
func Running(id Identity) bool {
	_, ok := RunningGroup(id)
	return ok
}

// RunningGroup is [Running], and the process group of the process, from
// the same one read of /proc/PID/stat: what recovery needs to know of a
// recorded instance.
func RunningGroup(id Identity) (pgid int, ok bool) {
	st, err := verify(id)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return 0, false
	}
	return st.PGID, true
}

func verify(id Identity) (procStat, error) {
	fail := func(err error) (procStat, error) {
		return procStat{}, &ProcessError{Op: "verify", PID: id.PID, Err: err}
	}
	if id.PID < 2 {
		return fail(ErrInvalidPID)
	}
	boot, err := BootID()
	if err != nil {
		return fail(err)
	}
	if id.BootID != boot {
		return fail(fmt.Errorf("%w: boot id %q, now %q", ErrNotSameProcess, id.BootID, boot))
	}
	st, err := readStat(id.PID)
	if err != nil {
		return fail(err)
	}
	if st.StartTicks != id.StartTicks {
		return fail(fmt.Errorf("%w: start ticks %d, now %d", ErrNotSameProcess, id.StartTicks, st.StartTicks))
	}
	return st, nil
}

// openVerified opens a pidfd on id.PID and only then verifies the identity,
// so that the pidfd is known to refer to the recorded process: a pidfd never
// changes what it refers to, even if the pid is later recycled.
func openVerified(id Identity, flags int) (fd int, st procStat, err error) {
	if id.PID < 2 {
		return -1, procStat{}, &ProcessError{Op: "verify", PID: id.PID, Err: ErrInvalidPID}
	}
	fd, err = unix.PidfdOpen(id.PID, flags)
	switch {
	case errors.Is(err, unix.ESRCH):
		return -1, procStat{}, &ProcessError{Op: "open pidfd", PID: id.PID, Err: ErrNoProcess}
	case errors.Is(err, unix.EINVAL):
		// The pid is a thread, not a process.
		return -1, procStat{}, &ProcessError{Op: "open pidfd", PID: id.PID, Err: ErrNotSameProcess}
	case err != nil:
		return -1, procStat{}, &ProcessError{Op: "open pidfd", PID: id.PID, Err: err}
	}
	st, err = verify(id)
	if err != nil {
		unix.Close(fd)
		return -1, procStat{}, err
	}
	return fd, st, nil
}

// Signal sends sig to the process id, and to no other: it opens a pidfd,
// then checks [Verify], then signals through the pidfd (pidfd_send_signal),
// so the pid cannot be recycled between the check and the signal.
//
// Errors wrap [ErrNoProcess] (gone), [ErrNotSameProcess] (recycled; nothing
// was signalled) or [ErrInvalidPID].
func Signal(id Identity, sig syscall.Signal) error {
	fd, _, err := openVerified(id, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return sendSignal(fd, id, sig, false)
}

// SignalGroup sends sig to the process group led by id, after the same
// pidfd-then-[Verify] check as [Signal]. The process must lead its own group
// (pgid == pid) or the error wraps [ErrNotGroupLeader].
//
// The group is signalled through the pidfd with PIDFD_SIGNAL_PROCESS_GROUP
// (Linux 6.9), which names the group by the verified process itself rather
// than by number. On older kernels it falls back to kill(-pid, sig) right
// after a second Verify; the leader is alive at that point, so its pid (and
// so the group id) cannot be free for reuse.
func SignalGroup(id Identity, sig syscall.Signal) error {
	fd, st, err := openVerified(id, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if st.PGID != id.PID {
		return &ProcessError{Op: "signal group", PID: id.PID, Err: fmt.Errorf("%w (pgid %d)", ErrNotGroupLeader, st.PGID)}
	}
	return sendSignal(fd, id, sig, true)
}

// sendSignal signals through a pidfd that has already been verified to
// refer to id. This is the only place in the package that sends signals.
func sendSignal(pidfd int, id Identity, sig syscall.Signal, group bool) error {
	op, flags := "signal", 0
	if group {
		op, flags = "signal group", unix.PIDFD_SIGNAL_PROCESS_GROUP
	}
	err := unix.PidfdSendSignal(pidfd, sig, nil, flags)
	if group && errors.Is(err, unix.EINVAL) {
		// Kernel without PIDFD_SIGNAL_PROCESS_GROUP (or an invalid
		// signal, which kill reports the same way).
		if err := Verify(id); err != nil {
			return err
		}
		err = unix.Kill(-id.PID, sig)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ESRCH):
		return &ProcessError{Op: op, PID: id.PID, Err: ErrNoProcess}
	default:
		return &ProcessError{Op: op, PID: id.PID, Err: fmt.Errorf("%v: %w", sig, err)}
	}
}

// ReadEnvVar returns the value of the environment variable key in the
// initial environment of process pid (/proc/PID/environ), and whether it is
// set there. Changes the process made to its own environment after exec are
// not visible. Reading another user's process needs privilege; a missing
// process gives an error wrapping [ErrNoProcess].
//
// It is how processes marked with [MarkerEnv] are recognised.
func ReadEnvVar(pid int, key string) (string, bool, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/environ", procRoot, pid))
	if isGone(err) {
		return "", false, &ProcessError{Op: "read environ", PID: pid, Err: ErrNoProcess}
	}
	if err != nil {
		return "", false, &ProcessError{Op: "read environ", PID: pid, Err: err}
	}
	prefix := key + "="
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, prefix); ok {
			return v, true, nil
		}
	}
	return "", false, nil
}

// ListPIDs returns the pids of all processes visible in /proc (not
// threads), in the order /proc lists them.
func ListPIDs() ([]int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list pids: %w", err)
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
