package eventstore

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/solo-rt/solo/internal/durable"
)

// Defaults for [Options]. A zero field in Options means the default.
const (
	// DefaultLockTimeout bounds how long Open waits for another process to
	// release the file: long enough to ride over a daemon restart's overlap,
	// short enough that a second daemon fails at once in human terms.
	DefaultLockTimeout = 500 * time.Millisecond
	// DefaultMaxBatch is the most events one group commit gathers from
	// several Append calls.
	DefaultMaxBatch = 1024
	// DefaultMaxAppend is the most events one Append call may hold: an
	// apply of tens of thousands of services is one call, one
	// transaction.
	DefaultMaxAppend = 65536
	// DefaultSubscriberBuffer is the number of live events a subscriber may
	// lag behind before it falls back to reading from the store.
	DefaultSubscriberBuffer = 1024
	// DefaultInitialMmapSize is the address space mapped at open (see Options).
	DefaultInitialMmapSize = 1 << 30
)

// Options configure [Open]. The zero value, or nil, uses every default.
type Options struct {
	// LockTimeout is how long Open waits for the file lock before it fails
	// with ErrLocked. Default DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxBatch caps the events a group commit gathers: the committer adds
	// queued Append calls to a transaction while it holds fewer. Default
	// DefaultMaxBatch.
	MaxBatch int
	// MaxAppend caps the events of one Append call, which is always
	// committed whole in one transaction (alone when it is larger than
	// MaxBatch). Default DefaultMaxAppend; never below MaxBatch.
	MaxAppend int
	// SubscriberBuffer is each subscriber's live buffer, in events.
	// Default DefaultSubscriberBuffer.
	SubscriberBuffer int
	// InitialMmapSize is passed to bbolt. Default DefaultInitialMmapSize.
	InitialMmapSize int
	// Now is the clock for events appended without a time. Default time.Now.
	Now func() time.Time
	// OnCommit, if set, is called by the committer after each group commit,
	// with its size and duration, and after each one the file system
	// refused (CommitStats.Err); it must not block. It exists so that a
	// metrics layer can observe the store without the store knowing about it.
	OnCommit func(CommitStats)
}

// CommitStats describes one group commit, for [Options.OnCommit].
type CommitStats struct {
	Requests int           // Append calls served
	Events   int           // new events written
	Took     time.Duration // from the start of the transaction to the end of its fsync
	// Err is set when the file system refused the commit; it wraps
	// [ErrNotWritten]. Nothing of the group was written.
	Err error
}

// Bucket names. Everything the store writes lives under these; other
// packages may keep their own buckets in the same file (see [Store.DB]).
var (
	bucketEvents    = []byte("events")    // pos -> envelope
	bucketIDs       = []byte("event_ids") // id -> pos
	bucketStreams   = []byte("streams")   // stream key + pos -> nothing
	bucketHeads     = []byte("heads")     // stream key -> version, last pos
	bucketSnapshots = []byte("snapshots") // pos -> state
	allBuckets      = [][]byte{bucketEvents, bucketIDs, bucketStreams, bucketHeads, bucketSnapshots}
)

// Store is an open event log. See the package doc.
type Store struct {
	db      *bolt.DB
	path    string
	opts    Options
	entropy *ulid.LockedMonotonicReader

	// mu guards closed; Append holds it shared while it queues a request so
	// that Close can wait for queued requests to be drained.
	mu     sync.RWMutex
	closed bool
	reqs   chan *appendReq
	done   chan struct{} // closed when the committer has exited
	quit   chan struct{} // closed by Close, for subscribers

	head atomic.Uint64 // last committed position

	subs subscribers

	stats struct {
		commits, events, overflows, writeFailures atomic.Uint64
	}
}

