package capability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// Defaults for [EtcdOptions].
const (
	DefaultEtcdPrefix     = "/solo/tokens/" // beside the log's /solo/log/
	DefaultRequestTimeout = 5 * time.Second
	DefaultMaxStaleness   = time.Second // the bound on a revocation's reach
)

// EtcdOptions configure an [EtcdStore]. A nil *EtcdOptions, or a zero
// field, means the default named on the field.
type EtcdOptions struct {
	// Options are the token rules, as for a [Store]. Every node of a
	// cluster must use the same.
	Options

	// Prefix is the tokens' key prefix. Default [DefaultEtcdPrefix].
	Prefix string

	// RequestTimeout bounds each request to etcd. Default
	// [DefaultRequestTimeout].
	RequestTimeout time.Duration

	// MaxStaleness is how long the store trusts its copy without knowing
	// it current: past it, [EtcdStore.Authenticate] refuses every token
	// with [ErrNotSynced]. The store checks five times per MaxStaleness,
	// with a linearizable read. Default [DefaultMaxStaleness].
	MaxStaleness time.Duration
}

// EtcdStore is the token store of a cluster: the records of a [Store],
// kept in etcd, and a copy of all of them in memory on each node, which a
// watch keeps current. A token granted on any node authenticates on every
// node, and a revocation reaches every node in the time a watch event
// takes; a node that cannot tell that its copy is current fails closed
// (see the package doc, "Cluster").
type EtcdStore struct {
	cli     *clientv3.Client
	opts    Options
	hashes  string // prefix of the records: hashes + hex(sha256) -> record
	ids     string // prefix of the id index: ids + id -> hex(sha256)
	timeout time.Duration
	stale   time.Duration

	mu      sync.RWMutex
	byHash  map[tokenHash]*entry
	rev     int64     // the copy holds every change up to this revision
	heard   time.Time // the copy is known current as of this instant
	closed  bool
	changed chan struct{} // closed and replaced when rev grows, and at Close

	cancel   context.CancelFunc
	followed chan struct{} // closed when the watch goroutine ends
	done     chan struct{} // closed by Close
}

// OpenEtcd reads every token under the prefix into memory, then follows
// their changes with a watch until [EtcdStore.Close]. ctx bounds the first
// read; an etcd that does not answer is an error naming its endpoints.
// The client stays the caller's.
func OpenEtcd(ctx context.Context, cli *clientv3.Client, opts *EtcdOptions) (*EtcdStore, error) {
	if cli == nil {
		return nil, fmt.Errorf("open token store: %w: nil etcd client", ErrInvalid)
	}
	var eo EtcdOptions
	if opts != nil {
		eo = *opts
	}
	o, err := eo.Options.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open token store: %w", err)
	}
	if eo.RequestTimeout < 0 || eo.MaxStaleness < 0 {
		return nil, fmt.Errorf("open token store: %w: negative duration in options", ErrInvalid)
	}
	if eo.Prefix == "" {
		eo.Prefix = DefaultEtcdPrefix
	}
	if eo.RequestTimeout == 0 {
		eo.RequestTimeout = DefaultRequestTimeout
	}
	if eo.MaxStaleness == 0 {
		eo.MaxStaleness = DefaultMaxStaleness
	}
	s := &EtcdStore{
		cli: cli, opts: o, hashes: eo.Prefix + "h/", ids: eo.Prefix + "id/",
		timeout: eo.RequestTimeout, stale: eo.MaxStaleness,
		changed: make(chan struct{}), followed: make(chan struct{}), done: make(chan struct{}),
	}
	rev, err := s.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("open token store: read tokens from etcd at %v: %w", cli.Endpoints(), err)
	}
	fctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.follow(fctx, rev)
	return s, nil
}

// load replaces the copy with every token stored now, and returns the
// revision it read at. A damaged record is logged and set aside (its
// token fails closed), as at a [Store]'s restore.
func (s *EtcdStore) load(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	at := time.Now()
	resp, err := s.cli.Get(ctx, s.hashes, clientv3.WithPrefix()) // linearizable
	if err != nil {
		return 0, err
	}
	byHash := make(map[tokenHash]*entry, len(resp.Kvs))
	d := decoder{intern: make(map[string]string)}
	for i, kv := range resp.Kvs {
		if e, err := s.decode(&d, kv); err != nil {
			s.opts.Logger.Warn("token restore: record set aside", "index", i, "err", err)
		} else {
			byHash[e.hash] = e
		}
	}
	s.mu.Lock()
	s.byHash, s.rev, s.heard = byHash, resp.Header.Revision, at
	s.bump()
	s.mu.Unlock()
	return resp.Header.Revision, nil
}

