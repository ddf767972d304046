package supervisor

import (
	"context"
	"slices"
	"sync"
	"time"
)

// loopContext is the context of one loop of a [Tree]: it ends when the
// tree stops the loop ([Tree.Stop]) or every loop ([Tree.StopAll]), with
// [context.Canceled].
//
// It costs a few words: a parked loop waits on its instance's exit watch,
// which wakes on the context through [context.AfterFunc], and a standard
// context would give each of thousands of loops a context of its own in
// its parent's map, an AfterFunc context, and a map of children to hold
// it. loopContext implements the AfterFunc method that [context.AfterFunc]
// (and every context derived from it) uses instead, with a short list;
// its Done channel is made only when asked for.
type loopContext struct {
	mu     sync.Mutex
	done   chan struct{} // made on first Done, or closed at once if ended first
	err    error
	afters []*afterCall // registered by AfterFunc, run once when it ends
	parked *Watch       // the exit watch waiting on c, if any: see parkWatch
}

type afterCall struct{ f func() }

var _ context.Context = (*loopContext)(nil)

// closedChan is the Done channel of a loop that ended before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *loopContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *loopContext) Value(any) any               { return nil }

func (c *loopContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

func (c *loopContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges for f to run on a goroutine of its own once c ends
// (at once if it has ended), as [context.AfterFunc] documents; stop
// unregisters f and reports whether it did so before f was started.
func (c *loopContext) AfterFunc(f func()) (stop func() bool) {
	a := &afterCall{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.afters, a)
		if i < 0 {
			return false
		}
		c.afters = slices.Delete(c.afters, i, i+1)
		return true
	}
}

// cancel ends c; later calls do nothing.
func (c *loopContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	if c.parked != nil {
		// Under the lock: once unparkWatch has the lock, the wake is over.
		c.parked.wake()
		c.parked = nil
	}
	c.mu.Unlock()
	for _, a := range afters {
		go a.f()
	}
}

// parkWatch registers w, about to wait for its process, to be woken when c
// ends, without allocating: it runs at the bottom of a parked loop's
// stack, where an allocation's deep path would grow the stack for good
// (see [Service.loop]). It returns false, registering nothing, if c has
// ended or another watch waits on it; the caller then wakes on c as it
// would on any context.
func (c *loopContext) parkWatch(w *Watch) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.parked != nil {
		return false
	}
	c.parked = w
	return true
}

// unparkWatch undoes parkWatch; once it returns, w is not woken by c.
func (c *loopContext) unparkWatch(w *Watch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parked == w {
		c.parked = nil
	}
}
