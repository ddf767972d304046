package eventstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// snapshotsKept is how many snapshots stay on disk: the newest, and one
// before it in case a caller finds the newest unusable (say, written by a
// newer version of its fold).
const snapshotsKept = 2

// SaveSnapshot stores state as the result of folding the log up to and
// including position pos, durably. pos must not be beyond the head. The
// store does not interpret state. Older snapshots beyond the last
// two are deleted.
func (s *Store) SaveSnapshot(pos uint64, state []byte) (err error) {
	if head := s.Head(); pos > head {
		return fmt.Errorf("save snapshot: %w: position %d is beyond the head %d", ErrInvalid, pos, head)
	}
	defer recoverCorrupt(&err, "save snapshot")
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		b.FillPercent = 1.0
		if err := b.Put(posKey(pos), bytes.Clone(state)); err != nil {
			return err
		}
		var old [][]byte
		c := b.Cursor()
		n := 0
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if n++; n > snapshotsKept {
				old = append(old, bytes.Clone(k))
			}
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// LoadSnapshot returns the newest snapshot and the position it was folded
// up to, or [ErrNoSnapshot]. A caller folds the events after pos on top.
func (s *Store) LoadSnapshot() (pos uint64, state []byte, err error) {
	defer recoverCorrupt(&err, "load snapshot")
	err = s.view(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketSnapshots).Cursor().Last()
		if k == nil {
			return ErrNoSnapshot
		}
		pos, state = binary.BigEndian.Uint64(k), bytes.Clone(v)
		return nil
	})
	return pos, state, err
}
