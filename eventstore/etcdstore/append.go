package etcdstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

type appendReq struct {
	fence  []clientv3.Cmp     // AppendFenced's; such a request is committed alone
	events []eventstore.Event // every one with its id
	bytes  int                // an estimate of its share of a Txn request
	reply  chan appendResult  // buffered: the committer never blocks on it
}

type appendResult struct {
	pos []uint64
	err error
}

// known is the committer's view of the log: valid at the head key's mod
// revision rev. Every commit compares rev, so a stale view costs one failed
// compare, never a wrong write.
type known struct {
	valid   bool
	rev     int64 // the head key's mod revision; 0 while the log is empty
	head    uint64
	streams map[string]streamHead // streams read or written at rev
}

type streamHead struct{ version, last uint64 }

// maxKnownStreams bounds the committer's cache of stream heads.
const maxKnownStreams = 1 << 16

// Append writes events as one unit: all of them or none. It returns their
// positions once a Txn holding them has succeeded, that is once a quorum
// of the cluster has committed them (invariant I1). The rest of the
// contract is [eventstore.Log]'s. One call holds at most [Store.MaxBatch]
// events, within [Options.MaxRequestBytes].
//
// When etcd does not confirm the commit within the request timeout (no
// quorum, a partition), Append fails with an error wrapping
// [eventstore.ErrUnavailable]: the outcome is unknown, and a retry with
// the same ids is safe. If ctx ends first, Append returns ctx.Err(), with
// the outcome unknown too.
func (s *Store) Append(ctx context.Context, events ...eventstore.Event) ([]uint64, error) {
	return s.append(ctx, nil, events)
}

// ErrFenced is returned by [Store.AppendFenced] when its fence does not
// hold: nothing was written.
var ErrFenced = errors.New("fenced append refused: the fence no longer holds")

// AppendFenced is [Store.Append] in a Txn that also requires every
// comparison of fence to hold, such as the create revision of an election
// key (a leader's fence: a deposed leader's key is gone, or another's).
// When one does not hold, nothing is written and it fails with
// [ErrFenced]. A fenced append is committed alone, never with others.
func (s *Store) AppendFenced(ctx context.Context, fence []clientv3.Cmp, events ...eventstore.Event) ([]uint64, error) {
	if len(fence) == 0 {
		return nil, fmt.Errorf("%w: a fenced append needs a fence", eventstore.ErrInvalid)
	}
	return s.append(ctx, fence, events)
}

