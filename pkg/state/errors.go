package state

import (
	"errors"
	"fmt"
)

// Errors about input: a spec or an event a caller wants to write.
var (
	// ErrInvalidSpec is returned, wrapped in a [*FieldError] that names the
	// field, by [Spec.Validate] and by [NewEvent] for a [Deployed] payload
	// whose spec is invalid.
	ErrInvalidSpec = errors.New("invalid spec")

	// ErrInvalidPolicy is returned, wrapped in a [*PolicyError], for a
	// tenant policy that is refused.
	ErrInvalidPolicy = errors.New("invalid tenant policy")

	// ErrInvalidName is returned by [ValidName] for a string that is not a
	// valid service name, tenant or kind (see [NamePattern]).
	ErrInvalidName = errors.New("invalid name")

	// ErrInvalidEvent is returned by [NewEvent] for a payload it refuses to
	// encode: a deploy whose spec names another service than the event, a
	// zero generation, an unknown recovery method or drift kind.
	ErrInvalidEvent = errors.New("invalid event")
)

// Errors about stored data: envelopes and snapshots read back.
var (
	// ErrUnknownType is returned by [Decode], inside a [*DecodeError], for an
	// envelope whose type this version does not know. [World.Apply] ignores
	// such envelopes instead of failing (forward compatibility).
	ErrUnknownType = errors.New("unknown event type")

	// ErrBadPayload is returned by [Decode] and [World.Apply], inside a
	// [*DecodeError], when an envelope of a known type carries data that
	// does not decode into its payload, or a deploy whose spec names another
	// service than its envelope.
	ErrBadPayload = errors.New("bad event payload")

	// ErrBadSnapshot is returned by [UnmarshalSnapshot] for bytes that are
	// not a snapshot: bad JSON, a missing or duplicated service.
	ErrBadSnapshot = errors.New("bad snapshot")

	// ErrSnapshotVersion is returned by [UnmarshalSnapshot] for a snapshot
	// written in a format version this package does not read. The caller
	// should discard it and fold the whole log instead.
	ErrSnapshotVersion = errors.New("unsupported snapshot version")
)

// FieldError names the first field of a [Spec] that failed validation. It
// wraps [ErrInvalidSpec].
type FieldError struct {
	Field   string // JSON name of the field, e.g. "stop_signal"
	Problem string // what is wrong with it, e.g. `unknown signal "SIGFOO"`
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid spec: %s: %s", e.Field, e.Problem)
}

// Unwrap returns [ErrInvalidSpec].
func (e *FieldError) Unwrap() error { return ErrInvalidSpec }

// PolicyError names the field of a [TenantPolicy] that is refused: its
// syntax ([TenantPolicy.Validate]) or, from the runtime, an account that
// does not exist here or is root. It wraps [ErrInvalidPolicy].
type PolicyError struct {
	Field   string // "users" or "groups"
	Problem string // what is wrong, naming the user or group
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("invalid tenant policy: %s: %s", e.Field, e.Problem)
}

// Unwrap returns [ErrInvalidPolicy].
func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

// DecodeError tells which stored envelope failed to decode. It wraps
// [ErrUnknownType] or [ErrBadPayload] (and, for the latter, the JSON error).
type DecodeError struct {
	Pos  uint64 // position of the envelope in the log
	Type string // its type, as stored
	Err  error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode event %d (%s): %v", e.Pos, e.Type, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
