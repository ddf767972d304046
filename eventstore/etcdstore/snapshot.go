package etcdstore

import (
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

// snapshotsKept is how many snapshots stay: the newest, and one before it
// in case a caller finds the newest unusable (the bbolt store keeps two as
// well).
const snapshotsKept = 2

// SaveSnapshot stores state as the result of folding the log up to and
// including position pos, committed by a quorum. pos must not be beyond
// the head, and state must fit in one etcd request (ErrInvalid).
// Older snapshots beyond the last two are deleted in the same Txn.
func (s *Store) SaveSnapshot(pos uint64, state []byte) error {
	if head := s.Head(); pos > head {
		return fmt.Errorf("save snapshot: %w: position %d is beyond the head %d", eventstore.ErrInvalid, pos, head)
	}
	if len(state)+len(s.k.snaps)+64 > s.opts.MaxRequestBytes {
		return fmt.Errorf("save snapshot: %w: %d bytes, more than one etcd request holds (%d)", eventstore.ErrInvalid, len(state), s.opts.MaxRequestBytes)
	}
	ctx, cancel := s.request()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.k.snaps, clientv3.WithRange(s.k.snapsEnd), clientv3.WithKeysOnly())
	if err != nil {
		return s.unavailable("save snapshot", err)
	}
	keys := []string{s.k.snap(pos)}
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); k != keys[0] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	ops := []clientv3.Op{clientv3.OpPut(s.k.snap(pos), string(state))}
	for _, k := range keys[:max(0, len(keys)-snapshotsKept)] {
		if k == s.k.snap(pos) {
			ops = ops[1:] // older than the two kept: not worth writing
			continue
		}
		ops = append(ops, clientv3.OpDelete(k))
	}
	if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		return s.unavailable("save snapshot", err)
	}
	return nil
}

// LoadSnapshot returns the newest snapshot and the position it was folded
// up to, or [eventstore.ErrNoSnapshot].
func (s *Store) LoadSnapshot() (pos uint64, state []byte, err error) {
	ctx, cancel := s.request()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.k.snaps, clientv3.WithRange(s.k.snapsEnd),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return 0, nil, s.unavailable("load snapshot", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil, eventstore.ErrNoSnapshot
	}
	pos, ok := keyPos(resp.Kvs[0].Key)
	if !ok {
		return 0, nil, fmt.Errorf("load snapshot: %w: key %q", eventstore.ErrCorrupt, resp.Kvs[0].Key)
	}
	return pos, resp.Kvs[0].Value, nil
}
