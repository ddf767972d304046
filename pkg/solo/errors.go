package solo

import "errors"

var (
	// ErrNotFound is returned by Kill, Status and Logs for a service that
	// was never deployed in that tenant.
	ErrNotFound = errors.New("service not found")

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

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("solo is closed")
)
