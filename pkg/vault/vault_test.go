package vault_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/solo-rt/solo/pkg/vault"
)

func openDB(t *testing.T, dir string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "v.db"), 0o600, nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSetGetVersionsAndSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	keyPath := filepath.Join(dir, "vault.key")
	v, err := vault.Open(db, keyPath, nil)
	require.NoError(t, err)
	require.False(t, v.HasKey())

	value := []byte("hunter2-very-secret-value")
	m, err := v.Set("alpha", "db", value)
	require.NoError(t, err)
	require.Equal(t, uint64(1), m.Version)
	fi, err := os.Stat(keyPath)
	require.NoError(t, err, "the key file is made on first use")
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.EqualValues(t, vault.KeySize, fi.Size())

	got, gm, err := v.Get("alpha", "db")
	require.NoError(t, err)
	require.Equal(t, value, got)
	require.Equal(t, uint64(1), gm.Version)

	m, err = v.Set("alpha", "db", []byte("rotated"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), m.Version)
	got, _, err = v.Get("alpha", "db")
	require.NoError(t, err)
	require.Equal(t, "rotated", string(got))

	_, _, err = v.Get("beta", "db")
	require.ErrorIs(t, err, vault.ErrNotFound, "another tenant's secret is not found")

	list, err := v.List("alpha")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "db", list[0].Name)

	require.NoError(t, db.Sync())
	raw, err := os.ReadFile(filepath.Join(dir, "v.db"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(raw, []byte("rotated")), "the value is sealed at rest")
	require.False(t, bytes.Contains(raw, value))

	_, err = v.Remove("alpha", "db")
	require.NoError(t, err)
	_, _, err = v.Get("alpha", "db")
	require.ErrorIs(t, err, vault.ErrNotFound)
	_, err = v.Remove("alpha", "db")
	require.ErrorIs(t, err, vault.ErrNotFound)
}

func TestSetRefusesEmptyAndOversized(t *testing.T) {
	dir := t.TempDir()
	v, err := vault.Open(openDB(t, dir), filepath.Join(dir, "vault.key"), nil)
	require.NoError(t, err)
	_, err = v.Set("alpha", "db", nil)
	require.ErrorIs(t, err, vault.ErrInvalid)
	_, err = v.Set("alpha", "db", make([]byte, vault.MaxValue+1))
	require.ErrorIs(t, err, vault.ErrInvalid)
	_, err = v.Set("alpha", "db", make([]byte, vault.MaxValue))
	require.NoError(t, err)
	list, err := v.List("alpha")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, uint64(1), list[0].Version, "the refused sets wrote nothing")
}

func TestOpenRefusesBadKeyFile(t *testing.T) {
	for name, tc := range map[string]struct {
		mode os.FileMode
		size int
		want string
	}{
		"group readable": {0o640, vault.KeySize, "chmod 600"},
		"world readable": {0o604, vault.KeySize, "chmod 600"},
		"short":          {0o600, 16, "want exactly 32"},
		"long":           {0o600, 33, "want exactly 32"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			kp := filepath.Join(dir, "k")
			require.NoError(t, os.WriteFile(kp, make([]byte, tc.size), 0o600))
			require.NoError(t, os.Chmod(kp, tc.mode))
			_, err := vault.Open(openDB(t, dir), kp, nil)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, kp)
		})
	}
}

func TestLostKeyFileIsKeyMissing(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	kp := filepath.Join(dir, "vault.key")
	v, err := vault.Open(db, kp, nil)
	require.NoError(t, err)
	_, err = v.Set("alpha", "db", []byte("pw"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(kp))

	v, err = vault.Open(db, kp, nil)
	require.NoError(t, err, "a lost key does not stop the vault from opening")
	_, _, err = v.Get("alpha", "db")
	require.ErrorIs(t, err, vault.ErrKeyMissing)
	_, err = v.Set("alpha", "other", []byte("x"))
	require.ErrorIs(t, err, vault.ErrKeyMissing, "no new key over sealed secrets")
	_, err = os.Stat(kp)
	require.ErrorIs(t, err, os.ErrNotExist)
	list, err := v.List("alpha")
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestAnotherKeyDoesNotOpen(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	kp := filepath.Join(dir, "vault.key")
	v, err := vault.Open(db, kp, nil)
	require.NoError(t, err)
	_, err = v.Set("alpha", "db", []byte("pw"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(kp, bytes.Repeat([]byte{7}, vault.KeySize), 0o600))
	v, err = vault.Open(db, kp, nil)
	require.NoError(t, err)
	_, _, err = v.Get("alpha", "db")
	require.Error(t, err)
	require.False(t, strings.Contains(err.Error(), "pw"))
}

// TestGet_NeverStaleAfterSet rotates a secret while readers open it: once
// a Set (or Remove) has returned, no Get answers what it replaced, even
// from a read that began before it (the opened values kept in memory).
func TestGet_NeverStaleAfterSet(t *testing.T) {
	dir := t.TempDir()
	v, err := vault.Open(openDB(t, dir), filepath.Join(dir, "vault.key"), nil)
	require.NoError(t, err)
	_, err = v.Set("alpha", "db", []byte("v1"))
	require.NoError(t, err)

	stop := make(chan struct{})
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				val, m, err := v.Get("alpha", "db")
				if err != nil && !strings.Contains(err.Error(), "not found") {
					done <- err
					return
				}
				if err == nil && string(val) != "v"+strconv.FormatUint(m.Version, 10) {
					done <- fmt.Errorf("version %d opened as %q", m.Version, val)
					return
				}
			}
		}()
	}
	for i := 2; i <= 50; i++ {
		m, err := v.Set("alpha", "db", []byte("v"+strconv.Itoa(i)))
		require.NoError(t, err)
		val, gm, err := v.Get("alpha", "db")
		require.NoError(t, err)
		require.Equal(t, m.Version, gm.Version, "a Get after a Set answers the new version")
		require.Equal(t, "v"+strconv.FormatUint(m.Version, 10), string(val))
	}
	_, err = v.Remove("alpha", "db")
	require.NoError(t, err)
	_, _, err = v.Get("alpha", "db")
	require.ErrorIs(t, err, vault.ErrNotFound, "a removed secret is not answered from memory")
	close(stop)
	for range 4 {
		require.NoError(t, <-done)
	}
}
