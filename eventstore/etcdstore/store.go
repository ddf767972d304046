package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

// Defaults for [Options]. A zero field in Options means the default.
const (
	// DefaultPrefix is where the log's keys live.
	DefaultPrefix = "/solo/log/"
	// DefaultRequestTimeout bounds each request to etcd: an append that a
	// quorum has not committed by then fails with ErrUnavailable.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultMaxTxnOps and DefaultMaxRequestBytes are etcd's own defaults
	// (--max-txn-ops, --max-request-bytes), so that the store works with a
	// cluster nobody tuned.
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 1536 * 1024
)

// Options configure [Open]. The zero value, or nil, uses every default.
type Options struct {
	// Prefix is the key prefix of this log. Two logs in one cluster need
	// two prefixes. Default DefaultPrefix.
	Prefix string
	// RequestTimeout bounds each request to etcd. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxTxnOps and MaxRequestBytes must not exceed the cluster's
	// --max-txn-ops and --max-request-bytes: a group commit stays within
	// them, and one Append is refused (ErrInvalid) beyond them.
	MaxTxnOps       int
	MaxRequestBytes int
	// SubscriberBuffer is each subscriber's live buffer, in events.
	// Default eventstore.DefaultSubscriberBuffer.
	SubscriberBuffer int
	// Now is the clock for events appended without a time. Default time.Now.
	Now func() time.Time
	// OnCommit, if set, is called by the committer after each group
	// commit, and after each one etcd did not confirm (CommitStats.Err
	// wraps ErrUnavailable); it must not block.
	OnCommit func(eventstore.CommitStats)
}

// Store is an event log in etcd. See the package doc.
type Store struct {
	cli      *clientv3.Client
	k        keys
	opts     Options
	maxBatch int
	entropy  *ulid.LockedMonotonicReader

	// mu guards closed; Append holds it shared while it queues a request
	// so that Close can wait for queued requests to be drained.
	mu     sync.RWMutex
	closed bool
	reqs   chan *appendReq
	done   chan struct{} // closed when the committer has exited
	// bg is cancelled by Close, after the committer has exited: it ends
	// subscriptions and any request still in flight.
	bg     context.Context
	cancel context.CancelFunc

	head atomic.Uint64 // the highest position seen

	known known // the committer's view; only the committer touches it

	stats struct {
		commits, events, overflows, writeFailures atomic.Uint64
		subscribers                               atomic.Int64
	}
}

// Open opens the log under opts.Prefix on cli's cluster, creating nothing
// until the first append. It fails with an error wrapping
// [eventstore.ErrUnavailable], naming the endpoints, when the cluster does
// not answer within the request timeout, and with [eventstore.ErrCorrupt]
// when the last event does not decode. The client stays the caller's: Close
// does not close it.
func Open(cli *clientv3.Client, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = eventstore.DefaultSubscriberBuffer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	maxBatch := min(eventstore.DefaultMaxBatch, (o.MaxTxnOps-1)/opsPerEvent)
	if maxBatch < 1 {
		return nil, fmt.Errorf("open event log in etcd: %w: MaxTxnOps is %d, at least %d needed", eventstore.ErrInvalid, o.MaxTxnOps, opsPerEvent+1)
	}
	s := &Store{
		cli:      cli,
		k:        newKeys(o.Prefix),
		opts:     o,
		maxBatch: maxBatch,
		entropy:  &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)},
		reqs:     make(chan *appendReq, 256),
		done:     make(chan struct{}),
	}
	s.bg, s.cancel = context.WithCancel(context.Background())
	if err := s.init(); err != nil {
		s.cancel()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// init reads the head and checks that the last event decodes.
func (s *Store) init() error {
	ctx, cancel := s.request()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.k.head)
	if err != nil {
		return s.unavailable("open event log", err)
	}
	head, err := s.decodeHead(resp.Kvs)
	if err != nil {
		return fmt.Errorf("open event log: %w", err)
	}
	if head > 0 {
		if _, err := s.getEvent(ctx, head, 0); err != nil {
			return fmt.Errorf("open event log: the last event: %w", err)
		}
	}
	s.head.Store(head)
	return nil
}

