package capability

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// mustOpenDB opens a bbolt database in tb.TempDir(). At cleanup, if the
// test left it open, it runs bbolt's consistency check and the store's own
// index check, then closes it.
func mustOpenDB(tb testing.TB) *bbolt.DB {
	tb.Helper()
	return mustOpenDBAt(tb, filepath.Join(tb.TempDir(), "solo.db"))
}

func mustOpenDBAt(tb testing.TB, path string) *bbolt.DB {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatalf("open bbolt: %v", err)
	}
	tb.Cleanup(func() {
		err := db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				tb.Errorf("bbolt check: %v", err)
			}
			checkIndexes(tb, tx)
			return nil
		})
		if err != nil && !errors.Is(err, bbolt.ErrDatabaseNotOpen) {
			tb.Errorf("check db: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("close bbolt: %v", err)
		}
	})
	return db
}

// checkIndexes asserts that the id and tenant indexes hold exactly one
// entry per stored token, each pointing at its hash.
func checkIndexes(tb testing.TB, tx *bbolt.Tx) {
	tb.Helper()
	b, err := buckets(tx)
	if err != nil {
		return // store never opened on this db
	}
	var d decoder
	n := 0
	_ = b.tokens.ForEach(func(k, v []byte) error {
		n++
		var e entry
		if err := d.decode(v, &e); err != nil {
			return nil // damaged on purpose by a test
		}
		if h := b.byID.Get(idKey(e.id)); !bytes.Equal(h, k) {
			tb.Errorf("id index for %s: wrong or missing hash", e.id)
		}
		tb2 := b.byTenant.Bucket([]byte(e.tenant))
		if tb2 == nil || !bytes.Equal(tb2.Get(idKey(e.id)), k) {
			tb.Errorf("tenant index for %s/%s: wrong or missing hash", e.tenant, e.id)
		}
		return nil
	})
	ids := b.byID.Stats().KeyN
	tenantIDs := 0
	_ = b.byTenant.ForEachBucket(func(k []byte) error {
		tenantIDs += b.byTenant.Bucket(k).Stats().KeyN
		return nil
	})
	if ids != n || tenantIDs != n {
		tb.Errorf("indexes: %d tokens, %d ids, %d tenant entries", n, ids, tenantIDs)
	}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustOpenStore opens a store with clk on db.
func mustOpenStore(tb testing.TB, db *bbolt.DB, clk *clock) *Store {
	tb.Helper()
	opts := &Options{}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := Open(context.Background(), db, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func mustGrant(tb testing.TB, s *Store, req GrantRequest) (Token, string) {
	tb.Helper()
	tok, pt, err := s.Grant(context.Background(), req)
	if err != nil {
		tb.Fatalf("grant %+v: %v", req, err)
	}
	return tok, pt
}
