package etcdstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

// maxProblems bounds the findings one Check reports.
const maxProblems = 100

// Check verifies the whole log at one revision, as the bbolt store's Check
// does: positions 1..head with no gap, every event decodes with a good
// checksum under its own position, its id and stream index entries name it,
// there are no other entries, and the stream heads add up. It reads
// everything once, in pages, while appends go on, and holds a count per
// stream in memory. Problems come back as a [*eventstore.CheckError].
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
	var last uint64
	// Events by position, in pages bounded by position (see eventRange);
	// with each page, its ids and index entries, looked up in Txns.
	for from := uint64(1); from <= head; from += scanPage {
		resp, err := s.eventRange(ctx, from, scanPage, rev)
		if err != nil {
			return rep, fmt.Errorf("check: %w", err)
		}
		var page []eventstore.Envelope
		for _, kv := range resp.Kvs {
			env, err := s.decodeEvent(kv)
			if err != nil {
				add("%v", err)
				continue
			}
			if env.Pos != last+1 {
				add("events: gap: event %d follows event %d", env.Pos, last)
			}
			last = env.Pos
			sk := stream(env.Tenant, env.Subject)
			c := byStream[sk]
			if c == nil {
				c = &streamCount{}
				byStream[sk] = c
			}
			c.n, c.last = c.n+1, env.Pos
			rep.Events++
			page = append(page, env)
		}
		if err := s.checkEntries(ctx, page, rev, add); err != nil {
			return rep, fmt.Errorf("check: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("check: %w", err)
		}
	}
	if last != head {
		add("head: the head key says %d, the last event is %d", head, last)
	}
	// Whatever the pages did not visit: events beyond the head, ids and
	// index entries of no event.
	for _, c := range []struct{ name, prefix string }{{"events", s.k.events}, {"ids", s.k.ids}, {"index", s.k.index}} {
		resp, err := s.get(ctx, c.prefix, rev, clientv3.WithRange(clientv3.GetPrefixRangeEnd(c.prefix)), clientv3.WithCountOnly())
		if err != nil {
			return rep, fmt.Errorf("check: %w", err)
		}
		if uint64(resp.Count) != rep.Events {
			add("%s: %d entries for %d events", c.name, resp.Count, rep.Events)
		}
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

// checkEntries checks that each event of page has its id entry, naming
// it, and its stream index entry, at revision rev.
func (s *Store) checkEntries(ctx context.Context, page []eventstore.Envelope, rev int64, add func(string, ...any)) error {
	per := max(1, s.opts.MaxTxnOps/2)
	for len(page) > 0 {
		chunk := page[:min(per, len(page))]
		page = page[len(chunk):]
		ops := make([]clientv3.Op, 0, 2*len(chunk))
		for _, env := range chunk {
			ops = append(ops,
				clientv3.OpGet(s.k.id(env.ID), clientv3.WithRev(rev)),
				clientv3.OpGet(s.k.indexEntry(stream(env.Tenant, env.Subject), env.Pos), clientv3.WithRev(rev), clientv3.WithKeysOnly()))
		}
		tctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		resp, err := s.cli.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return s.unavailable("read", err)
		}
		for i, env := range chunk {
			id := resp.Responses[2*i].GetResponseRange().Kvs
			if len(id) == 0 || len(id[0].Value) != 8 || binary.BigEndian.Uint64(id[0].Value) != env.Pos {
				add("ids: the id %s of event %d does not name it", env.ID, env.Pos)
			}
			if len(resp.Responses[2*i+1].GetResponseRange().Kvs) == 0 {
				add("index: event %d is not in its stream's index", env.Pos)
			}
		}
	}
	return nil
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
	head, err := s.decodeHead(hresp.Kvs)
	if err != nil {
		return err
	}
	for from := uint64(1); from <= head; from += eventstore.DefaultMaxBatch {
		page, _, err := s.readPage(ctx, from, eventstore.DefaultMaxBatch, rev)
		if err != nil {
			return err
		}
		if want := min(eventstore.DefaultMaxBatch, head-from+1); uint64(len(page)) != want {
			// The copy's positions must be the log's: no event may be skipped.
			return fmt.Errorf("%w: %d of events %d..%d are missing", eventstore.ErrCorrupt, want-uint64(len(page)), from, from+want-1)
		}
		for _, env := range page {
			batch = append(batch, eventstore.Event{ID: env.ID, Time: env.Time, Type: env.Type, Tenant: env.Tenant,
				Subject: env.Subject, Causation: env.Causation, Actor: env.Actor, Data: env.Data})
		}
		if err := flush(); err != nil {
			return err
		}
	}
	var scanErr error
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
