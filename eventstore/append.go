package eventstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

type appendReq struct {
	events []Event
	reply  chan appendResult // buffered: the committer never blocks on it
}

type appendResult struct {
	pos []uint64
	err error
}

// Append writes events as one unit: all of them or none. It returns their
// positions, in order, once the transaction holding them is fsynced
// (invariant I1). One call holds at most [Store.MaxAppend] events.
//
// An event whose ID is already stored is not written again: its original
// position is returned, and its Expect is not checked, so that a retry after
// an ambiguous failure succeeds. If the stored event differs in type, tenant
// or subject, Append fails with [ErrIDReused].
//
// With [Event.Expect] set, the event's stream must hold exactly that many
// events first (counting the events before it in the same call), or Append
// fails with a [*ConflictError] and writes nothing.
//
// If ctx ends before the events are committed, Append returns ctx.Err() and
// the outcome is unknown: they may or may not have been written. Retrying
// with the same ids is safe.
func (s *Store) Append(ctx context.Context, events ...Event) ([]uint64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := ValidateAppend(events, s.opts.MaxAppend); err != nil {
		return nil, err
	}
	req := &appendReq{events: events, reply: make(chan appendResult, 1)}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, ctx.Err()
	}
	s.mu.RUnlock()

	select {
	case r := <-req.reply:
		return r.pos, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// MaxAppend returns the most events one Append call may hold
// ([Options.MaxAppend]).
func (s *Store) MaxAppend() int { return s.opts.MaxAppend }

// commitLoop is the committer goroutine: it takes the first queued request,
// then every request already queued behind it, and commits them together.
// It never waits for more requests to arrive.
func (s *Store) commitLoop() {
	defer close(s.done)
	var batch []*appendReq
	for req := range s.reqs {
		batch = append(batch[:0], req)
		n := len(req.events)
	drain:
		for n < s.opts.MaxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				n += len(r.events)
			default:
				break drain
			}
		}
		s.commit(batch)
		clear(batch)
	}
}

// commit writes one group in one transaction and answers every request.
func (s *Store) commit(batch []*appendReq) {
	start := time.Now()
	results := make([]appendResult, len(batch))
	var written []Envelope
	err := func() (err error) {
		defer recoverCorrupt(&err, "append")
		return s.db.Update(func(tx *bolt.Tx) error {
			w := newTxWriter(tx)
			written = written[:0]
			for i, req := range batch {
				pos, envs, err := w.apply(s, req.events)
				var fatal *writeError
				if errors.As(err, &fatal) {
					return fatal.err // roll the whole group back
				}
				results[i] = appendResult{pos: pos, err: err}
				written = append(written, envs...)
			}
			return nil
		})
	}()
	var refused error
	if err != nil {
		// The whole transaction is gone, sequence included: nothing of this
		// group was written, whatever apply said. Unless the file is
		// damaged, the file system refused it (full, a quota, an I/O
		// error): the store stays usable, and the same append can succeed
		// once that clears.
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrNotWritten, err)
			refused = err
			s.stats.writeFailures.Add(1)
		}
		for i := range results {
			results[i] = appendResult{err: fmt.Errorf("append: %w", err)}
		}
		written = nil
	}
	if n := len(written); n > 0 {
		s.head.Store(written[n-1].Pos)
		s.stats.events.Add(uint64(n))
		s.stats.commits.Add(1)
		s.subs.publish(written, &s.stats.overflows)
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitStats{Requests: len(batch), Events: len(written), Took: time.Since(start), Err: refused})
	}
	for i, req := range batch {
		req.reply <- results[i]
	}
}

// txWriter writes requests into one bbolt transaction.
type txWriter struct {
	events, ids, streams, heads *bolt.Bucket
	buf, key                    []byte
}