func (s *Store) append(ctx context.Context, fence []clientv3.Cmp, events []eventstore.Event) ([]uint64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := eventstore.ValidateAppend(events, s.maxBatch); err != nil {
		return nil, err
	}
	req := &appendReq{fence: fence, events: make([]eventstore.Event, len(events)), reply: make(chan appendResult, 1)}
	copy(req.events, events)
	for i := range req.events {
		ev := &req.events[i]
		if ev.ID == (ulid.ULID{}) {
			ev.ID = s.NewID() // before the first try: a retry is idempotent
		}
		req.bytes += txnBytes(ev, len(s.opts.Prefix))
	}
	if req.bytes > s.opts.MaxRequestBytes {
		return nil, fmt.Errorf("%w: %d events of about %d bytes in one append, limit %d (Options.MaxRequestBytes)", eventstore.ErrInvalid, len(events), req.bytes, s.opts.MaxRequestBytes)
	}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, eventstore.ErrClosed
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

// txnBytes estimates what one event adds to a Txn request: its stored form,
// four keys with their values, and protobuf framing.
func txnBytes(ev *eventstore.Event, prefix int) int {
	stored := 64 + len(ev.Type) + len(ev.Tenant) + len(ev.Subject) + len(ev.Causation) + len(ev.Actor) + len(ev.Data)
	streamKey := 2 + len(ev.Tenant) + len(ev.Subject)
	return stored + 4*(prefix+16) + 2*streamKey + 64
}

// commitLoop is the committer goroutine: it takes the first queued request,
// then every request already queued behind it that fits in the same Txn,
// and commits them together. It never waits for more requests to arrive.
func (s *Store) commitLoop() {
	defer close(s.done)
	var carry *appendReq
	for {
		req := carry
		carry = nil
		if req == nil {
			var ok bool
			if req, ok = <-s.reqs; !ok {
				return
			}
		}
		batch := []*appendReq{req}
		n, bytes := len(req.events), req.bytes
	drain:
		for req.fence == nil {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				if r.fence != nil || (n+len(r.events))*opsPerEvent+1 > s.opts.MaxTxnOps || bytes+r.bytes > s.opts.MaxRequestBytes {
					carry = r
					break drain
				}
				batch = append(batch, r)
				n, bytes = n+len(r.events), bytes+r.bytes
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// commit writes one group in one Txn and answers every request.
func (s *Store) commit(batch []*appendReq) {
	start := time.Now()
	results, written, err := s.write(batch)
	var refused error
	if err != nil {
		s.known = known{} // the Txn may or may not have committed
		refused = err
		if errors.Is(err, eventstore.ErrUnavailable) {
			s.stats.writeFailures.Add(1)
		}
		results = make([]appendResult, len(batch))
		for i := range results {
			results[i] = appendResult{err: err} // it says "append: ..." already
		}
		written = nil
	}
	if n := len(written); n > 0 {
		s.seen(written[n-1].Pos)
		s.stats.events.Add(uint64(n))
		s.stats.commits.Add(1)
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(eventstore.CommitStats{Requests: len(batch), Events: len(written), Took: time.Since(start), Err: refused})
	}
	for i, req := range batch {
		req.reply <- results[i]
	}
}

// write commits the group: it plans it against the committer's view,
// sends one Txn that holds only if the view is current, and, when it does
// not hold, takes the state the Txn read back instead and plans again.
func (s *Store) write(batch []*appendReq) ([]appendResult, []eventstore.Envelope, error) {
	ctx, cancel := s.request()
	defer cancel()
	stored := map[ulid.ULID]eventstore.Envelope{} // events already in the log, by id
	var reads readSet
	for _, req := range batch {
		for i := range req.events {
			reads.add(&req.events[i])
		}
	}
	if !s.known.valid || !s.knows(reads.streams) {
		resp, err := s.cli.Txn(ctx).Then(reads.ops(s.k)...).Commit()
		if err != nil {
			return nil, nil, s.unavailable("append", err)
		}
		if err := s.absorb(ctx, resp, &reads, stored); err != nil {
			return nil, nil, err
		}
	}
	for {
		p := s.plan(batch, stored)
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.k.head), "=", s.known.rev)}
		fence := batch[0].fence // a fenced request is alone in its batch
		cmps = append(cmps, fence...)
		for _, id := range reads.ids {
			if _, ok := stored[id]; !ok {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.k.id(id)), "=", 0))
			}
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(p.ops...).Else(reads.ops(s.k)...).Commit()
		if err != nil {
			return nil, nil, s.unavailable("append", err)
		}
		if resp.Succeeded {
			s.known.rev = resp.Header.Revision
			if len(p.written) == 0 {
				// Nothing written: the head key kept its revision.
				s.known.rev = p.rev
			}
			s.known.head = p.head
			if len(s.known.streams)+len(p.streams) > maxKnownStreams {
				s.known.streams = map[string]streamHead{}
			}
			for sk, h := range p.streams {
				s.known.streams[sk] = h
			}
			return p.results, p.written, nil
		}
		if len(fence) > 0 {
			held, err := s.cli.Txn(ctx).If(fence...).Commit()
			if err != nil {
				return nil, nil, s.unavailable("append", err)
			}
			if !held.Succeeded {
				return nil, nil, ErrFenced
			}
		}
		if err := s.absorb(ctx, resp, &reads, stored); err != nil {
			return nil, nil, err
		}
	}
}

// knows reports whether the view holds every stream of the group.
func (s *Store) knows(streams []string) bool {
	for _, sk := range streams {
		if _, ok := s.known.streams[sk]; !ok {
			return false
		}
	}
	return true
}

// readSet is what a group's checks depend on: the head, its streams' heads
// and its ids.
type readSet struct {
	streams []string
	ids     []ulid.ULID
	seen    map[string]bool
}

func (r *readSet) add(ev *eventstore.Event) {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	sk := stream(ev.Tenant, ev.Subject)
	if !r.seen[sk] {
		r.seen[sk] = true
		r.streams = append(r.streams, sk)
	}
	r.ids = append(r.ids, ev.ID)
}

// ops reads the head, then each stream head, then each id, in that order
// (absorb relies on it).
func (r *readSet) ops(k keys) []clientv3.Op {
	ops := []clientv3.Op{clientv3.OpGet(k.head)}
	for _, sk := range r.streams {
		ops = append(ops, clientv3.OpGet(k.streamHead(sk)))
	}
	for _, id := range r.ids {
		ops = append(ops, clientv3.OpGet(k.id(id)))
	}
	return ops
}

