package etcdstore

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

// Subscribe delivers every event from position from on (0 or 1 for the
// whole log), then follows the log live, whoever appends, until ctx ends
// or the store closes: see the package doc. An unavailable cluster does
// not end it; a damaged event does.
func (s *Store) Subscribe(ctx context.Context, from uint64) *eventstore.Subscription {
	return eventstore.NewSubscription(func(out chan<- eventstore.Envelope) error {
		return s.follow(ctx, max(from, 1), out)
	})
}

// Backoff of a subscription while etcd does not answer.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// follow alternates between catching up from the store and watching, until
// ctx ends or the store closes.
func (s *Store) follow(ctx context.Context, next uint64, out chan<- eventstore.Envelope) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.bg, cancel)
	defer stop()
	why := func() error {
		if s.bg.Err() != nil {
			return eventstore.ErrClosed
		}
		return ctx.Err()
	}
	deliver := func(env eventstore.Envelope) error {
		select {
		case out <- env:
			next = env.Pos + 1
			return nil
		case <-ctx.Done():
			return why()
		}
	}
	retry := retryMin
	for {
		rev, err := s.catchUp(ctx, &next, deliver)
		if ctx.Err() != nil {
			return why()
		}
		if err != nil {
			if !errors.Is(err, eventstore.ErrUnavailable) {
				return err
			}
			select { // the cluster does not answer: wait, and read again
			case <-time.After(retry):
				retry = min(2*retry, retryMax)
				continue
			case <-ctx.Done():
				return why()
			}
		}
		retry = retryMin
		if err := s.watch(ctx, rev, &next, deliver); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return why()
		}
	}
}

// catchUp delivers the stored events from next on, page after page, and
// returns the revision of its last read: every event committed after it is
// in a watch from the revision after it.
func (s *Store) catchUp(ctx context.Context, next *uint64, deliver func(eventstore.Envelope) error) (int64, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		page, rev, err := s.readPage(rctx, *next, eventstore.ReadPage, 0)
		cancel()
		if err != nil {
			return 0, err
		}
		for _, env := range page {
			if err := deliver(env); err != nil {
				return 0, err
			}
		}
		if len(page) < eventstore.ReadPage {
			return rev, nil
		}
	}
}

// item is what the watch hands the deliverer: an event, or the reason the
// watch ended.
type item struct {
	env      eventstore.Envelope
	err      error
	overflow bool
}

// watch delivers the events committed after revision rev, from *next on,
// until the watch ends: it returns nil to go back to catching up (the
// subscriber fell behind, the watch was cancelled or compacted, a gap),
// and an error to end the subscription.
func (s *Store) watch(ctx context.Context, rev int64, next *uint64, deliver func(eventstore.Envelope) error) error {
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	// WithRequireLeader: a member cut off from its leader ends the watch
	// instead of leaving it silent; the next catch-up finds a live member.
	wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), s.k.events,
		clientv3.WithRange(s.k.eventsEnd), clientv3.WithRev(rev+1))
	// One slot more than the buffer: the overflow marker always fits.
	live := make(chan item, s.opts.SubscriberBuffer+1)
	go s.pump(wch, wcancel, live)

	s.stats.subscribers.Add(1)
	defer s.stats.subscribers.Add(-1)
	for it := range live {
		switch {
		case it.overflow:
			return nil
		case it.err != nil:
			return it.err
		case it.env.Pos < *next:
			continue // already delivered
		case it.env.Pos > *next:
			return nil // a gap: cannot happen, but the store fills it
		}
		if err := deliver(it.env); err != nil {
			return err
		}
	}
	return nil
}

// pump moves the watch's events to live without ever blocking on it: when
// live is full, it ends the watch and says so, and the subscriber reads
// the rest from the store. It closes live when the watch ends.
func (s *Store) pump(wch clientv3.WatchChan, wcancel context.CancelFunc, live chan<- item) {
	defer close(live)
	defer func() {
		wcancel()
		for range wch { // let the watcher finish
		}
	}()
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			return // compacted, no leader, cancelled: back to the store
		}
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			env, err := s.decodeEvent(ev.Kv)
			it := item{env: env, err: err}
			if len(live) >= s.opts.SubscriberBuffer {
				s.stats.overflows.Add(1)
				live <- item{overflow: true} // the spare slot: never blocks
				return
			}
			live <- it
			if err != nil {
				return
			}
		}
	}
}
