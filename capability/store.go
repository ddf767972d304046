package capability

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/bbolt"
)

// Defaults for [Options].
const (
	DefaultTTL           = 24 * time.Hour      // a grant without a ttl
	DefaultMaxTTL        = 30 * 24 * time.Hour // the longest ttl a grant may ask for
	DefaultRetention     = 7 * 24 * time.Hour  // how long a revoked token is kept for listing
	DefaultSweepInterval = time.Hour           // how often [Store.Run] sweeps
)

// Limits on a grant's free-form fields.
const (
	maxPatternLen = 255
	maxActorLen   = 255
)

// Bucket names, top level in the shared bbolt file. The store touches no
// other bucket.
var (
	bucketTokens   = []byte("tokens")           // sha256(plaintext) -> record
	bucketByTenant = []byte("tokens_by_tenant") // tenant -> (id -> sha256)
	bucketByID     = []byte("tokens_by_id")     // id -> sha256
)

// Options configure a [Store]. A nil *Options, or a zero field, means the
// default named on the field.
type Options struct {
	// MaxTTL is the longest ttl a grant may ask for. Default [DefaultMaxTTL].
	MaxTTL time.Duration

	// DefaultTTL is the ttl of a grant that gives none. Default
	// [DefaultTTL], or MaxTTL if that is shorter. It must not exceed MaxTTL.
	DefaultTTL time.Duration

	// Retention is how long [Store.Sweep] keeps a revoked, unexpired token
	// (so that listings show it) before deleting it. Default
	// [DefaultRetention].
	Retention time.Duration

	// SweepInterval is the period of [Store.Run]. Default
	// [DefaultSweepInterval].
	SweepInterval time.Duration

	// Now is the clock. Default [time.Now].
	Now func() time.Time

	// Logger receives restore and sweep reports; it never receives a
	// secret. Default: discard.
	Logger *slog.Logger
}

func (o *Options) withDefaults() (Options, error) {
	var v Options
	if o != nil {
		v = *o
	}
	if v.MaxTTL < 0 || v.DefaultTTL < 0 || v.Retention < 0 || v.SweepInterval < 0 {
		return v, fmt.Errorf("%w: negative duration in options", ErrInvalid)
	}
	if v.MaxTTL == 0 {
		v.MaxTTL = DefaultMaxTTL
	}
	if v.DefaultTTL == 0 {
		v.DefaultTTL = min(DefaultTTL, v.MaxTTL)
	}
	if v.DefaultTTL > v.MaxTTL {
		return v, fmt.Errorf("%w: default ttl %s exceeds maximum ttl %s", ErrInvalid, v.DefaultTTL, v.MaxTTL)
	}
	if v.Retention == 0 {
		v.Retention = DefaultRetention
	}
	if v.SweepInterval == 0 {
		v.SweepInterval = DefaultSweepInterval
	}
	if v.Now == nil {
		v.Now = time.Now
	}
	if v.Logger == nil {
		v.Logger = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

// Store grants, authenticates and revokes tokens. It keeps every token in
// memory, so that [Store.Authenticate] never touches the disk, and mirrors
// every change to its buckets in the bbolt file it was opened on.
type Store struct {
	db   *bbolt.DB
	opts Options

	// wmu serialises writers (Grant, Revoke, Sweep, Close) so that the disk
	// and the maps change in the same order. A writer holds mu only to swap
	// map entries, never across a disk write, so Authenticate never waits
	// for an fsync.
	wmu sync.Mutex

	mu     sync.RWMutex
	byHash map[tokenHash]*entry // every token; the disk's id index finds one by id
	closed bool
	done   chan struct{} // closed by Close
}

// entry is one token in memory, compact because a restore builds one per
// stored token. It is never changed once it is in the map: a revoke
// replaces it.
type entry struct {
	hash                      tokenHash
	id                        ulid.ULID
	set                       scopeSet
	tenant, services, actor   string
	created, expires, revoked int64 // unix nanoseconds; revoked 0 = not revoked
}

// token returns the public form of e, sharing no memory with the store.
func (e *entry) token() Token {
	return Token{
		ID:        e.id.String(),
		Tenant:    e.tenant,
		Scopes:    slices.Clone(scopeSlices[e.set]),
		Services:  e.services,
		Actor:     e.actor,
		CreatedAt: fromUnixNano(e.created),
		ExpiresAt: fromUnixNano(e.expires),
		RevokedAt: fromUnixNano(e.revoked),
	}
}

// Open returns a store over db, which the caller has opened and will close
// after [Store.Close]. It creates the store's buckets if db is writable and
// they are missing, then restores every token into memory in one read
// transaction (see the package doc for what it does with a damaged record).
// ctx bounds the restore. Options are described on [Options]; inconsistent
// options give [ErrInvalid].
func Open(ctx context.Context, db *bbolt.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("open token store: %w: nil database", ErrInvalid)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open token store: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open token store: %w", err)
	}
	if !db.IsReadOnly() && !hasBuckets(db) {
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, name := range [][]byte{bucketTokens, bucketByTenant, bucketByID} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %q: %w", name, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("open token store: %w", err)
		}
	}
	s := &Store{db: db, opts: o, done: make(chan struct{})}
	if err := s.restore(ctx); err != nil {
		return nil, fmt.Errorf("open token store: %w", err)
	}
	return s, nil
}