func newTxWriter(tx *bolt.Tx) *txWriter {
	w := &txWriter{
		events:  tx.Bucket(bucketEvents),
		ids:     tx.Bucket(bucketIDs),
		streams: tx.Bucket(bucketStreams),
		heads:   tx.Bucket(bucketHeads),
	}
	// Positions only grow, so pages can be packed full; ULIDs mostly grow.
	// The stream index is keyed by stream first and takes inserts anywhere.
	w.events.FillPercent = 1.0
	w.ids.FillPercent = 0.9
	return w
}

type head struct{ version, last uint64 }

// writeError marks a failure while writing, after the checks passed: the
// request's writes are half done, so the whole transaction must roll back.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// apply checks one request against the transaction, then writes it. Checks
// come first, so a request that fails leaves nothing behind in the
// transaction and the other requests of the group still commit.
func (w *txWriter) apply(s *Store, events []Event) ([]uint64, []Envelope, error) {
	pos := make([]uint64, len(events))
	fresh := make([]bool, len(events))
	heads := map[string]head{} // versions as this request would leave them
	for i := range events {
		ev := &events[i]
		if ev.ID != (ulid.ULID{}) {
			if v := w.ids.Get(ev.ID[:]); v != nil {
				p := binary.BigEndian.Uint64(v)
				var stored Envelope
				if err := decode(w.events.Get(posKey(p)), &stored); err != nil {
					return nil, nil, fmt.Errorf("append event %d: %w: stored event %d: %v", i, ErrCorrupt, p, err)
				}
				if stored.Type != ev.Type || stored.Tenant != ev.Tenant || stored.Subject != ev.Subject {
					return nil, nil, fmt.Errorf("append event %d: %w: id %s is event %d (%s %s/%s)", i, ErrIDReused, ev.ID, p, stored.Type, stored.Tenant, stored.Subject)
				}
				pos[i] = p
				continue
			}
		}
		fresh[i] = true
		k := string(streamKey(nil, ev.Tenant, ev.Subject))
		h, ok := heads[k]
		if !ok {
			h = w.head([]byte(k))
		}
		if ev.Expect.IsSet() && ev.Expect.Version() != h.version {
			return nil, nil, &ConflictError{Tenant: ev.Tenant, Subject: ev.Subject, Expected: ev.Expect.Version(), Actual: h.version}
		}
		h.version++
		heads[k] = h
	}

	var out []Envelope
	now := s.opts.Now().UTC()
	for i := range events {
		if !fresh[i] {
			continue
		}
		ev := &events[i]
		seq, err := w.events.NextSequence()
		if err != nil {
			return nil, nil, &writeError{err}
		}
		env := Envelope{
			Pos: seq, ID: ev.ID, Time: ev.Time.UTC(), Type: ev.Type, Tenant: ev.Tenant,
			Subject: ev.Subject, Causation: ev.Causation, Actor: ev.Actor, Data: ev.Data,
		}
		if env.ID == (ulid.ULID{}) {
			env.ID = s.NewID()
		}
		if ev.Time.IsZero() {
			env.Time = now
		}
		if err := w.put(&env); err != nil {
			return nil, nil, &writeError{err}
		}
		pos[i] = seq
		out = append(out, env)
	}
	return pos, out, nil
}

func (w *txWriter) head(key []byte) head {
	v := w.heads.Get(key)
	if len(v) != 16 {
		return head{}
	}
	return head{binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:])}
}

// put writes one envelope and its index entries.
func (w *txWriter) put(env *Envelope) error {
	w.buf = encode(w.buf[:0], env)
	pk := posKey(env.Pos)
	if err := w.events.Put(pk, bytes.Clone(w.buf)); err != nil {
		return err
	}
	if err := w.ids.Put(bytes.Clone(env.ID[:]), pk); err != nil {
		return err
	}
	w.key = streamKey(w.key[:0], env.Tenant, env.Subject)
	sk := binary.BigEndian.AppendUint64(bytes.Clone(w.key), env.Pos)
	if err := w.streams.Put(sk, nil); err != nil {
		return err
	}
	h := w.head(w.key)
	hv := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), h.version+1), env.Pos)
	return w.heads.Put(bytes.Clone(w.key), hv)
}