// Open opens or creates the store at path. It fails with [ErrLocked] when
// another process holds the file, and with [ErrCorrupt] when the file is
// damaged; it never hangs and never panics on a bad file.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxAppend <= 0 {
		o.MaxAppend = DefaultMaxAppend
	}
	o.MaxAppend = max(o.MaxAppend, o.MaxBatch)
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if o.InitialMmapSize <= 0 {
		o.InitialMmapSize = DefaultInitialMmapSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}

	if err := preflight(path); err != nil {
		return nil, err
	}
	if err := create(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, &bolt.Options{
		Timeout: o.LockTimeout,
		// A remap waits for every open read transaction, so a long reader
		// (a subscriber catching up, a backup) would stall the committer
		// whenever the file grows; mapping 1 GiB up front makes remaps rare.
		InitialMmapSize: o.InitialMmapSize,
		// The hashmap freelist allocates in O(1) where the array one scans;
		// with a large log the array freelist shows up in every commit.
		FreelistType: bolt.FreelistMapType,
		// The freelist stays synced (NoFreelistSync false): not syncing it
		// makes commits a little cheaper but every Open scans the whole
		// file to rebuild it, and Open must stay fast on a big log.
		NoFreelistSync: false,
	})
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:      db,
		path:    path,
		opts:    o,
		entropy: &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)},
		reqs:    make(chan *appendReq, 256),
		done:    make(chan struct{}),
		quit:    make(chan struct{}),
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// openBolt opens the bbolt file and turns its failures into the store's
// errors. bbolt panics, or faults on mapped memory, on some damaged files;
// both become ErrCorrupt. After such a panic the file handle cannot be
// released (bbolt never returned it), so the lock stays held until the
// process exits; that is acceptable for a file that cannot be used anyway.
func openBolt(path string, bo *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, bo)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, lockedError(path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open %s: %w: %v (restore it from a backup, or move it away to start empty)", path, ErrCorrupt, err)
	default:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
}

// bbolt's on-disk meta page (format version 2), as far as preflight needs it:
// a 16-byte page header, then magic, version, page size, ..., and at byte 56
// the high-water page id. Both meta pages are read; the larger mark wins,
// since bbolt never shrinks a file.
const (
	boltMagic       = 0xED0CDAED
	metaMagicOff    = 16
	metaPageSizeOff = 24
	metaPgidOff     = 56
)

// preflight refuses a file that is shorter than its own meta pages say,
// before bbolt maps it: touching a page past the end of a mapped file is a
// SIGBUS, not an error.
func preflight(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		// Open never leaves an empty file behind (see create): an empty
		// solo.db was truncated or replaced. Taking it for a new log would
		// forget every service and make their processes strays.
		return fmt.Errorf("open %s: %w: the file is empty (0 bytes): it was truncated or replaced; restore it from a backup, or move it away to start with an empty log (services that still run would then be unknown to Solo)", path, ErrCorrupt)
	}
	var high int64
	var pageSize int64 = 4096
	for i := 0; i < 2; i++ {
		buf := make([]byte, 64)
		if _, err := f.ReadAt(buf, int64(i)*pageSize+metaMagicOff); err != nil {
			continue
		}
		if binary.LittleEndian.Uint32(buf[0:4]) != boltMagic {
			continue
		}
		ps := int64(binary.LittleEndian.Uint32(buf[metaPageSizeOff-metaMagicOff:]))
		if ps < 512 || ps > 1<<20 {
			continue
		}
		pageSize = ps
		pgid := int64(binary.LittleEndian.Uint64(buf[metaPgidOff-metaMagicOff:]))
		if pgid > high {
			high = pgid
		}
	}
	if high == 0 {
		return fmt.Errorf("open %s: %w: no valid bbolt meta page (not a Solo database, or its header is destroyed)", path, ErrCorrupt)
	}
	if want := high * pageSize; size < want {
		return fmt.Errorf("open %s: %w: file is %d bytes but its meta page says %d: it was truncated (restore it from a backup)", path, ErrCorrupt, size, want)
	}
	return nil
}