// hasBuckets reports whether all the store's buckets exist, so that Open
// writes (and fsyncs) only the first time.
func hasBuckets(db *bbolt.DB) bool {
	ok := false
	_ = db.View(func(tx *bbolt.Tx) error {
		_, err := buckets(tx)
		ok = err == nil
		return nil
	})
	return ok
}

// Close drops the tokens from memory; every later call returns [ErrClosed]
// and [Store.Run] returns. It waits for a write in progress, does not close
// the database, and is idempotent.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.byHash = nil
		close(s.done)
	}
	return nil
}

// GrantRequest asks for a new token.
type GrantRequest struct {
	Tenant   string        // required; same rule as service names
	Scopes   []Scope       // at least one; duplicates are folded
	TTL      time.Duration // 0 means [Options.DefaultTTL]; over [Options.MaxTTL] is refused
	Services string        // optional path.Match pattern over service names
	Actor    string        // who asks: a token id or "local"; recorded, not checked
}

// Grant creates a token and returns it with its plaintext. The plaintext is
// returned this once: only its SHA-256 is stored. The token is durable
// (fsynced in one bbolt transaction) when Grant returns. A request that
// fails validation gets [ErrInvalid] and writes nothing.
//
// Grant does not check that Actor may grant tokens; the caller has done that
// (with [Token.Allows] and [ScopeAdmin]) and records the token_granted event.
func (s *Store) Grant(ctx context.Context, req GrantRequest) (Token, string, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, "", fmt.Errorf("grant token: %w", err)
	}
	e, plaintext, err := s.opts.newEntry(req)
	if err != nil {
		return Token{}, "", fmt.Errorf("grant token: %w", err)
	}
	hash, id, rec := e.hash, e.id, encodeRecord(e)

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return Token{}, "", ErrClosed
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		if b.tokens.Get(hash[:]) != nil || b.byID.Get(idKey(id)) != nil {
			return fmt.Errorf("token id or hash already stored") // 2^-128 odds: refuse, never overwrite
		}
		return b.put(e, rec)
	})
	if err != nil {
		return Token{}, "", fmt.Errorf("grant token: %w", err)
	}
	s.mu.Lock()
	s.byHash[hash] = e
	s.mu.Unlock()
	return e.token(), plaintext, nil
}

// newEntry validates a grant request and makes its token: the entry to
// store, and the plaintext to show once. Every store grants through it.
func (o *Options) newEntry(req GrantRequest) (*entry, string, error) {
	set, ttl, err := o.check(req)
	if err != nil {
		return nil, "", err
	}
	now := o.Now()
	id, err := ulid.New(ulid.Timestamp(now), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("new id: %w", err)
	}
	plaintext, hash, err := newPlaintext()
	if err != nil {
		return nil, "", err
	}
	return &entry{
		hash:     hash,
		id:       id,
		set:      set,
		tenant:   req.Tenant,
		services: req.Services,
		actor:    req.Actor,
		created:  now.UnixNano(),
		expires:  now.Add(ttl).UnixNano(),
	}, plaintext, nil
}

