package supervisor

import "sync"

// The registry of our own children.
//
// It is package-level on purpose, against the usual rule: it models kernel
// state that exists once per process, the set of children of this process.
// Every [Start] in the process adds to that one kernel set whichever
// [Runtime] or test made the call, and a zombie reaper (package shutdown,
// when Solo is PID 1 or a subreaper) must see all of them; a registry per
// caller could not say whether a zombie child of the process is someone
// else's to reap.
var (
	// startMu is held for reading by every [Start] from just before the
	// fork until the child is registered, and for writing by [HoldStarts].
	startMu sync.RWMutex

	childMu  sync.Mutex
	children = map[int]*Watch{} // pid -> the Watch that will reap it
)

// OwnChild reports whether pid is a child made by [Start] that its [Watch]
// has not reaped yet. The exit status of such a child belongs to its Watch
// ([Watch.Wait], [Watch.Reap], [Process.Finish]): a zombie reaper must
// leave it alone, or the status is lost and the service's exit becomes
// [Exit.Unknown].
//
// The answer is exact only while [HoldStarts] is held: otherwise a child
// forked a moment ago may not be registered yet.
func OwnChild(pid int) bool {
	childMu.Lock()
	defer childMu.Unlock()
	_, ok := children[pid]
	return ok
}

// HoldStarts waits for every [Start] in flight to register its child, and
// then holds back new ones until release is called. Between the two, every
// child made by Start is known to [OwnChild], so a zombie reaper can call
// OwnChild(pid) and then wait4(pid) without a child being forked, dying and
// reaped by the wrong hand in between. Hold it briefly: Start blocks
// meanwhile. release must be called exactly once.
func HoldStarts() (release func()) {
	startMu.Lock()
	return startMu.Unlock
}

// childStarting is called by [Start] before the fork; the returned func is
// called once the child is registered (or failed).
func childStarting() (done func()) {
	startMu.RLock()
	return startMu.RUnlock
}

// registerChild records w's process as our own child, reaped through w.
func registerChild(w *Watch) {
	childMu.Lock()
	defer childMu.Unlock()
	children[w.pid] = w
}

// forgetChild drops w's process from the registry once w has reaped it. It
// removes the entry only if it is w's: by then the pid may already belong
// to a newer child, registered by another Watch.
func forgetChild(w *Watch) {
	childMu.Lock()
	defer childMu.Unlock()
	if children[w.pid] == w {
		delete(children, w.pid)
	}
}
