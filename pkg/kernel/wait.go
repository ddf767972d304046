package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// WaitConnectionFile returns the connection in the file at path once the
// kernel has bound its ports and written them there, or ctx's error.
//
// A kernel started with a connection file whose ports are 0 (as
// [NewConnectionInfo] makes it) binds ports of its own choosing and
// rewrites the file with them, keeping the key; ipykernel does, and
// rewrites it in place (removed, created, written), so a reader may meet
// no file, an empty or half-written one, or the ports still 0. Each of
// these means "not yet": WaitConnectionFile reads the file again each time
// a file of its directory is written or renamed into it (inotify), never
// on a timer. A file that is complete but not usable otherwise (no key,
// another transport) is an error wrapping [ErrBadConnectionFile] at once.
func WaitConnectionFile(ctx context.Context, path string) (ConnectionInfo, error) {
	fail := func(err error) (ConnectionInfo, error) {
		return ConnectionInfo{}, fmt.Errorf("wait for connection file %s: %w", path, err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("inotify_init1: %w", err))
	}
	// Non-blocking, so the runtime's poller reads it and a deadline wakes
	// a read in flight.
	in := os.NewFile(uintptr(fd), "inotify")
	defer in.Close()
	// The watch is in place before the first read: a write after that read
	// is an event.
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO); err != nil {
		return fail(fmt.Errorf("watch %s: %w", filepath.Dir(path), err))
	}
	defer context.AfterFunc(ctx, func() { in.SetReadDeadline(time.Now()) })()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		info, err := readBound(path)
		if err == nil || !errors.Is(err, errNotYet) {
			return info, err
		}
		if _, rerr := in.Read(buf); rerr != nil {
			if ctx.Err() != nil {
				return fail(fmt.Errorf("%w (the kernel has not written its ports: %w)", ctx.Err(), err))
			}
			return fail(rerr)
		}
	}
}

// errNotYet marks a connection file that its kernel has not finished
// writing.
var errNotYet = errors.New("not written yet")

// readBound reads the connection file at path; errNotYet if the kernel has
// not written its ports into it yet.
func readBound(path string) (ConnectionInfo, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ConnectionInfo{}, fmt.Errorf("%w: no file", errNotYet)
	}
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file: %w", err)
	}
	var info ConnectionInfo
	if err := json.Unmarshal(b, &info); err != nil {
		// A file being rewritten: empty, or cut short.
		return ConnectionInfo{}, fmt.Errorf("%w: %w", errNotYet, err)
	}
	if !info.Bound() {
		if err := info.validate(false); err != nil {
			return ConnectionInfo{}, fmt.Errorf("read connection file %s: %w", path, err)
		}
		return ConnectionInfo{}, fmt.Errorf("%w: its ports are 0", errNotYet)
	}
	if err := info.Validate(); err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file %s: %w", path, err)
	}
	return info, nil
}
