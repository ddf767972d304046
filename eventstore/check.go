package eventstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxProblems bounds the findings one Check reports: a badly damaged file
// would otherwise produce one line per page.
const maxProblems = 100

// CheckError lists what [Store.Check] found. It wraps [ErrCorrupt].
type CheckError struct {
	Problems []string
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("%d problem(s): %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

func (e *CheckError) Unwrap() error { return ErrCorrupt }

// CheckReport summarises a clean check.
type CheckReport struct {
	Events    uint64 // events in the log
	Streams   uint64 // distinct (tenant, subject) streams
	Snapshots int
}

var errRollback = errors.New("rollback")

// Check verifies the whole file: bbolt's own consistency check (every page
// reachable once, no double frees), then the log: positions 1..head with no
// gap, every envelope decodes with a good checksum and carries its own
// position, every id and stream index entry points at its event, and the
// stream versions add up. It returns a [*CheckError] listing up to 100
// problems.
//
// Check runs in a write transaction that it rolls back: bbolt's check is not
// safe beside a concurrent writer otherwise. Appends wait while it runs.
func (s *Store) Check(ctx context.Context) (rep CheckReport, err error) {
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	defer recoverCorrupt(&err, "check")
	err = s.db.Update(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			add("bbolt: %v", e)
		}
		if len(problems) > 0 {
			return errRollback // the pages are bad; walking them may panic
		}
		rep = checkLog(ctx, tx, add)
		return errRollback
	})
	switch {
	case errors.Is(err, errRollback):
		err = nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return rep, ErrClosed
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if len(problems) > 0 {
		return rep, &CheckError{Problems: problems}
	}
	return rep, nil
}

func checkLog(ctx context.Context, tx *bolt.Tx, add func(string, ...any)) CheckReport {
	var rep CheckReport
	events, ids := tx.Bucket(bucketEvents), tx.Bucket(bucketIDs)
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			add("bucket %q is missing", name)
			return rep
		}
	}
	streams := tx.Bucket(bucketStreams).Cursor()
	head := events.Sequence()
	want := uint64(1)
	c := events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if want%65536 == 0 && ctx.Err() != nil {
			return rep
		}
		if len(k) != 8 {
			add("events: key %x is not a position", k)
			continue
		}
		pos := binary.BigEndian.Uint64(k)
		if pos != want {
			add("events: gap: expected position %d, found %d", want, pos)
		}
		want = pos + 1
		rep.Events++
		var env Envelope
		if err := decode(v, &env); err != nil {
			add("event %d: does not decode: %v", pos, err)
			continue
		}
		if env.Pos != pos {
			add("event %d: envelope says position %d", pos, env.Pos)
		}
		if got := ids.Get(env.ID[:]); len(got) != 8 || binary.BigEndian.Uint64(got) != pos {
			add("event %d: id %s is not indexed to it", pos, env.ID)
		}
		sk := binary.BigEndian.AppendUint64(streamKey(nil, env.Tenant, env.Subject), pos)
		if k, _ := streams.Seek(sk); !bytes.Equal(k, sk) {
			add("event %d: missing from the index of stream %s/%s", pos, env.Tenant, env.Subject)
		}
	}
	if rep.Events != head {
		add("events: %d stored, but the sequence says %d", rep.Events, head)
	}
	if n := uint64(ids.Stats().KeyN); n != rep.Events {
		add("event_ids: %d entries for %d events", n, rep.Events)
	}
	if n := uint64(tx.Bucket(bucketStreams).Stats().KeyN); n != rep.Events {
		add("streams: %d index entries for %d events", n, rep.Events)
	}
	var total uint64
	tx.Bucket(bucketHeads).ForEach(func(k, v []byte) error {
		rep.Streams++
		if len(v) != 16 {
			add("heads: stream %x: bad value", k)
			return nil
		}
		total += binary.BigEndian.Uint64(v[:8])
		return nil
	})
	if total != rep.Events {
		add("heads: stream versions add up to %d, not %d", total, rep.Events)
	}
	rep.Snapshots = tx.Bucket(bucketSnapshots).Stats().KeyN
	return rep
}

// CheckFile runs the same checks as [Store.Check] on a database file that
// no store has open, such as a backup just written: read-only, it never
// modifies the file. It returns a [*CheckError] (wrapping [ErrCorrupt]) for
// a damaged file, ErrCorrupt for one that is not a database at all.
func CheckFile(ctx context.Context, path string) (rep CheckReport, err error) {
	if err := preflight(path); err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	} else if fi.Size() == 0 {
		return rep, fmt.Errorf("check %s: %w: the file is empty", path, ErrCorrupt)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(&err, "check "+path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout})
	if err != nil {
		return rep, fmt.Errorf("check %s: %w: %v", path, ErrCorrupt, err)
	}
	defer db.Close()
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			add("bbolt: %v", e)
		}
		if len(problems) == 0 {
			rep = checkLog(ctx, tx, add)
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	}
	if len(problems) > 0 {
		return rep, fmt.Errorf("check %s: %w", path, &CheckError{Problems: problems})
	}
	return rep, nil
}

// Backup writes a consistent copy of the whole file to w while the store
// stays open for reads and appends: it is one read transaction, so it sees
// the log as of its start. It returns the bytes written.
func (s *Store) Backup(w io.Writer) (n int64, err error) {
	defer recoverCorrupt(&err, "backup")
	err = s.view(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}
