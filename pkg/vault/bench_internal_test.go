package vault

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// BenchmarkGet is what one start of a service with one secret pays to read
// it: from the opened values kept in memory, and (sealed) as before they
// were kept, a bbolt read transaction, a JSON record and the AEAD.
func BenchmarkGet(b *testing.B) {
	dir := b.TempDir()
	db, err := bbolt.Open(filepath.Join(dir, "v.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	v, err := Open(db, filepath.Join(dir, "vault.key"), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Set("default", "db-password", []byte("bench-value")); err != nil {
		b.Fatal(err)
	}
	for _, kept := range []bool{true, false} {
		name := "opened"
		if !kept {
			name = "sealed"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !kept {
					v.mu.Lock()
					clear(v.opened)
					v.mu.Unlock()
				}
				if _, _, err := v.Get("default", "db-password"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