// create makes a new, initialised bbolt file at path if none exists, so
// that no crash can leave an empty file there: bbolt writes its first pages
// into a temporary file, which is then linked into place (a link, unlike a
// rename, never replaces a file another process created meanwhile) and the
// directory synced. An existing file is left alone.
func create(path string) error {
	if _, err := os.Lstat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil // exists, or cannot be seen: Open reports it
	}
	fail := func(err error) error { return fmt.Errorf("create %s: %w", path, err) }
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".new-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err == nil {
		err = db.Close()
	}
	if err == nil {
		err = os.Link(tmp, path)
		if errors.Is(err, os.ErrExist) {
			return nil // another process created it first
		}
	}
	if err == nil {
		err = durable.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// init checks the file's pages, creates the buckets and loads the head
// position.
//
// The page check is bbolt's own (every page reachable once, none both used
// and free, page ids in range): it reads every page header but decodes no
// event, so it costs about a quarter of a second per million events, and it
// refuses a file whose history was overwritten before anything acts on it.
// (Before it, such a file opened, took deploys, and failed later in reads
// and backups with bbolt's assertions.) Damage inside an event, with its
// pages intact, is found by the event's checksum when it is read, and by
// [Store.Check].
func (s *Store) init() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(&err, "open "+s.path)
	var problems []string
	s.db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			if len(problems) < maxProblems {
				problems = append(problems, fmt.Sprintf("bbolt: %v", e))
			}
		}
		return nil
	})
	if len(problems) > 0 {
		return fmt.Errorf("open %s: %s: %w (restore it from a backup)", s.path, ErrCorrupt, &CheckError{Problems: problems})
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		head := b.Sequence()
		// The last event must decode: a cheap guard against a file whose
		// tail was damaged, without the cost of a full Check on every open.
		if head > 0 {
			v := b.Get(posKey(head))
			var env Envelope
			if v == nil {
				return fmt.Errorf("open %s: %w: the last event (pos %d) is missing", s.path, ErrCorrupt, head)
			}
			if err := decode(v, &env); err != nil || env.Pos != head {
				return fmt.Errorf("open %s: %w: the last event (pos %d) does not decode: %v", s.path, ErrCorrupt, head, err)
			}
		}
		s.head.Store(head)
		s.subs.setHead(head)
		return nil
	})
}

// Close stops accepting appends, waits for queued appends to be committed,
// ends every subscription and closes the file. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	close(s.quit)
	s.subs.closeAll()
	return s.db.Close()
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Head returns the position of the last committed event, 0 for an empty log.
func (s *Store) Head() uint64 { return s.head.Load() }

// NewID returns a fresh ULID, monotonic within the process. Callers that
// want to name an event before appending it (to use it as a causation, or to
// retry an append idempotently) take it from here.
func (s *Store) NewID() ulid.ULID {
	return ulid.MustNew(ulid.Timestamp(s.opts.Now()), s.entropy)
}

// DB returns the underlying bbolt database, for packages that keep their own
// buckets in the same file (the capability store does). They must never
// touch the buckets of this package.
func (s *Store) DB() *bolt.DB { return s.db }

// Stats are counters since Open.
type Stats struct {
	Head        uint64 // last committed position
	Commits     uint64 // group commits (transactions with an fsync)
	Events      uint64 // events written
	Subscribers int    // live subscriptions
	Overflows   uint64 // times a subscriber fell behind and went back to the store
	// WriteFailures counts group commits the file system refused
	// ([ErrNotWritten]).
	WriteFailures uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Head:        s.head.Load(),
		Commits:     s.stats.commits.Load(),
		Events:      s.stats.events.Load(),
		Subscribers: s.subs.count(),
		Overflows:   s.stats.overflows.Load(),

		WriteFailures: s.stats.writeFailures.Load(),
	}
}

func posKey(pos uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), pos)
}

// streamKey is the prefix of a stream in the streams and heads buckets:
// length-prefixed tenant and subject, so no separator can be forged by a name.
func streamKey(buf []byte, tenant, subject string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(tenant)))
	buf = append(buf, tenant...)
	buf = binary.AppendUvarint(buf, uint64(len(subject)))
	return append(buf, subject...)
}

// recoverCorrupt turns a bbolt panic on a damaged page into ErrCorrupt.
// Deferred by every method that reads pages.
func recoverCorrupt(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %w: %v", op, ErrCorrupt, r)
	}
}