// decode reads one record.
func (s *EtcdStore) decode(d *decoder, kv *mvccpb.KeyValue) (*entry, error) {
	e := &entry{}
	h, err := hex.DecodeString(string(kv.Key[len(s.hashes):]))
	if err != nil || len(h) != len(e.hash) {
		return nil, errors.New("key is not a sha-256 hash")
	}
	copy(e.hash[:], h)
	return e, d.decode(kv.Value, e)
}

// bump wakes the waiters on the copy's revision; s.mu is held.
func (s *EtcdStore) bump() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// follow keeps the copy current from revision rev on, watching again
// after each break (reading everything again after a compaction), until
// ctx ends.
func (s *EtcdStore) follow(ctx context.Context, rev int64) {
	defer close(s.followed)
	backoff := s.stale / 10
	for {
		err := s.watch(ctx, rev)
		if ctx.Err() != nil {
			return
		}
		s.opts.Logger.Warn("token watch broken; following again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.stale)
		if errors.Is(err, rpctypes.ErrCompacted) {
			r, err := s.load(ctx)
			if err != nil {
				s.opts.Logger.Warn("token reload", "err", err)
				continue
			}
			rev = r
		}
		rev = max(rev, s.Revision())
	}
}

// watch applies the changes after rev until the watch breaks. Its stream
// is its own (metadata of its own), so that the progress of other watches
// on the client never holds it back, and it requires a leader, so that a
// member cut off from its cluster ends it.
//
// Five times per MaxStaleness it probes: a linearizable read (which only
// a member in touch with a quorum answers) gives the cluster's revision at
// an instant; once the copy holds every change up to that revision (a
// progress notice, asked for at once, says so on a quiet cluster), the
// copy is known current as of that instant. A member's own progress
// notice is not enough: a member cut off from the others still answers
// it, from its own, stale, revision.
func (s *EtcdStore) watch(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx), "solo-watch", "tokens"))
	defer cancel()
	wch := s.cli.Watch(wctx, s.hashes, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	tick := time.NewTicker(s.stale / 5)
	defer tick.Stop()
	probed := make(chan probe, 1)
	probing := false
	var pending []probe
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if !probing {
				probing = true
				go func() { probed <- s.probe(wctx) }()
			}
		case p := <-probed:
			probing = false
			if p.rev > 0 {
				pending = append(pending, p)
				s.cli.RequestProgress(wctx) // no answer shows as staleness
			}
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := resp.Err(); err != nil {
				return err
			}
			s.apply(resp)
		}
		pending = s.confirm(pending)
	}
}

// probe is a linearizable read's revision (0 if it failed) and the
// instant before it was asked.
type probe struct {
	at  time.Time
	rev int64
}

func (s *EtcdStore) probe(ctx context.Context) probe {
	ctx, cancel := context.WithTimeout(ctx, s.stale)
	defer cancel()
	at := time.Now()
	resp, err := s.cli.Get(ctx, s.ids) // one key, never written: cheap
	if err != nil {
		return probe{}
	}
	return probe{at: at, rev: resp.Header.Revision}
}

