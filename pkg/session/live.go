package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/internal/durable"
	"github.com/solo-rt/solo/pkg/kernel"
	"github.com/solo-rt/solo/pkg/state"
)

// truncatedNote ends the text of a task whose outputs were cut.
const truncatedNote = "\n[solo: output truncated]\n"

// liveTask is a running task's output file. The kernel's reader goroutine
// renders each output and writes it to the file at once, with one write(2)
// under a short lock, so that what a task printed is on disk (in the page
// cache) before anyone can read it, and survives a SIGKILL of the daemon.
// The file is fsynced at most every syncEvery while output flows, and by
// [liveTask.flush] before the task's end is recorded, so that a crash of
// the host loses at most syncEvery of output. The file is append-only and
// bounded: past limit bytes the output is cut and truncatedNote written.
// Readers follow the file, never this struct's memory: they take the size
// written and a change channel under the lock and read unlocked (I8).
type liveTask struct {
	limit     int64
	syncEvery time.Duration
	log       hclog.Logger

	// syncMu is held through an fsync, so that flush waits for one in
	// flight instead of taking its clean flag as the disk's word.
	syncMu sync.Mutex

	mu          sync.Mutex
	f           *os.File // nil once closed, or if it could not be opened
	size        int64    // bytes in the file, all written
	truncated   bool     // cut at the limit (or by a write error)
	writeFailed bool
	dirty       bool          // written since the last fsync
	newFile     bool          // created by this attempt: its directory needs an fsync too
	syncTimer   *time.Timer   // pending fsync, nil if none
	changed     chan struct{} // closed at the next change; for good once finished
	done        bool
	finished    bool // finish was called
	cancelled   bool // a cancel interrupted it
}

// openLiveTask opens (creating it, mode 0600) the output file at path for
// attempt of a task. The file is appended to: a task that runs again
// (retryable) keeps what its earlier attempts wrote, after a note. An error
// is returned only if the file cannot be opened; the caller may still run
// the task, without output, and says so.
func openLiveTask(path string, attempt int, limit int64, syncEvery time.Duration, log hclog.Logger) (*liveTask, error) {
	l := &liveTask{limit: limit, syncEvery: syncEvery, log: log, changed: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		l.truncated, l.writeFailed = true, true
		return l, fmt.Errorf("output file: %w", err)
	}
	_, serr := os.Lstat(path)
	l.newFile = errors.Is(serr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		l.truncated, l.writeFailed = true, true
		return l, fmt.Errorf("output file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		l.truncated, l.writeFailed = true, true
		return l, fmt.Errorf("output file: %w", err)
	}
	l.f, l.size = f, st.Size()
	l.truncated = l.size >= limit
	if l.size > 0 && attempt > 1 {
		note := fmt.Sprintf("[solo: attempt %d]\n", attempt)
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, l.size-1); err == nil && last[0] != '\n' {
			note = "\n" + note
		}
		l.addText(note)
	}
	return l, nil
}

// add takes one kernel output (called from the client's iopub goroutine).
func (l *liveTask) add(o kernel.Output) {
	l.addOutput(toTaskOutput(o))
}

// addOutput renders o into the file.
func (l *liveTask) addOutput(o state.TaskOutput) {
	l.addText(renderOne(o))
}

func (l *liveTask) addText(r string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated || l.done || r == "" {
		return
	}
	if room := l.limit - l.size; int64(len(r)) > room {
		// Keep what fits, cut at a character boundary; drop the rest.
		cut := r[:max(room, 0)]
		for i := 0; i < utf8.UTFMax-1 && len(cut) > 0; i++ {
			if r, n := utf8.DecodeLastRuneInString(cut); r != utf8.RuneError || n != 1 {
				break
			}
			cut = cut[:len(cut)-1]
		}
		l.write(cut + truncatedNote)
		l.truncated = true
	} else {
		l.write(r)
	}
	l.notify()
	if l.syncTimer == nil && l.f != nil {
		l.syncTimer = time.AfterFunc(l.syncEvery, l.sync)
	}
}

