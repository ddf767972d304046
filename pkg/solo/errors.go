package solo

import "errors"

var (
	// ErrNotFound is returned by Kill, Start, Restart, Signal, Remove,
	// Status and Logs for a service that was never deployed in that
	// tenant, or was removed.
	ErrNotFound = errors.New("service not found")

	// ErrRunning is returned by Remove for a service that is desired or
	// still runs: it must be stopped first. Nothing is written.
	ErrRunning = errors.New("service is not stopped")

	// ErrHasDependents is returned by Remove for a service that others
	// are after or require (spec after, requires); the error names them.
	// Nothing is written.
	ErrHasDependents = errors.New("other services depend on it")

	// ErrNotRunning is returned by Signal when the service has no running
	// process to signal: stopped, between attempts, in-process, or its
	// recorded process is gone or its pid taken by another (the identity
	// check failed). Nothing is written or signalled.
	ErrNotRunning = errors.New("service has no running process")

	// ErrBadSignal is returned by Signal for a signal name it does not
	// know. Nothing is written.
	ErrBadSignal = errors.New("unknown signal")

	// ErrStartFailed is returned by WaitStarted when the attempt it waits
	// for could not start (the reason follows it in the message), or the
	// service was stopped or failed before it did.
	ErrStartFailed = errors.New("did not start")

	// ErrUnknownKind is returned by Deploy for an in-process service whose
	// kind is not registered (see [Register]). Nothing is written.
	ErrUnknownKind = errors.New("service kind is not registered")

	// ErrShuttingDown is returned by Deploy and Kill once a shutdown has
	// begun: the runtime accepts no new writes while it drains.
	ErrShuttingDown = errors.New("solo is shutting down")

	// ErrLogMissing is returned by [Open] when the data dir has no event
	// log (solo.db) but processes started from it still run: the log was
	// lost, and starting a new one would take them for strays and stop
	// them. Nothing is created and no process is touched.
	ErrLogMissing = errors.New("event log is missing")

	// ErrDenied is returned by Deploy and Apply for a spec its tenant's
	// policy does not allow: a user or group not in it, an account that is
	// root or the daemon's own, or any confined service under a daemon not
	// running as root (see [Runtime.SetTenantPolicy]). Nothing is written.
	// A start of such a spec fails with it.
	ErrDenied = errors.New("denied by the tenant's policy")

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("solo is closed")
)
