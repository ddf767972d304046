package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/solo-rt/solo/pkg/state"
)

// outputChunk is the most a reader reads of an output file at once.
const outputChunk = 32 << 10

// OutputReader is a task's output, opened by [Manager.OpenOutput]. It is
// not safe for concurrent use; Close it.
type OutputReader struct {
	m      *Manager
	id     string
	path   string
	legacy []byte   // outputs recorded in the task's end event (older logs)
	f      *os.File // nil until the file exists
	off    int64
	buf    []byte
}

// OpenOutput opens the output of task id, checking first what can be
// checked before a byte is sent, so that a server can still answer with an
// error: [ErrTaskNotFound] for an unknown task, [ErrCollected] for one
// whose output was collected when its lease expired. Opening is a read: it
// renews the output's lease (recorded as asset_renewed when due), under
// the lock the sweep takes, so the output cannot be collected in between;
// and once open, the file stays readable even if it is collected later.
func (m *Manager) OpenOutput(ctx context.Context, id string) (*OutputReader, error) {
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	t, ok := m.task(id)
	if !ok {
		return nil, fmt.Errorf("task %q: %w", id, ErrTaskNotFound)
	}
	if !t.OutputCollectedAt.IsZero() {
		return nil, fmt.Errorf("output of task %q: %w at %s: nobody read it for %s", id, ErrCollected,
			t.OutputCollectedAt.Format(time.RFC3339), m.opts.AssetTTL)
	}
	key := state.Key{Tenant: t.Tenant, Name: t.Session}
	o := &OutputReader{m: m, id: id, path: m.outputPath(key, id)}
	if len(t.Outputs) == 0 {
		if err := m.elsewhere(key); err != nil {
			return nil, fmt.Errorf("output of task %q: %w", id, err)
		}
	}
	if len(t.Outputs) > 0 {
		o.legacy = Render(t.Outputs, t.Truncated)
		return o, nil
	}
	m.renewLocked(ctx, key, []state.AssetKey{{Tenant: key.Tenant, Session: key.Name, ID: id}})
	if err := o.open(); err != nil {
		return nil, fmt.Errorf("output of task %q: %w", id, err)
	}
	return o, nil
}

// open opens the file if it exists (a pending task has none yet).
func (o *OutputReader) open() error {
	if o.f != nil {
		return nil
	}
	f, err := os.Open(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	o.f = f
	return nil
}

// Copy writes the output to w: what it has so far, and with follow
// everything the task writes until it ends (a pending task is waited for).
// w must not keep b. Readers read the file, never the kernel's buffers, so
// a slow one holds up neither the kernel nor other readers (I8). Copy
// continues where an earlier Copy stopped.
func (o *OutputReader) Copy(ctx context.Context, follow bool, w func(b []byte) error) error {
	m := o.m
	if o.legacy != nil {
		if o.off < int64(len(o.legacy)) {
			b := o.legacy[o.off:]
			o.off = int64(len(o.legacy))
			return w(b)
		}
		return nil
	}
	for {
		// The change channel and the live task before the fold: a task
		// that ends after this read wakes wait; one that ended before it
		// is final, its file complete.
		m.mu.Lock()
		var wait <-chan struct{} = m.applied
		lt := m.live[o.id]
		m.mu.Unlock()
		var final bool
		m.read(func(ss *state.Sessions) {
			t, ok := ss.Task(o.id)
			final = ok && t.State.Final()
		})
		end := int64(-1) // no writer: read to the end of the file
		if lt != nil {
			// Only what was written whole.
			end, _, wait = lt.written()
		}
		if err := o.copyTo(end, w); err != nil {
			return err
		}
		if (final && lt == nil) || !follow {
			return nil
		}
		select {
		case <-wait:
		case <-m.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// copyTo writes the file from the reader's offset to end (-1: its end).
func (o *OutputReader) copyTo(end int64, w func([]byte) error) error {
	if err := o.open(); err != nil || o.f == nil {
		return err
	}
	if o.buf == nil {
		o.buf = make([]byte, outputChunk)
	}
	for end < 0 || o.off < end {
		n := int64(len(o.buf))
		if end >= 0 {
			n = min(n, end-o.off)
		}
		k, err := o.f.ReadAt(o.buf[:n], o.off)
		if k > 0 {
			o.off += int64(k)
			if werr := w(o.buf[:k]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read output of task %q: %w", o.id, err)
		}
	}
	return nil
}

// Close releases the file; idempotent.
func (o *OutputReader) Close() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f = nil
	return err
}

// Output writes the rendered outputs of a task to w: [Manager.OpenOutput],
// then [OutputReader.Copy].
func (m *Manager) Output(ctx context.Context, id string, follow bool, w func([]byte) error) error {
	o, err := m.OpenOutput(ctx, id)
	if err != nil {
		return err
	}
	defer o.Close()
	return o.Copy(ctx, follow, w)
}

func (m *Manager) setLive(id string, l *liveTask) {
	m.mu.Lock()
	m.live[id] = l
	m.mu.Unlock()
}

func (m *Manager) endLive(id string) {
	m.mu.Lock()
	l := m.live[id]
	delete(m.live, id)
	m.mu.Unlock()
	if l != nil {
		l.finish()
	}
}
