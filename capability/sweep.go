package capability

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Sweep deletes, from disk and memory, every token that is expired and
// every revoked token whose revocation is older than [Options.Retention],
// in one bbolt transaction, and returns how many it deleted. A swept token
// is no longer listed and authenticates as [ErrUnknown]. Sweep is
// idempotent: a second call at the same time deletes nothing.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sweep tokens: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	now := s.opts.Now().UnixNano()
	var dead []*entry
	for _, e := range s.byHash { // writers are serialised by wmu: no mu needed to read
		if sweepable(e, now, int64(s.opts.Retention)) {
			dead = append(dead, e)
		}
	}
	if len(dead) == 0 {
		return 0, nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		for _, e := range dead {
			if err := b.del(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep tokens: %w", err)
	}
	s.mu.Lock()
	for _, e := range dead {
		delete(s.byHash, e.hash)
	}
	s.mu.Unlock()
	return len(dead), nil
}

// sweepable is the keep-or-delete decision, on unix nanoseconds: expired
// tokens go at once, revoked ones after retention.
func sweepable(e *entry, now, retention int64) bool {
	if now >= e.expires {
		return true
	}
	return e.revoked != 0 && now >= e.revoked+retention
}

// Run calls [Store.Sweep] every [Options.SweepInterval] until ctx is done
// (it returns nil) or the store is closed (it returns [ErrClosed]). A failed
// sweep is logged and retried at the next tick.
func (s *Store) Run(ctx context.Context) error {
	return runSweeps(ctx, &s.opts, s.done, s.Sweep, s.isClosed)
}

// runSweeps is every store's Run: sweep every interval until ctx is done
// or done is closed.
func runSweeps(ctx context.Context, o *Options, done <-chan struct{}, sweep func(context.Context) (int, error), closed func() bool) error {
	t := time.NewTicker(o.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return ErrClosed
		case <-t.C:
			n, err := sweep(ctx)
			switch {
			case err == nil:
				if n > 0 {
					o.Logger.Info("swept tokens", "deleted", n)
				}
			case ctx.Err() != nil:
				return nil
			default:
				o.Logger.Error("sweep tokens", "err", err)
				if closed() {
					return ErrClosed
				}
			}
		}
	}
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