// check validates a grant request and returns its scope set and ttl.
func (o *Options) check(req GrantRequest) (scopeSet, time.Duration, error) {
	if !validName(req.Tenant) {
		return 0, 0, fmt.Errorf("%w: tenant %q must match ^[a-z0-9][a-z0-9._-]{0,62}$", ErrInvalid, req.Tenant)
	}
	if len(req.Scopes) == 0 {
		return 0, 0, fmt.Errorf("%w: no scope given", ErrInvalid)
	}
	var set scopeSet
	for _, sc := range req.Scopes {
		if _, err := ParseScope(string(sc)); err != nil {
			return 0, 0, err
		}
		set |= sc.bit()
	}
	if req.Services != "" {
		if len(req.Services) > maxPatternLen {
			return 0, 0, fmt.Errorf("%w: service pattern longer than %d bytes", ErrInvalid, maxPatternLen)
		}
		if _, err := path.Match(req.Services, ""); err != nil {
			return 0, 0, fmt.Errorf("%w: service pattern %q: %v", ErrInvalid, req.Services, err)
		}
	}
	if len(req.Actor) > maxActorLen {
		return 0, 0, fmt.Errorf("%w: actor longer than %d bytes", ErrInvalid, maxActorLen)
	}
	ttl := req.TTL
	switch {
	case ttl == 0:
		ttl = o.DefaultTTL
	case ttl < 0:
		return 0, 0, fmt.Errorf("%w: ttl %s is negative", ErrInvalid, ttl)
	case ttl > o.MaxTTL:
		return 0, 0, fmt.Errorf("%w: ttl %s exceeds maximum %s", ErrInvalid, ttl, o.MaxTTL)
	}
	return set, ttl, nil
}

// Authenticate returns the token whose plaintext is presented. It checks the
// form and checksum first ([ErrMalformed], [ErrChecksum]: no lookup), then
// finds the token in memory by the plaintext's SHA-256 ([ErrUnknown]), then
// refuses a revoked token ([ErrRevoked]) or one whose expiry is not strictly
// after now ([ErrExpired]). With ErrRevoked and ErrExpired it also returns
// the token, so the caller can log which one was refused. It never touches
// the disk, and no error contains the plaintext.
func (s *Store) Authenticate(plaintext string) (Token, error) {
	if err := Validate(plaintext); err != nil {
		return Token{}, err
	}
	hash := tokenHash(sha256.Sum256([]byte(plaintext)))
	s.mu.RLock()
	closed := s.closed
	e := s.byHash[hash]
	s.mu.RUnlock()
	if closed {
		return Token{}, ErrClosed
	}
	return authenticate(e, hash, s.opts.Now())
}

// authenticate is the verdict on the entry a map lookup found by hash (nil
// if none) at now: the one rule of every store's Authenticate.
func authenticate(e *entry, hash tokenHash, now time.Time) (Token, error) {
	// The map finds the entry by hash; confirming it in constant time keeps
	// the comparison of secret-derived bytes free of timing signals.
	if e == nil || subtle.ConstantTimeCompare(e.hash[:], hash[:]) != 1 {
		return Token{}, ErrUnknown
	}
	tok := e.token()
	if e.revoked != 0 {
		return tok, ErrRevoked
	}
	if tok.Expired(now) {
		return tok, ErrExpired
	}
	return tok, nil
}

