package eventstore

import (
	"context"
	"sync"
	"sync/atomic"
)

// Subscription delivers events in position order, without gaps or
// duplicates: first those already stored from the starting position, then
// new ones as they are committed. See [Store.Subscribe].
type Subscription struct {
	c    chan Envelope
	err  error // set before c is closed
	done chan struct{}
}

// C returns the channel of events. It is closed when the subscription's
// context ends, the store closes, or a read fails; then [Subscription.Err]
// tells why.
func (sub *Subscription) C() <-chan Envelope { return sub.c }

// Err returns why C was closed: the context's error, [ErrClosed], or a read
// error. It returns nil while C is open.
func (sub *Subscription) Err() error {
	select {
	case <-sub.done:
		return sub.err
	default:
		return nil
	}
}

// Subscribe delivers every event from position from on (1 or 0 for the
// whole log), then follows the log live, until ctx ends.
//
// A subscriber that reads slowly never slows appends (invariant I8): live
// events go to a bounded buffer of [Options.SubscriberBuffer] events, and a
// subscriber whose buffer fills is dropped from the live set and reads the
// events it missed from the store, then goes live again. Either way it sees
// each event exactly once, in order.
func (s *Store) Subscribe(ctx context.Context, from uint64) *Subscription {
	return NewSubscription(func(out chan<- Envelope) error {
		return s.follow(ctx, max(from, 1), out)
	})
}

// follow alternates between catching up from the store and following live
// events, until ctx ends or the store closes.
func (s *Store) follow(ctx context.Context, next uint64, out chan<- Envelope) error {
	deliver := func(env Envelope) error {
		select {
		case out <- env:
			next = env.Pos + 1
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-s.quit:
			return ErrClosed
		}
	}
	for {
		// Catch up from the store.
		for env, err := range s.Read(next, 0) {
			if err != nil {
				return err
			}
			if err := deliver(env); err != nil {
				return err
			}
		}
		// Go live, unless more was published while we read: registering
		// and the published head are under one lock, so nothing published
		// after this point can be missed, and anything published before it
		// was read above (or is read in the next round).
		live, ok := s.subs.register(next, s.opts.SubscriberBuffer)
		if !ok {
			select {
			case <-s.quit:
				return ErrClosed
			default:
				continue
			}
		}
		err := func() error {
			defer s.subs.unregister(live)
			for {
				select {
				case env, open := <-live.c:
					if !open {
						return nil // fell behind, or the store closed: back to the store
					}
					if env.Pos < next {
						continue // already read from the store
					}
					if env.Pos > next {
						return nil // cannot happen; if it does, the store fills the gap
					}
					if err := deliver(env); err != nil {
						return err
					}
				case <-ctx.Done():
					return ctx.Err()
				case <-s.quit:
					return ErrClosed
				}
			}
		}()
		if err != nil {
			return err
		}
	}
}

// subscribers is the set of live subscriptions and the head that has been
// published to them.
type subscribers struct {
	mu     sync.Mutex
	head   uint64 // last published position
	live   map[*liveSub]struct{}
	closed bool
}

type liveSub struct{ c chan Envelope }

// register adds a live subscriber that wants events from next on. It fails
// if events at or after next have already been published: the caller must
// read them from the store first.
func (ss *subscribers) register(next uint64, buffer int) (*liveSub, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.head >= next {
		return nil, false
	}
	if ss.live == nil {
		ss.live = make(map[*liveSub]struct{})
	}
	l := &liveSub{c: make(chan Envelope, buffer)}
	ss.live[l] = struct{}{}
	return l, true
}

func (ss *subscribers) unregister(l *liveSub) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.live[l]; ok {
		delete(ss.live, l)
		close(l.c)
	}
}

// publish hands committed events to every live subscriber without blocking.
// A subscriber without room is dropped: closing its channel sends it back to
// the store, from where it reads what it missed.
func (ss *subscribers) publish(envs []Envelope, overflows *atomic.Uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.head = envs[len(envs)-1].Pos
	for l := range ss.live {
		if cap(l.c)-len(l.c) < len(envs) {
			delete(ss.live, l)
			close(l.c)
			overflows.Add(1)
			continue
		}
		for _, env := range envs {
			l.c <- env
		}
	}
}

// setHead records the head at open, before any subscriber exists.
func (ss *subscribers) setHead(pos uint64) {
	ss.mu.Lock()
	ss.head = pos
	ss.mu.Unlock()
}

func (ss *subscribers) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.live)
}

func (ss *subscribers) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	for l := range ss.live {
		delete(ss.live, l)
		close(l.c)
	}
}
