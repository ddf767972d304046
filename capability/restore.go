package capability

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// restoreCheckEvery is how many records the restore reads between two looks
// at its context.
const restoreCheckEvery = 4096

// restore loads every token into memory: restore -> loadAll -> loadOne.
// Each record fails on its own: a damaged one is logged (by position, never
// by content) and left on disk, and its token cannot authenticate (fail
// closed). Only the context or a missing bucket stop the pass.
func (s *Store) restore(ctx context.Context) error {
	byHash, skipped, err := s.loadAll(ctx)
	if err != nil {
		return fmt.Errorf("restore tokens: %w", err)
	}
	if skipped > 0 {
		s.opts.Logger.Warn("token restore set aside damaged records", "skipped", skipped, "restored", len(byHash))
	}
	s.byHash = byHash
	return nil
}

func (s *Store) loadAll(ctx context.Context) (map[tokenHash]*entry, int, error) {
	var (
		byHash  map[tokenHash]*entry
		skipped int
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b == nil {
			if s.db.IsReadOnly() {
				return nil // nothing was ever granted in this file
			}
			return errors.New("tokens bucket missing")
		}
		n := b.Stats().KeyN
		byHash = make(map[tokenHash]*entry, n)
		// One slab for all entries: one allocation instead of n.
		slab := make([]entry, 0, n)
		d := decoder{intern: make(map[string]string)}
		c := b.Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if i%restoreCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			i++
			if len(slab) == cap(slab) { // more keys than Stats counted
				slab = make([]entry, 0, 64)
			}
			slab = slab[:len(slab)+1]
			p := &slab[len(slab)-1]
			if err := loadOne(&d, k, v, p); err != nil {
				slab = slab[:len(slab)-1]
				skipped++
				s.opts.Logger.Warn("token restore: record set aside", "index", i-1, "err", err)
				continue
			}
			byHash[p.hash] = p
		}
		return nil
	})
	if byHash == nil {
		byHash = map[tokenHash]*entry{}
	}
	return byHash, skipped, err
}

// loadOne decodes one record of the tokens bucket into e.
func loadOne(d *decoder, k, v []byte, e *entry) error {
	if v == nil {
		return errors.New("nested bucket in tokens bucket")
	}
	if len(k) != len(e.hash) {
		return errors.New("key is not a sha-256 hash")
	}
	copy(e.hash[:], k)
	return d.decode(v, e)
}