// absorb makes the view what resp read (readSet.ops, in one Txn, so at one
// revision) and loads the events whose ids are already stored.
func (s *Store) absorb(ctx context.Context, resp *clientv3.TxnResponse, r *readSet, stored map[ulid.ULID]eventstore.Envelope) error {
	rs := resp.Responses
	if len(rs) != 1+len(r.streams)+len(r.ids) {
		return fmt.Errorf("append: etcd answered %d reads, want %d", len(rs), 1+len(r.streams)+len(r.ids))
	}
	kvs := rs[0].GetResponseRange().Kvs
	head, err := s.decodeHead(kvs)
	if err != nil {
		return err
	}
	rev := int64(0)
	if len(kvs) > 0 {
		rev = kvs[0].ModRevision
	}
	if !s.known.valid || rev != s.known.rev {
		s.known = known{valid: true, rev: rev, head: head, streams: map[string]streamHead{}}
	}
	s.seen(head)
	for i, sk := range r.streams {
		var h streamHead
		if kvs := rs[1+i].GetResponseRange().Kvs; len(kvs) > 0 {
			var ok bool
			if h, ok = parseStreamHead(kvs[0].Value); !ok {
				return fmt.Errorf("append: %w: stream head %q is not 16 bytes", eventstore.ErrCorrupt, sk)
			}
		}
		s.known.streams[sk] = h
	}
	for i, id := range r.ids {
		kvs := rs[1+len(r.streams)+i].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue
		}
		if _, ok := stored[id]; ok {
			continue
		}
		if len(kvs[0].Value) != 8 {
			return fmt.Errorf("append: %w: id %s does not name a position", eventstore.ErrCorrupt, id)
		}
		env, err := s.getEvent(ctx, binary.BigEndian.Uint64(kvs[0].Value), 0)
		if err != nil {
			return fmt.Errorf("append: id %s: %w", id, err)
		}
		stored[id] = env
	}
	return nil
}

// plan is one try at committing a group.
type plan struct {
	results []appendResult
	written []eventstore.Envelope
	ops     []clientv3.Op
	rev     int64
	head    uint64
	streams map[string]streamHead // as the group leaves them
}

// plan checks each request against the view and the requests before it
// in the group, and builds the writes of those that pass. A request that
// fails its checks fails alone.
func (s *Store) plan(batch []*appendReq, stored map[ulid.ULID]eventstore.Envelope) plan {
	p := plan{results: make([]appendResult, len(batch)), rev: s.known.rev, head: s.known.head, streams: map[string]streamHead{}}
	planned := map[ulid.ULID]eventstore.Envelope{}
	current := func(sk string) streamHead {
		if h, ok := p.streams[sk]; ok {
			return h
		}
		return s.known.streams[sk]
	}
	now := s.opts.Now().UTC()
	for r, req := range batch {
		pos, err := check(req.events, stored, planned, current)
		if err != nil {
			p.results[r] = appendResult{err: err}
			continue
		}
		for i := range req.events {
			if pos[i] != 0 {
				continue // already stored
			}
			ev := &req.events[i]
			p.head++
			env := eventstore.Envelope{
				Pos: p.head, ID: ev.ID, Time: ev.Time.UTC(), Type: ev.Type, Tenant: ev.Tenant,
				Subject: ev.Subject, Causation: ev.Causation, Actor: ev.Actor, Data: ev.Data,
			}
			if ev.Time.IsZero() {
				env.Time = now
			}
			sk := stream(ev.Tenant, ev.Subject)
			h := current(sk)
			p.streams[sk] = streamHead{h.version + 1, env.Pos}
			planned[env.ID] = env
			pos[i] = env.Pos
			p.written = append(p.written, env)
			p.ops = append(p.ops,
				clientv3.OpPut(s.k.event(env.Pos), string(eventstore.EncodeEnvelope(nil, &env))),
				clientv3.OpPut(s.k.id(env.ID), be(env.Pos)),
				clientv3.OpPut(s.k.indexEntry(sk, env.Pos), ""))
		}
		p.results[r] = appendResult{pos: pos}
	}
	if len(p.written) > 0 {
		for sk, h := range p.streams {
			p.ops = append(p.ops, clientv3.OpPut(s.k.streamHead(sk), headValue(h)))
		}
		p.ops = append(p.ops, clientv3.OpPut(s.k.head, be(p.head)))
	}
	return p
}

// check runs one request's checks: ids already stored (in the log or
// earlier in the group) give their position and skip the expectation;
// expectations count the request's own earlier events. It returns the
// positions of the stored events, 0 for the new ones.
func check(events []eventstore.Event, stored, planned map[ulid.ULID]eventstore.Envelope, current func(string) streamHead) ([]uint64, error) {
	pos := make([]uint64, len(events))
	versions := map[string]uint64{}
	for i := range events {
		ev := &events[i]
		prior, ok := stored[ev.ID]
		if !ok {
			prior, ok = planned[ev.ID]
		}
		if ok {
			if prior.Type != ev.Type || prior.Tenant != ev.Tenant || prior.Subject != ev.Subject {
				return nil, fmt.Errorf("append event %d: %w: id %s is event %d (%s %s/%s)", i, eventstore.ErrIDReused, ev.ID, prior.Pos, prior.Type, prior.Tenant, prior.Subject)
			}
			pos[i] = prior.Pos
			continue
		}
		sk := stream(ev.Tenant, ev.Subject)
		v, ok := versions[sk]
		if !ok {
			v = current(sk).version
		}
		if ev.Expect.IsSet() && ev.Expect.Version() != v {
			return nil, &eventstore.ConflictError{Tenant: ev.Tenant, Subject: ev.Subject, Expected: ev.Expect.Version(), Actual: v}
		}
		versions[sk] = v + 1
	}
	return pos, nil
}
