package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/internal/tmpfs"
)

// mustNewLogs opens Logs in a temp dir and, at cleanup, closes it and checks
// the invariant that at most MaxFiles rotated files exist for any key.
func mustNewLogs(t testing.TB, opts LogOptions) *Logs {
	t.Helper()
	l, err := NewLogs(filepath.Join(t.TempDir(), "logs"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		_ = filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(path, ".log."+strconv.Itoa(l.opts.MaxFiles+1)) {
				t.Errorf("more than %d rotated files: %s", l.opts.MaxFiles, path)
			}
			return nil
		})
	})
	return l
}

func TestNewLogs(t *testing.T) {
	l := mustNewLogs(t, LogOptions{})
	if l.opts.MaxSize != DefaultMaxSize || l.opts.MaxFiles != DefaultMaxFiles || l.opts.CheckInterval != DefaultCheckInterval {
		t.Fatalf("defaults = %+v", l.opts)
	}
	fi, err := os.Stat(l.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if _, err := NewLogs(t.TempDir(), LogOptions{MaxSize: -1}); err == nil {
		t.Fatal("negative MaxSize accepted")
	}
}

func TestLogs_Open(t *testing.T) {
	l := mustNewLogs(t, LogOptions{})
	t.Run("nested key", func(t *testing.T) {
		f, err := l.Open("default/web")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		path := filepath.Join(l.dir, "default", "web.log")
		if f.Name() != path || l.Path("default/web") != path {
			t.Fatalf("file %s, Path %s, want %s", f.Name(), l.Path("default/web"), path)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("file mode %v, %v; want 0600", fi.Mode(), err)
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil || di.Mode().Perm() != 0o700 {
			t.Fatalf("dir mode %v, %v; want 0700", di.Mode(), err)
		}
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_APPEND == 0 || flags&unix.O_ACCMODE != unix.O_WRONLY {
			t.Fatalf("flags %#x, %v; want O_WRONLY|O_APPEND", flags, err)
		}
		l.mu.Lock()
		watched := len(l.byWD)
		l.mu.Unlock()
		if watched != 1 {
			t.Fatalf("%d watches, want 1", watched)
		}
		l.Release("default/web")
		l.mu.Lock()
		watched = len(l.byWD)
		l.mu.Unlock()
		if watched != 0 {
			t.Fatalf("%d watches after Release, want 0", watched)
		}
	})
	t.Run("file replaced", func(t *testing.T) {
		l := mustNewLogs(t, LogOptions{MaxSize: 10})
		f, err := l.Open("svc")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Remove(l.Path("svc")); err != nil {
			t.Fatal(err)
		}
		f, err = l.Open("svc") // a new file: the watch must follow it
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		started := make(chan struct{})
		l.onFollow = func(string) { close(started) }
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := &notifyBuffer{wrote: make(chan struct{}, 1)}
		go l.Follow(ctx, "svc", w)
		<-started
		if _, err := f.WriteString("0123\n"); err != nil {
			t.Fatal(err)
		}
		w.waitFor(t, "0123\n") // woken by the watch on the new file
	})
	t.Run("invalid keys", func(t *testing.T) {
		for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", ".", "a/.", "nul\x00"} {
			if _, err := l.Open(key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
			}
			if l.Path(key) != "" {
				t.Errorf("Path(%q) = %q, want empty", key, l.Path(key))
			}
		}
	})
	t.Run("over size at open is rotated", func(t *testing.T) {
		l := mustNewLogs(t, LogOptions{MaxSize: 16}) // rotated at 14 bytes
		if err := os.WriteFile(l.Path("old"), []byte("0123456789abc\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		f, err := l.Open("old")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if b, _ := os.ReadFile(l.Path("old") + ".1"); string(b) != "0123456789abc\n" {
			t.Fatalf("old.log.1 = %q", b)
		}
		if fi, _ := os.Stat(l.Path("old")); fi.Size() != 0 {
			t.Fatalf("old.log has %d bytes, want 0", fi.Size())
		}
	})
	t.Run("after close", func(t *testing.T) {
		l := mustNewLogs(t, LogOptions{})
		l.Close()
		if _, err := l.Open("x"); !errors.Is(err, ErrLogsClosed) {
			t.Fatalf("Open after Close = %v", err)
		}
	})
}

// TestLogs_Rotation has a child write many MB as fast as it can (with a
// brief pause every 16 KiB) into a file from Logs.Open, and checks that the
// files stay bounded and ordered.
func TestLogs_Rotation(t *testing.T) {
	const (
		maxSize   = 256 << 10
		maxFiles  = 3
		total     = 16 << 20
		overshoot = 2 << 20 // ~125 ms of this writer: far more than the 5 ms interval
	)
	l := mustNewLogs(t, LogOptions{MaxSize: maxSize, MaxFiles: maxFiles, CheckInterval: 5 * time.Millisecond})
	out, err := l.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := mustStart(t, StartOptions{
		Argv:   []string{buildHelper(t, "fastwriter"), "-bytes", strconv.Itoa(total), "-line", "1024", "-burst", "16", "-pause", "1ms"},
		Output: out,
	})
	out.Close() // the child has its own descriptor
	if exit, err := p.Wait(context.Background()); err != nil || !exit.Success() {
		t.Fatalf("writer: %v, %v", exit, err)
	}
	if _, err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := l.Check("svc"); err != nil { // the last word, as a service loop would
		t.Fatal(err)
	}
	l.Release("svc")

	// Oldest first: svc.log.3, .2, .1, svc.log.
	var files []string
	for i := maxFiles; i >= 1; i-- {
		files = append(files, l.Path("svc")+"."+strconv.Itoa(i))
	}
	files = append(files, l.Path("svc"))
	entries, _ := os.ReadDir(filepath.Dir(l.Path("svc")))
	if len(entries) != len(files) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files %v, want svc.log and %d rotated", names, maxFiles)
	}
	last := -1
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxSize+overshoot {
			t.Errorf("%s has %d bytes, more than MaxSize %d + %d", filepath.Base(path), len(b), maxSize, overshoot)
		}
		t.Logf("%s: %d bytes", filepath.Base(path), len(b))
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "[solo: ") && strings.HasSuffix(line, "rotated]\n") {
				continue // bytes dropped: said, and the order below still holds
			}
			seq, err := strconv.Atoi(line[:10])
			if err != nil {
				t.Fatalf("%s: bad line %q", filepath.Base(path), line)
			}
			if seq <= last {
				t.Fatalf("%s: line %d after line %d: files out of order", filepath.Base(path), seq, last)
			}
			last = seq
		}
	}
	// The newest line is the last one kept.
	tail, err := l.Tail("svc", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(tail), " done\n") || strings.Count(string(tail), "\n") != 1 {
		t.Fatalf("Tail(1) = %q, want the final line", tail)
	}
	if want := (total + 1023) / 1024; last != want {
		t.Fatalf("last line %d, want %d", last, want)
	}
}