// write appends s to the file; l.mu is held. A write that fails (a full
// disk) cuts the output there: the task runs on, and the failure is
// logged once and recorded as truncated.
func (l *liveTask) write(s string) {
	if l.f == nil {
		return
	}
	n, err := l.f.WriteString(s)
	l.size += int64(n)
	l.dirty = l.dirty || n > 0
	if err != nil {
		l.truncated = true
		if !l.writeFailed {
			l.writeFailed = true
			l.log.Error("cannot write task output; the rest of it is lost", "file", l.f.Name(), "error", err)
		}
	}
}

func (l *liveTask) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// sync is the deferred fsync of output written since the last one.
func (l *liveTask) sync() {
	l.mu.Lock()
	l.syncTimer = nil
	l.mu.Unlock()
	l.syncNow()
}

// syncNow fsyncs the file if it was written since the last fsync, and its
// directory the first time, so that a new file's name is durable too. A
// task that printed nothing costs no fsync.
func (l *liveTask) syncNow() {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	f, dirty, newFile := l.f, l.dirty, l.newFile
	l.dirty = false
	if dirty {
		l.newFile = false
	}
	l.mu.Unlock()
	if f == nil || !dirty {
		return
	}
	err := f.Sync()
	if err == nil && newFile {
		err = durable.SyncDir(filepath.Dir(f.Name()))
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		l.log.Warn("cannot fsync task output", "file", f.Name(), "error", err)
	}
}

// flush fsyncs the file and returns its size and whether the output was
// cut: what the task's end records. Nothing is written after it.
func (l *liveTask) flush() (size int64, truncated bool) {
	l.mu.Lock()
	l.done = true
	if l.syncTimer != nil {
		l.syncTimer.Stop()
		l.syncTimer = nil
	}
	size, truncated = l.size, l.truncated
	l.mu.Unlock()
	l.syncNow()
	return size, truncated
}

// discard removes the file if this attempt created it and nothing was
// written to it: its start was never recorded.
func (l *liveTask) discard() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && l.newFile && l.size == 0 {
		os.Remove(l.f.Name())
	}
}

// written returns the bytes in the file, all written, whether the task is
// done, and a channel closed at the next change (already closed once the
// task is finished).
func (l *liveTask) written() (int64, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.done, l.changed
}

// finish closes the file and wakes the readers; idempotent. Its change
// channel stays closed: nothing changes after it, and a reader that took
// the task as live just before it ended must not wait for a change that
// will never come.
func (l *liveTask) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.syncTimer != nil {
		l.syncTimer.Stop()
		l.syncTimer = nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.done = true
	if !l.finished {
		l.finished = true
		close(l.changed)
	}
}

func (l *liveTask) setCancelled() {
	l.mu.Lock()
	l.cancelled = true
	l.mu.Unlock()
}

func (l *liveTask) wasCancelled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cancelled
}

// fileSize returns the size of the file at path, 0 if there is none.
func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func toTaskOutput(o kernel.Output) state.TaskOutput {
	out := state.TaskOutput{Kind: string(o.Kind), Name: o.Name, Text: o.Text}
	if o.Kind == kernel.OutputError {
		if len(o.Traceback) > 0 {
			out.Text = stripANSI(strings.Join(o.Traceback, "\n"))
		} else {
			out.Text = o.EName + ": " + o.EValue
		}
	}
	return out
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// renderOne is the text of one output: a stream as is, anything else on
// its own line.
func renderOne(o state.TaskOutput) string {
	if o.Kind == "stream" || o.Text == "" || strings.HasSuffix(o.Text, "\n") {
		return o.Text
	}
	return o.Text + "\n"
}

// Render returns the text of outputs as `solo task output` prints them:
// streams as written, results and errors on lines of their own, and a note
// at the end if they were truncated. It is how a task's output file is
// written, output by output, and how the outputs of a task that ended
// before outputs moved to files (recorded in its end event) are shown.
func Render(outs []state.TaskOutput, truncated bool) []byte {
	var b []byte
	for _, o := range outs {
		b = append(b, renderOne(o)...)
	}
	if truncated {
		b = append(b, truncatedNote...)
	}
	return b
}
