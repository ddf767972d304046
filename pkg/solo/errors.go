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

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("solo is closed")
)