// confirm advances the copy's last word to the latest probe whose
// revision the copy holds, and returns the probes still pending.
func (s *EtcdStore) confirm(pending []probe) []probe {
	if len(pending) == 0 {
		return pending
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	left := pending[:0]
	for _, p := range pending {
		if p.rev <= s.rev {
			if p.at.After(s.heard) {
				s.heard = p.at
			}
		} else {
			left = append(left, p)
		}
	}
	return left
}

// apply applies one watch response to the copy.
func (s *EtcdStore) apply(resp clientv3.WatchResponse) {
	d := decoder{}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	rev := s.rev
	for _, ev := range resp.Events {
		e, err := s.decode(&d, ev.Kv)
		switch {
		case err != nil && e == nil:
			continue // not a record's key
		case ev.Type == clientv3.EventTypeDelete:
			delete(s.byHash, e.hash)
		case err != nil:
			delete(s.byHash, e.hash) // fail closed
			s.opts.Logger.Warn("token record set aside", "revision", ev.Kv.ModRevision, "err", err)
		default:
			s.byHash[e.hash] = e
		}
		rev = max(rev, ev.Kv.ModRevision)
	}
	// Only a progress notice says that nothing up to its revision is left
	// to come; a batch of events says so up to its last.
	if resp.IsProgressNotify() {
		rev = max(rev, resp.Header.Revision)
	}
	if rev > s.rev {
		s.rev = rev
		s.bump()
	}
}

// Revision returns the etcd revision up to which the copy holds every
// change.
func (s *EtcdStore) Revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Wait returns once the copy holds every change up to revision rev (a
// revision another node's [EtcdStore.Revision] returned after a write,
// say), or ctx's error, or [ErrClosed].
func (s *EtcdStore) Wait(ctx context.Context, rev int64) error {
	for {
		s.mu.RLock()
		cur, ch, closed := s.rev, s.changed, s.closed
		s.mu.RUnlock()
		switch {
		case closed:
			return ErrClosed
		case cur >= rev:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Close stops the watch and drops the tokens from memory; every later call
// returns [ErrClosed]. It does not close the client, and is idempotent.
func (s *EtcdStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.byHash = nil
	s.bump()
	close(s.done)
	s.mu.Unlock()
	s.cancel()
	<-s.followed
	return nil
}

func (s *EtcdStore) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

func (s *EtcdStore) hashKey(h tokenHash) string { return s.hashes + hex.EncodeToString(h[:]) }

func (s *EtcdStore) idKey(id ulid.ULID) string { return s.ids + id.String() }

// Grant is [Store.Grant] on etcd: one transaction that creates the record
// and its id index entry, committed by a quorum. It returns once this
// node's copy holds the token; if it cannot wait that long (ctx), the token
// is stored but its plaintext is lost, and it expires unused.
func (s *EtcdStore) Grant(ctx context.Context, req GrantRequest) (Token, string, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, "", fmt.Errorf("grant token: %w", err)
	}
	if s.isClosed() {
		return Token{}, "", ErrClosed
	}
	e, plaintext, err := s.opts.newEntry(req)
	if err != nil {
		return Token{}, "", fmt.Errorf("grant token: %w", err)
	}
	hk, ik := s.hashKey(e.hash), s.idKey(e.id)
	resp, err := s.txn(ctx,
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(hk), "=", 0), clientv3.Compare(clientv3.CreateRevision(ik), "=", 0)},
		clientv3.OpPut(hk, string(encodeRecord(e))), clientv3.OpPut(ik, hex.EncodeToString(e.hash[:])))
	if err != nil {
		return Token{}, "", fmt.Errorf("grant token: %w", err)
	}
	if !resp.Succeeded {
		return Token{}, "", errors.New("grant token: token id or hash already stored") // 2^-128 odds: refuse, never overwrite
	}
	if err := s.Wait(ctx, resp.Header.Revision); err != nil {
		return Token{}, "", fmt.Errorf("grant token %s: stored, but not yet seen by this node: %w", e.id, err)
	}
	return e.token(), plaintext, nil
}

// Revoke is [Store.Revoke] on etcd: the record is rewritten in a
// transaction that compares its revision (read again after a concurrent
// change), committed by a quorum. It returns once this node's copy
// refuses the token; every other node's does within a watch event, or
// fails closed.
func (s *EtcdStore) Revoke(ctx context.Context, id string, at time.Time) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, fmt.Errorf("revoke token: %w", err)
	}
	if at.IsZero() {
		at = s.opts.Now()
	}
	if s.isClosed() {
		return Token{}, ErrClosed
	}
	// Echo the id only if it is one: a plaintext pasted by mistake must
	// not reach an error message.
	uid, err := ulid.ParseStrict(id)
	if err != nil {
		return Token{}, fmt.Errorf("revoke token: %w", ErrNotFound)
	}
	for {
		e, modRev, err := s.read(ctx, uid)
		if err != nil {
			return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
		}
		if e.revoked == 0 {
			e.revoked = at.UnixNano()
			hk := s.hashKey(e.hash)
			resp, err := s.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(hk), "=", modRev)},
				clientv3.OpPut(hk, string(encodeRecord(e))))
			if err != nil {
				return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
			}
			if !resp.Succeeded {
				continue // changed since it was read: read it again
			}
			modRev = resp.Header.Revision
		}
		if err := s.Wait(ctx, modRev); err != nil {
			return Token{}, fmt.Errorf("revoke token %s: revoked, but not yet seen by this node: %w", id, err)
		}
		return e.token(), nil
	}
}

