package eventstore

import (
	"encoding/json"
	"fmt"

	"github.com/solo-rt/solo/eventstore/event"
)

// Size limits of an event's fields, checked by [Store.Append].
const (
	MaxTypeLen    = 64
	MaxTenantLen  = 128
	MaxSubjectLen = 256
	MaxActorLen   = 128
	MaxDataLen    = 1 << 20 // 1 MiB of JSON payload
)

// The plain types of the log live in package event, so that the domain
// and the Go client can use them without linking bbolt; these aliases keep
// their names here.
type (
	// Event is what a caller appends: see [event.Event].
	Event = event.Event
	// Envelope is a stored event, as read back: see [event.Envelope].
	Envelope = event.Envelope
	// Expectation is an optional condition on a stream's version: see
	// [event.Expectation].
	Expectation = event.Expectation
)

// ExpectVersion makes an append succeed only if the stream holds exactly n
// events first. ExpectVersion(0) means "the stream must be new".
func ExpectVersion(n uint64) Expectation { return event.ExpectVersion(n) }

// validate checks ev against the size limits.
func validate(ev *Event) error {
	switch {
	case ev.Type == "":
		return fmt.Errorf("%w: type is empty", ErrInvalid)
	case len(ev.Type) > MaxTypeLen:
		return fmt.Errorf("%w: type is %d bytes, limit %d", ErrInvalid, len(ev.Type), MaxTypeLen)
	case len(ev.Tenant) > MaxTenantLen:
		return fmt.Errorf("%w: tenant is %d bytes, limit %d", ErrInvalid, len(ev.Tenant), MaxTenantLen)
	case len(ev.Subject) > MaxSubjectLen:
		return fmt.Errorf("%w: subject is %d bytes, limit %d", ErrInvalid, len(ev.Subject), MaxSubjectLen)
	case len(ev.Causation) > MaxSubjectLen:
		return fmt.Errorf("%w: causation is %d bytes, limit %d", ErrInvalid, len(ev.Causation), MaxSubjectLen)
	case len(ev.Actor) > MaxActorLen:
		return fmt.Errorf("%w: actor is %d bytes, limit %d", ErrInvalid, len(ev.Actor), MaxActorLen)
	case len(ev.Data) > MaxDataLen:
		return fmt.Errorf("%w: data is %d bytes, limit %d", ErrInvalid, len(ev.Data), MaxDataLen)
	case len(ev.Data) > 0 && !json.Valid(ev.Data):
		return fmt.Errorf("%w: data is not valid JSON", ErrInvalid)
	}
	return nil
}
