package shutdown

import "errors"

// Errors of the zombie reaper (reaper.go).
var (
	// ErrNotReaper is returned by [StartReaper] when this process is neither
	// PID 1 nor a child subreaper (see [BecomeSubreaper]). Orphans are then
	// reparented elsewhere, so there is nothing for a reaper to do, and
	// running one would only risk reaping children that other code of this
	// process waits for.
	ErrNotReaper = errors.New("not PID 1 nor a child subreaper")
)
