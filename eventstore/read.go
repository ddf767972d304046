package eventstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ReadPage is how many events one read transaction decodes before it is
// closed and the page handed to the caller: a reader that takes its time
// over each event never holds a transaction open for long. Every backend
// reads in pages of this size ([Paged]).
const ReadPage = 512

// Read yields the events from position from on, in order, at most limit of
// them (0 means no limit). It reads in pages, each in its own short read
// transaction, and sees events committed while it runs. A decode failure is
// yielded as an error wrapping [ErrCorrupt], and ends the iteration.
func (s *Store) Read(from uint64, limit int) iter.Seq2[Envelope, error] {
	return Paged(from, limit, s.readPage)
}

// Paged yields page after page from fetch, which returns at most n events
// from position from on (n is at most [ReadPage]), until a page comes back
// short or limit events (0: no limit) have been yielded; a fetch error is
// yielded and ends it. It is the one loop behind every backend's Read and
// ReadSubject.
func Paged(from uint64, limit int, fetch func(from uint64, n int) ([]Envelope, error)) iter.Seq2[Envelope, error] {
	return func(yield func(Envelope, error) bool) {
		next, remaining := max(from, 1), limit
		for {
			n := ReadPage
			if limit > 0 {
				n = min(n, remaining)
			}
			if n == 0 {
				return
			}
			page, err := fetch(next, n)
			if err != nil {
				yield(Envelope{}, err)
				return
			}
			for _, env := range page {
				if !yield(env, nil) {
					return
				}
			}
			if len(page) < n {
				return
			}
			next = page[len(page)-1].Pos + 1
			remaining -= len(page)
		}
	}
}

func (s *Store) readPage(from uint64, n int) (page []Envelope, err error) {
	defer recoverCorrupt(&err, "read")
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		page = make([]Envelope, 0, n)
		want := from
		for k, v := c.Seek(posKey(from)); k != nil && len(page) < n; k, v = c.Next() {
			var env Envelope
			if err := decode(v, &env); err != nil {
				return fmt.Errorf("read event %d: %w: %v", binary.BigEndian.Uint64(k), ErrCorrupt, err)
			}
			if env.Pos != want {
				return fmt.Errorf("read: %w: expected event %d, found %d", ErrCorrupt, want, env.Pos)
			}
			want++
			page = append(page, env)
		}
		return nil
	})
	return page, err
}

// ReadSubject yields the events of one (tenant, subject) stream from global
// position from on, in order, through the stream index: its cost grows with
// the stream, not with the log.
func (s *Store) ReadSubject(tenant, subject string, from uint64) iter.Seq2[Envelope, error] {
	prefix := streamKey(nil, tenant, subject)
	return Paged(from, 0, func(from uint64, n int) ([]Envelope, error) {
		return s.readSubjectPage(prefix, from, n)
	})
}

func (s *Store) readSubjectPage(prefix []byte, from uint64, n int) (page []Envelope, err error) {
	defer recoverCorrupt(&err, "read stream")
	err = s.view(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		c := tx.Bucket(bucketStreams).Cursor()
		seek := binary.BigEndian.AppendUint64(bytes.Clone(prefix), from)
		for k, _ := c.Seek(seek); k != nil && len(page) < n; k, _ = c.Next() {
			if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
				break
			}
			pos := binary.BigEndian.Uint64(k[len(prefix):])
			v := events.Get(k[len(prefix):])
			if v == nil {
				return fmt.Errorf("read stream: %w: index names event %d, which is missing", ErrCorrupt, pos)
			}
			var env Envelope
			if err := decode(v, &env); err != nil {
				return fmt.Errorf("read event %d: %w: %v", pos, ErrCorrupt, err)
			}
			page = append(page, env)
		}
		return nil
	})
	return page, err
}

// StreamVersion returns how many events the (tenant, subject) stream holds
// and the position of its last one: what [ExpectVersion] compares against.
func (s *Store) StreamVersion(tenant, subject string) (version, last uint64, err error) {
	defer recoverCorrupt(&err, "stream version")
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketHeads).Get(streamKey(nil, tenant, subject))
		if len(v) == 16 {
			version, last = binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:])
		}
		return nil
	})
	return version, last, err
}

// view runs fn in a read transaction, mapping a closed database to ErrClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