// Revoke revokes the token with id, recording at as its revocation time
// (now if at is zero). It takes effect at once, whatever at says: from the
// moment Revoke returns, [Store.Authenticate] refuses the token, and the
// revocation is durable. Revoking a revoked token changes nothing and
// returns it. An unknown id gives [ErrNotFound].
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, fmt.Errorf("revoke token: %w", err)
	}
	if at.IsZero() {
		at = s.opts.Now()
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return Token{}, ErrClosed
	}
	// Echo the id only if it is one: a plaintext pasted by mistake must
	// not reach an error message.
	uid, err := ulid.ParseStrict(id)
	if err != nil {
		return Token{}, fmt.Errorf("revoke token: %w", ErrNotFound)
	}
	var ne *entry
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		h := b.byID.Get(idKey(uid))
		if len(h) != len(tokenHash{}) {
			return ErrNotFound
		}
		e := s.byHash[tokenHash(h)] // writers are serialised by wmu: no mu needed to read
		if e == nil {
			return ErrNotFound // a record set aside at restore: it cannot authenticate anyway
		}
		if e.revoked != 0 {
			ne = e
			return nil
		}
		c := *e
		c.revoked = at.UnixNano()
		ne = &c
		return b.put(ne, encodeRecord(ne))
	})
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.mu.Lock()
	s.byHash[ne.hash] = ne
	s.mu.Unlock()
	return ne.token(), nil
}

// idKey is a token id as the indexes store it: its 26-character text, so
// that a look at the file with bbolt's tools shows ids as the CLI prints
// them.
func idKey(id ulid.ULID) []byte {
	b, _ := id.MarshalText()
	return b
}

// List returns the tokens of tenant, or of every tenant if tenant is "",
// revoked and expired ones included until they are swept, sorted by
// creation time then id. It reads memory only and holds no secret. A closed
// store lists nothing.
func (s *Store) List(tenant string) []Token {
	s.mu.RLock()
	out := list(s.byHash, tenant)
	s.mu.RUnlock()
	return sortTokens(out)
}

// list returns the tokens of tenant ("" for all) in m, unsorted.
func list(m map[tokenHash]*entry, tenant string) []Token {
	out := make([]Token, 0, len(m))
	for _, e := range m {
		if tenant == "" || e.tenant == tenant {
			out = append(out, e.token())
		}
	}
	return out
}

// sortTokens sorts a listing by creation time, then id.
func sortTokens(out []Token) []Token {
	slices.SortFunc(out, func(a, b Token) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// bucketSet is the store's buckets in one transaction.
type bucketSet struct {
	tokens, byTenant, byID *bbolt.Bucket
}

func buckets(tx *bbolt.Tx) (bucketSet, error) {
	b := bucketSet{
		tokens:   tx.Bucket(bucketTokens),
		byTenant: tx.Bucket(bucketByTenant),
		byID:     tx.Bucket(bucketByID),
	}
	if b.tokens == nil || b.byTenant == nil || b.byID == nil {
		return b, fmt.Errorf("token buckets missing")
	}
	return b, nil
}

// put writes a token's record and both index entries.
func (b bucketSet) put(e *entry, rec []byte) error {
	id := idKey(e.id)
	tb, err := b.byTenant.CreateBucketIfNotExists([]byte(e.tenant))
	if err != nil {
		return fmt.Errorf("tenant index %q: %w", e.tenant, err)
	}
	if err := b.tokens.Put(e.hash[:], rec); err != nil {
		return fmt.Errorf("put token: %w", err)
	}
	if err := b.byID.Put(id, e.hash[:]); err != nil {
		return fmt.Errorf("put id index: %w", err)
	}
	if err := tb.Put(id, e.hash[:]); err != nil {
		return fmt.Errorf("put tenant index: %w", err)
	}
	return nil
}

// del removes a token's record and both index entries, and the tenant's
// index bucket once it is empty.
func (b bucketSet) del(e *entry) error {
	id := idKey(e.id)
	if err := b.tokens.Delete(e.hash[:]); err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	if err := b.byID.Delete(id); err != nil {
		return fmt.Errorf("delete id index: %w", err)
	}
	if tb := b.byTenant.Bucket([]byte(e.tenant)); tb != nil {
		if err := tb.Delete(id); err != nil {
			return fmt.Errorf("delete tenant index: %w", err)
		}
		if k, _ := tb.Cursor().First(); k == nil {
			if err := b.byTenant.DeleteBucket([]byte(e.tenant)); err != nil {
				return fmt.Errorf("delete tenant index %q: %w", e.tenant, err)
			}
		}
	}
	return nil
}
