// Package vault keeps secrets: small values per tenant and name, sealed at
// rest with XChaCha20-Poly1305 (golang.org/x/crypto) under a 32-byte key
// kept outside the database.
//
// # Storage
//
// Sealed values live in their own bbolt bucket ("vault", one sub-bucket
// per tenant) of the file the caller gives (the solo daemon gives solo.db,
// so a backup of solo.db holds them sealed, never in clear). Each record
// is the secret's version, its times and its sealed value: a random
// 24-byte nonce and the ciphertext, with the tenant, the name and the
// version as associated data, so a record moved to another tenant, name
// or version does not open. Only the current version's value is kept.
//
// # The key
//
// The key is a file of exactly 32 bytes, mode 0600 (no group or other
// bit), that [Open] reads once. A key file that exists with other
// permissions or another length is refused at Open. A missing key file is
// made on first use ([Vault.Set] into an empty vault). A vault that holds
// secrets whose key file is gone opens (so that a daemon still runs its
// other services) and answers [ErrKeyMissing] to every read and set;
// [Vault.Remove] and [Vault.List] still work.
//
// # Opened values
//
// [Vault.Get] keeps each value it opens in memory, so that the next start
// of a service that names it reads neither the database nor the cipher.
// The copy is exact: every change of a value goes through [Vault.Set] or
// [Vault.Remove], which drop it (solo.db is the daemon's alone while it
// runs). The values are never logged, and the cache is gone with the
// Vault.
//
// No error of this package quotes a value.
package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/solo-rt/solo/internal/durable"
)

// MaxValue is the largest value [Vault.Set] takes, in bytes.
const MaxValue = 64 << 10

// KeySize is the length of a key file, in bytes.
const KeySize = chacha20poly1305.KeySize

var (
	// ErrNotFound: no secret of that tenant and name.
	ErrNotFound = errors.New("secret not found")
	// ErrKeyMissing: the vault holds secrets but their key file is gone.
	ErrKeyMissing = errors.New("vault key missing")
	// ErrInvalid: an empty or oversized value, an empty name.
	ErrInvalid = errors.New("invalid secret")
)

var bucketVault = []byte("vault")

// Meta describes a secret without its value.
type Meta struct {
	Tenant  string    `json:"tenant"`
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

type record struct {
	Meta
	Sealed []byte `json:"sealed"` // nonce || ciphertext
}

// Vault is a set of sealed secrets. It is safe for concurrent use.
type Vault struct {
	db      *bbolt.DB
	keyPath string
	now     func() time.Time

	mu   sync.RWMutex
	aead cipher.AEAD // nil: no key yet, or its file is gone
	// opened holds the values Get opened, by tenant and name; changes
	// counts the Sets and Removes, so that a Get that read the database
	// before one of them does not keep what it read.
	opened  map[secretKey]openedValue
	changes uint64
}

type secretKey struct{ tenant, name string }

type openedValue struct {
	value []byte
	meta  Meta
}

// Open opens the vault in db (creating its bucket), with its key in the
// file keyPath. now is the clock (nil: time.Now). It refuses a key file
// readable or writable by group or others, or not exactly [KeySize] bytes,
// with an error saying how to fix it.
func Open(db *bbolt.DB, keyPath string, now func() time.Time) (*Vault, error) {
	if now == nil {
		now = time.Now
	}
	v := &Vault{db: db, keyPath: keyPath, now: now, opened: map[secretKey]openedValue{}}
	if !db.IsReadOnly() {
		if err := db.Update(func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketVault)
			return err
		}); err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
	}
	key, err := readKey(keyPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return v, nil
	case err != nil:
		return nil, err
	}
	v.aead, err = chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("vault key file %s: %w", keyPath, err)
	}
	return v, nil
}

// CheckKeyFile checks a key file as [Open] does, without a database: it
// exists, is mode 0600 or stricter and holds [KeySize] bytes.
func CheckKeyFile(path string) error {
	_, err := readKey(path)
	return err
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vault key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("vault key file %s has mode %04o: it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	if fi.Size() != KeySize {
		return nil, fmt.Errorf("vault key file %s is %d bytes, want exactly %d (a key from the vault's first use, or %d random bytes)", path, fi.Size(), KeySize, KeySize)
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("vault key file %s: %w", path, err)
	}
	return key, nil
}