// Close stops accepting appends, waits for queued appends to be committed
// (or to fail), and ends every subscription. It does not close the client.
// It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	s.cancel()
	return nil
}

// Prefix returns the key prefix of the log.
func (s *Store) Prefix() string { return s.opts.Prefix }

// MaxBatch returns the most events one Append call may hold: what the
// cluster's transaction limit allows (see the package doc's caveats).
func (s *Store) MaxBatch() int { return s.maxBatch }

// MaxAppend is [Store.MaxBatch]: one Append call is one Txn, so the two
// limits are one here. It is the name the embedded store gives the limit.
func (s *Store) MaxAppend() int { return s.maxBatch }

// Head returns the position of the last committed event, 0 for an empty
// log, as the cluster has it (a linearizable read). If the cluster does not
// answer within the request timeout, it returns the highest position this
// store has seen.
func (s *Store) Head() uint64 {
	ctx, cancel := s.request()
	defer cancel()
	if resp, err := s.cli.Get(ctx, s.k.head); err == nil {
		if h, err := s.decodeHead(resp.Kvs); err == nil {
			s.seen(h)
		}
	}
	return s.head.Load()
}

// NewID returns a fresh ULID, monotonic within the store.
func (s *Store) NewID() ulid.ULID {
	return ulid.MustNew(ulid.Timestamp(s.opts.Now()), s.entropy)
}

// Stats returns the store's counters. Commits counts the Txns that
// committed events; Subscribers the subscriptions following the log live.
func (s *Store) Stats() eventstore.Stats {
	return eventstore.Stats{
		Head:          s.head.Load(),
		Commits:       s.stats.commits.Load(),
		Events:        s.stats.events.Load(),
		Subscribers:   int(s.stats.subscribers.Load()),
		Overflows:     s.stats.overflows.Load(),
		WriteFailures: s.stats.writeFailures.Load(),
	}
}

// seen raises the highest position seen to pos.
func (s *Store) seen(pos uint64) {
	for {
		h := s.head.Load()
		if pos <= h || s.head.CompareAndSwap(h, pos) {
			return
		}
	}
}

// request returns a context for one request to etcd: bounded by the
// request timeout, and ended by Close.
func (s *Store) request() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.bg, s.opts.RequestTimeout)
}

// unavailable wraps an error of etcd's in the store's terms: the cluster's
// refusals of an oversized Txn are ErrInvalid (nothing was written); a
// closed store is ErrClosed; anything else is ErrUnavailable, naming the
// endpoints, with the outcome unknown.
func (s *Store) unavailable(op string, err error) error {
	if s.bg.Err() != nil {
		return fmt.Errorf("%s: %w", op, eventstore.ErrClosed)
	}
	if msg := err.Error(); strings.Contains(msg, "too many operations in txn request") || strings.Contains(msg, "request is too large") {
		return fmt.Errorf("%s: %w: the etcd cluster refused the transaction (%v): raise its --max-txn-ops / --max-request-bytes, or lower the store's MaxTxnOps / MaxRequestBytes", op, eventstore.ErrInvalid, err)
	}
	return fmt.Errorf("%s: %w: etcd at %s did not answer within %v (is a quorum of its members up?): %v",
		op, eventstore.ErrUnavailable, strings.Join(s.cli.Endpoints(), ","), s.opts.RequestTimeout, err)
}

var errBadHead = errors.New("head key is not 8 bytes")

func (s *Store) decodeHead(kvs []*kvType) (uint64, error) {
	if len(kvs) == 0 {
		return 0, nil
	}
	if len(kvs[0].Value) != 8 {
		return 0, fmt.Errorf("%w: %s: %v", eventstore.ErrCorrupt, s.k.head, errBadHead)
	}
	return binary.BigEndian.Uint64(kvs[0].Value), nil
}

var _ eventstore.Log = (*Store)(nil)
