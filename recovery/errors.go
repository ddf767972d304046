package recovery

import "errors"

// ErrNotDesired is returned by [Recover] for a named service that the log
// does not say should run: never deployed, or killed.
var ErrNotDesired = errors.New("service is not deployed, or was killed")

// ErrPanic is wrapped by the error of a recovery step that panicked: the
// whole pass ([Replayer.Run]), or one service's start or hand-over, which
// then fails alone and is recorded as service_recovery_failed.
var ErrPanic = errors.New("panic")
