package supervisor

import (
	"context"
	"syscall"
	"time"
)

// Key names one supervised service by its tenant and name. The supervisor
// gives them no meaning beyond telling loops apart (a [Tree] holds at most
// one per key) and naming them in logs and markers.
type Key struct {
	Tenant, Name string
}

// String returns "tenant/name".
func (k Key) String() string { return k.Tenant + "/" + k.Name }

// Policy is what a service loop is told to do when its instance ends and
// when it stops it. The loop's owner derives it from its own description
// of the service; the loop applies it and decides nothing else.
type Policy struct {
	// Restart reports whether the loop starts a new attempt after one
	// that ended with exit (an attempt that could not start ends with
	// Exit{Code: -1}). Nil restarts after every exit.
	Restart func(Exit) bool
	// MaxRestarts is how many restarts the loop makes within Window. When
	// one more would exceed it, the loop reports [GaveUp] and ends; so 0
	// gives up at the first exit that would restart. Restarts are counted
	// over the last Window (the loop's clock); a zero Window counts none.
	MaxRestarts int
	Window      time.Duration
	// StopSignal and StopTimeout are how the loop stops its instance (see
	// [Instance.Stop]); zero means SIGTERM and [DefaultStopTimeout].
	StopSignal  syscall.Signal
	StopTimeout time.Duration
}

// restart applies p.Restart.
func (p Policy) restart(e Exit) bool { return p.Restart == nil || p.Restart(e) }

// FactType tells the facts a loop reports apart.
type FactType int

// The facts a loop reports, in the order a loop reports them: for each
// attempt [FactStarted] (unless it could not start) then [FactExited];
// after the last, possibly [FactGaveUp].
const (
	FactStarted FactType = iota + 1 // [Started]
	FactExited                      // [Exited]
	FactGaveUp                      // [GaveUp]
	FactReady                       // [Ready], between a Started and its Exited
	FactHealth                      // [Health], between a Started and its Exited
)

func (t FactType) String() string {
	switch t {
	case FactStarted:
		return "started"
	case FactExited:
		return "exited"
	case FactReady:
		return "ready"
	case FactHealth:
		return "health"
	case FactGaveUp:
		return "gave up"
	}
	return "unknown fact"
}

// Fact is what a service loop observed and reports to its owner through a
// [Recorder]: a [Started], an [Exited] or a [GaveUp].
type Fact interface {
	Type() FactType
}

// Started is reported when an attempt runs, before the loop waits for it.
type Started struct {
	// Generation is the loop's ([ServiceConfig.Generation]).
	Generation uint64
	// Attempt counts from 1 within the loop's generation.
	Attempt int
	// Identity is the instance's process; PID 0 for an in-process service.
	Identity Identity
}

// Exited is reported when an attempt ended, or could not start.
type Exited struct {
	Generation uint64
	Attempt    int
	// PID is the instance's; 0 when it never started, or runs in-process.
	PID int
	// Exit is how it ended: Code -1 when it never started, Unknown when
	// that cannot be told (a re-adopted process, a failed wait or stop).
	Exit Exit
	// RanFor is the time from when the loop saw it start (for a
	// re-adopted instance, [ServiceConfig.AdoptedAt]) to when the loop saw
	// it end; about zero for one that could not start.
	RanFor time.Duration
	// Err says why it ended without an exit status of its own: it could
	// not start, an in-process service failed (a [*GoError]), or waiting
	// for or stopping it failed. Nil otherwise.
	Err error
	// Restart is set when the loop starts another attempt after this one:
	// that restart's number within [Policy.Window] (1 for the first; the
	// limit is [Policy.MaxRestarts]), and Backoff the delay the loop waits
	// before it (see [Backoff.Delay]). Both are zero when the loop ends
	// instead: the policy wants no restart, the limit is reached (a
	// [GaveUp] follows), or the loop was stopped.
	Restart int
	Backoff time.Duration
}

// Ready is reported when an attempt's readiness probe passed (see
// [ServiceConfig.Ready]), After its start.
type Ready struct {
	Generation uint64
	Attempt    int
	PID        int
	After      time.Duration
}

// Type implements [Fact].
func (Ready) Type() FactType { return FactReady }

// Health is reported when a ready attempt's health changed (see
// [ServiceConfig.Health]): Healthy once a check passed, not healthy with
// Reason when it failed for good, after which the loop stops the attempt.
type Health struct {
	Generation uint64
	Attempt    int
	PID        int
	Healthy    bool
	Reason     error
}

// Type implements [Fact].
func (Health) Type() FactType { return FactHealth }

// GaveUp is reported when an attempt ended and starting another would
// exceed [Policy.MaxRestarts]: the loop ends after it.
type GaveUp struct {
	Generation uint64
	// Restarts is how many restarts the loop made within Window.
	Restarts int
	Window   time.Duration
}

// Type implements [Fact].
func (Started) Type() FactType { return FactStarted }

// Type implements [Fact].
func (Exited) Type() FactType { return FactExited }

// Type implements [Fact].
func (GaveUp) Type() FactType { return FactGaveUp }

// Recorder is a loop's owner as the loop sees it: it is told each [Fact]
// the loop observes, one at a time and in order, and keeps a record of
// them.
type Recorder interface {
	// Record returns once the fact is durable; an error means it is not.
	// It blocks as long as that takes: an owner may wait for its storage
	// to come back rather than lose a fact about a running service. The
	// loop calls it once per fact, never concurrently for one key, with
	// a context its own cancellation does not end, so that a loop being
	// stopped still records the exit of what it stopped.
	//
	// An error ends the loop. If the fact was a [Started], the loop first
	// stops the instance: an instance must not outlive its loop
	// unrecorded.
	Record(ctx context.Context, key Key, f Fact) error
}

// RecorderFunc adapts a function to [Recorder].
type RecorderFunc func(ctx context.Context, key Key, f Fact) error

// Record implements [Recorder].
func (f RecorderFunc) Record(ctx context.Context, key Key, fact Fact) error {
	return f(ctx, key, fact)
}
