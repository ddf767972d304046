package etcdstore

import (
	"context"
	"fmt"
	"iter"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

// Read yields the events from position from on, in order, at most limit of
// them (0: no limit), in pages of [eventstore.ReadPage], each one
// linearizable read. A failure ends it with an error: [eventstore.ErrCorrupt]
// for an event that does not decode or a gap, ErrUnavailable when etcd
// does not answer.
func (s *Store) Read(from uint64, limit int) iter.Seq2[eventstore.Envelope, error] {
	return eventstore.Paged(from, limit, func(from uint64, n int) ([]eventstore.Envelope, error) {
		ctx, cancel := s.request()
		defer cancel()
		page, _, err := s.readPage(ctx, from, n, 0)
		return page, err
	})
}

// eventRange reads the event keys of positions [from, from+n) at revision
// rev (0: the latest). The range is bounded by position, not by a limit:
// etcd counts every key of a range it serves, so a page of an open range
// would cost as much as the rest of the log, and reading the log page by
// page would grow with its square.
func (s *Store) eventRange(ctx context.Context, from uint64, n int, rev int64) (*clientv3.GetResponse, error) {
	opts := []clientv3.OpOption{clientv3.WithRange(s.k.event(from + uint64(n)))}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := s.cli.Get(ctx, s.k.event(from), opts...)
	if err != nil {
		return nil, s.unavailable("read", err)
	}
	return resp, nil
}

// readPage reads at most n events from position from on, at revision rev
// (0: the latest), and returns the revision it read at.
func (s *Store) readPage(ctx context.Context, from uint64, n int, rev int64) ([]eventstore.Envelope, int64, error) {
	resp, err := s.eventRange(ctx, from, n, rev)
	if err != nil {
		return nil, 0, err
	}
	page := make([]eventstore.Envelope, 0, len(resp.Kvs))
	want := from
	for _, kv := range resp.Kvs {
		env, err := s.decodeEvent(kv)
		if err != nil {
			return nil, 0, fmt.Errorf("read: %w", err)
		}
		if env.Pos != want {
			return nil, 0, fmt.Errorf("read: %w: expected event %d, found %d", eventstore.ErrCorrupt, want, env.Pos)
		}
		want++
		page = append(page, env)
	}
	s.seen(want - 1)
	return page, resp.Header.Revision, nil
}

// decodeEvent decodes an event key's value and checks it carries its key's
// position.
func (s *Store) decodeEvent(kv *kvType) (eventstore.Envelope, error) {
	var env eventstore.Envelope
	pos, ok := keyPos(kv.Key)
	if !ok || len(kv.Key) != len(s.k.events)+8 {
		return env, fmt.Errorf("%w: key %q is not an event key", eventstore.ErrCorrupt, kv.Key)
	}
	if err := eventstore.DecodeEnvelope(kv.Value, &env); err != nil {
		return env, fmt.Errorf("event %d: %w: %v", pos, eventstore.ErrCorrupt, err)
	}
	if env.Pos != pos {
		return env, fmt.Errorf("event %d: %w: it says it is event %d", pos, eventstore.ErrCorrupt, env.Pos)
	}
	return env, nil
}

// getEvent reads the event at pos, at revision rev (0: the latest).
func (s *Store) getEvent(ctx context.Context, pos uint64, rev int64) (eventstore.Envelope, error) {
	var opts []clientv3.OpOption
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := s.cli.Get(ctx, s.k.event(pos), opts...)
	if err != nil {
		return eventstore.Envelope{}, s.unavailable("read", err)
	}
	if len(resp.Kvs) == 0 {
		return eventstore.Envelope{}, fmt.Errorf("%w: event %d is missing", eventstore.ErrCorrupt, pos)
	}
	return s.decodeEvent(resp.Kvs[0])
}

// ReadSubject yields the events of one (tenant, subject) stream from global
// position from on, in order, through the stream index: a page of index
// keys, then that page's events in one Txn (events never change once
// written, so reading them after the index is consistent).
func (s *Store) ReadSubject(tenant, subject string, from uint64) iter.Seq2[eventstore.Envelope, error] {
	sk := stream(tenant, subject)
	end := clientv3.GetPrefixRangeEnd(s.k.index + sk)
	return eventstore.Paged(from, 0, func(from uint64, n int) ([]eventstore.Envelope, error) {
		ctx, cancel := s.request()
		defer cancel()
		n = min(n, s.opts.MaxTxnOps)
		resp, err := s.cli.Get(ctx, s.k.indexEntry(sk, from), clientv3.WithRange(end), clientv3.WithLimit(int64(n)), clientv3.WithKeysOnly())
		if err != nil {
			return nil, s.unavailable("read stream", err)
		}
		ops := make([]clientv3.Op, 0, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			pos, _ := keyPos(kv.Key)
			ops = append(ops, clientv3.OpGet(s.k.event(pos)))
		}
		if len(ops) == 0 {
			return nil, nil
		}
		tr, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, s.unavailable("read stream", err)
		}
		page := make([]eventstore.Envelope, 0, len(ops))
		for i, r := range tr.Responses {
			kvs := r.GetResponseRange().Kvs
			if len(kvs) == 0 {
				pos, _ := keyPos(resp.Kvs[i].Key)
				return nil, fmt.Errorf("read stream: %w: index names event %d, which is missing", eventstore.ErrCorrupt, pos)
			}
			env, err := s.decodeEvent(kvs[0])
			if err != nil {
				return nil, fmt.Errorf("read stream: %w", err)
			}
			page = append(page, env)
		}
		return page, nil
	})
}

// StreamVersion returns how many events the (tenant, subject) stream holds
// and the position of its last one.
func (s *Store) StreamVersion(tenant, subject string) (version, last uint64, err error) {
	ctx, cancel := s.request()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.k.streamHead(stream(tenant, subject)))
	if err != nil {
		return 0, 0, s.unavailable("stream version", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, nil
	}
	h, ok := parseStreamHead(resp.Kvs[0].Value)
	if !ok {
		return 0, 0, fmt.Errorf("stream version: %w: stream head is not 16 bytes", eventstore.ErrCorrupt)
	}
	return h.version, h.last, nil
}
