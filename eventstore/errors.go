package eventstore

import (
	"errors"
	"fmt"
)

// Errors returned when opening a store.
var (
	// ErrLocked is returned by [Open] when another process holds the database
	// file's lock for longer than [Options.LockTimeout].
	ErrLocked = errors.New("database is locked by another process")

	// ErrCorrupt is returned by [Open], [Store.Check] and reads when the file
	// is damaged: a bad meta page, a truncated file, an envelope that does not
	// decode, or a gap in positions.
	ErrCorrupt = errors.New("database is damaged")
)

// Errors returned by [Store.Append].
var (
	// ErrConflict is returned when an event's [Event.Expect] does not match
	// the current version of its stream. Nothing of that request is written.
	ErrConflict = errors.New("expected version does not match")

	// ErrIDReused is returned when an event carries the id of a stored event
	// whose type, tenant or subject differ: a retry must resend the same
	// event, not a new one under an old id.
	ErrIDReused = errors.New("event id already used by a different event")

	// ErrNotWritten is returned when the file system refused the commit:
	// no space left on the device, a quota, an I/O error, a read-only
	// file system. It wraps the system's error, so errors.Is(err,
	// syscall.ENOSPC) tells a full disk. Nothing of the request, nor of
	// any request committed with it, is written; the store stays open and
	// consistent, and the same append succeeds once the fault clears.
	ErrNotWritten = errors.New("event log could not be written")

	// ErrUnavailable is returned by a backend shared over the network
	// (etcd) when it cannot tell whether a write was committed: the
	// cluster has no quorum, or did not answer in time. The outcome is
	// unknown (the events may or may not be written); retrying with the
	// same ids is safe, and succeeds once the cluster is back.
	ErrUnavailable = errors.New("event log is unavailable")

	// ErrInvalid is returned for an event the store refuses to write: an
	// empty type, a field over its size limit, or an id repeated within one
	// call. The error text names the field.
	ErrInvalid = errors.New("invalid event")
)

// Errors returned by any method once the store is closed.
var (
	// ErrClosed is returned by every method after [Store.Close].
	ErrClosed = errors.New("event store is closed")

	// ErrNoSnapshot is returned by [Store.LoadSnapshot] when none was saved.
	ErrNoSnapshot = errors.New("no snapshot")
)

// ConflictError tells which stream and which versions clashed. It wraps
// [ErrConflict].
type ConflictError struct {
	Tenant, Subject string
	Expected        uint64 // version the caller expected
	Actual          uint64 // version the stream has
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("stream %s/%s: expected version %d, have %d", e.Tenant, e.Subject, e.Expected, e.Actual)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }
