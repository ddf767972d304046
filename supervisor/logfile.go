package supervisor

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for [LogOptions].
const (
	// DefaultMaxSize is the size above which a log file is rotated.
	DefaultMaxSize int64 = 10 << 20
	// DefaultMaxFiles is how many rotated files (key.log.1 ...) are kept.
	DefaultMaxFiles = 3
	// DefaultCheckInterval is the pause after each batch of growth events
	// during which further events coalesce.
	DefaultCheckInterval = 50 * time.Millisecond
)

// LogOptions configure [NewLogs]. The zero value means all defaults.
type LogOptions struct {
	// MaxSize is the most bytes a rotated file keeps. key.log is rotated
	// when it reaches seven eighths of it. Zero means [DefaultMaxSize].
	// key.log can overshoot it by what the service writes while one
	// rotation is noticed and done (see [Logs]).
	MaxSize int64
	// MaxFiles is how many rotated files are kept: key.log.1 (newest) to
	// key.log.MaxFiles. Zero means [DefaultMaxFiles].
	MaxFiles int
	// CheckInterval is how long the watcher pauses after handling a batch
	// of growth events before it reads events again, so that a chatty
	// service wakes the daemon at most once per interval. Zero means
	// [DefaultCheckInterval].
	CheckInterval time.Duration
	// Logger receives rotation failures. Nil discards them.
	Logger *slog.Logger
}

// Logs owns the per-service log files in one directory: key.log, written by
// the service itself, and its rotated copies key.log.1 ... key.log.N.
//
// The child writes directly to key.log through an O_APPEND descriptor from
// [Logs.Open]; the daemon holds no pipe and is not in the data path. Growth
// is noticed through ONE inotify instance with an IN_MODIFY watch per
// watched file, read by one goroutine parked in the runtime poller; after
// each batch it checks the size of the files that changed, rotates those
// over MaxSize, and pauses CheckInterval so that events coalesce. An idle
// service costs nothing.
//
// Rotation is copy-then-truncate: key.log.(N-1) becomes key.log.N (the
// oldest is dropped), key.log is copied to key.log.1 (a fixed length, at
// most MaxSize bytes), and key.log is truncated to zero; the child keeps its descriptor, and with O_APPEND its
// next write lands at offset 0.
//
// # Caveats
//
//   - Bytes written between the end of the copy and the truncate are lost
//     (logrotate's copytruncate has the same window).
//   - Rotation reacts to growth, it cannot throttle the writer: key.log can
//     exceed MaxSize by what the service writes while one rotation is
//     noticed and done (after a rotation the watcher looks again at once,
//     without its CheckInterval pause). A rotated file never holds more
//     than MaxSize bytes of output: a writer that outruns rotation loses
//     the older bytes, and key.log.1 then starts with a line that says how
//     many.
//   - On a full disk a rotation keeps no copy: key.log is truncated and
//     [ErrLogDropped] reported, so that the disk does not stay full.
//   - A watch follows the inode: a file replaced behind Logs' back (rm,
//     mv) is no longer watched until the next [Logs.Open] or
//     [Logs.Follow] of its key.
//
// All methods are safe for concurrent use.
type Logs struct {
	dir  string
	opts LogOptions
	log  *slog.Logger

	in      *os.File // the inotify instance
	inrc    syscall.RawConn
	closing chan struct{}
	done    chan struct{} // the watcher goroutine has returned

	mu      sync.Mutex
	closed  bool
	entries map[string]*logEntry
	byWD    map[int32]*logEntry

	onFollow func(key string) // test hook: a Follow is registered
}

// logEntry is the state of one key.
type logEntry struct {
	key, path string

	// Guarded by Logs.mu.
	wd        int32 // inotify watch, -1 if none
	open      bool  // between Open and Release
	followers map[chan struct{}]struct{}

	// rot serialises rotation with Tail and Follow reads.
	rot sync.Mutex
	gen uint64 // rotations done; guarded by rot
	// Of the last rotation, guarded by rot: how many bytes at the front of
	// the old key.log were dropped, and the length of the line at the head
	// of key.log.1 that says so. Offset x of the old key.log is at
	// x-skip+header in key.log.1, if x >= skip.
	skip, header int64
	// The size seen at the last check and when, guarded by rot: how fast
	// the file grows.
	lastSize  int64
	lastCheck time.Time
	// limits of this key's rotation, guarded by rot; zero fields are the
	// Logs' own (see [Logs.OpenLimited]).
	limits LogLimits
}

// LogLimits are one key's rotation limits: MaxSize and MaxFiles as in
// [LogOptions]. Zero fields mean the [Logs]' own.
type LogLimits struct {
	MaxSize  int64
	MaxFiles int
}

// maxSize and maxFiles are e's limits; with e.rot held.
func (l *Logs) maxSize(e *logEntry) int64 { return cmp.Or(e.limits.MaxSize, l.opts.MaxSize) }
func (l *Logs) maxFiles(e *logEntry) int  { return cmp.Or(e.limits.MaxFiles, l.opts.MaxFiles) }

// NewLogs creates dir (mode 0700) if needed and starts the watcher. See
// [LogOptions] for the defaults. Call [Logs.Close] to stop it.
func NewLogs(dir string, opts LogOptions) (*Logs, error) {
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.MaxSize < 0 || opts.MaxFiles < 0 || opts.CheckInterval < 0 {
		return nil, fmt.Errorf("new logs: negative option in %+v", opts)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("new logs: %w", err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("new logs: inotify_init1: %w", err)
	}
	in := os.NewFile(uintptr(fd), "inotify")
	rc, err := in.SyscallConn()
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("new logs: %w", err)
	}
	l := &Logs{
		dir:     dir,
		opts:    opts,
		log:     logger,
		in:      in,
		inrc:    rc,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		entries: make(map[string]*logEntry),
		byWD:    make(map[int32]*logEntry),
	}
	go l.watch()
	return l, nil
}

func validKey(key string) bool {
	if key == "" || strings.ContainsRune(key, 0) || strings.HasPrefix(key, "/") {
		return false
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// Path returns the path of key's current log file, dir/key.log, or "" if
// key is invalid. A key may contain slashes ("tenant/name"): its
// directories are created by [Logs.Open].
func (l *Logs) Path(key string) string {
	if !validKey(key) {
		return ""
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)+".log")
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// entry returns key's entry, creating it; with l.mu held.
func (l *Logs) entryLocked(key string) (*logEntry, error) {
	if l.closed {
		return nil, ErrLogsClosed
	}
	if e, ok := l.entries[key]; ok {
		return e, nil
	}
	path := l.Path(key)
	if path == "" {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	e := &logEntry{key: key, path: path, wd: -1, followers: make(map[chan struct{}]struct{})}
	l.entries[key] = e
	return e, nil
}

func (l *Logs) entry(key string) (*logEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entryLocked(key)
}

// watchLocked (re)adds the inotify watch for e's file; with l.mu held.
// Adding is idempotent for the same file, and moves the watch to a new
// file that replaced the old one.
func (l *Logs) watchLocked(e *logEntry) error {
	var (
		wd   int
		werr error
	)
	if err := l.inrc.Control(func(fd uintptr) {
		wd, werr = unix.InotifyAddWatch(int(fd), e.path, unix.IN_MODIFY)
	}); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("inotify_add_watch %s: %w", e.path, werr)
	}
	if e.wd >= 0 && e.wd != int32(wd) {
		delete(l.byWD, e.wd)
	}
	e.wd = int32(wd)
	l.byWD[e.wd] = e
	return nil
}

// unwatchLocked removes e's watch once nobody needs it; with l.mu held.
func (l *Logs) unwatchLocked(e *logEntry) {
	if e.wd < 0 || e.open || len(e.followers) > 0 || l.closed {
		return
	}
	wd := e.wd
	_ = l.inrc.Control(func(fd uintptr) { _, _ = unix.InotifyRmWatch(int(fd), uint32(wd)) })
	delete(l.byWD, wd)
	e.wd = -1
}

// Open creates key's log file if needed (mode 0600, directories 0700:
// only the daemon reads logs, for its callers; a service writes its own
// through the descriptor it is given, never by path), starts watching it
// for rotation, and returns it opened O_WRONLY|O_APPEND for handing to a
// child as [StartOptions.Output]. The caller closes its copy after [Start]. A file already over MaxSize (left
// by an earlier daemon) is rotated at once. Open may be called again for the
// same key (a restart); the watch stays until [Logs.Release].
func (l *Logs) Open(key string) (*os.File, error) { return l.OpenLimited(key, LogLimits{}) }

// OpenLimited is [Logs.Open] with key's own rotation limits, which hold
// from now on (zero fields: the Logs' own). Negative limits are refused.
func (l *Logs) OpenLimited(key string, lim LogLimits) (*os.File, error) {
	fail := func(err error) (*os.File, error) { return nil, fmt.Errorf("open log %q: %w", key, err) }
	if lim.MaxSize < 0 || lim.MaxFiles < 0 {
		return fail(fmt.Errorf("negative limit in %+v", lim))
	}
	e, err := l.entry(key)
	if err != nil {
		return fail(err)
	}
	e.rot.Lock()
	e.limits = lim
	e.rot.Unlock()
	if err := os.MkdirAll(filepath.Dir(e.path), 0o700); err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(e.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	l.mu.Lock()
	if l.closed {
		err = ErrLogsClosed
	} else {
		e.open = true
		err = l.watchLocked(e)
	}
	l.mu.Unlock()
	if err != nil {
		f.Close()
		return fail(err)
	}
	if err := l.check(e); err != nil {
		// Not fatal: the service can still log; the watcher retries.
		l.log.Error("log rotation failed", "key", key, "err", err)
	}
	return f, nil
}

// Release stops watching key's log, once the service no longer runs. Its
// files stay. Release of a key that is not open does nothing.
func (l *Logs) Release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[key]; ok {
		e.open = false
		l.unwatchLocked(e)
	}
}

// Check rotates key's log now if it is over MaxSize. The watcher does the
// same on its own; Check is for a last look, after a service exited.
func (l *Logs) Check(key string) error {
	e, err := l.entry(key)
	if err != nil {
		return fmt.Errorf("check log %q: %w", key, err)
	}
	return l.check(e)
}

func (l *Logs) check(e *logEntry) error {
	_, err := l.checkRotated(e)
	return err
}

// checkRotated is check for the watcher: it also says how soon key.log
// must be looked at again, 0 right after a rotation. A file growing fast
// enough to reach the rotation size within CheckInterval asks for a look
// before then, so that a fast writer is not left to run past MaxSize
// during the watcher's pause.
func (l *Logs) checkRotated(e *logEntry) (again time.Duration, err error) {
	e.rot.Lock()
	defer e.rot.Unlock()
	again = l.opts.CheckInterval
	fi, err := os.Stat(e.path)
	if errors.Is(err, fs.ErrNotExist) {
		return again, nil
	}
	if err != nil {
		return again, fmt.Errorf("check log %q: %w", e.key, err)
	}
	now, size := time.Now(), fi.Size()
	if size < l.rotateAt(e) {
		// Assume the writer may be as fast as the faster of what it just
		// did and fastWriter: the file must not reach the rotation size
		// unseen during the pause.
		rate := float64(fastWriter) / float64(time.Second)
		if grew := size - e.lastSize; grew > 0 && !e.lastCheck.IsZero() {
			rate = max(rate, float64(grew)/float64(max(now.Sub(e.lastCheck), time.Microsecond)))
		}
		again = min(again, time.Duration(float64(l.rotateAt(e)-size)/rate))
		e.lastSize, e.lastCheck = size, now
		return again, nil
	}
	dropped, err := l.rotateLocked(e)
	e.lastSize, e.lastCheck = 0, time.Now()
	if err != nil {
		if errors.Is(err, ErrLogDropped) {
			again = 0
		}
		return again, fmt.Errorf("rotate log %q: %w", e.key, err)
	}
	if dropped > 0 {
		l.log.Warn("log rotation dropped output: the service writes faster than its log can be rotated", "key", e.key, "dropped_bytes", dropped)
	}
	return 0, nil
}

// rotateLocked does one copy-then-truncate rotation; with e.rot held. It
// reports whether anything written before the rotation began was dropped
// (more than MaxSize, or a disk too full to hold the copy).
//
// The copy has a fixed length, taken when the rotation begins: a writer
// faster than the copy can never make it chase the end of the file. Of
// those bytes at most MaxSize are kept (the newest, from a line start); the older ones are
// dropped and a line at the head of key.log.1 says how many, so a reader of
// the logs is told, not left to guess. When the disk is too full for the
// copy, key.log is truncated without one: a service's old output matters
// less than room for the event log and for the service's next lines.
func (l *Logs) rotateLocked(e *logEntry) (dropped int64, err error) {
	maxSize, maxFiles := l.maxSize(e), l.maxFiles(e)
	// Files past MaxFiles (kept under a larger limit before) go.
	for i := maxFiles + 1; os.Remove(rotated(e.path, i)) == nil; i++ {
	}
	for i := maxFiles - 1; i >= 1; i-- {
		err := os.Rename(rotated(e.path, i), rotated(e.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	src, err := os.Open(e.path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	var skip int64
	var header []byte
	if size > maxSize {
		// The header that tells of the drop counts against MaxSize too;
		// its length with size as the count is an upper bound.
		room := max(0, maxSize-int64(len(droppedHeader(size))))
		// Keep whole lines: start after the first line end past the cut.
		skip = lineStart(src, size-room, size)
		header = droppedHeader(skip)
	}
	keep := size - skip
	tmp := rotated(e.path, 1) + ".tmp"
	err = copyRange(tmp, header, src, skip, keep, maxSize-int64(len(header)))
	if isNoSpace(err) {
		// No room for the copy: drop it rather than leave the disk full.
		os.Remove(tmp)
		if terr := os.Truncate(e.path, 0); terr != nil {
			return 0, terr
		}
		e.gen++
		e.skip, e.header = size, 0
		return size, fmt.Errorf("%w: kept no copy of %d bytes: %v", ErrLogDropped, size, err)
	}
	if err == nil {
		// The loss window: bytes written from size to here.
		err = os.Truncate(e.path, 0)
	}
	if err == nil {
		err = os.Rename(tmp, rotated(e.path, 1))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	e.gen++
	e.skip, e.header = skip, int64(len(header))
	return skip, nil
}

// droppedHeader is the line at the head of key.log.1 that says how many
// older bytes a rotation dropped.
func droppedHeader(n int64) []byte {
	return fmt.Appendf(nil, "[solo: %d bytes of this log were dropped: the service wrote faster than the log could be rotated]\n", n)
}

// fastWriter is the write rate, in bytes a second, that the watcher assumes
// a growing log may reach before it looks again: its pause after a batch
// is no longer than the time such a writer needs to reach the rotation
// size. A file at the start of its life allows a pause of CheckInterval
// (10 MiB at this rate take 20 ms); one close to MaxSize is looked at
// again within a few milliseconds.
const fastWriter = 512 << 20

// rotateAt is the size at which key.log is rotated: an eighth below
// MaxSize, so that what a steady writer adds while its rotation is being
// noticed still fits in a rotated file of MaxSize bytes, and nothing is
// dropped.
func (l *Logs) rotateAt(e *logEntry) int64 { m := l.maxSize(e); return m - m/8 }

// copyRange writes header, then n bytes of src from offset off, to a new
// file at path, then what follows them while the copy stays within limit
// bytes (the header not counted).
func copyRange(path string, header []byte, src *os.File, off, n, limit int64) error {
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if len(header) > 0 {
		_, err = dst.Write(header)
	}
	if err == nil {
		_, err = src.Seek(off, io.SeekStart)
	}
	// *os.File to *os.File through a LimitedReader: the kernel copies
	// (copy_file_range), and never past the length asked. Then, a few
	// times at most, what the writer added meanwhile, as long as the copy
	// stays within limit: a steady writer loses (almost) nothing in the
	// window before the truncate, a fast one cannot make the copy chase it.
	for pass := 0; err == nil && pass < 4 && n > 0; pass++ {
		var copied int64
		copied, err = io.Copy(dst, io.LimitReader(src, n))
		off += copied
		limit -= copied
		if err != nil || copied < n {
			break
		}
		var fi os.FileInfo
		if fi, err = src.Stat(); err != nil {
			break
		}
		if n = fi.Size() - off; n > limit {
			break
		}
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// lineStart returns the offset just after the first '\n' at or after off
// in src (within 64 KiB and before size), or off if there is none.
func lineStart(src *os.File, off, size int64) int64 {
	buf := make([]byte, min(64<<10, size-off))
	n, _ := src.ReadAt(buf, off)
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return off + int64(i) + 1
	}
	return off
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// watch is the one watcher goroutine.
func (l *Logs) watch() {
	defer close(l.done)
	buf := make([]byte, 64<<10)
	pause := time.NewTimer(0)
	<-pause.C
	for {
		n, err := l.in.Read(buf) // parks in the poller
		if err != nil {
			select {
			case <-l.closing:
			default:
				l.log.Error("log watcher stopped", "err", err)
			}
			return
		}
		changed, gone, overflow := parseInotify(buf[:n])

		var batch []*logEntry
		l.mu.Lock()
		for wd := range gone {
			// The kernel dropped the watch (file deleted); let the
			// next Open add a new one.
			if e, ok := l.byWD[wd]; ok {
				delete(l.byWD, wd)
				e.wd = -1
			}
		}
		if overflow {
			for _, e := range l.byWD {
				batch = append(batch, e)
			}
		} else {
			for wd := range changed {
				if e, ok := l.byWD[wd]; ok {
					batch = append(batch, e)
				}
			}
		}
		for _, e := range batch {
			for ch := range e.followers {
				select {
				case ch <- struct{}{}:
				default: // already notified; a slow follower never blocks us
				}
			}
		}
		l.mu.Unlock()

		// The pause lets a chatty service's events coalesce, but is cut
		// short for a file that grows fast, and skipped after a rotation:
		// its writer may be outrunning us.
		wait := l.opts.CheckInterval
		for _, e := range batch {
			again, err := l.checkRotated(e)
			if err != nil {
				l.log.Error("log rotation failed", "key", e.key, "err", err)
			}
			wait = min(wait, again)
		}
		if wait <= 0 {
			continue
		}

		pause.Reset(wait)
		select {
		case <-pause.C:
		case <-l.closing:
			return
		}
	}
}

// parseInotify returns the watch descriptors in buf with IN_MODIFY events,
// those removed by the kernel (IN_IGNORED), and whether the event queue
// overflowed.
func parseInotify(buf []byte) (changed, gone map[int32]struct{}, overflow bool) {
	changed = make(map[int32]struct{})
	gone = make(map[int32]struct{})
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		wd := int32(binary.NativeEndian.Uint32(buf[off:]))
		mask := binary.NativeEndian.Uint32(buf[off+4:])
		nameLen := binary.NativeEndian.Uint32(buf[off+12:])
		off += unix.SizeofInotifyEvent + int(nameLen)
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0:
			overflow = true
		case mask&unix.IN_IGNORED != 0:
			gone[wd] = struct{}{}
		case mask&unix.IN_MODIFY != 0:
			changed[wd] = struct{}{}
		}
	}
	return changed, gone, overflow
}

// Close stops the watcher, removes all watches and wakes running
// [Logs.Follow] calls, which return [ErrLogsClosed]. Files handed out by
// [Logs.Open] stay open and usable by their children. Close is idempotent.
func (l *Logs) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.closing)
	l.mu.Unlock()
	err := l.in.Close() // wakes the watcher's Read
	<-l.done
	return err
}

// Tail returns the last n lines of key's log, reading back through the
// rotated files if key.log has fewer, oldest first. n <= 0 returns
// everything kept. A file boundary counts as a line end. It returns an error
// wrapping [fs.ErrNotExist] if key has no log at all.
func (l *Logs) Tail(key string, n int) ([]byte, error) {
	e, err := l.entry(key)
	if err != nil {
		return nil, fmt.Errorf("tail log %q: %w", key, err)
	}
	e.rot.Lock()
	defer e.rot.Unlock()
	out, err := l.tailLocked(e, n, -1)
	if err != nil {
		return nil, fmt.Errorf("tail log %q: %w", key, err)
	}
	return out, nil
}

// tailLocked is Tail with e.rot held; it reads key.log only up to size
// (its current size if size < 0).
func (l *Logs) tailLocked(e *logEntry, n int, size int64) ([]byte, error) {
	var (
		parts [][]byte // newest first
		found bool
		need  = n
	)
	// Every rotated file there is is read, not only MaxFiles of them: a
	// key whose limits are not known yet (its service re-adopted, not
	// opened again) still shows all it kept.
	for i := 0; ; i++ {
		path, upTo := e.path, size
		if i > 0 {
			path, upTo = rotated(e.path, i), -1
		}
		data, lines, err := tailFile(path, need, upTo)
		if errors.Is(err, fs.ErrNotExist) {
			if i > 0 {
				break
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		if len(data) == 0 {
			continue
		}
		parts = append(parts, data)
		if n > 0 {
			if need -= lines; need <= 0 {
				break
			}
		}
	}
	if !found {
		return nil, fs.ErrNotExist
	}
	var out []byte
	for _, p := range slices.Backward(parts) {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, p...)
	}
	return out, nil
}

// tailFile returns the last n lines of the file at path (all of it if
// n <= 0) and how many lines that is; a last line without '\n' counts.
// It reads the file up to upTo bytes, or to its end if upTo < 0.
func tailFile(path string, n int, upTo int64) ([]byte, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	if upTo >= 0 && upTo < size {
		size = upTo
	}
	if size == 0 {
		return nil, 0, nil
	}
	if n <= 0 {
		data, err := io.ReadAll(io.LimitReader(f, size))
		if err != nil {
			return nil, 0, err
		}
		lines := strings.Count(string(data), "\n")
		if data[len(data)-1] != '\n' {
			lines++
		}
		return data, lines, nil
	}
	const chunk = 64 << 10
	var (
		buf   []byte // the file from pos to its end
		pos   = size
		count int // '\n' seen, not counting a final one
	)
	for pos > 0 {
		readLen := min(chunk, pos)
		pos -= readLen
		block := make([]byte, readLen, int64(len(buf))+readLen)
		if _, err := f.ReadAt(block, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		for i := len(block) - 1; i >= 0; i-- {
			if block[i] != '\n' || pos+int64(i) == size-1 {
				continue
			}
			if count++; count == n {
				return append(block[i+1:], buf...), n, nil
			}
		}
		buf = append(block, buf...)
	}
	return buf, count + 1, nil
}

// Follow writes to w the bytes appended to key's log after the call, until
// ctx is done (it returns ctx.Err()), [Logs.Close] (ErrLogsClosed), or a
// write to w fails. Call [Logs.Tail] first for history.
//
// Follow is woken by the shared watcher, so it sees new bytes at most about
// one CheckInterval late. It survives rotation: after a rotation it reads
// what it had not yet read from key.log.1, then key.log from offset 0; a
// file truncated by anyone else is also read again from 0. A slow w slows
// only this Follow (it is woken through a one-slot channel) and never the
// writer or the watcher; if it falls more than one rotation behind, it
// skips to the start of key.log.
func (l *Logs) Follow(ctx context.Context, key string, w io.Writer) error {
	return l.follow(ctx, key, -1, w)
}

// TailFollow is [Logs.Tail] then [Logs.Follow] as one read: it writes the
// last n lines of key's log to w (everything kept if n == 0), then what is
// appended after them, until ctx is done. The tail ends, and the follow
// begins, at one offset taken while no rotation can run, so no line written
// in between is lost or written twice (Tail then Follow leaves a gap). It
// returns an error wrapping [fs.ErrNotExist] if key has no log at all.
func (l *Logs) TailFollow(ctx context.Context, key string, n int, w io.Writer) error {
	return l.follow(ctx, key, max(n, 0), w)
}

// follow is Follow, after the last tail lines if tail >= 0.
func (l *Logs) follow(ctx context.Context, key string, tail int, w io.Writer) error {
	fail := func(err error) error { return fmt.Errorf("follow log %q: %w", key, err) }
	wake := make(chan struct{}, 1)
	l.mu.Lock()
	e, err := l.entryLocked(key)
	if err == nil {
		e.followers[wake] = struct{}{}
		err = l.watchLocked(e) // before the first read: no append is missed
		if err != nil {
			delete(e.followers, wake)
		}
	}
	l.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	defer func() {
		l.mu.Lock()
		delete(e.followers, wake)
		l.unwatchLocked(e)
		l.mu.Unlock()
	}()
	f, err := os.Open(e.path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()

	e.rot.Lock()
	fi, err := f.Stat()
	gen := e.gen
	var past []byte
	if err == nil && tail >= 0 {
		past, err = l.tailLocked(e, tail, fi.Size())
	}
	e.rot.Unlock()
	if err != nil {
		return fail(err)
	}
	if len(past) > 0 {
		if _, err := w.Write(past); err != nil {
			return fail(err)
		}
	}
	fr := &follower{l: l, e: e, f: f, offset: fi.Size(), gen: gen, buf: make([]byte, 64<<10)}
	if l.onFollow != nil {
		l.onFollow(key)
	}
	for {
		for {
			data, err := fr.next()
			if err != nil {
				return fail(err)
			}
			if len(data) == 0 {
				break
			}
			if _, err := w.Write(data); err != nil {
				return fail(err)
			}
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.closing:
			return fail(ErrLogsClosed)
		}
	}
}

// follower is the read position of one Follow.
type follower struct {
	l      *Logs
	e      *logEntry
	f      *os.File // key.log
	offset int64    // in the file being read
	gen    uint64   // rotations seen
	// inRotated: offset is in key.log.1, reading what a rotation moved
	// there, not in key.log.
	inRotated bool
	buf       []byte
}

// next returns the next bytes to forward, or none when caught up.
func (fr *follower) next() ([]byte, error) {
	fr.e.rot.Lock()
	defer fr.e.rot.Unlock()
	if fr.e.gen != fr.gen {
		// Rotated since the last read. After exactly one rotation the
		// unread rest is at the same offset in key.log.1.
		if fr.e.gen == fr.gen+1 {
			if !fr.inRotated {
				fr.inRotated = true
				fr.offset += fr.e.header - fr.e.skip
				if fr.offset < fr.e.header {
					fr.offset = 0 // what it had not read was dropped: start with the line that says so
				}
			}
			data, err := readAt(rotated(fr.e.path, 1), fr.offset, fr.buf)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			if len(data) > 0 {
				fr.offset += int64(len(data))
				return data, nil
			}
		}
		fr.gen, fr.offset, fr.inRotated = fr.e.gen, 0, false
	}
	fi, err := fr.f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < fr.offset {
		fr.offset = 0 // truncated by someone else
	}
	n, err := fr.f.ReadAt(fr.buf, fr.offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	fr.offset += int64(n)
	return fr.buf[:n], nil
}

func readAt(path string, off int64, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}
