package recovery

import "errors"

// ErrNotDesired is returned by [Recover] for a named service that the log
// does not say should run: never deployed, or killed.
var ErrNotDesired = errors.New("service is not deployed, or was killed")