// makeKey writes a new key file (it must not exist) and returns its AEAD.
func (v *Vault) makeKey() (cipher.AEAD, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(v.keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vault: make key file: %w", err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = durable.SyncDir(filepath.Dir(v.keyPath))
	}
	if err != nil {
		os.Remove(v.keyPath)
		return nil, fmt.Errorf("vault: make key file: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

func associated(tenant, name string, version uint64) []byte {
	return []byte(tenant + "\x00" + name + "\x00" + strconv.FormatUint(version, 10))
}

// Set stores value as the next version of tenant's secret name and
// returns its description. The key file is made here if the vault has
// none and holds no secret yet.
func (v *Vault) Set(tenant, name string, value []byte) (Meta, error) {
	switch {
	case tenant == "" || name == "":
		return Meta{}, fmt.Errorf("%w: tenant and name are required", ErrInvalid)
	case len(value) == 0:
		return Meta{}, fmt.Errorf("%w: the value is empty", ErrInvalid)
	case len(value) > MaxValue:
		return Meta{}, fmt.Errorf("%w: the value is %d bytes, limit %d (64 KiB)", ErrInvalid, len(value), MaxValue)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.forget(tenant, name)
	var m Meta
	err := v.db.Update(func(tx *bbolt.Tx) error {
		if v.aead == nil {
			if v.count(tx) > 0 {
				return v.missing()
			}
			a, err := v.makeKey()
			if err != nil {
				return err
			}
			v.aead = a
		}
		tb, err := tx.Bucket(bucketVault).CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return err
		}
		now := v.now().UTC()
		m = Meta{Tenant: tenant, Name: name, Version: 1, Created: now, Updated: now}
		if old, ok, err := getRecord(tb, name); err != nil {
			return err
		} else if ok {
			m.Version, m.Created = old.Version+1, old.Created
		}
		nonce := make([]byte, v.aead.NonceSize(), v.aead.NonceSize()+len(value)+v.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return err
		}
		rec := record{Meta: m, Sealed: v.aead.Seal(nonce, nonce, value, associated(tenant, name, m.Version))}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return tb.Put([]byte(name), b)
	})
	if err != nil {
		return Meta{}, err
	}
	return m, nil
}

// notFoundError names the secret that is not there.
type notFoundError struct{ name string }

func (e notFoundError) Error() string        { return "secret " + e.name + " not found" }
func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

func notFound(name string) error { return notFoundError{name} }

func (v *Vault) missing() error {
	return fmt.Errorf("%w: %s is gone but the vault holds secrets sealed with it; restore the file (or remove the secrets and set them again)", ErrKeyMissing, v.keyPath)
}

func (v *Vault) count(tx *bbolt.Tx) int {
	n := 0
	tx.Bucket(bucketVault).ForEachBucket(func(k []byte) error {
		n += tx.Bucket(bucketVault).Bucket(k).Stats().KeyN
		return nil
	})
	return n
}

func getRecord(tb *bbolt.Bucket, name string) (record, bool, error) {
	if tb == nil {
		return record{}, false, nil
	}
	b := tb.Get([]byte(name))
	if b == nil {
		return record{}, false, nil
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, false, fmt.Errorf("vault: record %q is corrupt: %w", name, err)
	}
	return r, true, nil
}

// Get returns the current value of tenant's secret name and its version:
// [ErrNotFound] if there is none, [ErrKeyMissing] if its key is gone. The
// value is the caller's to keep (a copy of the one kept in memory: see
// "Opened values").
func (v *Vault) Get(tenant, name string) ([]byte, Meta, error) {
	k := secretKey{tenant, name}
	v.mu.RLock()
	o, ok := v.opened[k]
	a, changes := v.aead, v.changes
	v.mu.RUnlock()
	if ok {
		return slices.Clone(o.value), o.meta, nil
	}
	var r record
	err := v.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, ok, err = getRecord(tx.Bucket(bucketVault).Bucket([]byte(tenant)), name)
		return err
	})
	if err != nil {
		return nil, Meta{}, err
	}
	if !ok {
		return nil, Meta{}, notFound(name)
	}
	if a == nil {
		return nil, Meta{}, v.missing()
	}
	if len(r.Sealed) < a.NonceSize() {
		return nil, Meta{}, fmt.Errorf("vault: secret %s is corrupt", name)
	}
	nonce, ct := r.Sealed[:a.NonceSize()], r.Sealed[a.NonceSize():]
	value, err := a.Open(nil, nonce, ct, associated(tenant, name, r.Version))
	if err != nil {
		return nil, Meta{}, fmt.Errorf("vault: secret %s does not open with the key in %s (another key, or a damaged record)", name, v.keyPath)
	}
	v.mu.Lock()
	if v.changes == changes {
		v.opened[k] = openedValue{value: slices.Clone(value), meta: r.Meta}
	}
	v.mu.Unlock()
	return value, r.Meta, nil
}

// forget drops the opened value of tenant's secret name; v.mu is held.
func (v *Vault) forget(tenant, name string) {
	delete(v.opened, secretKey{tenant, name})
	v.changes++
}

// Lookup returns the description of tenant's secret name, without opening
// it (no key needed).
func (v *Vault) Lookup(tenant, name string) (Meta, bool, error) {
	var r record
	var ok bool
	err := v.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, ok, err = getRecord(tx.Bucket(bucketVault).Bucket([]byte(tenant)), name)
		return err
	})
	return r.Meta, ok, err
}

// List returns tenant's secrets, sorted by name, without values.
func (v *Vault) List(tenant string) ([]Meta, error) {
	var out []Meta
	err := v.db.View(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketVault).Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		return tb.ForEach(func(k, b []byte) error {
			var r record
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("vault: record %q is corrupt: %w", k, err)
			}
			out = append(out, r.Meta)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Meta) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Remove deletes tenant's secret name and returns what it was;
// [ErrNotFound] if there is none.
func (v *Vault) Remove(tenant, name string) (Meta, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.forget(tenant, name)
	var m Meta
	err := v.db.Update(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketVault).Bucket([]byte(tenant))
		r, ok, err := getRecord(tb, name)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(name)
		}
		m = r.Meta
		return tb.Delete([]byte(name))
	})
	return m, err
}

// HasKey reports whether the vault has its key (false: none made yet, or
// its file is gone).
func (v *Vault) HasKey() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.aead != nil
}
