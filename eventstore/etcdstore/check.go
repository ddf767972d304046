package etcdstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

// maxProblems bounds the findings one Check reports.
const maxProblems = 100

// Check verifies the whole log at one revision, as the bbolt store's Check
// does: positions 1..head with no gap, every event decodes with a good
// checksum under its own position, every id and stream index entry points
// at its event, and the stream heads add up. It reads everything once, in
// pages, while appends go on; it holds the ids of the log in memory (some
// 50 bytes an event). Problems come back as a [*eventstore.CheckError].
func (s *Store) Check(ctx context.Context) (eventstore.CheckReport, error) {
	var rep eventstore.CheckReport
	if s.bg.Err() != nil {
		return rep, eventstore.ErrClosed
	}
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	hresp, err := s.get(ctx, s.k.head, 0)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	rev := hresp.Header.Revision
	head, err := s.decodeHead(hresp.Kvs)
	if err != nil {
		add("%v", err)
	}

	type streamCount struct{ n, last uint64 }
	byStream := map[string]*streamCount{}
	ids := map[ulid.ULID]uint64{}
	var streamOf []string // by pos-1, while positions have no gap
	var last uint64
	err = s.scan(ctx, s.k.events, s.k.eventsEnd, rev, false, func(kv *kvType) {
		env, err := s.decodeEvent(kv)
		if err != nil {
			add("%v", err)
			return
		}
		if env.Pos != last+1 {
			add("events: gap: event %d follows event %d", env.Pos, last)
		}
		last = env.Pos
		if p, dup := ids[env.ID]; dup {
			add("events: id %s is on events %d and %d", env.ID, p, env.Pos)
		}
		ids[env.ID] = env.Pos
		sk := stream(env.Tenant, env.Subject)
		c := byStream[sk]
		if c == nil {
			c = &streamCount{}
			byStream[sk] = c
		}
		c.n, c.last = c.n+1, env.Pos
		if uint64(len(streamOf)) == env.Pos-1 {
			streamOf = append(streamOf, sk)
		}
		rep.Events++
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if last != head {
		add("head: the head key says %d, the last event is %d", head, last)
	}

	var nids uint64
	err = s.scan(ctx, s.k.ids, clientv3.GetPrefixRangeEnd(s.k.ids), rev, false, func(kv *kvType) {
		nids++
		var id ulid.ULID
		raw := kv.Key[len(s.k.ids):]
		if len(raw) != len(id) || len(kv.Value) != 8 {
			add("ids: malformed entry %q", kv.Key)
			return
		}
		copy(id[:], raw)
		if p := binary.BigEndian.Uint64(kv.Value); ids[id] != p {
			add("ids: id %s names event %d, which does not carry it", id, p)
		}
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if nids != rep.Events {
		add("ids: %d entries for %d events", nids, rep.Events)
	}

	indexed := map[string]uint64{}
	err = s.scan(ctx, s.k.index, clientv3.GetPrefixRangeEnd(s.k.index), rev, true, func(kv *kvType) {
		key := kv.Key[len(s.k.index):]
		pos, ok := keyPos(key)
		if !ok {
			add("index: malformed entry %q", kv.Key)
			return
		}
		sk := string(key[:len(key)-8])
		if pos == 0 || pos > uint64(len(streamOf)) || streamOf[pos-1] != sk {
			add("index: an entry names event %d, which is missing or of another stream", pos)
			return
		}
		indexed[sk]++
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	var heads uint64
	err = s.scan(ctx, s.k.streams, clientv3.GetPrefixRangeEnd(s.k.streams), rev, false, func(kv *kvType) {
		heads++
		sk := string(kv.Key[len(s.k.streams):])
		h, ok := parseStreamHead(kv.Value)
		c := byStream[sk]
		switch {
		case !ok:
			add("streams: malformed head %q", kv.Key)
		case c == nil:
			add("streams: a head (version %d) for a stream with no event", h.version)
		case h.version != c.n || h.last != c.last:
			add("streams: a head says version %d, last %d; the log has %d events, last %d", h.version, h.last, c.n, c.last)
		case indexed[sk] != c.n:
			add("index: %d entries for a stream of %d events", indexed[sk], c.n)
		}
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if heads != uint64(len(byStream)) {
		add("streams: %d heads for %d streams", heads, len(byStream))
	}
	rep.Streams = uint64(len(byStream))

	err = s.scan(ctx, s.k.snaps, s.k.snapsEnd, rev, true, func(kv *kvType) {
		if pos, ok := keyPos(kv.Key); !ok || pos > head {
			add("snapshots: %q is beyond the head %d", kv.Key, head)
		}
		rep.Snapshots++
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if len(problems) > 0 {
		return rep, &eventstore.CheckError{Problems: problems}
	}
	return rep, nil
}

// get reads key at revision rev (0: the latest), within the request timeout.
func (s *Store) get(ctx context.Context, key string, rev int64, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := s.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, s.unavailable("read", err)
	}
	return resp, nil
}

// scanPage is the keys one scan request reads.
const scanPage = 4096

// scan calls fn on every key in [from, end) at revision rev, in order, a
// page at a time.
func (s *Store) scan(ctx context.Context, from, end string, rev int64, keysOnly bool, fn func(*kvType)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(scanPage)}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		resp, err := s.get(ctx, from, rev, opts...)
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			fn(kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Backup writes the log, as of one revision, to w as a bbolt file that
// [eventstore.Open] and [eventstore.CheckFile] accept: the same events
// (positions, ids, times) and the snapshots, so that one machine can start
// from it. It builds the file in a temporary directory first. It returns
// the bytes written.
func (s *Store) Backup(w io.Writer) (n int64, err error) {
	if s.bg.Err() != nil {
		return 0, eventstore.ErrClosed
	}
	dir, err := os.MkdirTemp("", "solo-etcd-backup-")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(dir)
	b, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer b.Close()
	if err := s.copyTo(b); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return b.Backup(w)
}

// copyTo appends the log, as of the head's revision, to b, and its
// snapshots.
func (s *Store) copyTo(b *eventstore.Store) error {
	ctx := s.bg
	hresp, err := s.get(ctx, s.k.head, 0)
	if err != nil {
		return err
	}
	rev := hresp.Header.Revision
	batch := make([]eventstore.Event, 0, eventstore.DefaultMaxBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := b.Append(ctx, batch...)
		batch = batch[:0]
		return err
	}
	var scanErr error
	err = s.scan(ctx, s.k.events, s.k.eventsEnd, rev, false, func(kv *kvType) {
		if scanErr != nil {
			return
		}
		env, err := s.decodeEvent(kv)
		if err != nil {
			scanErr = err
			return
		}
		if want := b.Head() + uint64(len(batch)) + 1; env.Pos != want {
			scanErr = fmt.Errorf("%w: expected event %d, found %d", eventstore.ErrCorrupt, want, env.Pos)
			return
		}
		batch = append(batch, eventstore.Event{ID: env.ID, Time: env.Time, Type: env.Type, Tenant: env.Tenant,
			Subject: env.Subject, Causation: env.Causation, Actor: env.Actor, Data: env.Data})
		if len(batch) == cap(batch) {
			scanErr = flush()
		}
	})
	if err := errors.Join(err, scanErr); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	err = s.scan(ctx, s.k.snaps, s.k.snapsEnd, rev, false, func(kv *kvType) {
		if scanErr != nil {
			return
		}
		if pos, ok := keyPos(kv.Key); ok && pos <= b.Head() {
			scanErr = b.SaveSnapshot(pos, kv.Value)
		}
	})
	return errors.Join(err, scanErr)
}