// TestLogs_FastWriterBounded runs `yes` (a gigabyte a second on a tmpfs)
// into a log and samples the rotated files while it writes: each holds at
// most MaxSize (the line that says what was dropped included), there are never
// more than MaxFiles of them and one copy in progress, so they never take
// more than MaxFiles*MaxSize plus one rotation's worth. Before rotation
// copied a fixed length, the copy chased the writer and a rotated file
// reached hundreds of megabytes within two seconds. key.log itself can
// overshoot by what the writer writes while the daemon is not scheduled;
// its peak is logged, not asserted (see the Caveats of [Logs]).
func TestLogs_FastWriterBounded(t *testing.T) {
	const (
		maxSize   = 4 << 20
		maxFiles  = 3
		rotations = 40
	)
	dir := tmpfs.Mount(t, 1<<30)
	l, err := NewLogs(filepath.Join(dir, "logs"), LogOptions{MaxSize: maxSize, MaxFiles: maxFiles})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := l.Open("default/yesfast")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := mustStart(t, StartOptions{Argv: []string{"yes", "fast"}, Output: out})
	out.Close()
	defer mustKill(t, p)
	e, _ := l.entry("default/yesfast")
	gen := func() uint64 {
		e.rot.Lock()
		defer e.rot.Unlock()
		return e.gen
	}
	path := l.Path("default/yesfast")
	size := func(name string) int64 {
		fi, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	var peakRotated, peakCurrent, samples int64
	for gen() < rotations {
		if exit, err := p.Watch().Reap(); err == nil {
			t.Fatalf("yes exited: %v", exit)
		}
		// Oldest first, the copy in progress last: a rotation that
		// renames files between two stats can make the sum smaller than
		// the truth, never larger.
		var rotated int64
		for i := maxFiles + 1; i >= 1; i-- {
			n := size(path + "." + strconv.Itoa(i))
			if i > maxFiles && n > 0 {
				t.Fatalf("%d bytes in rotated file %d, beyond MaxFiles", n, i)
			}
			if n > maxSize {
				t.Fatalf("rotated file %d holds %d bytes, over MaxSize %d", i, n, maxSize)
			}
			rotated += n
		}
		tmp := size(path + ".1.tmp")
		if tmp > maxSize {
			t.Fatalf("the copy in progress holds %d bytes, over MaxSize %d: it chases the writer", tmp, maxSize)
		}
		rotated += tmp
		if rotated > (maxFiles+1)*maxSize {
			t.Fatalf("rotated files and the copy take %d bytes, over MaxFiles*MaxSize plus one rotation", rotated)
		}
		peakRotated = max(peakRotated, rotated)
		peakCurrent = max(peakCurrent, size(path))
		samples++
	}
	t.Logf("%d rotations, %d samples; peak of the rotated files %d bytes (MaxFiles*MaxSize %d), of key.log %d", gen(), samples, peakRotated, maxFiles*maxSize, peakCurrent)
	// yes still writes, and a rotation may be renaming key.log.1 this
	// moment: read it under the lock a rotation holds.
	e.rot.Lock()
	b, err := os.ReadFile(path + ".1")
	e.rot.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// What was kept starts at a line; if the rotation dropped bytes, a
	// line at its head says so.
	if first, rest, _ := strings.Cut(string(b), "\n"); first != "fast" && (!strings.HasPrefix(first, "[solo: ") || !strings.HasPrefix(rest, "fast\n")) {
		t.Fatalf("key.log.1 starts %q, want whole lines, after the dropped-bytes line if any", b[:min(len(b), 200)])
	}
}

// TestLogs_RotationDiskFull fills the disk under a log that must rotate:
// the rotation cannot copy, so it truncates and says so, and the space
// comes back instead of the disk staying full.
func TestLogs_RotationDiskFull(t *testing.T) {
	const maxSize = 1 << 20
	dir := tmpfs.Mount(t, 8<<20)
	l, err := NewLogs(filepath.Join(dir, "logs"), LogOptions{MaxSize: maxSize, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := os.OpenFile(l.Path("svc"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := strings.Repeat("x", 1023) + "\n"
	for written := 0; written <= maxSize+4096; written += len(line) {
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	tmpfs.Fill(t, dir)
	before := tmpfs.Avail(t, dir)

	err = l.Check("svc")
	if !errors.Is(err, ErrLogDropped) {
		t.Fatalf("Check on a full disk = %v, want ErrLogDropped", err)
	}
	fi, err := os.Stat(l.Path("svc"))
	if err != nil || fi.Size() != 0 {
		t.Fatalf("svc.log after a rotation on a full disk: %v, %v; want truncated", fi, err)
	}
	if _, err := os.Stat(l.Path("svc") + ".1.tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a partial copy is left behind: %v", err)
	}
	if after := tmpfs.Avail(t, dir); after < before+maxSize {
		t.Fatalf("free space %d -> %d: the truncated log's blocks did not come back", before, after)
	}
	// The service's next line lands.
	if _, err := f.WriteString("after\n"); err != nil {
		t.Fatalf("write after the rotation: %v", err)
	}
}

func TestLogs_Tail(t *testing.T) {
	l := mustNewLogs(t, LogOptions{MaxSize: 1 << 30})
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(l.dir, name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("k.log.2", "a1\na2\n")
	write("k.log.1", "b1\nb2\n")
	write("k.log", "c1\nc2") // last line not ended yet
	write("r.log.1", "r1\nr2")
	write("r.log", "")
	big := strings.Repeat("x", 100<<10)
	write("big.log", "first\n"+big+"1\n"+big+"2\n")

	tests := []struct {
		key  string
		n    int
		want string
	}{
		{"k", 1, "c2"},
		{"k", 2, "c1\nc2"},
		{"k", 3, "b2\nc1\nc2"},
		{"k", 5, "a2\nb1\nb2\nc1\nc2"},
		{"k", 100, "a1\na2\nb1\nb2\nc1\nc2"},
		{"k", 0, "a1\na2\nb1\nb2\nc1\nc2"},
		{"r", 1, "r2"},
		{"r", 5, "r1\nr2"},
		{"big", 2, big + "1\n" + big + "2\n"},
		{"big", 1, big + "2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+strconv.Itoa(tt.n), func(t *testing.T) {
			got, err := l.Tail(tt.key, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Tail(%s, %d) = %.40q..., want %.40q...", tt.key, tt.n, got, tt.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := l.Tail("nope", 3); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Tail(missing) = %v, want fs.ErrNotExist", err)
		}
	})
}

// notifyBuffer is an io.Writer that signals each write.
type notifyBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

// waitFor waits until the buffer holds exactly want.
func (b *notifyBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		got := b.buf.String()
		b.mu.Unlock()
		if got == want {
			return
		}
		if len(got) > len(want) || !strings.HasPrefix(want, got) {
			t.Fatalf("followed %q, want %q", got, want)
		}
		select {
		case <-b.wrote:
		case <-timeout:
			t.Fatalf("followed %q, still waiting for %q", got, want)
		}
	}
}

func TestLogs_Follow(t *testing.T) {
	const maxSize = 1 << 10
	l := mustNewLogs(t, LogOptions{MaxSize: maxSize, CheckInterval: time.Millisecond})
	started := make(chan struct{})
	l.onFollow = func(string) { close(started) }

	f, err := l.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mustWrite := func(s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("before follow\n") // not streamed: Follow starts at the end

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &notifyBuffer{wrote: make(chan struct{}, 1)}
	errc := make(chan error, 1)
	go func() { errc <- l.Follow(ctx, "svc", w) }()
	<-started

	want := "first\n"
	mustWrite("first\n")
	w.waitFor(t, want)

	t.Run("across a rotation", func(t *testing.T) {
		// One write: a rotation by the watcher cannot cut into it. It
		// takes the file past the rotation size, not past MaxSize, so
		// the rotation keeps all of it.
		chunk := strings.Repeat(strings.Repeat("r", 99)+"\n", 9)
		mustWrite(chunk)
		want += chunk
		// Make sure the rotation is over (by the watcher or by us)
		// before writing again, or the write could fall in its window.
		if err := l.Check("svc"); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(l.Path("svc")); fi.Size() > maxSize {
			t.Fatalf("no rotation: %d bytes", fi.Size())
		}
		mustWrite("after rotation\n")
		want += "after rotation\n"
		w.waitFor(t, want)
	})
	t.Run("truncated by someone else", func(t *testing.T) {
		if err := os.Truncate(l.Path("svc"), 0); err != nil {
			t.Fatal(err)
		}
		mustWrite("x\n")
		want += "x\n"
		w.waitFor(t, want)
	})
	t.Run("cancel", func(t *testing.T) {
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow = %v, want context.Canceled", err)
		}
		l.mu.Lock()
		followers := len(l.entries["svc"].followers)
		l.mu.Unlock()
		if followers != 0 {
			t.Fatalf("%d followers left registered", followers)
		}
	})
	t.Run("close", func(t *testing.T) {
		l := mustNewLogs(t, LogOptions{})
		f, err := l.Open("svc")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		started := make(chan struct{})
		l.onFollow = func(string) { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- l.Follow(context.Background(), "svc", &notifyBuffer{wrote: make(chan struct{}, 1)}) }()
		<-started
		l.Close()
		if err := <-errc; !errors.Is(err, ErrLogsClosed) {
			t.Fatalf("Follow = %v, want ErrLogsClosed", err)
		}
	})
}

// TestLogs_TailFollow starts a tail-then-follow again and again while a
// writer appends numbered lines as fast as it can: each time, the lines
// seen are consecutive, with none lost or repeated where the tail ends and
// the follow begins. (Tail, then Follow, lost the lines written between
// the two reads.)
func TestLogs_TailFollow(t *testing.T) {
	l := mustNewLogs(t, LogOptions{MaxSize: 1 << 30})
	f, err := l.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	written := make(chan int, 1)
	go func() {
		n := 0
		defer func() { written <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n++
			if _, err := fmt.Fprintf(f, "%08d\n", n); err != nil {
				return
			}
		}
	}()
	for round := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		w := &notifyBuffer{wrote: make(chan struct{}, 1)}
		done := make(chan error, 1)
		go func() { done <- l.TailFollow(ctx, "svc", 3, w) }()
		// Wait for some followed bytes beyond the tail, then stop.
		for {
			<-w.wrote
			w.mu.Lock()
			lines := strings.Count(w.buf.String(), "\n")
			w.mu.Unlock()
			if lines > 50 {
				break
			}
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: TailFollow = %v", round, err)
		}
		w.mu.Lock()
		got := strings.Split(strings.TrimSpace(w.buf.String()), "\n")
		w.mu.Unlock()
		prev := -1
		for i, line := range got {
			if len(line) != 8 {
				continue // a partial last line
			}
			n, err := strconv.Atoi(line)
			if err != nil {
				t.Fatalf("round %d: line %d %q", round, i, line)
			}
			if prev >= 0 && n != prev+1 {
				t.Fatalf("round %d: line %d is %d after %d: lines lost or repeated between the tail and the follow", round, i, n, prev)
			}
			prev = n
		}
	}
	close(stop)
	<-written
}
