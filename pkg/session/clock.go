package session

import "time"

// Clock is the time of asset leases and of the sweep that collects them.
// [Options.Clock] defaults to the system's; tests pass one they move by
// hand.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// At returns a channel that receives once the clock reaches t (at once
	// if it has), and a function that releases it early. The channel is
	// never closed.
	At(t time.Time) (<-chan time.Time, func())
}

// systemClock is the wall clock. Leases are instants recorded in the log,
// so the wall clock is the one that counts; a timer of the sweep never
// waits longer than maxSweepWait, so a jump of the wall clock is caught up
// with within that.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) At(t time.Time) (<-chan time.Time, func()) {
	timer := time.NewTimer(time.Until(t))
	return timer.C, func() { timer.Stop() }
}
