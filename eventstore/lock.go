package eventstore

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LockedError is returned by [Open] when another process holds the file.
// It wraps [ErrLocked].
type LockedError struct {
	Path string
	PID  int    // holder's pid, 0 if unknown
	Comm string // holder's command name, if known
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
		if e.Comm != "" {
			who += fmt.Sprintf(" (%s)", e.Comm)
		}
	}
	return fmt.Sprintf("open %s: database is locked by %s: stop it first, or use another data directory", e.Path, who)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

func lockedError(path string) error {
	e := &LockedError{Path: path}
	if pid := LockHolder(path); pid > 0 {
		e.PID = pid
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
			e.Comm = strings.TrimSpace(string(b))
		}
	}
	return e
}

// LockHolder returns the pid of the process that holds the store at path
// open (its flock), found through /proc/locks, where each line reads
// "1: FLOCK ADVISORY WRITE 1234 fd:01:5678 0 EOF"; 0 when none does or it
// cannot tell. It takes no lock itself, so it never stands in the way of an
// [Open]. It words [LockedError], and tells the CLI that a daemon holds a
// data dir (and is starting) before its socket answers.
func LockHolder(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parseLockHolder(bufio.NewScanner(f), st.Ino)
}

func parseLockHolder(sc *bufio.Scanner, ino uint64) int {
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// id: FLOCK ADVISORY WRITE pid maj:min:ino start end
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 {
			continue
		}
		if n, err := strconv.ParseUint(dev[2], 10, 64); err != nil || n != ino {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}
