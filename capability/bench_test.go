package capability

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/bbolt"
)

func BenchmarkStore_Authenticate(b *testing.B) {
	s := mustOpenStore(b, mustOpenDB(b), nil)
	fillTokens(b, s.db, 10_000) // a populated map, not a one-entry one
	s.Close()
	s = mustOpenStore(b, s.db, nil)
	_, pt := mustGrant(b, s, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Authenticate(pt); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkStore_Authenticate_serial(b *testing.B) {
	s := mustOpenStore(b, mustOpenDB(b), nil)
	_, pt := mustGrant(b, s, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	pt, _, _ := newPlaintext()
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(pt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStore_Open_100kTokens measures restoring 100,000 tokens; the
// database is built once, outside the timed loop.
func BenchmarkStore_Open_100kTokens(b *testing.B) {
	db := mustOpenDB(b)
	fillTokens(b, db, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Open(context.Background(), db, nil)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(s.byHash); n != 100_000 {
			b.Fatalf("restored %d", n)
		}
		s.Close()
	}
}

// fillTokens writes n tokens over 100 tenants straight into db in one
// transaction, as n grants would (but without n fsyncs). The hashes are
// random: no plaintext exists for them.
func fillTokens(tb testing.TB, db *bbolt.DB, n int) {
	tb.Helper()
	now := time.Now().UTC()
	db.NoSync = true
	defer func() { db.NoSync = false }()
	// Batches: bbolt splits nodes only at commit, so one huge transaction
	// of random keys spends its time moving memory.
	const batch = 2000
	for start := 0; start < n; start += batch {
		if err := db.Update(func(tx *bbolt.Tx) error {
			return fillBatch(tx, now, start, min(n, start+batch))
		}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		tb.Fatal(err)
	}
}

func fillBatch(tx *bbolt.Tx, now time.Time, from, to int) error {
	for _, name := range [][]byte{bucketTokens, bucketByTenant, bucketByID} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	bs, err := buckets(tx)
	if err != nil {
		return err
	}
	for i := from; i < to; i++ {
		e := &entry{
			id:      ulid.MustNew(ulid.Timestamp(now), rand.Reader),
			set:     scopeSet(i%int(allScopeBits)) + 1,
			tenant:  fmt.Sprintf("tenant-%02d", i%100),
			actor:   "local",
			created: now.UnixNano(),
			expires: now.Add(DefaultMaxTTL).UnixNano(),
		}
		if i%3 == 0 {
			e.services = "web-*"
		}
		_, _ = rand.Read(e.hash[:])
		if err := bs.put(e, encodeRecord(e)); err != nil {
			return err
		}
	}
	return nil
}