// read returns the stored token with id, and its record's revision.
func (s *EtcdStore) read(ctx context.Context, id ulid.ULID) (*entry, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	g, err := s.cli.Get(ctx, s.idKey(id))
	if err != nil {
		return nil, 0, err
	}
	if len(g.Kvs) == 0 {
		return nil, 0, ErrNotFound
	}
	h, err := hex.DecodeString(string(g.Kvs[0].Value))
	if err != nil || len(h) != sha256.Size {
		return nil, 0, ErrNotFound // a damaged index entry: nothing can revoke through it
	}
	r, err := s.cli.Get(ctx, s.hashes+string(g.Kvs[0].Value))
	if err != nil {
		return nil, 0, err
	}
	if len(r.Kvs) == 0 {
		return nil, 0, ErrNotFound
	}
	e, err := s.decode(&decoder{}, r.Kvs[0])
	if err != nil {
		return nil, 0, ErrNotFound // a damaged record cannot authenticate anyway
	}
	return e, r.Kvs[0].ModRevision, nil
}

// txnOps bounds a transaction's operations, under etcd's default
// --max-txn-ops (128).
const txnOps = 128

// txn commits one transaction under the request timeout.
func (s *EtcdStore) txn(ctx context.Context, cmps []clientv3.Cmp, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
}

// Authenticate is [Store.Authenticate] on this node's copy: no request to
// etcd. While the copy cannot be known current (no word from the cluster
// for [EtcdOptions.MaxStaleness]), every token is refused with
// [ErrNotSynced].
func (s *EtcdStore) Authenticate(plaintext string) (Token, error) {
	if err := Validate(plaintext); err != nil {
		return Token{}, err
	}
	hash := tokenHash(sha256.Sum256([]byte(plaintext)))
	s.mu.RLock()
	closed, heard, e := s.closed, s.heard, s.byHash[hash]
	s.mu.RUnlock()
	switch {
	case closed:
		return Token{}, ErrClosed
	case time.Since(heard) > s.stale:
		return Token{}, ErrNotSynced
	}
	return authenticate(e, hash, s.opts.Now())
}

// List is [Store.List] on this node's copy.
func (s *EtcdStore) List(tenant string) []Token {
	s.mu.RLock()
	out := list(s.byHash, tenant)
	s.mu.RUnlock()
	return sortTokens(out)
}

// Sweep is [Store.Sweep] on etcd: the tokens this node's copy finds
// sweepable are deleted in transactions of up to 64 tokens. Every node
// may sweep: deleting a deleted token changes nothing.
func (s *EtcdStore) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sweep tokens: %w", err)
	}
	now := s.opts.Now().UnixNano()
	var dead []*entry
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return 0, ErrClosed
	}
	for _, e := range s.byHash {
		if sweepable(e, now, int64(s.opts.Retention)) {
			dead = append(dead, e)
		}
	}
	s.mu.RUnlock()
	var rev int64
	for i := 0; i < len(dead); i += txnOps / 2 {
		var ops []clientv3.Op
		for _, e := range dead[i:min(i+txnOps/2, len(dead))] {
			ops = append(ops, clientv3.OpDelete(s.hashKey(e.hash)), clientv3.OpDelete(s.idKey(e.id)))
		}
		resp, err := s.txn(ctx, nil, ops...)
		if err != nil {
			return i, fmt.Errorf("sweep tokens: %w", err)
		}
		rev = resp.Header.Revision
	}
	if len(dead) > 0 {
		if err := s.Wait(ctx, rev); err != nil {
			return len(dead), fmt.Errorf("sweep tokens: deleted, but not yet seen by this node: %w", err)
		}
	}
	return len(dead), nil
}

// Run calls [EtcdStore.Sweep] every [Options.SweepInterval], as
// [Store.Run] does.
func (s *EtcdStore) Run(ctx context.Context) error {
	return runSweeps(ctx, &s.opts, s.done, s.Sweep, s.isClosed)
}
